"""Hugging Face text-generation-inference (TGI v2/v3): ``/generate``, ``/generate_stream``, ``/``.

One model per server (``/info`` names it); the request carries a rendered prompt (``inputs``)
and TGI's ``parameters`` (PROTOCOLS.md §2). Quirks kept on purpose, because the gateway must
cope with them:

- stream events are axum's ``json_data``: ``data:{compact JSON}`` with no space, ``index``
  counting from 1, no ``[DONE]``; the last event carries the full ``generated_text`` and, only
  with ``parameters.details``, ``details`` (finish reason, counts, seed); an EOS finish sends
  the special EOS token as that last event, a length or stop-string finish the last real token;
- every error of a stream, validation included, is a ``data:{"error","error_type"}`` event
  inside an HTTP 200 answer; ``/generate`` answers it with 422/424/429/500 instead;
- a body serde cannot read is axum's plain-text rejection (400, 415 or 422), not TGI JSON;
- ``/generate`` has no tool calls: ``#sim tool=1`` answers with a call written in the markup of
  the prompt's template family, as plain tokens ending in EOS (``tgi_family``);
- ``details`` defaults to false; ``/`` (compat) answers a JSON array and, the model being a
  ``text-generation`` one, defaults ``return_full_text`` to true (the prompt comes back too).

Token counts are the same stand-ins as DeepInfra's (``tgi_family``): one input token per word
of the prompt, one per generated token event. Timings in headers are what the ``#sim``
delays add up to, so answers stay deterministic.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson
import trio

from sluicegate.server import Request, Response, StreamingResponse
from sluicegate.simulator import playback
from sluicegate.simulator.behaviour import Behaviour, find_last_directive
from sluicegate.simulator.rejection import Rejected, directive_behaviour
from sluicegate.simulator.script import WORDS, Ask, Finish, Script, Text, Usage, build_script
from sluicegate.simulator.tgi_family import (
    TokenEventRenderer,
    eos_text,
    eos_token,
    generated_tokens,
    input_tokens,
    native_finish_reason,
    planned_runtime_ms,
    token,
)
from sluicegate.simulator.tool_markup import (
    CannotCallTools,
    ToolMarkup,
    tool_call_script,
    tool_markup,
)

# The served model and the router limits /info reports and validation enforces.
MODEL_ID = "meta-llama/Llama-3.1-8B-Instruct"
VERSION = "3.3.4"
MAX_INPUT_TOKENS = 4095
MAX_TOTAL_TOKENS = 4096
MAX_STOP_SEQUENCES = 4
MAX_BEST_OF = 2
MAX_TOP_N_TOKENS = 5
COMPUTE_TYPE = "gpu+optimized"
FIRST_PREFILL_ID = 100
FIRST_ALTERNATIVE_ID = 5000
GARBAGE_BODY = b"<html><body>502 Bad Gateway (simulated: this is not JSON)</body></html>"
_TEXT_PLAIN = "text/plain; charset=utf-8"

# --- errors --------------------------------------------------------------------------------

VALIDATION = "validation"
GENERATION = "generation"
OVERLOADED = "overloaded"
INCOMPLETE = "incomplete_generation"
# HTTP status of each error type on /generate (on /generate_stream every error is an event).
_STATUS_OF = {VALIDATION: 422, GENERATION: 424, OVERLOADED: 429, INCOMPLETE: 500}
_PREFIX_OF = {
    VALIDATION: "Input validation error: ",
    GENERATION: "Request failed during generation: ",
}
OVERLOADED_MESSAGE = "Model is overloaded"


@dataclass(frozen=True, slots=True)
class TgiError:
    """An ``InferError`` as TGI reports it: the message and its ``error_type``."""

    message: str
    type: str

    @classmethod
    def of(cls, type_: str, detail: str) -> TgiError:
        return cls(_PREFIX_OF.get(type_, "") + detail, type_)

    def json(self) -> bytes:
        return orjson.dumps({"error": self.message, "error_type": self.type})

    def response(
        self, status: int | None = None, headers: list[tuple[str, str]] | None = None
    ) -> Response:
        return Response(status or _STATUS_OF[self.type], self.json(), headers or [])


def status_error(behaviour: Behaviour) -> Response:
    """The answer to ``#sim status=N``: HTTP N with TGI's body (as a proxy would pass it on)."""
    status = behaviour.status or 500
    detail = f"simulated HTTP {status} (#sim status={status})"
    if behaviour.overflow:
        detail = _too_long(MAX_TOTAL_TOKENS, None) + f" (#sim status={status} overflow=1)"
        return TgiError.of(VALIDATION, detail).response(status)
    if status == 429:  # TGI's own 429 has no Retry-After; a proxy in front of it may add one
        error = TgiError(OVERLOADED_MESSAGE, OVERLOADED)
        return error.response(429, [("retry-after", behaviour.retry_after)])
    type_ = {422: VALIDATION, 424: GENERATION, 500: INCOMPLETE}.get(status, "simulated")
    return TgiError.of(type_, detail).response(status)


def _refusal(message: str) -> Rejected:
    """The simulator cannot do what the ``#sim`` directive asks: a 400 saying what to change."""
    return Rejected(TgiError(message, VALIDATION).response(400))


def _rejection(status: int, message: str) -> Rejected:
    """axum's ``Json`` extractor rejection: plain text, before TGI sees the request."""
    return Rejected(Response(status, message.encode(), content_type=_TEXT_PLAIN))


# --- reading the body: what serde accepts ----------------------------------------------------

# Rust type of each GenerateParameters field, and whether it is an Option (null allowed);
# the plain fields have serde defaults, so they may be left out but not sent as null.
PARAMETER_TYPES: dict[str, tuple[str, bool]] = {
    "best_of": ("usize", True),
    "temperature": ("f32", True),
    "repetition_penalty": ("f32", True),
    "frequency_penalty": ("f32", True),
    "top_k": ("i32", True),
    "top_p": ("f32", True),
    "typical_p": ("f32", True),
    "do_sample": ("bool", False),
    "max_new_tokens": ("u32", True),
    "return_full_text": ("bool", True),
    "stop": ("Vec<String>", False),
    "truncate": ("usize", True),
    "watermark": ("bool", False),
    "details": ("bool", False),
    "decoder_input_details": ("bool", False),
    "seed": ("u64", True),
    "top_n_tokens": ("u32", True),
    "grammar": ("GrammarType", True),
    "adapter_id": ("String", True),
}
GRAMMAR_TYPES = ("json", "json_object", "regex", "json_schema")
_INTEGER_RANGES = {"usize": (0, 2**64 - 1), "u64": (0, 2**64 - 1), "u32": (0, 2**32 - 1)}
_INTEGER_RANGES["i32"] = (-(2**31), 2**31 - 1)
_EXPECTED = {
    "bool": "a boolean",
    "String": "a string",
    "Vec<String>": "a sequence",
    "GrammarType": "internally tagged enum GrammarType",
}


def _unexpected(value: object) -> str:
    """How serde names a JSON value it did not expect."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean `{'true' if value else 'false'}`"
    if isinstance(value, int):
        return f"integer `{value}`"
    if isinstance(value, float):
        return f"floating point `{value!r}`"
    if isinstance(value, str):
        return f'string "{value}"'
    return "sequence" if isinstance(value, list) else "map"


def _type_problem(value: object, rust: str) -> str | None:
    """serde_json's complaint about ``value`` for a field of type ``rust`` (None: it fits)."""
    expected = _EXPECTED.get(rust, rust)
    if rust in _INTEGER_RANGES and isinstance(value, int) and not isinstance(value, bool):
        low, high = _INTEGER_RANGES[rust]
        fits = low <= value <= high
        return None if fits else f"invalid value: {_unexpected(value)}, expected {expected}"
    fits = {
        "f32": isinstance(value, int | float) and not isinstance(value, bool),
        "bool": isinstance(value, bool),
        "String": isinstance(value, str),
        "Vec<String>": isinstance(value, list),
        "GrammarType": isinstance(value, dict),
    }.get(rust, False)
    return None if fits else f"invalid type: {_unexpected(value)}, expected {expected}"


def _field_problem(path: str, value: object, rust: str, optional: bool) -> str | None:
    if value is None and optional:
        return None
    if (problem := _type_problem(value, rust)) is not None:
        return f"{path}: {problem}"
    if rust == "Vec<String>":
        assert isinstance(value, list)
        for i, item in enumerate(value):
            if (problem := _type_problem(item, "String")) is not None:
                return f"{path}[{i}]: {problem}"
    if rust == "GrammarType":
        assert isinstance(value, dict)
        kind = value.get("type")
        if kind is None:
            return f"{path}: missing field `type`"
        if kind not in GRAMMAR_TYPES:
            variants = ", ".join(f"`{name}`" for name in GRAMMAR_TYPES)
            return f"{path}: unknown variant `{kind}`, expected one of {variants}"
    return None


def _parameters_problem(parameters: object) -> str | None:
    if not isinstance(parameters, dict):
        expected = "struct GenerateParameters"
        return f"parameters: invalid type: {_unexpected(parameters)}, expected {expected}"
    for name, value in parameters.items():  # serde reports the first problem in body order
        if name in PARAMETER_TYPES:
            rust, optional = PARAMETER_TYPES[name]
            if (problem := _field_problem(f"parameters.{name}", value, rust, optional)) is not None:
                return problem
    return None


def _body_problem(body: object, target: str) -> str | None:
    """What serde says about a request body; ``target`` is the Rust struct it fills."""
    if not isinstance(body, dict):
        return f"invalid type: {_unexpected(body)}, expected struct {target}"
    top: dict[str, tuple[str, bool]] = {"inputs": ("String", False)}
    top["add_special_tokens"] = ("bool", False)
    if target == "CompatGenerateRequest":
        top["stream"] = ("bool", False)
    for name, value in body.items():
        if name == "parameters":
            problem = _parameters_problem(value)
        elif name in top:
            problem = _field_problem(name, value, *top[name])
        else:
            problem = None  # serde ignores fields it does not know
        if problem is not None:
            return problem
    return None if "inputs" in body else "missing field `inputs`"


def _is_json_content_type(value: str | None) -> bool:
    mime = (value or "").split(";", 1)[0].strip().lower()
    return mime == "application/json" or (
        mime.startswith("application/") and mime.endswith("+json")
    )


@dataclass(frozen=True, slots=True)
class GenerateRequest:
    """A body serde accepted: the prompt, the parameters as sent, and (compat) ``stream``."""

    inputs: str
    parameters: dict[str, Any]
    stream: bool = False

    def param(self, name: str, default: Any = None) -> Any:
        value = self.parameters.get(name)
        return default if value is None else value


def read_request(request: Request, target: str) -> GenerateRequest:
    """The request as TGI's ``Json<target>`` extractor reads it, or its plain-text rejection."""
    if not _is_json_content_type(request.header("content-type")):
        raise _rejection(415, "Expected request with `Content-Type: application/json`")
    try:
        body = orjson.loads(request.body)
    except orjson.JSONDecodeError as exc:
        detail = f"{exc.msg} at line {exc.lineno} column {exc.colno}"
        raise _rejection(400, f"Failed to parse the request body as JSON: {detail}") from None
    if (problem := _body_problem(body, target)) is not None:
        message = f"Failed to deserialize the JSON body into the target type: {problem}"
        raise _rejection(422, message)
    # Without a `parameters` object TGI uses default_parameters(), which samples.
    parameters = body.get("parameters", {"do_sample": True})
    return GenerateRequest(body["inputs"], parameters, body.get("stream") is True)


def read_behaviour(inputs: str, header: str | None) -> Behaviour:
    """The last ``#sim`` directive of the prompt; a bad one is a 400 in TGI's body shape."""
    return directive_behaviour(
        find_last_directive(inputs),
        header,
        lambda exc: Rejected(TgiError(exc.message, VALIDATION).response(exc.status)),
    )


# --- validation: TGI's own rules (router/src/validation.rs), in its order ----------------------


@dataclass(frozen=True, slots=True)
class Validated:
    """What validation fixed: the prompt's length and the generation limit."""

    input_length: int
    max_new_tokens: int


class Invalid(Exception):
    """A ``ValidationError``; ``detail`` is its message without the common prefix."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.error = TgiError.of(VALIDATION, detail)


def reported_seed(request: GenerateRequest) -> int | None:
    """The seed in ``details``: only a sampling answer has one (the model server's rule).

    Sampling is asked for (``do_sample``) or implied by a warper that changes the logits.
    """
    temperature = request.param("temperature")
    sampling = (
        request.param("do_sample", False)
        or (temperature is not None and temperature != 1.0)
        or bool(request.param("top_k"))
        or request.param("top_p") is not None
        or request.param("typical_p") is not None
    )
    if not sampling:
        return None
    return request.param("seed", stand_in_seed(request.inputs))


def stand_in_seed(inputs: str) -> int:
    """The seed TGI would draw at random, made repeatable: from a hash of the prompt."""
    return int.from_bytes(hashlib.sha256(inputs.encode()).digest()[:8], "big")


def _too_long(input_length: int, max_new_tokens: int | None) -> str:
    if max_new_tokens is not None:
        return (
            f"`inputs` tokens + `max_new_tokens` must be <= {MAX_TOTAL_TOKENS}. "
            f"Given: {input_length} `inputs` tokens and {max_new_tokens} `max_new_tokens`"
        )
    return f"`inputs` must have less than {MAX_INPUT_TOKENS} tokens. Given: {input_length}"


def check_stream_options(request: GenerateRequest) -> None:
    """What only ``/generate_stream`` refuses, before anything else."""
    if request.param("best_of", 1) != 1:
        raise Invalid("`best_of` != 1 is not supported when streaming tokens")
    if request.param("decoder_input_details", False):
        raise Invalid("`decoder_input_details` == true is not supported when streaming tokens")


def check_best_of(request: GenerateRequest) -> None:
    """``/generate`` with ``best_of`` > 1 checks it against the router's limit first."""
    best_of = request.param("best_of", 1)
    if best_of > MAX_BEST_OF:
        raise Invalid(f"`best_of` must be > 0 and <= {MAX_BEST_OF}. Given: {best_of}")


def validate(request: GenerateRequest, prompt_tokens: int) -> Validated:
    """``Validation::validate``: the first rule the request breaks, in TGI's order."""
    p = request.param
    best_of = p("best_of", 1)
    if best_of > 1 and not (p("do_sample", False) or _any_warper(request)):
        raise Invalid("you must use sampling when `best_of` is > 1")
    if p("temperature", 1.0) <= 0:
        raise Invalid("`temperature` must be strictly positive")
    if p("repetition_penalty", 1.0) <= 0:
        raise Invalid("`repetition_penalty` must be strictly positive")
    if not -2.0 <= p("frequency_penalty", 0.0) <= 2.0:
        raise Invalid("`frequency_penalty` must be >= -2.0 and <= 2.0")
    if p("top_p") is not None and not 0 < p("top_p") < 1:
        raise Invalid("`top_p` must be > 0.0 and < 1.0")
    if p("typical_p") is not None and not 0 < p("typical_p") < 1:
        raise Invalid("`typical_p` must be > 0.0 and < 1.0")
    if p("top_k") is not None and p("top_k") <= 0:
        raise Invalid("`top_k` must be strictly positive")
    if p("max_new_tokens") == 0:
        raise Invalid("`max_new_tokens` must be strictly positive")
    if len(p("stop", [])) > MAX_STOP_SEQUENCES:
        given = len(p("stop"))
        raise Invalid(f"`stop` supports up to {MAX_STOP_SEQUENCES} stop sequences. Given: {given}")
    if p("seed") is not None and best_of > 1:
        raise Invalid("`seed` must not be set when `best_of` > 1")
    if p("top_n_tokens", 0) > MAX_TOP_N_TOKENS:
        given = p("top_n_tokens")
        raise Invalid(f"`top_n_tokens` must be >= 0 and <= {MAX_TOP_N_TOKENS}. Given: {given}")
    if not request.inputs:
        raise Invalid("`inputs` cannot be empty")
    truncate = p("truncate")
    if truncate is not None and not 0 < truncate <= MAX_INPUT_TOKENS:
        raise Invalid(
            f"`truncate` must be strictly positive and less than {MAX_INPUT_TOKENS}. "
            f"Given: {truncate}"
        )
    input_length = min(prompt_tokens, truncate) if truncate else prompt_tokens
    max_new_tokens = p("max_new_tokens")
    limit = max_new_tokens if max_new_tokens is not None else MAX_TOTAL_TOKENS - input_length
    limit = max(limit, 0)
    if input_length + limit > MAX_TOTAL_TOKENS:
        raise Invalid(_too_long(input_length, limit))
    if input_length > MAX_INPUT_TOKENS:
        raise Invalid(_too_long(input_length, None))
    return Validated(input_length, limit)


def _any_warper(request: GenerateRequest) -> bool:
    warpers = ("temperature", "top_k", "top_p", "typical_p")
    return any(request.param(name) is not None for name in warpers)


# --- answering ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Answer:
    """What the request fixed about one answer, beyond its script."""

    prefix: str  # the prompt with return_full_text, else ""
    eos: str  # the end-of-turn token's text
    details: bool
    top_n: int
    seed: int | None
    input_length: int


def top_tokens(index: int, chosen: dict[str, Any], count: int) -> list[dict[str, Any]]:
    """The ``count`` most likely tokens at a position: the chosen one, then less likely words."""
    alternatives = [
        {
            "id": FIRST_ALTERNATIVE_ID + (index + k) % len(WORDS),
            "text": WORDS[(index + k) % len(WORDS)],
            "logprob": round(chosen["logprob"] - k, 4),
            "special": False,
        }
        for k in range(1, count)
    ]
    return [chosen, *alternatives][:count]


def stream_details(finish: Finish, answer: Answer) -> dict[str, Any]:
    return {
        "finish_reason": native_finish_reason(finish.reason),
        "generated_tokens": generated_tokens(finish),
        "seed": answer.seed,
        "input_length": answer.input_length,
    }


class StreamRenderer(TokenEventRenderer):
    """Script steps to TGI's ``StreamResponse`` events (axum framing: ``data:`` + compact JSON)."""

    def __init__(self, script: Script, answer: Answer, behaviour: Behaviour) -> None:
        super().__init__(script, answer.eos, behaviour)
        self._answer = answer
        self._done = behaviour.done

    def _event(
        self, index: int, token: dict[str, Any], text: str | None, details: dict[str, Any] | None
    ) -> bytes:
        event: dict[str, Any] = {"index": index + 1, "token": token}
        if self._answer.top_n:  # serde skips an empty top_tokens
            event["top_tokens"] = top_tokens(index, token, self._answer.top_n)
        event["generated_text"] = text
        event["details"] = details
        return orjson.dumps(event)

    def token_event(self, index: int, token: dict[str, Any]) -> bytes:
        return self._event(index, token, None, None)

    def final_event(self, index: int, token: dict[str, Any], finish: Finish) -> bytes:
        details = stream_details(finish, self._answer) if self._answer.details else None
        return self._event(index, token, self._answer.prefix + self.text, details)

    def error_event(self, message: str) -> bytes:
        return TgiError.of(GENERATION, message).json()

    def end(self) -> bytes:
        # `#sim done=1`: the HF serverless API appended [DONE] to TGI streams (§2.8).
        return self.frame(b"[DONE]") if self._done else b""


async def _one_event(payload: bytes) -> AsyncIterator[bytes]:
    yield b"data:" + payload + b"\n\n"


def stream_headers(request: GenerateRequest) -> list[tuple[str, str]]:
    return [
        ("x-compute-type", COMPUTE_TYPE),
        ("x-compute-characters", str(len(request.inputs))),
        ("x-accel-buffering", "no"),
    ]


def _seconds(milliseconds: int) -> str:
    """A duration in seconds the way Rust prints an f64 (``0``, ``0.05``)."""
    return repr(milliseconds / 1000).removesuffix(".0")


def generate_headers(
    request: GenerateRequest, answer: Answer, generated: int, runtime_ms: int
) -> list[tuple[str, str]]:
    """``/generate``'s timing and count headers; validation and queueing take no time here."""
    return [
        ("x-compute-type", COMPUTE_TYPE),
        ("x-compute-time", _seconds(runtime_ms)),
        ("x-compute-characters", str(len(request.inputs))),
        ("x-total-time", str(runtime_ms)),
        ("x-validation-time", "0"),
        ("x-queue-time", "0"),
        ("x-inference-time", str(runtime_ms)),
        ("x-time-per-token", str(runtime_ms // max(generated, 1))),
        ("x-prompt-tokens", str(answer.input_length)),
        ("x-generated-tokens", str(generated)),
    ]


def prefill(inputs: str, input_length: int) -> list[dict[str, Any]]:
    """The prompt's tokens (``decoder_input_details``); the first has no logprob."""
    words = inputs.split() or [inputs]
    kept = [(i, w if i == 0 else " " + w) for i, w in enumerate(words)][-input_length:]
    return [
        {
            "id": FIRST_PREFILL_ID + i,
            "text": text,
            "logprob": None if n == 0 else -round(0.5 + 0.25 * (i % 4), 4),
        }
        for n, (i, text) in enumerate(kept)
    ]


def generated_token_list(script: Script, finish: Finish, eos: str) -> list[dict[str, Any]]:
    texts = [step.text for step in script if isinstance(step, Text)]
    tokens = [token(i, text) for i, text in enumerate(texts)]
    return [*tokens, eos_token(len(texts), eos)] if finish.reason == "stop" else tokens


def generate_body(
    request: GenerateRequest, answer: Answer, text: str, script: Script, finish: Finish
) -> dict[str, Any]:
    """The ``GenerateResponse``: details only when asked (or with decoder_input_details)."""
    body: dict[str, Any] = {"generated_text": answer.prefix + text}
    with_prefill = request.param("decoder_input_details", False)
    if not (answer.details or with_prefill):
        return body
    tokens = generated_token_list(script, finish, answer.eos)
    sequence: dict[str, Any] = {
        "finish_reason": native_finish_reason(finish.reason),
        "generated_tokens": generated_tokens(finish),
        "seed": answer.seed,
        "prefill": prefill(request.inputs, answer.input_length) if with_prefill else [],
        "tokens": tokens,
    }
    tops = [top_tokens(i, t, answer.top_n) for i, t in enumerate(tokens)] if answer.top_n else []
    details = dict(sequence)
    best_of = request.param("best_of", 1)
    if best_of > 1:  # the simulator's other sequences are the same answer, with their own seed
        text = body["generated_text"]
        seeds = [((answer.seed or 0) + n) % 2**64 for n in range(1, best_of)]  # seeds are u64
        others = [{"generated_text": text, **sequence, "seed": seed} for seed in seeds]
        if tops:
            others = [{**other, "top_tokens": tops} for other in others]
        details["best_of_sequences"] = others
    if tops:  # serde skips an empty top_tokens
        details["top_tokens"] = tops
    body["details"] = details
    return body


async def _generate(
    request: GenerateRequest, answer: Answer, script: Script, compat: bool
) -> Response:
    outcome = await playback.collect(script)
    if outcome.garbage:
        return Response(200, GARBAGE_BODY)
    finish = outcome.finish
    if outcome.error is not None:
        return TgiError.of(GENERATION, outcome.error.message).response()
    if finish is None and not outcome.truncated:
        return TgiError("Incomplete generation", INCOMPLETE).response()
    cut = finish or Finish("length", Usage(answer.input_length, 0))
    body: Any = generate_body(request, answer, outcome.text, script, cut)
    payload = orjson.dumps([body] if compat else body)
    if outcome.truncated:  # the first half of the body, as if the server died writing it
        return Response(200, payload[: len(payload) // 2])
    generated = generated_tokens(cut)
    runtime_ms = planned_runtime_ms(script)
    return Response(200, payload, generate_headers(request, answer, generated, runtime_ms))


def _fail(
    error: TgiError, streaming: bool, headers: list[tuple[str, str]]
) -> Response | StreamingResponse:
    """An error before generation: an event in a 200 stream, or its HTTP status."""
    if streaming:
        return StreamingResponse(200, _one_event(error.json()), headers)
    return error.response()


async def serve_generation(
    http: Request, target: str, streaming: bool | None
) -> Response | StreamingResponse:
    """Serve one generation request; ``streaming`` None means the body's ``stream`` decides."""
    try:
        request = read_request(http, target)
        behaviour = read_behaviour(request.inputs, http.header("x-sim"))
        streaming = request.stream if streaming is None else streaming
        if behaviour.headers_ms:
            await trio.sleep(behaviour.headers_ms / 1000)
        if behaviour.status is not None:
            return status_error(behaviour)
        markup = _markup_for(request.inputs, behaviour)
        _refuse_impossible(request, behaviour)
    except Rejected as rejected:
        return rejected.response
    headers = stream_headers(request)
    compat = target == "CompatGenerateRequest"
    # A model that is not text-generation would default return_full_text to false on `/`.
    full_text = request.param("return_full_text", compat)
    try:
        if streaming:
            check_stream_options(request)
        else:
            check_best_of(request)
        if behaviour.overloaded:  # the concurrency permit comes before parameter validation
            return _fail(TgiError(OVERLOADED_MESSAGE, OVERLOADED), streaming, headers)
        # `#sim overflow=1`: the prompt is as long as the whole context window.
        prompt_tokens = MAX_TOTAL_TOKENS if behaviour.overflow else input_tokens(request.inputs)
        valid = validate(request, prompt_tokens)
    except Invalid as invalid:
        return _fail(invalid.error, streaming, headers)
    reply = Answer(
        prefix=request.inputs if full_text else "",
        eos=eos_text(request.inputs),
        details=request.param("details", False),
        top_n=request.param("top_n_tokens", 0),
        seed=reported_seed(request),
        input_length=valid.input_length,
    )
    stop = request.param("stop", [])
    ask = Ask(
        prompt_tokens=valid.input_length,
        max_tokens=valid.max_new_tokens,
        stop_sequence=stop[0] if stop else None,
        think_opened=request.inputs.rstrip().endswith("<think>"),
    )
    if markup is None:
        script = build_script(behaviour, ask)
    else:
        script = tool_call_script(markup, behaviour, ask, request.inputs)
    if streaming:
        renderer = StreamRenderer(script, reply, behaviour)
        return StreamingResponse(200, playback.stream(script, renderer.render), headers)
    return await _generate(request, reply, script, compat)


def _markup_for(inputs: str, behaviour: Behaviour) -> ToolMarkup | None:
    """The markup of a ``#sim tool=1`` answer (None without it), or a 400 saying what to fix."""
    if not behaviour.tool:
        return None
    try:
        return tool_markup(inputs, behaviour)
    except CannotCallTools as exc:
        raise _refusal(str(exc)) from None


def _refuse_impossible(request: GenerateRequest, behaviour: Behaviour) -> None:
    if behaviour.stop_at is not None and not request.param("stop"):
        raise _refusal(
            "#sim stop_at=N writes the request's first stop string, but the request has no "
            '\'stop\' list; send e.g. "parameters": {"stop": ["</s>"]} or drop stop_at'
        )


# --- the routes -----------------------------------------------------------------------------


async def generate(request: Request) -> Response | StreamingResponse:
    """``POST /generate``: one ``GenerateResponse`` object."""
    return await serve_generation(request, "GenerateRequest", streaming=False)


async def generate_stream(request: Request) -> Response | StreamingResponse:
    """``POST /generate_stream``: SSE token events."""
    return await serve_generation(request, "GenerateRequest", streaming=True)


async def compat_generate(request: Request) -> Response | StreamingResponse:
    """``POST /``: the stream with ``"stream": true``, else a one-element JSON array."""
    return await serve_generation(request, "CompatGenerateRequest", streaming=None)


INFO = {
    "model_id": MODEL_ID,
    "model_sha": None,
    "model_pipeline_tag": "text-generation",
    "max_concurrent_requests": 128,
    "max_best_of": MAX_BEST_OF,
    "max_stop_sequences": MAX_STOP_SEQUENCES,
    "max_input_tokens": MAX_INPUT_TOKENS,
    "max_total_tokens": MAX_TOTAL_TOKENS,
    "validation_workers": 2,
    "max_client_batch_size": 4,
    "router": "text-generation-router",
    "version": VERSION,
    "sha": None,
    "docker_label": None,
}


async def info(request: Request) -> Response:
    """``GET /info``: the served model and the router's limits."""
    return Response(200, orjson.dumps(INFO))


async def health(request: Request) -> Response:
    """``GET /health``: 200 with an empty body once the model answers."""
    return Response(200, b"", content_type=_TEXT_PLAIN)
