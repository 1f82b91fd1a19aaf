"""Anthropic's Messages API: ``POST /v1/messages`` (stream and not) and its ``GET /v1/models``.

Wire shapes follow the SDK's recorded fixtures (PROTOCOLS.md §4.4): named SSE events with
compact JSON, ``message_start`` → per block ``content_block_start``/``delta``/``stop`` →
``message_delta`` (cumulative ``output_tokens``) → ``message_stop``, no ``[DONE]``. Quirks kept
on purpose, because the gateway must cope with them:

- one ``ping`` event right after the first ``content_block_start``, its JSON spaced
  (``{"type": "ping"}``) unlike every other event;
- a thinking block ends with a ``signature_delta`` just before its ``content_block_stop``;
- a tool_use block starts with ``input: {}``, then its arguments come as ``input_json_delta``
  fragments, the first one ``""``, split wherever (``noinput=1``: no fragment at all);
- the stop sequence that ended an answer is reported, not included in the text;
- an error after the stream started is ``event: error`` (spaced JSON, as the docs show it) and
  the stream just ends; before that, errors are ``{"type": "error", "error": {...},
  "request_id": ...}`` with a real HTTP status and a ``request-id`` header.

Requests are checked the way the API checks them (``x-api-key`` and ``anthropic-version``
headers, extra fields rejected, user/assistant roles, tool_use/tool_result pairing, thinking
budget), since a gateway translating OpenAI requests trips over exactly these. ``max_tokens``
must be ≥ 1: the newer API's ``0`` (only fill the prompt cache) is not simulated.

Any model id works (so a gateway can use real ids); ids containing "missing" get a 404.
Token counts are deterministic stand-ins: one input token per word of the system prompt and the
messages' text (tool results included) plus ``IMAGE_INPUT_TOKENS`` per image; one output token
per unit of the answer (thinking word, answer word, tool block start, argument fragment).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import string
from dataclasses import dataclass, replace
from typing import Any

import orjson
import trio

from sluicegate.server import Request, Response, StreamingResponse
from sluicegate.simulator import playback
from sluicegate.simulator.behaviour import Behaviour, find_directive
from sluicegate.simulator.rejection import Rejected, directive_behaviour
from sluicegate.simulator.script import (
    ARGUMENT_FRAGMENT_CHARS,
    REASONING_WORDS,
    Ask,
    End,
    Finish,
    Garbage,
    Script,
    Start,
    Step,
    StreamError,
    Text,
    Thinking,
    ToolArguments,
    ToolCallStart,
    ToolSpec,
    Usage,
    answer_tokens,
    assemble,
    tool_arguments,
    tool_spec,
)

SSE_TYPE = "text/event-stream; charset=utf-8"
IMAGE_INPUT_TOKENS = 64  # what one image adds to input_tokens
MIN_THINKING_BUDGET = 1024
GARBAGE_BODY = b"<html><body>502 Bad Gateway (simulated: this is not JSON)</body></html>"
# Literal events whose JSON is spaced on the wire (the SDK fixture and the streaming docs).
PING_EVENT = b'{"type": "ping"}'
OVERLOADED_EVENT = json.dumps(
    {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
).encode()
_ID_CHARS = string.ascii_letters + string.digits

# (id, display name, created_at) of the models `GET /v1/models` lists, newest first as the API.
MODELS = (
    ("claude-sonnet-4-5-20250929", "Claude Sonnet 4.5", "2025-09-29T00:00:00Z"),
    ("claude-haiku-4-5-20251001", "Claude Haiku 4.5", "2025-10-15T00:00:00Z"),
    ("claude-opus-4-1-20250805", "Claude Opus 4.1", "2025-08-05T00:00:00Z"),
    ("claude-3-5-haiku-20241022", "Claude Haiku 3.5", "2024-10-22T00:00:00Z"),
)

# error.type per HTTP status (PROTOCOLS.md §4.6); other 4xx: invalid_request_error, 5xx: api_error.
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}
# Top-level request fields the API knows; any other is "Extra inputs are not permitted".
_KNOWN_FIELDS = frozenset(
    {
        "model",
        "messages",
        "max_tokens",
        "system",
        "stop_sequences",
        "stream",
        "temperature",
        "top_p",
        "top_k",
        "tools",
        "tool_choice",
        "thinking",
        "metadata",
        "service_tier",
        "container",
        "output_config",
        "cache_control",
        "inference_geo",
        "context_management",
        "mcp_servers",
    }
)
_BLOCK_TYPES = ("text", "image", "tool_use", "tool_result", "thinking", "redacted_thinking")
_ASSISTANT_ONLY = frozenset({"tool_use", "thinking", "redacted_thinking"})
_IMAGE_MEDIA_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")
_TOOL_NAME = re.compile(r"[a-zA-Z0-9_-]{1,128}")
_TOOL_CHOICES = ("auto", "any", "tool", "none")
_THINKING_DOCS = "https://docs.claude.com/en/docs/build-with-claude/extended-thinking"


def random_id(prefix: str) -> str:
    """An id the way Anthropic's look: ``msg_01`` + 22 base62 characters."""
    return prefix + "01" + "".join(secrets.choice(_ID_CHARS) for _ in range(22))


def thinking_signature(thinking: str) -> str:
    """A deterministic stand-in for the opaque signature of a thinking block."""
    digest = hashlib.sha256(thinking.encode()).digest()
    return base64.b64encode(b"sluicegate-simulator-signature:" + digest).decode()


# --- errors --------------------------------------------------------------------------------


def error_response(
    status: int, message: str, headers: list[tuple[str, str]] | None = None
) -> Response:
    """Anthropic's error body, its ``request_id`` repeated in the ``request-id`` header."""
    default = "api_error" if status >= 500 else "invalid_request_error"
    request_id = random_id("req_")
    body = {
        "type": "error",
        "error": {"type": _ERROR_TYPES.get(status, default), "message": message},
        "request_id": request_id,
    }
    return Response(status, orjson.dumps(body), [("request-id", request_id), *(headers or [])])


def invalid(message: str) -> Rejected:
    return Rejected(error_response(400, message))


def status_error(behaviour: Behaviour) -> Response:
    """The answer to ``#sim status=N``: HTTP N with Anthropic's error body."""
    status = behaviour.status or 500
    headers = [("retry-after", behaviour.retry_after)] if status == 429 else []
    message = f"simulated HTTP {status} (#sim status={status})"
    if status == 529:
        message = f"Overloaded (#sim status={status})"
    if behaviour.overflow:  # the API's wording for a prompt over the context window
        message = f"prompt is too long: 208310 tokens > 200000 maximum (#sim status={status})"
    return error_response(status, message, headers)


def check_headers(request: Request) -> None:
    """``x-api-key`` (any value) and ``anthropic-version`` are required, in that order."""
    if not request.header("x-api-key"):
        raise Rejected(error_response(401, "x-api-key header is required"))
    if not request.header("anthropic-version"):
        raise invalid(
            "anthropic-version: header is required; send e.g. 'anthropic-version: 2023-06-01'"
        )


# --- the models list -----------------------------------------------------------------------


def wants_model_list(request: Request) -> bool:
    """Whether ``GET /v1/models`` is Anthropic's: OpenAI clients never send these two headers."""
    return bool(request.header("anthropic-version") and request.header("x-api-key"))


def list_models() -> Response:
    data = [
        {"type": "model", "id": model_id, "display_name": name, "created_at": created}
        for model_id, name, created in MODELS
    ]
    page = {"data": data, "has_more": False, "first_id": MODELS[0][0], "last_id": MODELS[-1][0]}
    return Response(200, orjson.dumps(page), [("request-id", random_id("req_"))])


# --- reading the request -------------------------------------------------------------------


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def json_object(raw: bytes) -> dict[str, Any]:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise invalid("The request body is not valid JSON; send a JSON object") from None
    if not isinstance(body, dict):
        raise invalid("The request body must be a JSON object")
    return body


def _check_image(where: str, block: dict[str, Any]) -> None:
    source = block.get("source")
    if not isinstance(source, dict):
        source = {}
    kind = source.get("type")
    if kind == "base64":
        if source.get("media_type") not in _IMAGE_MEDIA_TYPES:
            allowed = ", ".join(f"'{m}'" for m in _IMAGE_MEDIA_TYPES)
            raise invalid(f"{where}.source.base64.media_type: Input should be {allowed}")
        try:
            base64.b64decode(str(source.get("data")), validate=True)
        except ValueError:
            raise invalid(
                f"{where}.source.base64.data: the image data is not valid base64; send the "
                "bytes as standard base64 without a 'data:...;base64,' prefix"
            ) from None
    elif kind == "url":
        if not isinstance(source.get("url"), str):
            raise invalid(f"{where}.source.url.url: Field required")
    else:
        raise invalid(
            f'{where}.source: Input tag {kind!r} does not match the expected tags "base64", "url"'
        )


def _check_block(where: str, role: str, block: object) -> None:
    if not isinstance(block, dict):
        raise invalid(f"{where}: Input should be an object with a 'type'")
    kind = block.get("type")
    if kind not in _BLOCK_TYPES:
        tags = ", ".join(f'"{t}"' for t in _BLOCK_TYPES)
        raise invalid(f"{where}: Input tag {kind!r} does not match the expected tags {tags}")
    if kind in _ASSISTANT_ONLY and role != "assistant":
        raise invalid(f"{where}: {kind} blocks may only appear in assistant messages")
    if kind == "tool_result" and role != "user":
        raise invalid(f"{where}: tool_result blocks may only appear in user messages")
    required = {
        "text": ("text",),
        "tool_use": ("id", "name"),
        "tool_result": ("tool_use_id",),
        "thinking": ("thinking", "signature"),
        "redacted_thinking": ("data",),
    }.get(str(kind), ())
    for name in required:
        if not isinstance(block.get(name), str):
            raise invalid(f"{where}.{kind}.{name}: Field required (a string)")
    if kind == "text" and not block["text"]:
        raise invalid(f"{where}: text content blocks must be non-empty")
    if kind == "tool_use" and not isinstance(block.get("input"), dict):
        raise invalid(
            f"{where}.tool_use.input: Input should be a valid dictionary (the arguments as a "
            "JSON object, not a string)"
        )
    if kind == "image":
        _check_image(where, block)


def _blocks(message: dict[str, Any]) -> list[dict[str, Any]]:
    """A message's content as blocks (a string is one text block)."""
    content = message.get("content")
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return content if isinstance(content, list) else []


def _tool_use_ids(message: dict[str, Any], kind: str, key: str) -> set[str]:
    return {b[key] for b in _blocks(message) if b.get("type") == kind}


def _check_messages(messages: object) -> list[dict[str, Any]]:
    if messages is None:
        raise invalid("messages: Field required")
    if not isinstance(messages, list):
        raise invalid("messages: Input should be a valid list")
    if not messages:
        raise invalid("messages: at least one message is required")
    last = len(messages) - 1
    for i, message in enumerate(messages):
        where = f"messages.{i}"
        if not isinstance(message, dict):
            raise invalid(f'{where}: Input should be an object like {{"role": "user", ...}}')
        role = message.get("role")
        if role == "system":
            raise invalid(
                f'{where}: Unexpected role "system". The Messages API accepts a top-level '
                '`system` parameter, not "system" as an input message role.'
            )
        if role not in ("user", "assistant"):
            raise invalid(f"{where}.role: Input should be 'user' or 'assistant'")
        content = message.get("content")
        if isinstance(content, str):
            if not content and not (i == last and role == "assistant"):
                raise invalid(
                    f"{where}: all messages must have non-empty content except for the "
                    "optional final assistant message"
                )
        elif isinstance(content, list):
            for j, block in enumerate(content):
                _check_block(f"{where}.content.{j}", role, block)
        else:
            raise invalid(f"{where}.content: Input should be a string or a list of blocks")
    if messages[0]["role"] != "user":
        raise invalid('messages: first message must use the "user" role')
    _check_tool_pairs(messages)
    return messages


def _check_tool_pairs(messages: list[dict[str, Any]]) -> None:
    """Every tool_use is answered by a tool_result in the very next message, and vice versa."""
    for i, message in enumerate(messages):
        results = _tool_use_ids(message, "tool_result", "tool_use_id")
        asked = _tool_use_ids(messages[i - 1], "tool_use", "id") if i else set()
        if stray := sorted(results - asked):
            raise invalid(
                f"messages.{i}.content: unexpected `tool_use_id` found in `tool_result` blocks: "
                f"{stray[0]}. Each `tool_result` block must have a corresponding `tool_use` "
                "block in the previous message."
            )
        if i + 1 < len(messages):
            calls = _tool_use_ids(message, "tool_use", "id")
            answered = _tool_use_ids(messages[i + 1], "tool_result", "tool_use_id")
            if unanswered := sorted(calls - answered):
                raise invalid(
                    f"messages.{i}: `tool_use` ids were found without `tool_result` blocks "
                    f"immediately after: {unanswered[0]}. Each `tool_use` block must have a "
                    "corresponding `tool_result` block in the next message."
                )


def _check_system(system: object) -> None:
    if system is None or isinstance(system, str):
        return
    if isinstance(system, list) and all(
        isinstance(b, dict) and b.get("type") == "text" and isinstance(b.get("text"), str)
        for b in system
    ):
        return
    raise invalid('system: Input should be a string or a list of {"type": "text", "text"} blocks')


def _check_tools(tools: object) -> list[dict[str, Any]]:
    """The custom tools (server tools, which carry their own ``type``, are not callable here)."""
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise invalid("tools: Input should be a valid list")
    custom = []
    for i, tool in enumerate(tools):
        where = f"tools.{i}"
        if not isinstance(tool, dict):
            raise invalid(f"{where}: Input should be an object with 'name' and 'input_schema'")
        if tool.get("type") not in (None, "custom"):
            continue
        name = tool.get("name")
        if not isinstance(name, str) or not _TOOL_NAME.fullmatch(name):
            raise invalid(
                f"{where}.custom.name: String should match pattern '^[a-zA-Z0-9_-]{{1,128}}$'"
            )
        if "description" in tool and not isinstance(tool["description"], str):
            raise invalid(f"{where}.custom.description: Input should be a valid string")
        schema = tool.get("input_schema")
        if not isinstance(schema, dict):
            raise invalid(
                f"{where}.custom.input_schema: Field required (a JSON schema object; OpenAI's "
                "'parameters' goes here)"
            )
        if schema.get("type") != "object":
            raise invalid(f"{where}.custom.input_schema.type: Input should be 'object'")
        custom.append(tool)
    return custom


def _check_tool_choice(choice: object, tools: list[dict[str, Any]]) -> dict[str, Any] | None:
    if choice is None:
        return None
    kind = choice.get("type") if isinstance(choice, dict) else None
    if not isinstance(choice, dict) or kind not in _TOOL_CHOICES:
        tags = ", ".join(f'"{t}"' for t in _TOOL_CHOICES)
        raise invalid(f"tool_choice: Input tag {kind!r} does not match the expected tags {tags}")
    parallel = choice.get("disable_parallel_tool_use")
    if parallel is not None and not isinstance(parallel, bool):
        raise invalid(f"tool_choice.{kind}.disable_parallel_tool_use: Input should be a boolean")
    if kind == "tool":
        name = choice.get("name")
        if not isinstance(name, str):
            raise invalid("tool_choice.tool.name: Field required")
        if name not in {t["name"] for t in tools}:
            raise invalid(f"tool_choice.tool.name: no tool named '{name}' in 'tools'")
    if kind in ("any", "tool") and not tools:
        raise invalid(f"tool_choice: type '{kind}' may only be specified while providing tools")
    return choice


def _check_thinking(thinking: object, max_tokens: int) -> bool:
    """Whether the request asks for thinking (enabled or adaptive)."""
    if thinking is None:
        return False
    kind = thinking.get("type") if isinstance(thinking, dict) else None
    if kind in ("disabled", "adaptive"):
        return kind == "adaptive"
    if not isinstance(thinking, dict) or kind != "enabled":
        raise invalid(
            f'thinking: Input tag {kind!r} does not match the expected tags "enabled", '
            '"disabled", "adaptive"'
        )
    budget = thinking.get("budget_tokens")
    if not _is_int(budget):
        raise invalid("thinking.enabled.budget_tokens: Field required (an integer)")
    if budget < MIN_THINKING_BUDGET:
        raise invalid(
            f"thinking.enabled.budget_tokens: Input should be greater than or equal to "
            f"{MIN_THINKING_BUDGET}"
        )
    if max_tokens <= budget:
        raise invalid(
            "`max_tokens` must be greater than `thinking.budget_tokens`. Please consult our "
            f"documentation at {_THINKING_DOCS}#max-tokens-and-context-window-size"
        )
    return True


def _check_sampling(body: dict[str, Any], thinking: bool) -> None:
    for key in ("temperature", "top_p"):
        value = body.get(key)
        if value is not None and not (_is_number(value) and 0 <= value <= 1):
            raise invalid(f"{key}: Input should be a number between 0 and 1")
    top_k = body.get("top_k")
    if top_k is not None and not (_is_int(top_k) and top_k >= 0):
        raise invalid("top_k: Input should be an integer greater than or equal to 0")
    if thinking and body.get("temperature") not in (None, 1, 1.0):
        raise invalid(
            "`temperature` may only be set to 1 when thinking is enabled. Please consult our "
            f"documentation at {_THINKING_DOCS}#feature-compatibility"
        )
    if thinking and top_k is not None:
        raise invalid(
            "`top_k` may not be set when thinking is enabled. Please consult our "
            f"documentation at {_THINKING_DOCS}#feature-compatibility"
        )


def _text_of(blocks: list[dict[str, Any]]) -> list[str]:
    """The text of blocks, tool results' content included."""
    texts = []
    for block in blocks:
        if block.get("type") == "text":
            texts.append(str(block.get("text")))
        elif block.get("type") == "tool_result":
            content = block.get("content")
            inner = [{"type": "text", "text": content}] if isinstance(content, str) else content
            texts += _text_of(inner if isinstance(inner, list) else [])
    return texts


def _input_tokens(system: str | list[dict[str, Any]] | None, messages: list[dict[str, Any]]) -> int:
    texts = [system] if isinstance(system, str) else _text_of(system if system else [])
    images = 0
    for message in messages:
        blocks = _blocks(message)
        texts += _text_of(blocks)
        images += sum(block.get("type") == "image" for block in blocks)
    return max(1, sum(len(text.split()) for text in texts) + images * IMAGE_INPUT_TOKENS)


@dataclass(frozen=True, slots=True)
class MessagesRequest:
    """A checked ``/v1/messages`` body: what the answer depends on."""

    model: str
    messages: list[dict[str, Any]]
    max_tokens: int
    stream: bool
    thinking: bool
    stop_sequences: tuple[str, ...]
    tools: tuple[ToolSpec, ...]
    tool_choice: dict[str, Any] | None
    input_tokens: int


def read_request(raw: bytes) -> MessagesRequest:
    """The body, checked field by field as the API does; a 404 for a "missing" model last."""
    body = json_object(raw)
    if extra := sorted(set(body) - _KNOWN_FIELDS):
        raise invalid(f"{extra[0]}: Extra inputs are not permitted")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise invalid("model: Field required (a model id such as 'claude-sonnet-4-5')")
    max_tokens = body.get("max_tokens")
    if max_tokens is None:
        raise invalid("max_tokens: Field required (the most tokens to generate, e.g. 1024)")
    if not _is_int(max_tokens) or max_tokens < 1:
        raise invalid("max_tokens: Input should be an integer greater than or equal to 1")
    messages = _check_messages(body.get("messages"))
    _check_system(body.get("system"))
    stops = body.get("stop_sequences")
    if stops is not None and not (
        isinstance(stops, list) and all(isinstance(s, str) for s in stops)
    ):
        raise invalid("stop_sequences: Input should be a list of strings")
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise invalid("stream: Input should be a valid boolean")
    tools = _check_tools(body.get("tools"))
    choice = _check_tool_choice(body.get("tool_choice"), tools)
    thinking = _check_thinking(body.get("thinking"), max_tokens)
    if thinking and choice is not None and choice["type"] in ("any", "tool"):
        raise invalid(
            "Thinking may not be enabled when tool_choice forces tool use; use tool_choice "
            '{"type": "auto"} or disable thinking'
        )
    _check_sampling(body, thinking)
    if "missing" in model:
        raise Rejected(error_response(404, f"model: {model}"))
    return MessagesRequest(
        model=model,
        messages=messages,
        max_tokens=max_tokens,
        stream=stream is True,
        thinking=thinking,
        stop_sequences=tuple(stops or ()),
        tools=tuple(tool_spec(t["name"], t["input_schema"]) for t in tools),
        tool_choice=choice,
        input_tokens=_input_tokens(body.get("system"), messages),
    )


def directive_text(messages: list[dict[str, Any]]) -> str:
    """The text of the last user message that has any: what the user typed, so a turn made
    only of tool results keeps the directive of the turn before (as OpenAI's role "tool"
    messages do)."""
    for message in reversed(messages):
        if message["role"] == "user":
            texts = [b["text"] for b in _blocks(message) if b.get("type") == "text"]
            if texts:
                return " ".join(texts)
    return ""


def read_behaviour(text: str, header: str | None) -> Behaviour:
    """The ``#sim`` directive of ``text``; a bad one is Anthropic's 400, not OpenAI's."""
    return directive_behaviour(find_directive(text), header, lambda exc: invalid(exc.message))


# --- planning the answer -------------------------------------------------------------------


def _called_tools(request: MessagesRequest, behaviour: Behaviour) -> tuple[ToolSpec, ...]:
    """The tools the answer calls: none, one, or two with ``parallel=1``."""
    choice = request.tool_choice or {"type": "auto"}
    forced = choice["type"] in ("any", "tool")
    if choice["type"] == "none" or not (behaviour.tool or forced):
        return ()
    if not request.tools:
        raise invalid(
            "#sim tool=1 calls the request's first tool, but the request has no 'tools'; "
            "send a tools list or drop tool=1"
        )
    tools = request.tools
    if choice["type"] == "tool":
        tools = tuple(t for t in tools if t.name == choice["name"])
    pair = tools[:2] if len(tools) > 1 else tools * 2
    parallel = behaviour.parallel and not choice.get("disable_parallel_tool_use")
    return pair if parallel else pair[:1]


def tool_input(tool: ToolSpec) -> str:
    """The tool's arguments as the model writes them: JSON with spaces after ``:`` and ``,``."""
    return json.dumps(orjson.loads(tool_arguments(tool)))


def _tool_units(index: int, tool: ToolSpec, behaviour: Behaviour) -> list[Step]:
    units: list[Step] = [ToolCallStart(index, random_id("toolu_"), tool.name)]
    if behaviour.noinput:
        return units
    arguments = tool_input(tool)
    units.append(ToolArguments(index, ""))  # the API's first fragment is always empty
    units += [
        ToolArguments(index, arguments[i : i + ARGUMENT_FRAGMENT_CHARS])
        for i in range(0, len(arguments), ARGUMENT_FRAGMENT_CHARS)
    ]
    return units


def answer_script(behaviour: Behaviour, request: MessagesRequest) -> Script:
    """Thinking (when enabled), then text or tool_use blocks, cut by ``max_tokens``.

    ``Finish.reason`` carries Anthropic's own ``stop_reason``.
    """
    units: list[Step] = []
    if request.thinking:
        words = REASONING_WORDS
        units += [Thinking(words[i % len(words)]) for i in range(behaviour.think)]
    tools = _called_tools(request, behaviour)
    tokens, reason = behaviour.tokens, "end_turn"
    if tools:
        tokens, reason = (tokens if behaviour.preamble else 0), "tool_use"
    elif behaviour.stop_at is not None and request.stop_sequences:
        tokens, reason = behaviour.stop_at, "stop_sequence"
    elif behaviour.refusal:
        reason = "refusal"
    plain = replace(behaviour, think=0, stop_at=None, tokens=tokens)
    texts, _ = answer_tokens(plain, Ask(prompt_tokens=request.input_tokens))
    units += [Text(text) for text in texts]
    for index, tool in enumerate(tools):
        units += _tool_units(index, tool, behaviour)
    if request.max_tokens < len(units):
        units, reason = units[: request.max_tokens], "max_tokens"
    tool = tools[0] if tools else None
    return assemble(behaviour, Ask(prompt_tokens=request.input_tokens, tool=tool), units, reason)


@dataclass(frozen=True, slots=True)
class Answer:
    """What the events of one answer share."""

    id: str
    model: str
    input_tokens: int
    cached_tokens: int | None  # `cache=N`; None leaves the cache fields out of the stream
    stop_sequence: str | None  # the request's first stop sequence

    def stop_fields(self, finish: Finish) -> dict[str, Any]:
        hit = self.stop_sequence if finish.reason == "stop_sequence" else None
        return {"stop_reason": finish.reason, "stop_sequence": hit}

    def start_usage(self) -> dict[str, Any]:
        """``message_start``'s usage: the basic fixture's, or the cache fixture's with ``cache``."""
        if self.cached_tokens is None:
            return {"input_tokens": self.input_tokens, "output_tokens": 1}
        return {
            "input_tokens": self.input_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": self.cached_tokens,
            "output_tokens": 1,  # a placeholder; message_delta has the count
            "service_tier": "standard",
        }

    def usage(self, output_tokens: int) -> dict[str, Any]:
        """A non-streamed Message's usage: every field, as the API always sends them."""
        return {
            "input_tokens": self.input_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": self.cached_tokens or 0,
            "output_tokens": output_tokens,
            "service_tier": "standard",
        }


# --- the streamed answer -------------------------------------------------------------------


class StreamRenderer:
    """Script steps to Anthropic's named SSE events, for one answer.

    Blocks open as the content changes kind (thinking, text, each tool call) and close when the
    next one opens or the answer finishes; an answer cut short leaves its block open.
    """

    def __init__(self, answer: Answer, behaviour: Behaviour) -> None:
        self._answer = answer
        self._newline = b"\r\n" if behaviour.crlf else b"\n"
        self._ping_every = behaviour.ping
        self._events = 0
        self._index = -1  # the open block's index
        self._open: str | None = None  # the open block's type
        self._thinking = ""  # the open thinking block's text, for its signature

    def _event(self, name: str, payload: bytes) -> bytes:
        end = self._newline
        ping = b""
        if self._ping_every and self._events:
            ping = b"event: ping" + end + b"data: " + PING_EVENT + end + end
        self._events += 1
        return ping + b"event: " + name.encode() + end + b"data: " + payload + end + end

    def _json_event(self, payload: dict[str, Any]) -> bytes:
        return self._event(payload["type"], orjson.dumps(payload))

    def _delta(self, delta: dict[str, Any]) -> bytes:
        return self._json_event(
            {"type": "content_block_delta", "index": self._index, "delta": delta}
        )

    def _close(self) -> bytes:
        if self._open is None:
            return b""
        out = b""
        if self._open == "thinking":
            out += self._delta(
                {"type": "signature_delta", "signature": thinking_signature(self._thinking)}
            )
        self._open, self._thinking = None, ""
        return out + self._json_event({"type": "content_block_stop", "index": self._index})

    def _open_block(self, block: dict[str, Any]) -> bytes:
        out = self._close()
        self._index += 1
        self._open = block["type"]
        start = {"type": "content_block_start", "index": self._index, "content_block": block}
        out += self._json_event(start)
        if self._index == 0:  # the API pings once, right after the first block starts
            out += self._event("ping", PING_EVENT)
        return out

    def render(self, step: Step) -> bytes:
        if isinstance(step, Start):
            message = {
                "id": self._answer.id,
                "type": "message",
                "role": "assistant",
                "content": [],
                "model": self._answer.model,
                "stop_reason": None,
                "stop_sequence": None,
                "usage": self._answer.start_usage(),
            }
            return self._json_event({"type": "message_start", "message": message})
        if isinstance(step, Thinking):
            out = b""
            if self._open != "thinking":
                out = self._open_block({"type": "thinking", "thinking": "", "signature": ""})
            self._thinking += step.text
            return out + self._delta({"type": "thinking_delta", "thinking": step.text})
        if isinstance(step, Text):
            out = b"" if self._open == "text" else self._open_block({"type": "text", "text": ""})
            return out + self._delta({"type": "text_delta", "text": step.text})
        if isinstance(step, ToolCallStart):
            return self._open_block(tool_use_block(step.id, step.name, {}))
        if isinstance(step, ToolArguments):
            return self._delta({"type": "input_json_delta", "partial_json": step.fragment})
        if isinstance(step, Finish):
            delta = {
                "type": "message_delta",
                "delta": self._answer.stop_fields(step),
                "usage": {"output_tokens": step.usage.completion_tokens},
            }
            return self._close() + self._json_event(delta)
        if isinstance(step, End):
            return self._json_event({"type": "message_stop"})
        if isinstance(step, StreamError):
            return self._event("error", OVERLOADED_EVENT)
        if isinstance(step, Garbage):
            return self._event("content_block_delta", b"{this is not JSON")
        raise TypeError(f"the Anthropic renderer has no rendering for {step!r}")


def tool_use_block(call_id: str, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "tool_use",
        "id": call_id,
        "name": name,
        "caller": {"type": "direct"},  # newer API field (the SDK's tool_use fixture has it)
        "input": arguments,
    }


# --- the non-streamed answer ---------------------------------------------------------------


class MessageCollector:
    """Sums up a played script into content blocks; its ``render`` writes nothing."""

    def __init__(self) -> None:
        self.blocks: list[dict[str, Any]] = []
        self._arguments: list[str] = []  # per tool block, the fragments joined
        self.finish: Finish | None = None
        self.error = False
        self.garbage = False

    def _append_to(self, kind: str, key: str, text: str, **start: str) -> None:
        if not self.blocks or self.blocks[-1]["type"] != kind:
            self.blocks.append({"type": kind, key: "", **start})
        self.blocks[-1][key] += text

    def render(self, step: Step) -> bytes:
        if isinstance(step, Thinking):
            self._append_to("thinking", "thinking", step.text, signature="")
        elif isinstance(step, Text):
            self._append_to("text", "text", step.text)
        elif isinstance(step, ToolCallStart):
            self.blocks.append(tool_use_block(step.id, step.name, {}))
            self._arguments.append("")
        elif isinstance(step, ToolArguments):
            self._arguments[-1] += step.fragment
        elif isinstance(step, Finish):
            self.finish = step
        elif isinstance(step, StreamError):
            self.error = True
        elif isinstance(step, Garbage):
            self.garbage = True
        return b""

    def content(self) -> list[dict[str, Any]]:
        """The blocks, thinking signed and tool inputs parsed (``{}`` when none came)."""
        arguments = iter(self._arguments)
        for block in self.blocks:
            if block["type"] == "thinking":
                block["signature"] = thinking_signature(block["thinking"])
            elif block["type"] == "tool_use":
                block["input"] = orjson.loads(next(arguments) or "{}")
        return self.blocks

    def body(self, answer: Answer, finish: Finish) -> bytes:
        message = {
            "id": answer.id,
            "type": "message",
            "role": "assistant",
            "model": answer.model,
            "content": self.content(),
            **answer.stop_fields(finish),
            "usage": answer.usage(finish.usage.completion_tokens),
        }
        return orjson.dumps(message)


async def collected_answer(script: Script, answer: Answer) -> Response:
    """Play ``script`` in real time and answer with one Message, or the failure it holds."""
    collector = MessageCollector()
    async for _ in playback.stream(script, collector.render):
        pass  # the collector writes nothing; playing the script supplies the timing
    headers = [("request-id", random_id("req_"))]
    if collector.garbage:
        return Response(200, GARBAGE_BODY, headers, "text/html")
    if collector.error:  # nothing was written yet: the failure gets the status it stands for
        return error_response(529, "Overloaded")
    if collector.finish is None:  # truncated: half a body, as if the server died writing it
        whole = collector.body(answer, Finish("end_turn", Usage(0, 0)))
        return Response(200, whole[: len(whole) // 2], headers)
    return Response(200, collector.body(answer, collector.finish), headers)


# --- the routes ----------------------------------------------------------------------------


async def messages(request: Request) -> Response | StreamingResponse:
    """``POST /v1/messages``: named SSE events with ``"stream": true``, else one Message."""
    try:
        check_headers(request)
        checked = read_request(request.body)
        behaviour = read_behaviour(directive_text(checked.messages), request.header("x-sim"))
        if behaviour.headers_ms:
            await trio.sleep(behaviour.headers_ms / 1000)
        if behaviour.status is not None:
            return status_error(behaviour)
        script = answer_script(behaviour, checked)
        stops = checked.stop_sequences
        answer = Answer(
            id=random_id("msg_"),
            model=checked.model,
            input_tokens=checked.input_tokens,
            cached_tokens=behaviour.cache,
            stop_sequence=stops[0] if stops else None,
        )
        if checked.stream:
            renderer = StreamRenderer(answer, behaviour)
            chunks = playback.stream(script, renderer.render)
            headers = [("request-id", random_id("req_"))]
            return StreamingResponse(200, chunks, headers, content_type=SSE_TYPE)
        return await collected_answer(script, answer)
    except Rejected as rejected:
        return rejected.response
