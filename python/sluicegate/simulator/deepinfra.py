"""DeepInfra's native API: ``POST /v1/inference/{model}`` and the ``/v1/openai/models`` catalog.

Text generation takes one rendered prompt (``input``) and answers with DeepInfra's TGI-derived
token events (PROTOCOLS.md §1.4) or its JSON body (§1.3); the same URL with ``inputs`` embeds
texts (§1.6). Quirks kept on purpose, because the gateway must cope with them:

- stream events are Python ``json.dumps`` output (``", "`` and ``": "`` separators, raw UTF-8),
  not the compact JSON of TGI or of DeepInfra's own non-streamed bodies;
- the last event carries the full ``generated_text`` and the counts; it is a special EOS token
  (text per the prompt's template family) unless the answer hit ``max_new_tokens`` or a stop
  string, in which case the last real token carries them; no ``[DONE]`` unless ``#sim done=1``;
- a stop string is part of ``generated_text`` (TGI behaviour), ``<think>`` is plain text;
- there are no tool calls in the API: ``#sim tool=1`` answers with a call written in the
  markup of the prompt's template family, as plain tokens ending in EOS (``tgi_family``);
- errors are ``{"error": "..."}`` (DeepError), validation errors FastAPI's ``{"detail": [...]}``,
  and an error after the stream started is a ``data:`` event inside the HTTP 200 answer.

Token counts are deterministic stand-ins: one input token per word of the prompt, one per
generated token event. Costs use the catalog's per-model prices.
"""

from __future__ import annotations

import hashlib
import json
import math
import secrets
import string
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote

import orjson
import trio

from sluicegate.server import Request, Response, StreamingResponse
from sluicegate.simulator import playback
from sluicegate.simulator.behaviour import Behaviour, find_last_directive
from sluicegate.simulator.rejection import Rejected, directive_behaviour
from sluicegate.simulator.script import Ask, Finish, Script, Usage, build_script

# What DeepInfra's fork shares with TGI (EOS_TOKEN_ID and input_tokens stay importable here).
from sluicegate.simulator.tgi_family import EOS_TOKEN_ID as EOS_TOKEN_ID
from sluicegate.simulator.tgi_family import (
    TokenEventRenderer,
    eos_text,
    generated_tokens,
    input_tokens,
    native_finish_reason,
    planned_runtime_ms,
)
from sluicegate.simulator.tool_markup import CannotCallTools, tool_call_script, tool_markup

INFERENCE_PREFIX = "/v1/inference/"
EMBEDDING_DIMENSIONS = 8
CATALOG_CREATED = 1_718_000_000
GARBAGE_BODY = b"<html><body>502 Bad Gateway (simulated: this is not JSON)</body></html>"
# USD per million tokens for a model that is not in the catalog (any model id works).
DEFAULT_PRICING = {"input_tokens": 0.03, "output_tokens": 0.05}
_REQUEST_ID_CHARS = string.ascii_letters + string.digits


# --- the catalog ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CatalogModel:
    """One model of ``GET /v1/openai/models``; prices in USD per million tokens."""

    id: str
    description: str
    context_length: int
    max_tokens: int
    pricing: tuple[tuple[str, float], ...]
    tags: tuple[str, ...]

    def entry(self, with_meta: bool) -> dict[str, Any]:
        metadata = {
            "description": self.description,
            "context_length": self.context_length,
            "max_tokens": self.max_tokens,
            "pricing": dict(self.pricing),
            "tags": list(self.tags),
        }
        return {
            "id": self.id,
            "object": "model",
            "created": CATALOG_CREATED,
            "owned_by": "deepinfra",
            "root": self.id,
            "parent": None,
            "metadata": metadata if with_meta else None,
        }


def _tokens(inp: float, out: float, cached: float | None = None) -> tuple[tuple[str, float], ...]:
    prices = (("input_tokens", inp), ("output_tokens", out))
    return (*prices, ("cache_read_tokens", cached)) if cached is not None else prices


CATALOG = (
    CatalogModel(
        "meta-llama/Meta-Llama-3.1-8B-Instruct",
        "Meta Llama 3.1 8B, instruction tuned for dialogue.",
        131072,
        16384,
        _tokens(0.03, 0.05),
        ("chat",),
    ),
    CatalogModel(
        "meta-llama/Llama-3.3-70B-Instruct-Turbo",
        "Meta Llama 3.3 70B, FP8 turbo deployment.",
        131072,
        16384,
        _tokens(0.13, 0.39),
        ("chat",),
    ),
    CatalogModel(
        "Qwen/Qwen3-235B-A22B",
        "Qwen3 mixture of experts, 22B active parameters, with a thinking mode.",
        40960,
        16384,
        _tokens(0.13, 0.6),
        ("chat", "reasoning"),
    ),
    CatalogModel(
        "Qwen/Qwen3-Max",
        "Qwen3 Max, the largest Qwen3 model.",
        262144,
        32768,
        _tokens(1.2, 6.0, 0.24),
        ("chat", "prompt_cache"),
    ),
    CatalogModel(
        "deepseek-ai/DeepSeek-R1",
        "DeepSeek R1 reasoning model; answers start with a <think> block.",
        163840,
        32768,
        _tokens(0.7, 2.4),
        ("chat", "reasoning"),
    ),
    CatalogModel(
        "deepseek-ai/DeepSeek-V3",
        "DeepSeek V3 mixture of experts chat model.",
        163840,
        16384,
        _tokens(0.38, 0.89, 0.19),
        ("chat", "prompt_cache"),
    ),
    CatalogModel(
        "mistralai/Mixtral-8x7B-Instruct-v0.1",
        "Mixtral 8x7B sparse mixture of experts, instruction tuned.",
        32768,
        8192,
        _tokens(0.54, 0.54),
        ("chat",),
    ),
    CatalogModel(
        "google/gemma-2-9b-it",
        "Gemma 2 9B, instruction tuned.",
        8192,
        8192,
        _tokens(0.03, 0.06),
        ("chat",),
    ),
    CatalogModel(
        "BAAI/bge-base-en-v1.5",
        "BGE base English v1.5 text embeddings (768 dimensions upstream).",
        512,
        512,
        (("input_tokens", 0.005),),
        ("embeddings",),
    ),
)
_PRICING = {model.id: dict(model.pricing) for model in CATALOG}


async def list_models(request: Request) -> Response:
    """``GET /v1/openai/models``; metadata only with ``?filter=with_meta``, as the docs advise."""
    with_meta = "with_meta" in parse_qs(request.query).get("filter", [])
    data = [model.entry(with_meta) for model in CATALOG]
    return Response(200, orjson.dumps({"object": "list", "data": data}))


def cost(model: str, input_tokens: int, output_tokens: int) -> float:
    """What DeepInfra would bill, in USD (rounded so float noise stays out of the JSON)."""
    prices = _PRICING.get(model, DEFAULT_PRICING)
    paid_in = input_tokens * prices.get("input_tokens", 0.0)
    paid_out = output_tokens * prices.get("output_tokens", 0.0)  # embeddings price input only
    return round((paid_in + paid_out) / 1e6, 12)


def inference_status(
    model: str, input_tokens: int, generated: int, runtime_ms: int
) -> dict[str, Any]:
    return {
        "status": "succeeded",
        "runtime_ms": runtime_ms,
        "cost": cost(model, input_tokens, generated),
        "tokens_input": input_tokens,
        "tokens_generated": generated,
    }


# --- errors --------------------------------------------------------------------------------


def deep_error(status: int, message: str, headers: list[tuple[str, str]] | None = None) -> Response:
    """DeepInfra's ``DeepError`` body: a bare string under ``error``."""
    return Response(status, orjson.dumps({"error": message}), headers or [])


@dataclass(frozen=True, slots=True)
class Problem:
    """One entry of FastAPI's 422 body (pydantic's error type and message)."""

    loc: tuple[str | int, ...]
    msg: str
    type: str


def validation_error(problems: list[Problem]) -> Response:
    detail = [{"loc": ["body", *p.loc], "msg": p.msg, "type": p.type} for p in problems]
    return Response(422, orjson.dumps({"detail": detail}))


def status_error(behaviour: Behaviour) -> Response:
    """The answer DeepInfra gives with HTTP ``behaviour.status`` (``#sim status=N``)."""
    status = behaviour.status or 500
    message = f"simulated HTTP {status} (#sim status={status})"
    if status == 429:
        return deep_error(429, "Rate limited", [("retry-after", behaviour.retry_after)])
    if status == 422:
        return validation_error([Problem((), message, "value_error")])
    return deep_error(status, message)


# --- reading the request -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FieldRule:
    """A native request field: its pydantic kind and the documented range (PROTOCOLS §1.2)."""

    kind: str  # "int" | "number" | "bool" | "string" | "strings"
    minimum: float | None = None
    maximum: float | None = None


GENERATION_FIELDS = {
    "input": FieldRule("string"),
    "stream": FieldRule("bool"),
    "max_new_tokens": FieldRule("int", 1),
    "temperature": FieldRule("number", 0),
    "top_p": FieldRule("number", 0, 1),
    "top_k": FieldRule("int", 0),
    "min_p": FieldRule("number", 0, 1),
    "repetition_penalty": FieldRule("number", 0.01, 5),
    "presence_penalty": FieldRule("number", -2, 2),
    "frequency_penalty": FieldRule("number", -2, 2),
    "seed": FieldRule("int"),
    "stop": FieldRule("strings"),
    "num_responses": FieldRule("int", 1, 2),
    "top_n_tokens": FieldRule("int", 0),
}
EMBEDDING_FIELDS = {"inputs": FieldRule("strings"), "normalize": FieldRule("bool")}
_TYPE_PROBLEMS = {
    "int": ("int_type", "Input should be a valid integer"),
    "number": ("float_type", "Input should be a valid number"),
    "bool": ("bool_type", "Input should be a valid boolean"),
    "string": ("string_type", "Input should be a valid string"),
    "strings": ("list_type", "Input should be a valid list"),
}


def _has_kind(value: object, kind: str) -> bool:
    if kind == "bool":
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False  # JSON true is no number here, though Python counts bools as ints
    if kind == "int":
        return isinstance(value, int)
    if kind == "number":
        return isinstance(value, int | float)
    if kind == "string":
        return isinstance(value, str)
    return isinstance(value, list)


def _field_problems(name: str, value: object, field: FieldRule) -> list[Problem]:
    if not _has_kind(value, field.kind):
        type_, msg = _TYPE_PROBLEMS[field.kind]
        return [Problem((name,), msg, type_)]
    if field.kind == "strings":
        assert isinstance(value, list)
        type_, msg = _TYPE_PROBLEMS["string"]
        wrong = [i for i, item in enumerate(value) if not isinstance(item, str)]
        return [Problem((name, i), msg, type_) for i in wrong]
    if not isinstance(value, int | float) or isinstance(value, bool):
        return []  # strings and flags have no range
    if field.minimum is not None and value < field.minimum:
        msg = f"Input should be greater than or equal to {field.minimum:g}"
        return [Problem((name,), msg, "greater_than_equal")]
    if field.maximum is not None and value > field.maximum:
        msg = f"Input should be less than or equal to {field.maximum:g}"
        return [Problem((name,), msg, "less_than_equal")]
    return []


def field_problems(
    body: dict[str, Any], fields: dict[str, FieldRule], required: str
) -> list[Problem]:
    """What the FastAPI server would object to: every problem at once, not just the first."""
    problems: list[Problem] = []
    if body.get(required) is None:
        problems.append(Problem((required,), "Field required", "missing"))
    for name, field in fields.items():
        value = body.get(name)
        if value is not None:  # null means "not given" for every optional field
            problems += _field_problems(name, value, field)
    return problems


def reject(problems: list[Problem]) -> None:
    if problems:
        raise Rejected(validation_error(problems))


def json_object(raw: bytes) -> dict[str, Any]:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        problem = Problem((0,), "JSON decode error", "json_invalid")
        raise Rejected(validation_error([problem])) from None
    if not isinstance(body, dict):
        msg = "Input should be a valid dictionary or object to extract fields from"
        raise Rejected(validation_error([Problem((), msg, "model_attributes_type")]))
    return body


def read_behaviour(text: str, header: str | None) -> Behaviour:
    """The ``#sim`` directive of a prompt; a bad one is DeepInfra's 400, not OpenAI's."""
    return directive_behaviour(
        find_last_directive(text), header, lambda exc: Rejected(deep_error(exc.status, exc.message))
    )


def model_of(request: Request) -> str:
    model = unquote(request.path.removeprefix(INFERENCE_PREFIX))
    # Any model id works, so a gateway can use real ids; "missing" asks for DeepInfra's 404.
    if not model or "missing" in model:
        raise Rejected(deep_error(404, "Model not found"))
    return model


# --- answering: what both shapes share -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class Generation:
    """What the request fixed about one answer, beyond its script."""

    model: str
    eos: str  # the end-of-turn token's text
    seed: int | None
    native_usage: bool
    runtime_ms: int  # what the script's delays add up to, so answers stay deterministic


# --- the streamed answer -------------------------------------------------------------------


class TokenStreamRenderer(TokenEventRenderer):
    """Script steps to DeepInfra's SSE token events, for one answer."""

    data_prefix = b"data: "
    keep_alive = b": ping"

    def __init__(self, script: Script, generation: Generation, behaviour: Behaviour) -> None:
        super().__init__(script, generation.eos, behaviour)
        self._generation = generation
        self._error_style = behaviour.error_style
        self._done = behaviour.done

    @staticmethod
    def _json(event: dict[str, Any]) -> bytes:
        # Python's json.dumps, not orjson: DeepInfra's stream has its ", " and ": " spacing.
        return json.dumps(event, ensure_ascii=False).encode()

    def token_event(self, index: int, token: dict[str, Any]) -> bytes:
        return self._json({"token": token, "generated_text": None, "details": None})

    def final_event(self, index: int, token: dict[str, Any], finish: Finish) -> bytes:
        event: dict[str, Any] = {"token": token, "generated_text": self.text, "details": None}
        if self._generation.native_usage:
            generation = self._generation
            generated = generated_tokens(finish)
            prompt = finish.usage.prompt_tokens
            event["details"] = {
                "finish_reason": native_finish_reason(finish.reason),
                "generated_tokens": generated,
                "input_tokens": prompt,
                "seed": generation.seed,
            }
            event["num_output_tokens"] = generated
            event["num_input_tokens"] = prompt
            event["inference_status"] = inference_status(
                generation.model, prompt, generated, generation.runtime_ms
            )
        return self._json(event)

    def error_event(self, message: str) -> bytes:
        if self._error_style == "tgi":
            return self._json({"error": message, "error_type": "generation"})
        return self._json({"error_type": "validation_error", "error_message": message})

    def end(self) -> bytes:
        return self.frame(b"[DONE]") if self._done else b""


# --- the non-streamed answer ---------------------------------------------------------------


def request_id() -> str:
    return "".join(secrets.choice(_REQUEST_ID_CHARS) for _ in range(24))


def generation_body(
    outcome: playback.Outcome, finish: Finish, generation: Generation, responses: int
) -> dict[str, Any]:
    body: dict[str, Any] = {"request_id": request_id()}
    # Every sequence is billed; the simulator's sequences are all the same answer.
    generated = generated_tokens(finish) * responses
    prompt = finish.usage.prompt_tokens
    if generation.native_usage:
        body["inference_status"] = inference_status(
            generation.model, prompt, generated, generation.runtime_ms
        )
    body["results"] = [{"generated_text": outcome.text} for _ in range(responses)]
    if generation.native_usage:
        body["num_tokens"] = generated
        body["num_input_tokens"] = prompt
    return body


def generation_response(
    outcome: playback.Outcome, prompt_tokens: int, generation: Generation, responses: int
) -> Response:
    """The §1.3 body, or the failure the script asked for."""
    if outcome.garbage:
        return Response(200, GARBAGE_BODY)
    if outcome.truncated:  # the first half of the body, as if the server died writing it
        cut = Finish("length", Usage(prompt_tokens, 0))
        whole = orjson.dumps(generation_body(outcome, cut, generation, responses))
        return Response(200, whole[: len(whole) // 2])
    if outcome.error is not None or outcome.finish is None:
        message = outcome.error.message if outcome.error else "simulated answer ended early"
        return deep_error(500, message)
    body = generation_body(outcome, outcome.finish, generation, responses)
    return Response(200, orjson.dumps(body))


# --- embeddings ----------------------------------------------------------------------------


def embedding(text: str, normalize: bool) -> list[float]:
    """A deterministic vector for ``text``: bytes of its SHA-256 mapped into [-1, 1]."""
    digest = hashlib.sha256(text.encode()).digest()[:EMBEDDING_DIMENSIONS]
    vector = [round(byte / 127.5 - 1.0, 6) for byte in digest]
    if normalize:
        norm = math.sqrt(sum(x * x for x in vector)) or 1.0
        vector = [x / norm for x in vector]
    return vector


async def embeddings(model: str, body: dict[str, Any], request: Request) -> Response:
    problems = field_problems(body, EMBEDDING_FIELDS, "inputs")
    if body.get("inputs") == []:
        msg = "List should have at least 1 item after validation, not 0"
        problems.append(Problem(("inputs",), msg, "too_short"))
    reject(problems)
    texts: list[str] = body["inputs"]
    behaviour = read_behaviour("\n".join(texts), request.header("x-sim"))
    if behaviour.headers_ms:
        await trio.sleep(behaviour.headers_ms / 1000)
    if behaviour.status is not None:
        return status_error(behaviour)
    tokens = sum(input_tokens(text) for text in texts)
    answer = {
        "embeddings": [embedding(text, body.get("normalize") is True) for text in texts],
        "input_tokens": tokens,
        "request_id": request_id(),
        "inference_status": inference_status(model, tokens, 0, 0),
    }
    return Response(200, orjson.dumps(answer))


# --- the route -----------------------------------------------------------------------------


async def text_generation(
    model: str, body: dict[str, Any], request: Request
) -> Response | StreamingResponse:
    problems = field_problems(body, GENERATION_FIELDS, "input")
    if body.get("stream") is True and not problems and (body.get("num_responses") or 1) > 1:
        msg = "Value error, num_responses > 1 is not supported with stream=true"
        problems.append(Problem(("num_responses",), msg, "value_error"))
    reject(problems)
    prompt: str = body["input"]
    behaviour = read_behaviour(prompt, request.header("x-sim"))
    if behaviour.headers_ms:
        await trio.sleep(behaviour.headers_ms / 1000)
    if behaviour.status is not None:
        return status_error(behaviour)
    markup = None
    if behaviour.tool:
        try:
            markup = tool_markup(prompt, behaviour)
        except CannotCallTools as exc:
            raise Rejected(deep_error(400, str(exc))) from None
    stop = body.get("stop") or []
    if behaviour.stop_at is not None and not stop:
        raise Rejected(
            deep_error(
                400,
                "#sim stop_at=N writes the request's first stop string, but the request has no "
                '\'stop\' list; send e.g. "stop": ["<|eot_id|>"] or drop stop_at',
            )
        )
    ask = Ask(
        prompt_tokens=input_tokens(prompt),
        max_tokens=body.get("max_new_tokens"),
        stop_sequence=stop[0] if stop else None,
        think_opened=prompt.rstrip().endswith("<think>"),
    )
    if markup is None:
        script = build_script(behaviour, ask)
    else:
        script = tool_call_script(markup, behaviour, ask, prompt)
    generation = Generation(
        model=model,
        eos=eos_text(prompt),
        seed=body.get("seed"),
        native_usage=behaviour.native_usage,
        runtime_ms=planned_runtime_ms(script),
    )
    if body.get("stream") is True:
        renderer = TokenStreamRenderer(script, generation, behaviour)
        return StreamingResponse(200, playback.stream(script, renderer.render))
    outcome = await playback.collect(script)
    responses = body.get("num_responses") or 1
    return generation_response(outcome, ask.prompt_tokens, generation, responses)


async def inference(request: Request) -> Response | StreamingResponse:
    """``POST /v1/inference/{model}``: text generation (``input``) or embeddings (``inputs``)."""
    try:
        model = model_of(request)
        body = json_object(request.body)
        if "inputs" in body and "input" not in body:
            return await embeddings(model, body, request)
        return await text_generation(model, body, request)
    except Rejected as rejected:
        return rejected.response
