"""Ollama's native API: ``/api/chat``, ``/api/embed`` and the ``/api/tags|show|version`` catalog.

A chat answer is NDJSON (PROTOCOLS.md §3.3): one compact JSON object per line, each with its
own ``created_at``, the message in pieces, then a ``done: true`` line. Quirks kept on purpose,
because the gateway must cope with them:

- ``stream`` defaults to true: a request without it gets NDJSON, not one JSON object;
- lines are Go's ``json.Marshal`` output: no spaces, and ``<``, ``>``, ``&`` escaped as ``\\u003c``
  and friends; every line repeats ``model`` and ``message.role``;
- the done line is a metrics-only trailer with empty content (``done_text=1``: it carries the
  last token instead); durations are nanoseconds; zero metrics are left out (``omitempty``);
- thinking comes as ``message.thinking`` lines before the answer, tool calls arrive whole with
  ``arguments`` as a JSON object, and ``done_reason`` stays ``"stop"`` after a tool call;
- an error after the stream started is the line ``{"error": "..."}`` inside the HTTP 200 answer;
  before that, errors are ``{"error": "..."}`` with a real HTTP status;
- no messages at all loads the model: ``done_reason: "load"`` (``"unload"`` with
  ``keep_alive: 0``).

Any model id works for chat and embeddings (so a gateway can use real ids); ids containing
"missing" get Ollama's 404. Thinking is refused, as Ollama refuses it for models without the
capability, unless the id names a thinking family (``THINKING_MARKERS``). ``/api/tags`` and
``/api/show`` know the few models of ``CATALOG``. Token counts are deterministic stand-ins: one
prompt token per word of the messages plus ``IMAGE_PROMPT_TOKENS`` per image, one generated
token per line-worth of answer (thinking word, answer word, or tool call line).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import math
import re
import secrets
import string
import struct
import time
from dataclasses import dataclass, replace
from typing import Any

import orjson
import trio

from sluicegate.server import Request, Response, StreamingResponse
from sluicegate.simulator import playback
from sluicegate.simulator.behaviour import Behaviour, find_directive
from sluicegate.simulator.deepinfra import embedding
from sluicegate.simulator.rejection import Rejected, directive_behaviour
from sluicegate.simulator.script import (
    REASONING_WORDS,
    Ask,
    Delay,
    End,
    Finish,
    Garbage,
    Script,
    Start,
    Step,
    StreamError,
    Text,
    Thinking,
    ToolSpec,
    Usage,
    WholeToolCall,
    WholeToolCalls,
    answer_tokens,
    assemble,
    tool_arguments,
    tool_spec,
)

JSON_TYPE = "application/json; charset=utf-8"  # what Go's gin writes for c.JSON
NDJSON_TYPE = "application/x-ndjson"
SIMULATED_VERSION = "0.12.6"
# Ollama's own wording for a failure while generating (docs/api/errors.mdx).
RUNTIME_ERROR = "an error was encountered while running the model"
GARBAGE_LINE = b"{this is not JSON\n"
GARBAGE_BODY = b"<html><body>502 Bad Gateway (simulated: this is not JSON)</body></html>"
# A model id containing one of these supports `think` (Ollama checks the model's capabilities).
THINKING_MARKERS = ("think", "qwen3", "deepseek-r1", "gpt-oss")
THINK_LEVELS = ("low", "medium", "high", "max")
IMAGE_PROMPT_TOKENS = 64  # what one image adds to prompt_eval_count
DEFAULT_CONTEXT_LENGTH = 4096  # Ollama's default num_ctx, for models not in the catalog
# Deterministic timings (nanoseconds): what the metrics report, plus the script's own delays.
LOAD_NS = 1_250_000
PROMPT_EVAL_NS_PER_TOKEN = 250_000
EVAL_NS_PER_TOKEN = 12_500_000
_CALL_ID_CHARS = string.ascii_lowercase + string.digits


# --- Go's wire habits ----------------------------------------------------------------------

# json.Marshal escapes these even inside strings (HTML safety); they never occur outside one.
_GO_ESCAPES = (
    (b"<", b"\\u003c"),
    (b">", b"\\u003e"),
    (b"&", b"\\u0026"),
    ("\u2028".encode(), b"\\u2028"),
    ("\u2029".encode(), b"\\u2029"),
)


def go_json(value: Any) -> bytes:
    """``value`` as Go's ``json.Marshal`` writes it: compact, HTML characters escaped."""
    out = orjson.dumps(value)
    for raw, escaped in _GO_ESCAPES:
        if raw in out:
            out = out.replace(raw, escaped)
    return out


def rfc3339_nano(ns: int) -> str:
    """A UTC time as Go's RFC3339Nano: nanoseconds with trailing zeros dropped."""
    seconds, fraction = divmod(ns, 1_000_000_000)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    digits = f"{fraction:09d}".rstrip("0")
    return f"{stamp}.{digits}Z" if digits else f"{stamp}Z"


class LineClock:
    """``created_at`` for the lines of one answer: the wall clock, never the same twice."""

    def __init__(self) -> None:
        self._last = 0

    def stamp(self) -> str:
        self._last = max(time.time_ns(), self._last + 1)
        return rfc3339_nano(self._last)


def float32(value: float) -> float:
    """``value`` as a float32, printed the way Go prints one (shortest round-trip digits)."""
    single: float = struct.unpack("f", struct.pack("f", value))[0]
    for digits in range(1, 10):
        short = float(f"{single:.{digits}g}")
        if struct.unpack("f", struct.pack("f", short))[0] == single:
            return short
    return single


# --- errors --------------------------------------------------------------------------------


def ollama_error(
    status: int, message: str, headers: list[tuple[str, str]] | None = None
) -> Response:
    """Ollama's error body: a bare string under ``error``."""
    return Response(status, go_json({"error": message}), headers or [], JSON_TYPE)


def bad_request(message: str) -> Rejected:
    return Rejected(ollama_error(400, message))


def not_found(model: str) -> Rejected:
    return Rejected(ollama_error(404, f"model '{model}' not found"))


def status_error(behaviour: Behaviour) -> Response:
    """The answer Ollama gives with HTTP ``behaviour.status`` (``#sim status=N``)."""
    status = behaviour.status or 500
    headers = [("retry-after", behaviour.retry_after)] if status == 429 else []
    return ollama_error(status, f"simulated HTTP {status} (#sim status={status})", headers)


def read_behaviour(text: str, header: str | None) -> Behaviour:
    """The ``#sim`` directive of ``text``; a bad one is Ollama's 400, not OpenAI's."""
    return directive_behaviour(find_directive(text), header, lambda exc: bad_request(exc.message))


# --- the catalog ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LocalModel:
    """One pulled model, as ``/api/tags`` lists it and ``/api/show`` describes it."""

    name: str
    family: str
    families: tuple[str, ...]
    parameter_size: str
    quantization_level: str
    size: int
    modified_at: str
    architecture: str
    parameter_count: int
    context_length: int
    embedding_length: int
    capabilities: tuple[str, ...]
    template: str
    parameters: str

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.name.encode()).hexdigest()

    def details(self) -> dict[str, Any]:
        return {
            "parent_model": "",
            "format": "gguf",
            "family": self.family,
            "families": list(self.families),
            "parameter_size": self.parameter_size,
            "quantization_level": self.quantization_level,
        }

    def tag_entry(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "model": self.name,
            "modified_at": self.modified_at,
            "size": self.size,
            "digest": self.digest,
            "details": self.details(),
        }

    def show_entry(self) -> dict[str, Any]:
        arch = self.architecture
        entry: dict[str, Any] = {
            "modelfile": f'# Modelfile generated by "ollama show"\nFROM {self.name}\n',
        }
        if self.parameters:  # omitempty, as Go writes it
            entry["parameters"] = self.parameters
        entry["template"] = self.template
        entry["details"] = self.details()
        entry["model_info"] = {
            "general.architecture": arch,
            "general.parameter_count": self.parameter_count,
            "general.quantization_version": 2,
            f"{arch}.context_length": self.context_length,
            f"{arch}.embedding_length": self.embedding_length,
        }
        entry["capabilities"] = list(self.capabilities)
        entry["modified_at"] = self.modified_at
        return entry


_LLAMA3_TEMPLATE = (
    "{{- range .Messages }}<|start_header_id|>{{ .Role }}<|end_header_id|>\n\n"
    "{{ .Content }}<|eot_id|>{{ end }}<|start_header_id|>assistant<|end_header_id|>\n\n"
)
_CHATML_TEMPLATE = (
    "{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}"
    "<|im_start|>assistant\n"
)
CATALOG = (
    LocalModel(
        name="llama3.2:latest",
        family="llama",
        families=("llama",),
        parameter_size="3.2B",
        quantization_level="Q4_K_M",
        size=2019393189,
        modified_at="2025-05-04T17:37:44.706015396-07:00",
        architecture="llama",
        parameter_count=3212749888,
        context_length=131072,
        embedding_length=3072,
        capabilities=("completion", "tools"),
        template=_LLAMA3_TEMPLATE,
        parameters='stop                           "<|start_header_id|>"\n'
        'stop                           "<|end_header_id|>"\n'
        'stop                           "<|eot_id|>"',
    ),
    LocalModel(
        name="qwen3:8b",
        family="qwen3",
        families=("qwen3",),
        parameter_size="8.2B",
        quantization_level="Q4_K_M",
        size=5225388164,
        modified_at="2025-06-11T09:12:03.52870844+02:00",
        architecture="qwen3",
        parameter_count=8190735360,
        context_length=40960,
        embedding_length=4096,
        capabilities=("completion", "tools", "thinking"),
        template=_CHATML_TEMPLATE,
        parameters="repeat_penalty                 1\n"
        "temperature                    0.6\n"
        "top_k                          20\n"
        "top_p                          0.95",
    ),
    LocalModel(
        name="llava:7b",
        family="llama",
        families=("llama", "clip"),
        parameter_size="7B",
        quantization_level="Q4_0",
        size=4733363377,
        modified_at="2025-03-20T14:45:51.114370011Z",
        architecture="llama",
        parameter_count=7241732096,
        context_length=32768,
        embedding_length=4096,
        capabilities=("completion", "vision"),
        template="[INST] {{ if .System }}{{ .System }} {{ end }}{{ .Prompt }} [/INST]",
        parameters='stop                           "[INST]"\n'
        'stop                           "[/INST]"',
    ),
    LocalModel(
        name="all-minilm:latest",
        family="bert",
        families=("bert",),
        parameter_size="23M",
        quantization_level="F16",
        size=45960996,
        modified_at="2025-01-08T11:02:17.00491Z",
        architecture="bert",
        parameter_count=22565376,
        context_length=512,
        embedding_length=384,
        capabilities=("embedding",),
        template="{{ .Prompt }}",
        parameters="",
    ),
)


def find_model(name: str) -> LocalModel | None:
    """The catalog model ``name`` names; a name without a tag means ``:latest``, as in Ollama."""
    full = name if ":" in name else f"{name}:latest"
    return next((model for model in CATALOG if model.name == full), None)


async def tags(request: Request) -> Response:
    """``GET /api/tags``: the pulled models."""
    return Response(200, go_json({"models": [m.tag_entry() for m in CATALOG]}), [], JSON_TYPE)


async def show(request: Request) -> Response:
    """``POST /api/show {"model"}``: a catalog model's details, template and capabilities."""
    try:
        body = json_object(request.body)
        name = body.get("model") or body.get("name")  # "name" is the deprecated spelling
        if not isinstance(name, str) or not name:
            raise bad_request('model is required; send {"model": "llama3.2"}')
        model = find_model(name)
        if model is None:
            raise not_found(name)
        return Response(200, go_json(model.show_entry()), [], JSON_TYPE)
    except Rejected as rejected:
        return rejected.response


async def version(request: Request) -> Response:
    """``GET /api/version``."""
    return Response(200, go_json({"version": SIMULATED_VERSION}), [], JSON_TYPE)


# --- reading a request ---------------------------------------------------------------------


def json_object(raw: bytes) -> dict[str, Any]:
    if not raw.strip():
        raise bad_request("missing request body; send a JSON object")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise bad_request(f"invalid JSON in the request body ({exc}); send a JSON object") from None
    if not isinstance(body, dict):
        raise bad_request("the request body must be a JSON object")
    return body


def model_name(body: dict[str, Any]) -> str:
    """The requested model id; 400 when absent, Ollama's 404 when the id says "missing"."""
    model = body.get("model")
    if model is None or model == "":
        raise bad_request('model is required; send e.g. "model": "llama3.2"')
    if not isinstance(model, str):
        raise bad_request('"model" must be a string such as "llama3.2"')
    if "missing" in model:
        raise not_found(model)
    return model


def supports_thinking(model: str) -> bool:
    return any(marker in model.lower() for marker in THINKING_MARKERS)


# Option names and kinds of Ollama's `api.Options`; unknown names are ignored, as Ollama does.
_INT_OPTIONS = frozenset(
    {
        "num_keep",
        "seed",
        "num_predict",
        "top_k",
        "repeat_last_n",
        "num_ctx",
        "num_batch",
        "num_gpu",
        "main_gpu",
        "num_thread",
    }
)
_FLOAT_OPTIONS = frozenset(
    {
        "top_p",
        "min_p",
        "typical_p",
        "temperature",
        "repeat_penalty",
        "presence_penalty",
        "frequency_penalty",
    }
)
_BOOL_OPTIONS = frozenset({"use_mmap"})


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def read_options(options: object) -> dict[str, Any]:
    """``options``, checked the way Ollama's ``Options.FromMap`` checks them."""
    if options is None:
        return {}
    if not isinstance(options, dict):
        raise bad_request('"options" must be an object such as {"num_predict": 128}')
    for key, value in options.items():
        if value is None:
            continue
        if key in _INT_OPTIONS and not _is_number(value):
            raise bad_request(f'option "{key}" must be of type integer, e.g. "{key}": 64')
        if key in _FLOAT_OPTIONS and not _is_number(value):
            raise bad_request(f'option "{key}" must be of type float32, e.g. "{key}": 0.7')
        if key in _BOOL_OPTIONS and not isinstance(value, bool):
            raise bad_request(f'option "{key}" must be of type boolean')
        if key == "stop" and not (
            isinstance(value, list) and all(isinstance(s, str) for s in value)
        ):
            raise bad_request('option "stop" must be an array of strings, e.g. ["\\n\\n"]')
    return options


def _check_images(where: str, images: object) -> int:
    """How many images ``images`` holds; each must be standard base64 (Go's ``[]byte``)."""
    if images is None:
        return 0
    if not isinstance(images, list):
        raise bad_request(f"{where}.images must be a list of base64 strings")
    for index, image in enumerate(images):
        try:
            if not isinstance(image, str):
                raise ValueError
            base64.b64decode(image, validate=True)
        except (ValueError, binascii.Error):
            raise bad_request(
                f"{where}.images[{index}] is not valid base64: send the image file's bytes as "
                "standard base64 (with padding), without a 'data:...;base64,' prefix"
            ) from None
    return len(images)


def _check_tool_calls(where: str, calls: object) -> None:
    if calls is None:
        return
    if not isinstance(calls, list) or not all(isinstance(c, dict) for c in calls):
        raise bad_request(f"{where}.tool_calls must be a list of objects")
    for index, call in enumerate(calls):
        function = call.get("function")
        arguments = function.get("arguments") if isinstance(function, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise bad_request(
                f'{where}.tool_calls[{index}] needs "function": {{"name": ..., "arguments": {{}}}}'
            )
        if arguments is not None and not isinstance(arguments, dict):
            raise bad_request(
                f"{where}.tool_calls[{index}].function.arguments must be a JSON object, not "
                f"{type(arguments).__name__}: Ollama takes arguments as an object (parse "
                "OpenAI's argument string before sending it)"
            )


_MESSAGE_STRINGS = ("role", "content", "thinking", "tool_name", "tool_call_id")


def _check_message(index: int, message: object) -> int:
    """Check one message like Go's decoder would; the number of images it carries."""
    where = f"messages[{index}]"
    if not isinstance(message, dict):
        raise bad_request(f'{where} must be an object like {{"role": "user", "content": "Hi"}}')
    for key in _MESSAGE_STRINGS:
        value = message.get(key)
        if value is not None and not isinstance(value, str):
            hint = " (Ollama has no content parts: send text, images go in 'images')"
            raise bad_request(f"{where}.{key} must be a string{hint if key == 'content' else ''}")
    _check_tool_calls(where, message.get("tool_calls"))
    return _check_images(where, message.get("images"))


def _read_think(value: object) -> bool:
    """Whether ``think`` asks for thinking: true or a level does, false or absent does not."""
    if value is None or isinstance(value, bool):
        return value is True
    if isinstance(value, str) and value in THINK_LEVELS:
        return True
    levels = ", ".join(f'"{level}"' for level in THINK_LEVELS)
    raise bad_request(f"think must be true, false or a level ({levels}), not {value!r}")


# A Go duration ("5m", "1h30m", "-1s") or a bare number of seconds, as keep_alive takes them.
_DURATION = re.compile(r"[-+]?(?:(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|ms|s|m|h))+|[-+]?0")


def _keep_alive_is_zero(value: object) -> bool:
    """Whether ``keep_alive`` unloads the model at once (``0``, ``"0s"``...)."""
    if value is None:
        return False
    if _is_number(value):
        return value == 0
    if isinstance(value, str) and _DURATION.fullmatch(value):
        return all(float(n) == 0 for n in re.findall(r"\d+(?:\.\d*)?|\.\d+", value))
    raise bad_request(f'keep_alive must be a duration like "5m" or a number of seconds: {value!r}')


def _tool_spec(tool: dict[str, Any]) -> ToolSpec:
    function = tool.get("function") if isinstance(tool.get("function"), dict) else {}
    return tool_spec(str(function.get("name") or "sim_tool"), function.get("parameters"))


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """A checked ``/api/chat`` body: what the answer depends on."""

    model: str
    messages: list[dict[str, Any]]
    stream: bool
    think: bool
    options: dict[str, Any]
    tools: tuple[ToolSpec, ...]
    prompt_tokens: int
    unload: bool  # keep_alive 0

    @property
    def num_predict(self) -> int | None:
        """The token limit; Ollama's -1 (no limit) and -2 (fill the context) mean none here."""
        value = self.options.get("num_predict")
        return int(value) if _is_number(value) and value >= 0 else None

    @property
    def stop(self) -> list[str]:
        return self.options.get("stop") or []


def _prompt_tokens(messages: list[dict[str, Any]], images: int) -> int:
    words = sum(len((m.get("content") or "").split()) for m in messages)
    return max(1, words + images * IMAGE_PROMPT_TOKENS)


def read_chat(raw: bytes) -> ChatRequest:
    """The request, checked in Ollama's order: JSON, fields, model, then capabilities."""
    body = json_object(raw)
    messages = body.get("messages") or []
    if not isinstance(messages, list):
        raise bad_request('"messages" must be a list of {"role", "content"} objects')
    images = sum(_check_message(i, m) for i, m in enumerate(messages))
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise bad_request(f'"stream" must be true or false, not {stream!r}')
    fmt = body.get("format")
    if fmt not in (None, "", "json") and not isinstance(fmt, dict):
        raise bad_request(f'invalid format: {fmt!r}; expected "json" or a JSON schema object')
    tools = body.get("tools") or []
    if not isinstance(tools, list) or not all(isinstance(t, dict) for t in tools):
        raise bad_request('"tools" must be a list of {"type": "function", "function": {...}}')
    options = read_options(body.get("options"))
    think = _read_think(body.get("think"))
    unload = _keep_alive_is_zero(body.get("keep_alive"))
    model = model_name(body)
    if think and not supports_thinking(model):
        raise bad_request(f'"{model}" does not support thinking')
    return ChatRequest(
        model=model,
        messages=messages,
        stream=stream is not False,  # Ollama's default: stream unless told not to
        think=think,
        options=options,
        tools=tuple(_tool_spec(t) for t in tools),
        prompt_tokens=_prompt_tokens(messages, images),
        unload=unload,
    )


def last_user_text(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if str(message.get("role") or "").lower() == "user":  # Ollama lower-cases roles
            return message.get("content") or ""
    return ""


# --- planning the answer -------------------------------------------------------------------


def call_id() -> str:
    """``call_`` and 8 random ``[a-z0-9]``, as Ollama's ``toolCallId()`` makes them."""
    return "call_" + "".join(secrets.choice(_CALL_ID_CHARS) for _ in range(8))


def _tool_calls(chat: ChatRequest, behaviour: Behaviour) -> WholeToolCalls:
    """The first tool; with ``parallel=1`` also the second (or the first again)."""
    tools = chat.tools[:2] if len(chat.tools) > 1 else chat.tools * 2
    chosen = tools if behaviour.parallel else tools[:1]
    return WholeToolCalls(
        tuple(WholeToolCall(call_id(), tool.name, tool_arguments(tool)) for tool in chosen)
    )


def chat_script(behaviour: Behaviour, chat: ChatRequest) -> Script:
    """Thinking words (when asked), then answer words or a tool call line, cut by num_predict."""
    units: list[Step] = []
    if chat.think:
        words = REASONING_WORDS
        units += [Thinking(words[i % len(words)]) for i in range(behaviour.think)]
    if behaviour.tool:
        units.append(_tool_calls(chat, behaviour))
    else:
        tokens = behaviour.tokens
        if behaviour.stop_at is not None and chat.stop:
            tokens = behaviour.stop_at  # Ollama trims the stop string and reports plain "stop"
        plain = replace(behaviour, think=0, stop_at=None, tokens=tokens)
        texts, _ = answer_tokens(plain, Ask(prompt_tokens=chat.prompt_tokens))
        units += [Text(text) for text in texts]
    reason = "stop"  # also after a tool call: Ollama has no "tool_calls" reason
    limit = chat.num_predict
    if limit is not None and limit < len(units):
        units, reason = units[:limit], "length"
    tool = chat.tools[0] if behaviour.tool else None
    return assemble(behaviour, Ask(prompt_tokens=chat.prompt_tokens, tool=tool), units, reason)


def planned_delay_ns(script: Script) -> int:
    return round(sum(step.seconds for step in script if isinstance(step, Delay)) * 1e9)


def metrics(finish: Finish, delay_ns: int, counts: bool) -> dict[str, int]:
    """The done line's metrics in Go's field order; zeros left out, as ``omitempty`` does."""
    prompt, generated = finish.usage.prompt_tokens, finish.usage.completion_tokens
    prompt_ns = prompt * PROMPT_EVAL_NS_PER_TOKEN
    eval_ns = generated * EVAL_NS_PER_TOKEN
    fields = {
        "total_duration": LOAD_NS + prompt_ns + eval_ns + delay_ns,
        "load_duration": LOAD_NS,
        "prompt_eval_count": prompt if counts else 0,
        "prompt_eval_duration": prompt_ns,
        "eval_count": generated if counts else 0,
        "eval_duration": eval_ns,
    }
    return {key: value for key, value in fields.items() if value}


@dataclass(frozen=True, slots=True)
class Answer:
    """What one answer's lines share."""

    model: str
    behaviour: Behaviour
    delay_ns: int  # what the script's delays add up to, so the durations stay deterministic

    def done_fields(self, finish: Finish) -> dict[str, Any]:
        fields: dict[str, Any] = {}
        if not self.behaviour.no_reason:
            fields["done_reason"] = finish.reason
        fields["done"] = True
        return fields | metrics(finish, self.delay_ns, not self.behaviour.no_counts)


def message(
    content: str, thinking: str | None = None, tool_calls: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """An assistant message in Go's field order (role, content, thinking, tool_calls)."""
    out: dict[str, Any] = {"role": "assistant", "content": content}
    if thinking:
        out["thinking"] = thinking
    if tool_calls:
        out["tool_calls"] = tool_calls
    return out


def tool_call_json(index: int, call: WholeToolCall) -> dict[str, Any]:
    arguments = orjson.loads(call.arguments)
    return {"id": call.id, "function": {"index": index, "name": call.name, "arguments": arguments}}


# --- the streamed answer -------------------------------------------------------------------


def _thinking_meets_answer(script: Script) -> bool:
    """Whether the last thinking step is followed directly (delays aside) by the answer."""
    last = max((i for i, step in enumerate(script) if isinstance(step, Thinking)), default=None)
    if last is None:
        return False
    after = next((s for s in script[last + 1 :] if not isinstance(s, Delay)), None)
    return isinstance(after, Text | WholeToolCalls)


class ChatStreamRenderer:
    """Script steps to Ollama's NDJSON chat lines, for one answer.

    It reads the whole script first: ``mixed=1`` holds the last thinking back for the first
    answer line, and ``done_text=1`` turns the last answer word into the done line.
    """

    def __init__(self, script: Script, answer: Answer) -> None:
        self._answer = answer
        self._clock = LineClock()
        self._finish = next((step for step in script if isinstance(step, Finish)), None)
        self._texts_left = sum(isinstance(step, Text) for step in script)
        self._thinking_left = sum(isinstance(step, Thinking) for step in script)
        self._hold_thinking = answer.behaviour.mixed and _thinking_meets_answer(script)
        self._held: str | None = None
        self._done_sent = False
        self._calls_sent = 0

    def _line(self, body: dict[str, Any], finish: Finish | None = None) -> bytes:
        line = {"model": self._answer.model, "created_at": self._clock.stamp(), "message": body}
        if finish is None:
            line["done"] = False
        else:
            line |= self._answer.done_fields(finish)
        return go_json(line) + b"\n"

    def _take_held(self) -> str | None:
        held, self._held = self._held, None
        return held

    def render(self, step: Step) -> bytes:
        if isinstance(step, Thinking):
            self._thinking_left -= 1
            if self._hold_thinking and not self._thinking_left:
                self._held = step.text
                return b""
            return self._line(message("", thinking=step.text))
        if isinstance(step, Text):
            self._texts_left -= 1
            body = message(step.text, thinking=self._take_held())
            if self._answer.behaviour.done_text and not self._texts_left and self._finish:
                self._done_sent = True
                return self._line(body, self._finish)
            return self._line(body)
        if isinstance(step, WholeToolCalls):
            first = self._calls_sent
            self._calls_sent += len(step.calls)
            calls = [tool_call_json(first + i, call) for i, call in enumerate(step.calls)]
            return self._line(message("", thinking=self._take_held(), tool_calls=calls))
        if isinstance(step, Finish):
            return b"" if self._done_sent else self._line(message(""), step)
        if isinstance(step, StreamError):
            return go_json({"error": RUNTIME_ERROR}) + b"\n"
        if isinstance(step, Garbage):
            return GARBAGE_LINE
        if isinstance(step, Start | End):
            return b""
        raise TypeError(f"the Ollama renderer has no rendering for {step!r}")


# --- the non-streamed answer ---------------------------------------------------------------


class ChatCollector:
    """Sums up a played script for ``"stream": false``; its ``render`` writes nothing."""

    def __init__(self) -> None:
        self.content = ""
        self.thinking = ""
        self.tool_calls: list[dict[str, Any]] = []
        self.finish: Finish | None = None
        self.error = False
        self.garbage = False

    def render(self, step: Step) -> bytes:
        if isinstance(step, Text):
            self.content += step.text
        elif isinstance(step, Thinking):
            self.thinking += step.text
        elif isinstance(step, WholeToolCalls):
            first = len(self.tool_calls)
            self.tool_calls += [tool_call_json(first + i, c) for i, c in enumerate(step.calls)]
        elif isinstance(step, Finish):
            self.finish = step
        elif isinstance(step, StreamError):
            self.error = True
        elif isinstance(step, Garbage):
            self.garbage = True
        return b""

    def body(self, answer: Answer, finish: Finish) -> bytes:
        whole = {
            "model": answer.model,
            "created_at": LineClock().stamp(),
            "message": message(self.content, self.thinking, self.tool_calls),
        }
        return go_json(whole | answer.done_fields(finish))


async def collected_answer(script: Script, answer: Answer) -> Response:
    """Play ``script`` in real time and answer with one JSON object, or the failure it holds."""
    collector = ChatCollector()
    async for _ in playback.stream(script, collector.render):
        pass  # the collector writes nothing; playing the script supplies the timing
    if collector.garbage:
        return Response(200, GARBAGE_BODY, [], JSON_TYPE)
    if collector.error:  # nothing was written yet, so the failure gets a real status
        return ollama_error(500, RUNTIME_ERROR)
    if collector.finish is None:  # truncated: half the body, as if the server died writing it
        whole = collector.body(answer, Finish("length", Usage(0, 0)))
        return Response(200, whole[: len(whole) // 2], [], JSON_TYPE)
    return Response(200, collector.body(answer, collector.finish), [], JSON_TYPE)


# --- the chat route ------------------------------------------------------------------------


def load_response(chat: ChatRequest) -> Response:
    """No messages: Ollama just loads (or with ``keep_alive: 0`` unloads) the model."""
    answer = {
        "model": chat.model,
        "created_at": LineClock().stamp(),
        "message": message(""),
        "done_reason": "unload" if chat.unload else "load",
        "done": True,
    }
    return Response(200, go_json(answer), [], JSON_TYPE)


async def chat(request: Request) -> Response | StreamingResponse:
    """``POST /api/chat``: NDJSON lines unless ``"stream": false``."""
    try:
        chat_request = read_chat(request.body)
        text = last_user_text(chat_request.messages)
        behaviour = read_behaviour(text, request.header("x-sim"))
        if behaviour.headers_ms:
            await trio.sleep(behaviour.headers_ms / 1000)
        if behaviour.status is not None:
            return status_error(behaviour)
        if not chat_request.messages:
            return load_response(chat_request)
        if behaviour.tool and not chat_request.tools:
            raise bad_request(
                "#sim tool=1 calls the request's first tool, but the request has no 'tools'; "
                "send a tools list or drop tool=1"
            )
        script = chat_script(behaviour, chat_request)
        answer = Answer(chat_request.model, behaviour, planned_delay_ns(script))
        if chat_request.stream:
            renderer = ChatStreamRenderer(script, answer)
            chunks = playback.stream(script, renderer.render)
            return StreamingResponse(200, chunks, content_type=NDJSON_TYPE)
        return await collected_answer(script, answer)
    except Rejected as rejected:
        return rejected.response


# --- embeddings ----------------------------------------------------------------------------


def unit_vector(vector: list[float]) -> list[float]:
    norm = math.sqrt(sum(x * x for x in vector)) or 1.0
    return [x / norm for x in vector]


def _embed_texts(given: object) -> list[str]:
    if isinstance(given, str):
        return [given] if given else []  # "" only loads the model, as in Ollama
    if isinstance(given, list) and all(isinstance(item, str) for item in given):
        return given
    raise bad_request('"input" must be a string or a list of strings')


async def embed(request: Request) -> Response:
    """``POST /api/embed``: unit vectors (float32) for ``input``, cut to ``dimensions``."""
    try:
        body = json_object(request.body)
        texts = _embed_texts(body.get("input"))
        truncate = body.get("truncate")
        if truncate is not None and not isinstance(truncate, bool):
            raise bad_request('"truncate" must be true or false')
        dimensions = body.get("dimensions")
        if dimensions is not None and not (
            isinstance(dimensions, int) and not isinstance(dimensions, bool) and dimensions > 0
        ):
            raise bad_request('"dimensions" must be a positive integer, e.g. "dimensions": 4')
        model = model_name(body)
        behaviour = read_behaviour("\n".join(texts), request.header("x-sim"))
        if behaviour.headers_ms:
            await trio.sleep(behaviour.headers_ms / 1000)
        if behaviour.status is not None:
            return status_error(behaviour)
        known = find_model(model)
        context = known.context_length if known else DEFAULT_CONTEXT_LENGTH
        counts = [len(text.split()) for text in texts]
        if truncate is False and any(count > context for count in counts):
            raise bad_request(
                f"the input length exceeds the context length ({context} tokens); shorten the "
                'input or leave "truncate" at its default (true)'
            )
        vectors = []
        for text in texts:
            vector = embedding(text, True)
            if dimensions is not None and dimensions < len(vector):
                vector = unit_vector(vector[:dimensions])
            vectors.append([float32(x) for x in vector])
        tokens = sum(min(count, context) for count in counts)
        answer: dict[str, Any] = {
            "model": model,
            "embeddings": vectors,
            "total_duration": LOAD_NS + tokens * PROMPT_EVAL_NS_PER_TOKEN,
            "load_duration": LOAD_NS,
        }
        if tokens:  # omitempty
            answer["prompt_eval_count"] = tokens
        return Response(200, go_json(answer), [], JSON_TYPE)
    except Rejected as rejected:
        return rejected.response
