"""Anthropic's Messages API: ``POST {base}/v1/messages`` (PROTOCOLS.md §4).

The OpenAI conversation is reshaped the way the Messages API wants it: system and developer
messages hoisted to ``system``, tool results as ``tool_result`` blocks in user turns, assistant
tool calls as ``tool_use`` blocks with their arguments as objects, consecutive turns of one role
merged, and ``max_tokens`` always sent. The answer (named SSE events, or a ``Message``) is read by
the ``anthropic`` transcoder dialect.
"""

from __future__ import annotations

from typing import Any

import orjson

from sluicegate.chat import ChatRequest
from sluicegate.config import ProviderConfig
from sluicegate.providers.base import (
    ModelProfile,
    ProviderAdapter,
    UpstreamRequest,
    listed_models,
    model_item,
)
from sluicegate.providers.failures import classify_body
from sluicegate.providers.openai import chat_prompt_token_estimate, json_headers
from sluicegate.providers.prompt import invalid
from sluicegate.sampling import knob_problem

DIALECT = "anthropic"
API_VERSION = "2023-06-01"
# max_tokens is required by the API; without one in the request or the model's params, this.
DEFAULT_MAX_TOKENS = 4096
# reasoning_effort -> the extended-thinking budget (tokens); "none" switches thinking off.
THINKING_BUDGETS = {"minimal": 1024, "low": 2048, "medium": 8192, "high": 16384}
MIN_THINKING_BUDGET = 1024  # the API's floor


def auth_headers(api_key: str | None) -> tuple[tuple[str, str], ...]:
    version = (("anthropic-version", API_VERSION),)
    return ((("x-api-key", api_key),) if api_key else ()) + version


def _image_block(url: Any, where: str) -> dict[str, Any]:
    if not isinstance(url, str) or not url:
        raise invalid(f"'{where}' must be a data: or http(s) URL.", where, "unsupported_content")
    if url.startswith("data:"):
        header, sep, data = url.partition(",")
        if not sep or ";base64" not in header:
            raise invalid(f"'{where}' must be a base64 data: URL.", where, "unsupported_content")
        media_type = header[len("data:") :].split(";")[0] or "image/png"
        return {
            "type": "image",
            "source": {"type": "base64", "media_type": media_type, "data": data},
        }
    if url.startswith(("http://", "https://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    raise invalid(f"'{where}' must be a data: or http(s) URL.", where, "unsupported_content")


def _blocks(content: Any, where: str) -> list[dict[str, Any]]:
    """A message's content as Anthropic content blocks."""
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    blocks: list[dict[str, Any]] = []
    for i, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str):
            if part["text"]:
                blocks.append({"type": "text", "text": part["text"]})
        elif kind == "image_url":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, dict) else image
            blocks.append(_image_block(url, f"{where}.content[{i}].image_url.url"))
        else:
            raise invalid(
                f"'{where}.content[{i}]' is a {kind or 'non-text'} part; the Messages API takes "
                "text and image_url parts.",
                f"{where}.content",
                "unsupported_content",
            )
    return blocks


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "\n".join(
        p["text"] for p in content or () if isinstance(p, dict) and isinstance(p.get("text"), str)
    )


def _tool_input(raw: Any, where: str) -> dict[str, Any]:
    if raw in (None, ""):
        return {}
    try:
        parsed = orjson.loads(raw) if isinstance(raw, str) else raw
    except orjson.JSONDecodeError:
        parsed = None
    if not isinstance(parsed, dict):
        raise invalid(f"'{where}' must be a JSON object in a string, e.g. \"{{}}\".", where)
    return parsed


def native_messages(messages: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """The ``system`` text and the alternating user/assistant turns."""
    system: list[str] = []
    turns: list[dict[str, Any]] = []

    def add(role: str, blocks: list[dict[str, Any]]) -> None:
        if turns and turns[-1]["role"] == role:  # the API wants turns to alternate: merge
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})

    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        role = message["role"]
        if role in ("system", "developer"):
            system.append(_text(message.get("content")))
        elif role == "user":
            add("user", _blocks(message.get("content"), where))
        elif role == "assistant":
            blocks = _blocks(message.get("content"), where)
            for j, call in enumerate(message.get("tool_calls") or []):
                function = call.get("function") or {}
                blocks.append(
                    {
                        "type": "tool_use",
                        "id": call.get("id"),
                        "name": function.get("name"),
                        "input": _tool_input(function.get("arguments"), f"{where}.tool_calls[{j}]"),
                    }
                )
            add("assistant", blocks)
        elif role in ("tool", "function"):
            result = {
                "type": "tool_result",
                "tool_use_id": message.get("tool_call_id") or message.get("name"),
                "content": _text(message.get("content")) or "(no output)",
            }
            add("user", [result])
    for turn in turns:  # an empty turn is an API error; a blank text block keeps the shape
        if not turn["content"]:
            turn["content"] = [{"type": "text", "text": "(empty)"}]
    return "\n\n".join(s for s in system if s), turns


def _tool_choice(body: dict[str, Any]) -> dict[str, Any] | None:
    choice = body.get("tool_choice")
    native: dict[str, Any] | None
    if choice is None or choice == "auto":
        native = {"type": "auto"} if body.get("parallel_tool_calls") is False else None
    elif choice == "required":
        native = {"type": "any"}
    elif choice == "none":
        native = {"type": "none"}
    elif isinstance(choice, dict) and isinstance((choice.get("function") or {}).get("name"), str):
        native = {"type": "tool", "name": choice["function"]["name"]}
    else:
        raise invalid(
            '\'tool_choice\' must be "auto", "required", "none" or '
            '{"type": "function", "function": {"name": ...}}.',
            "tool_choice",
        )
    if native is not None and body.get("parallel_tool_calls") is False:
        native["disable_parallel_tool_use"] = True
    return native


def _thinking(effort: Any, max_tokens: int) -> dict[str, Any] | None:
    if effort is None:
        return None
    if effort == "none":
        return {"type": "disabled"}
    if effort not in THINKING_BUDGETS:
        raise invalid(
            f"'reasoning_effort' must be one of none, {', '.join(THINKING_BUDGETS)}.",
            "reasoning_effort",
        )
    budget = min(THINKING_BUDGETS[effort], max_tokens - 1)
    if budget < MIN_THINKING_BUDGET:
        raise invalid(
            f"'reasoning_effort' needs max_tokens above {MIN_THINKING_BUDGET} (the smallest "
            "thinking budget Anthropic accepts); raise max_tokens.",
            "max_tokens",
        )
    return {"type": "enabled", "budget_tokens": budget}


def _fit_sampling_to_thinking(native: dict[str, Any]) -> None:
    """Extended thinking accepts no temperature but 1, no top_k, a top_p of 0.95 or more, and
    no forced tool: sampling settings that clash are left out (the thinking was asked for
    explicitly), a forced tool is refused (which one was meant cannot be guessed)."""
    if native.get("temperature", 1) != 1:
        del native["temperature"]
    native.pop("top_k", None)
    if native.get("top_p", 1) < 0.95:
        del native["top_p"]
    if native.get("tool_choice", {}).get("type") in ("any", "tool"):
        raise invalid(
            "Anthropic cannot combine extended thinking (reasoning_effort) with a forced tool "
            "(tool_choice required or named); drop one of them.",
            "tool_choice",
        )


def build_chat(
    provider: ProviderConfig, profile: ModelProfile, request: ChatRequest, api_key: str | None
) -> UpstreamRequest:
    body = request.body
    if (body.get("n") or 1) > 1:
        raise invalid("'n' greater than 1 is not available through the Messages API.", "n")
    system, messages = native_messages(body["messages"])
    defaults = dict(profile.settings.params)
    max_tokens = (
        body.get("max_completion_tokens")
        or body.get("max_tokens")
        or defaults.get("max_new_tokens")
        or DEFAULT_MAX_TOKENS
    )
    native: dict[str, Any] = {
        "model": profile.upstream_model,
        "max_tokens": max_tokens,
        "messages": messages,
        "stream": request.stream,
    }
    if system:
        native["system"] = system
    for name in ("temperature", "top_p", "top_k"):
        value = body.get(name, defaults.get(name))
        if value is None:
            continue
        problem = knob_problem(name, value)
        if problem:
            raise invalid(f"'{name}' {problem}.", name)
        if name == "temperature" and value > 1:
            raise invalid(f"'temperature' is {value}; Anthropic accepts 0 to 1.", "temperature")
        native[name] = value
    stop = body.get("stop")
    if stop:
        native["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    tools = body.get("tools")
    if tools and body.get("tool_choice") != "none":
        native["tools"] = [
            {
                "name": (tool.get("function") or {}).get("name"),
                "description": (tool.get("function") or {}).get("description") or "",
                "input_schema": (tool.get("function") or {}).get("parameters")
                or {"type": "object", "properties": {}},
            }
            for tool in tools
            if isinstance(tool, dict)
        ]
        choice = _tool_choice(body)
        if choice is not None:
            native["tool_choice"] = choice
    thinking = _thinking(body.get("reasoning_effort"), max_tokens)
    if thinking is not None:
        native["thinking"] = thinking
    if thinking is not None and thinking["type"] == "enabled":
        _fit_sampling_to_thinking(native)
    user = body.get("user")
    if isinstance(user, str) and user:
        native["metadata"] = {"user_id": user}
    return UpstreamRequest(
        method="POST",
        url=f"{provider.base_url}/v1/messages",
        headers=json_headers(provider, api_key, stream=request.stream, auth=auth_headers),
        body=orjson.dumps(native),
        stream=request.stream,
        dialect=DIALECT,
        transcoder={"prompt_tokens": chat_prompt_token_estimate(body)},
    )


def models_url(provider: ProviderConfig) -> str | None:
    return f"{provider.base_url}/v1/models"


def read_models(body: bytes) -> list[dict[str, Any]] | None:
    """Anthropic's ``{"data": [{"type": "model", "id", "display_name", ...}]}``."""
    models = listed_models(body, "data", "id")
    if models is None:
        return None
    return [model_item(m["id"], "anthropic", name=m.get("display_name")) for m in models]


ADAPTER = ProviderAdapter(
    kind="anthropic",
    dialect=DIALECT,
    build_chat=build_chat,
    classify_error=classify_body,
    models_url=models_url,
    auth_headers=auth_headers,
    read_models=read_models,
)
