"""Building the raw prompt native text-generation APIs take (DeepInfra native, TGI).

The conversation goes through the model's chat template; the template's end-of-turn strings,
the client's ``stop`` and the configured ones make the stop list; the prompt's own ending tells
whether the answer starts inside a think block. Pure functions, shared by the adapters.
"""

from __future__ import annotations

from typing import Any

import orjson

from sluicegate.config import ProviderConfig
from sluicegate.errors import GatewayError
from sluicegate.providers.base import ModelProfile

# A rough tokens-per-character ratio, for the prompt-size estimate used only when the upstream
# reports no token counts (the usage is then marked estimated).
CHARS_PER_TOKEN = 4


def invalid(message: str, param: str | None, code: str = "invalid_value") -> GatewayError:
    return GatewayError(400, message, "invalid_request_error", code, param)


def refuse_tools(provider: ProviderConfig, body: dict[str, Any], api: str) -> None:
    """Native text-generation APIs have no tool calling (yet): say so instead of dropping
    the tools silently."""
    uses_tools = bool(body.get("tools")) or any(
        isinstance(m, dict) and (m.get("role") == "tool" or m.get("tool_calls"))
        for m in body["messages"]
    )
    if uses_tools:
        raise invalid(
            f"Tool calling through the {api} (provider '{provider.name}') is not supported yet. "
            "Remove 'tools' and tool messages, or send this request to a provider of kind "
            "openai (e.g. the server's OpenAI-compatible endpoint).",
            "tools",
            "tools_not_supported",
        )


def _text_of(content: Any, where: str) -> str:
    """A message's content as the plain text a prompt can hold."""
    if content is None or isinstance(content, str):
        return content or ""
    parts: list[str] = []
    for i, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str):
            parts.append(part["text"])
        else:
            raise invalid(
                f"'{where}.content[{i}]' is a {kind or 'non-text'} part; a native text-generation "
                "API takes text only. Send text parts, or use a provider of kind openai or ollama "
                "for images.",
                f"{where}.content",
                "unsupported_content",
            )
    return "\n".join(parts)


def template_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The conversation as chat templates expect it: role and text content (plus the assistant's
    earlier ``reasoning_content``, which some templates render). ``developer`` is ``system``."""
    out: list[dict[str, Any]] = []
    for i, message in enumerate(messages):
        role = message["role"]
        item: dict[str, Any] = {
            "role": "system" if role == "developer" else role,
            "content": _text_of(message.get("content"), f"messages[{i}]"),
        }
        if isinstance(message.get("reasoning_content"), str):
            item["reasoning_content"] = message["reasoning_content"]
        out.append(item)
    return out


def _template_variables(body: dict[str, Any]) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    effort = body.get("reasoning_effort")
    if effort is not None:
        # Templates with a thinking switch read one of these (Qwen3: enable_thinking,
        # DeepSeek V3.1: thinking); others ignore them.
        extra["enable_thinking"] = extra["thinking"] = effort != "none"
    kwargs = body.get("chat_template_kwargs")
    if kwargs is not None:
        if not isinstance(kwargs, dict):
            raise invalid(
                "'chat_template_kwargs' must be an object of template variables, "
                'e.g. {"enable_thinking": false}.',
                "chat_template_kwargs",
                "invalid_type",
            )
        extra.update(kwargs)
    return extra


def render_prompt(profile: ModelProfile, body: dict[str, Any]) -> str:
    template = profile.template
    assert template is not None, "a templated provider always gets a template"
    extra = _template_variables(body)
    try:
        return template.render(
            orjson.dumps(template_messages(body["messages"])),
            add_generation_prompt=True,
            extra_json=orjson.dumps(extra) if extra else None,
        )
    except ValueError as exc:
        raise invalid(
            f"The chat template of '{profile.upstream_model}' ({template.name}) cannot render "
            f"this conversation: {exc}. Fix the messages (e.g. roles must alternate user/"
            "assistant) or configure another chat_template for the model.",
            "messages",
            "chat_template_error",
        ) from None


def stop_list(body: dict[str, Any], profile: ModelProfile) -> list[str]:
    stop = body.get("stop")
    client = [stop] if isinstance(stop, str) else list(stop or ())
    if any(not s for s in client):
        raise invalid("'stop' must not contain empty strings.", "stop")
    template = profile.template.stop if profile.template is not None else []
    return list(dict.fromkeys([*client, *template, *profile.settings.stop]))


def think_mode(prompt: str) -> str:
    """The transcoder's ``think`` option for an answer to ``prompt``: a prompt that ends inside
    an opened think block (R1, Qwen3 thinking) makes the model's first words reasoning, without
    a ``<think>`` of its own."""
    return "open" if prompt.rstrip().endswith("<think>") else "auto"


def prompt_token_estimate(prompt: str) -> int:
    return max(1, len(prompt) // CHARS_PER_TOKEN)
