"""The OpenAI-compatible dialect: `/v1/models` and `/v1/chat/completions`, stream and not.

Wire shapes follow the recorded OpenAI streams (PROTOCOLS.md §5.3): a role chunk with
``content: ""`` first, one chunk per token, the finish reason on a chunk with an empty delta,
a ``choices: []`` usage chunk only when ``stream_options.include_usage``, then ``[DONE]``.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import replace
from typing import Any

import orjson
import trio

from sluicegate.errors import GatewayError, error_body
from sluicegate.server import Request, Response, StreamingResponse
from sluicegate.simulator import playback
from sluicegate.simulator.behaviour import Behaviour, find_directive, parse_behaviour
from sluicegate.simulator.deepinfra import embedding, input_tokens
from sluicegate.simulator.script import (
    Ask,
    End,
    Finish,
    Garbage,
    Start,
    Step,
    StreamError,
    Text,
    ToolArguments,
    ToolCallStart,
    ToolSpec,
    Usage,
    build_script,
    tool_spec,
)

MODEL_IDS = ("sim-small", "sim-large", "sim-tools")
MODELS_CREATED = 1_700_000_000
FINGERPRINT = "fp_sim"
GARBAGE_BODY = b"<html><body>502 Bad Gateway (simulated: this is not JSON)</body></html>"

# (type, code) per simulated HTTP status, as OpenAI-compatible providers answer them.
_STATUS_ERRORS: dict[int, tuple[str, str | None]] = {
    400: ("invalid_request_error", None),
    401: ("authentication_error", "invalid_api_key"),
    402: ("insufficient_quota", "insufficient_quota"),
    403: ("permission_error", None),
    404: ("not_found_error", "model_not_found"),
    408: ("timeout_error", "request_timeout"),
    409: ("conflict_error", None),
    422: ("invalid_request_error", None),
    429: ("rate_limit_error", "rate_limit_exceeded"),
}


def list_models() -> Response:
    data = [
        {"id": m, "object": "model", "created": MODELS_CREATED, "owned_by": "sluicegate-simulator"}
        for m in MODEL_IDS
    ]
    return Response(200, orjson.dumps({"object": "list", "data": data}))


def status_error(behaviour: Behaviour) -> Response:
    """The error answer a provider gives with HTTP ``behaviour.status``."""
    status = behaviour.status or 500
    default = ("server_error", None) if status >= 500 else ("invalid_request_error", None)
    type_, code = _STATUS_ERRORS.get(status, default)
    headers = [("retry-after", behaviour.retry_after)] if status == 429 else []
    message = f"simulated HTTP {status} (#sim status={status})"
    if behaviour.overflow:  # OpenAI's own wording
        message = (
            "This model's maximum context length is 8192 tokens. However, your messages "
            f"resulted in 9000 tokens (#sim status={status} overflow=1)."
        )
        code = "context_length_exceeded"
    body = error_body(message, type_, code)
    return Response(status, body, headers)


# --- reading the request -----------------------------------------------------------------


def _bad_request(message: str, code: str, param: str | None = None) -> GatewayError:
    return GatewayError(400, message, "invalid_request_error", code, param)


def parse_body(raw: bytes) -> dict[str, Any]:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise _bad_request(
            "the request body is not valid JSON; send a JSON object", "invalid_json"
        ) from None
    if not isinstance(body, dict):
        raise _bad_request("the request body must be a JSON object", "invalid_type")
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise _bad_request(
            "'model' is required: a model id such as 'sim-small'",
            "missing_required_parameter",
            "model",
        )
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _bad_request(
            "'messages' is required: a non-empty list of {role, content} objects",
            "missing_required_parameter",
            "messages",
        )
    if not all(isinstance(m, dict) for m in messages):
        raise _bad_request(
            "every entry of 'messages' must be an object", "invalid_type", "messages"
        )
    return body


def message_text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            part["text"]
            for part in content
            if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    return ""


def last_user_text(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            return message_text(message)
    return ""


def prompt_tokens(messages: list[dict[str, Any]]) -> int:
    """A deterministic stand-in for a tokenizer: one token per word, at least one."""
    return max(1, sum(len(message_text(m).split()) for m in messages))


def _tool_spec(function: dict[str, Any]) -> ToolSpec:
    return tool_spec(str(function.get("name") or "sim_tool"), function.get("parameters"))


def requested_tool(body: dict[str, Any], behaviour: Behaviour) -> ToolSpec | None:
    """The tool to call: when ``tool=1``, or when ``tool_choice`` demands a call."""
    tools = [
        t["function"]
        for t in body.get("tools") or []
        if isinstance(t, dict) and isinstance(t.get("function"), dict)
    ]
    choice = body.get("tool_choice")
    if isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        name = choice["function"].get("name")
        named = [t for t in tools if t.get("name") == name]
        return _tool_spec(named[0] if named else {"name": name})
    if behaviour.tool or (choice == "required" and tools):
        return _tool_spec(tools[0]) if tools else ToolSpec("sim_tool")
    return None


def _max_tokens(body: dict[str, Any]) -> int | None:
    for key in ("max_completion_tokens", "max_tokens"):
        value = body.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
    return None


# --- writing the answer ------------------------------------------------------------------


def usage_json(usage: Usage) -> dict[str, Any]:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0},
    }


class StreamRenderer:
    """Script steps to OpenAI SSE bytes for one response (same id and created throughout)."""

    def __init__(
        self,
        model: str,
        *,
        include_usage: bool,
        behaviour: Behaviour,
        response_id: str | None = None,
        created: int | None = None,
    ) -> None:
        self._head = {
            "id": response_id or f"chatcmpl-{secrets.token_hex(12)}",
            "object": "chat.completion.chunk",
            "created": int(time.time()) if created is None else created,
            "model": model,
            "system_fingerprint": FINGERPRINT,
        }
        self._include_usage = include_usage
        self._usage_on_finish = behaviour.usage_on_finish
        self._ping = behaviour.ping
        self._newline = b"\r\n" if behaviour.crlf else b"\n"
        self._role_sent = False
        self._frames = 0

    def _frame(self, payload: bytes) -> bytes:
        end = self._newline
        ping = b": ping" + end + end if self._ping and self._frames else b""
        self._frames += 1
        return ping + b"data: " + payload + end + end

    def _chunk(
        self,
        delta: dict[str, Any],
        finish_reason: str | None = None,
        usage: Usage | None = None,
    ) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        chunk: dict[str, Any] = {**self._head, "choices": [choice]}
        if usage is not None:
            chunk["usage"] = usage_json(usage)
        return self._frame(orjson.dumps(chunk))

    def render(self, step: Step) -> bytes:
        if isinstance(step, Start):
            if step.tool:
                return b""  # the role rides on the first tool-call chunk, as OpenAI sends it
            self._role_sent = True
            return self._chunk({"role": "assistant", "content": "", "refusal": None})
        if isinstance(step, Text):
            return self._chunk({"content": step.text})
        if isinstance(step, ToolCallStart):
            call = {
                "index": step.index,
                "id": step.id,
                "type": "function",
                "function": {"name": step.name, "arguments": ""},
            }
            delta: dict[str, Any] = {"tool_calls": [call]}
            if not self._role_sent:
                self._role_sent = True
                delta = {"role": "assistant", "content": None, **delta, "refusal": None}
            return self._chunk(delta)
        if isinstance(step, ToolArguments):
            fragment = {"index": step.index, "function": {"arguments": step.fragment}}
            return self._chunk({"tool_calls": [fragment]})
        if isinstance(step, Finish):
            if self._usage_on_finish:  # DeepInfra's quirk: usage on a non-empty choices chunk
                return self._chunk({}, step.reason, step.usage)
            out = self._chunk({}, step.reason)
            if self._include_usage:
                usage_chunk = {**self._head, "choices": [], "usage": usage_json(step.usage)}
                out += self._frame(orjson.dumps(usage_chunk))
            return out
        if isinstance(step, StreamError):
            error = {"message": step.message, "type": step.type, "param": None, "code": step.code}
            return self._frame(orjson.dumps({"error": error}))
        if isinstance(step, Garbage):
            return self._frame(b"{this is not JSON")
        if isinstance(step, End):
            return self._frame(b"[DONE]")
        raise TypeError(f"the OpenAI renderer has no rendering for {step!r}")


def completion_response(model: str, outcome: playback.Outcome) -> Response:
    """A non-streamed ``chat.completion`` (or the failure the script asked for)."""
    if outcome.garbage:
        return Response(200, GARBAGE_BODY)
    if outcome.truncated:
        return Response(200, _truncated_body(model, outcome))
    if outcome.error is not None or outcome.finish is None:
        message = outcome.error.message if outcome.error else "simulated answer ended early"
        return Response(500, error_body(message, "server_error", "simulated_error"))
    message: dict[str, Any] = {
        "role": "assistant",
        "content": outcome.text if not outcome.tool_calls else None,
        "refusal": None,
    }
    if outcome.tool_calls:
        message["tool_calls"] = [
            {
                "id": call["id"],
                "type": "function",
                "function": {"name": call["name"], "arguments": call["arguments"]},
            }
            for call in outcome.tool_calls
        ]
    answer = {
        "id": f"chatcmpl-{secrets.token_hex(12)}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": FINGERPRINT,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": outcome.finish.reason,
            }
        ],
        "usage": usage_json(outcome.finish.usage),
    }
    return Response(200, orjson.dumps(answer))


def _truncated_body(model: str, outcome: playback.Outcome) -> bytes:
    """The first half of the answer's JSON, as if the provider died while writing it."""
    sent = Usage(0, 0)
    whole = completion_response(
        model, replace(outcome, truncated=False, finish=Finish("stop", sent))
    )
    return whole.body[: len(whole.body) // 2]


async def chat_completions(request: Request) -> Response | StreamingResponse:
    body = parse_body(request.body)
    messages = body["messages"]
    behaviour = parse_behaviour(find_directive(last_user_text(messages)), request.header("x-sim"))
    if behaviour.headers_ms:
        await trio.sleep(behaviour.headers_ms / 1000)
    if behaviour.status is not None:
        return status_error(behaviour)
    ask = Ask(
        prompt_tokens=prompt_tokens(messages),
        max_tokens=_max_tokens(body),
        tool=requested_tool(body, behaviour),
    )
    script = build_script(behaviour, ask, call_id=f"call_{secrets.token_hex(12)}")
    model = body["model"]
    if body.get("stream") is True:
        options = body.get("stream_options")
        include_usage = isinstance(options, dict) and options.get("include_usage") is True
        renderer = StreamRenderer(model, include_usage=include_usage, behaviour=behaviour)
        return StreamingResponse(200, playback.stream(script, renderer.render))
    return completion_response(model, await playback.collect(script))


# --- embeddings ----------------------------------------------------------------------------


async def embeddings(request: Request) -> Response:
    """``POST /v1/embeddings``: OpenAI's list, with the same deterministic vectors as the native
    DeepInfra endpoint (unit length, as OpenAI's models return them)."""
    try:
        body = orjson.loads(request.body)
    except orjson.JSONDecodeError:
        raise _bad_request("the request body is not valid JSON", "invalid_json") from None
    given = body.get("input") if isinstance(body, dict) else None
    texts = [given] if isinstance(given, str) else given
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
        raise _bad_request("'input' must be a string or a list of strings", "invalid_type", "input")
    tokens = sum(input_tokens(text) for text in texts)
    data = [
        {"object": "embedding", "index": i, "embedding": embedding(text, True)}
        for i, text in enumerate(texts)
    ]
    answer = {
        "object": "list",
        "data": data,
        "model": body.get("model"),
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
    return Response(200, orjson.dumps(answer))
