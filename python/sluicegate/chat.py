"""Parse and check an OpenAI ``/v1/chat/completions`` request body.

Only what the gateway itself relies on is checked here (types of the fields it reads or maps);
everything else is kept as sent, so OpenAI-compatible upstreams see the client's own fields.
Each error names the offending field in ``param`` and says what a valid value looks like.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from sluicegate.errors import GatewayError
from sluicegate.sampling import knob_problem

_ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})


@dataclass(slots=True)
class ChatRequest:
    model: str
    stream: bool
    include_usage: bool
    body: dict[str, Any]  # the whole parsed body, as the client sent it
    # Models to try, in order, when ``model`` fails before answering ("models", as OpenRouter).
    fallbacks: tuple[str, ...] = ()


def _invalid(message: str, param: str | None, code: str = "invalid_value") -> GatewayError:
    return GatewayError(400, message, "invalid_request_error", code, param)


# Sampling fields every provider understands, checked against the one table of ranges the
# native adapters and the config use too (sluicegate.sampling).
_COMMON_KNOBS = ("temperature", "top_p", "presence_penalty", "frequency_penalty")


def _check_knob(body: dict[str, Any], name: str) -> None:
    value = body.get(name)
    if value is None:
        return
    problem = knob_problem(name, value)
    if problem:
        wrong_type = isinstance(value, bool) or not isinstance(value, int | float)
        raise _invalid(
            f"'{name}' {problem}.", name, "invalid_type" if wrong_type else "invalid_value"
        )


def _check_positive_int(body: dict[str, Any], name: str) -> None:
    value = body.get(name)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise _invalid(f"'{name}' must be a positive integer.", name, "invalid_type")
    if value < 1:
        raise _invalid(f"'{name}' is {value}; it must be at least 1.", name)


def _check_messages(messages: Any) -> None:
    if not isinstance(messages, list) or not messages:
        raise _invalid(
            "'messages' must be a non-empty array of message objects, "
            'e.g. [{"role": "user", "content": "Hello"}].',
            "messages",
            "invalid_type" if not isinstance(messages, list) else "invalid_value",
        )
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            raise _invalid(f"'{where}' must be an object with 'role' and 'content'.", where)
        role = message.get("role")
        if not isinstance(role, str) or role not in _ROLES:
            raise _invalid(
                f"'{where}.role' must be one of {', '.join(sorted(_ROLES))}; got {role!r}.",
                f"{where}.role",
            )
        content = message.get("content")
        if content is not None and not isinstance(content, str | list):
            raise _invalid(
                f"'{where}.content' must be a string, an array of content parts, or null.",
                f"{where}.content",
                "invalid_type",
            )


def _check_stop(stop: Any) -> None:
    if stop is None or isinstance(stop, str):
        return
    if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
        raise _invalid("'stop' must be a string or an array of strings.", "stop", "invalid_type")


def parse_chat_request(raw: bytes) -> ChatRequest:
    """Parse a request body, raising ``GatewayError`` (400) with a precise message."""
    if not raw.strip():
        raise _invalid(
            "The request body is empty; send a JSON object with 'model' and 'messages'.", None
        )
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise _invalid(
            f"The request body is not valid JSON ({exc.msg} at position {exc.pos}); "
            "send a JSON object with 'model' and 'messages'.",
            None,
            "invalid_json",
        ) from None
    if not isinstance(body, dict):
        raise _invalid(
            f"The request body must be a JSON object, not {type(body).__name__}; "
            "send an object with 'model' and 'messages'.",
            None,
            "invalid_type",
        )

    model = body.get("model")
    if model is None:
        raise _invalid(
            "'model' is missing; name a model as 'provider/model' (see GET /v1/models).",
            "model",
            "missing_required_parameter",
        )
    if not isinstance(model, str) or not model.strip():
        raise _invalid("'model' must be a non-empty string such as 'openai/gpt-4o-mini'.", "model")
    if "messages" not in body:
        raise _invalid(
            "'messages' is missing; send at least one message, "
            'e.g. [{"role": "user", "content": "Hello"}].',
            "messages",
            "missing_required_parameter",
        )
    _check_messages(body["messages"])

    stream = body.get("stream", False)
    if stream is None:
        stream = False
    if not isinstance(stream, bool):
        raise _invalid("'stream' must be true or false.", "stream", "invalid_type")
    options = body.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise _invalid(
            "'stream_options' must be an object such as {\"include_usage\": true}.",
            "stream_options",
            "invalid_type",
        )
    include_usage = bool(options and options.get("include_usage"))

    for name in _COMMON_KNOBS:
        _check_knob(body, name)
    _check_positive_int(body, "max_tokens")
    _check_positive_int(body, "max_completion_tokens")
    _check_positive_int(body, "n")
    _check_stop(body.get("stop"))
    if body.get("tools") is not None and not isinstance(body["tools"], list):
        raise _invalid("'tools' must be an array of tool objects.", "tools", "invalid_type")

    fallbacks = _fallbacks(body.get("models"))
    return ChatRequest(
        model=model.strip(),
        stream=stream,
        include_usage=include_usage,
        body=body,
        fallbacks=fallbacks,
    )


MAX_FALLBACKS = 10


def _fallbacks(models: Any) -> tuple[str, ...]:
    if models is None:
        return ()
    if (
        not isinstance(models, list)
        or not all(isinstance(m, str) and m.strip() for m in models)
        or len(models) > MAX_FALLBACKS
    ):
        raise _invalid(
            f"'models' must be an array of up to {MAX_FALLBACKS} model names to try in order "
            "after 'model', e.g. [\"deepinfra/meta-llama/Meta-Llama-3.1-8B-Instruct\"].",
            "models",
            "invalid_type",
        )
    return tuple(m.strip() for m in models)
