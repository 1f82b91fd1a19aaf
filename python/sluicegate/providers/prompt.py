"""Building the raw prompt native text-generation APIs take (DeepInfra native, TGI).

The conversation goes through the model's chat template — tools, assistant tool calls and tool
results included, in the shapes Hugging Face templates read; the template's end-of-turn strings,
the client's ``stop`` and the configured ones make the stop list; the prompt's own ending tells
whether the answer starts inside a think block; the template family tells which tool-call markup
the model writes (the transcoder's ``tools`` option). Pure functions, shared by the adapters.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
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


# The tool-call markup the models of each built-in template family write (the transcoder parses
# that markup). DeepSeek's own templates render calls and results but no tool definitions: for
# them the definitions go into the system prompt in the form DeepSeek's model card gives
# (deepseek_tool_description). The R1-distill template (`deepseek`) has no tool support.
TOOL_FORMATS = {
    "llama3": "llama3",
    "chatml": "hermes",
    "qwen3": "hermes",
    "mistral_tools": "mistral",
    "mistral_nemo": "mistral",
    "deepseek_v3": "deepseek",
}
# Families whose template ignores `tools`: the definitions join the system prompt instead.
_TOOLS_IN_SYSTEM_PROMPT = frozenset({"deepseek_v3"})
_DEEPSEEK_TOOL_FORMAT = (
    "IMPORTANT: ALWAYS adhere to this exact format for tool use:\n"
    "<\uff5ctool\u2581calls\u2581begin\uff5c><\uff5ctool\u2581call\u2581begin\uff5c>"
    "tool_call_name<\uff5ctool\u2581sep\uff5c>tool_call_arguments"
    "<\uff5ctool\u2581call\u2581end\uff5c>{additional_tool_calls}"
    "<\uff5ctool\u2581calls\u2581end\uff5c>\n\n"
    "Where:\n"
    "- `tool_call_name` must be an exact match to one of the available tools\n"
    "- `tool_call_arguments` must be valid JSON that strictly follows the tool's Parameters "
    "Schema\n"
    "- For multiple tool calls, chain them directly without separators or spaces"
)


def deepseek_tool_description(tools: list[dict[str, Any]]) -> str:
    """The tool block DeepSeek-V3.1's model card puts after the system prompt (its templates do
    not render ``tools``): one ``### name`` section per tool, then the call format."""
    sections = []
    for tool in tools:
        function = tool.get("function") or {}
        parameters = json.dumps(function.get("parameters") or {}, ensure_ascii=False)
        sections.append(
            f"### {function.get('name')}\nDescription: {function.get('description') or ''}"
            f"\n\nParameters: {parameters}\n\n"
        )
    return (
        "## Tools\nYou have access to the following tools:\n\n"
        + "".join(sections)
        + (_DEEPSEEK_TOOL_FORMAT)
    )


# DeepSeek's templates read a call's arguments as JSON text and render the calls of an assistant
# message only when its content is null.
_DEEPSEEK_STYLE = frozenset({"deepseek"})
# Mistral's templates refuse call ids that are not exactly 9 characters long.
_MISTRAL_ID_LENGTH = 9


def _mistral_id(call_id: str) -> str:
    """A stable 9-character alphanumeric stand-in for an OpenAI call id (``call_abc123``)."""
    digest = int.from_bytes(hashlib.sha256(call_id.encode()).digest()[:8], "big")
    alphabet = "0123456789abcdefghijklmnopqrstuvwxyz"
    chars = []
    for _ in range(_MISTRAL_ID_LENGTH):
        digest, rest = divmod(digest, 36)
        chars.append(alphabet[rest])
    return "".join(chars)


@dataclass(frozen=True, slots=True)
class ToolPlan:
    """What a request's tools mean for the prompt and for reading the answer."""

    tools: list[dict[str, Any]] | None  # rendered into the prompt (None: no tools)
    markup: str | None  # the tool-call format the transcoder parses (None: none)
    hint: str | None  # an instruction for tool_choice / parallel_tool_calls, or None


def _uses_tools(body: dict[str, Any]) -> bool:
    return bool(body.get("tools")) or any(
        isinstance(m, dict) and (m.get("role") == "tool" or m.get("tool_calls"))
        for m in body["messages"]
    )


def plan_tools(
    provider: ProviderConfig, profile: ModelProfile, body: dict[str, Any], api: str
) -> ToolPlan:
    """How ``tools`` and ``tool_choice`` go into the prompt of this model.

    The native APIs cannot force a call, so ``tool_choice`` becomes what the template can say:
    ``none`` renders no tools (and nothing is parsed), ``auto`` renders them, ``required`` adds
    an instruction to call one, a named function renders only that function with an instruction
    to call it, and ``parallel_tool_calls: false`` asks for at most one call. Raises a 400 when
    the model's template family has no known tool-call format.
    """
    if not _uses_tools(body):
        return ToolPlan(None, None, None)
    template = profile.template
    markup = profile.settings.tool_format or TOOL_FORMATS.get(template.name if template else "")
    if markup is None:
        raise invalid(
            f"Tool calling through the {api} (provider '{provider.name}') needs to know how "
            f"'{profile.upstream_model}' writes tool calls, and its chat template "
            f"({template.name if template else 'none'}) is not one of the families sluicegate "
            f"knows ({', '.join(sorted(set(TOOL_FORMATS)))}). If the model writes one of the "
            f"formats {', '.join(sorted(set(TOOL_FORMATS.values())))}, set tool_format (and a "
            "chat_template that renders tools) in its [providers.model_settings] table; "
            "otherwise use a provider of kind openai for this model.",
            "tools",
            "tools_not_supported",
        )
    tools = [t for t in body.get("tools") or () if isinstance(t, dict)]
    choice = body.get("tool_choice")
    hint: list[str] = []
    if choice == "none":
        return ToolPlan(None, None, None)
    if choice == "required":
        hint.append("You must answer by calling one or more of the available functions.")
    elif isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name")
        named = [t for t in tools if (t.get("function") or {}).get("name") == name]
        if not named:
            raise invalid(
                f"'tool_choice' names the function '{name}', which is not in 'tools'.",
                "tool_choice",
            )
        tools = named
        hint.append(f"You must answer by calling the function {name}.")
    elif choice not in (None, "auto"):
        raise invalid(
            '\'tool_choice\' must be "auto", "required", "none" or '
            '{"type": "function", "function": {"name": ...}}.',
            "tool_choice",
        )
    if body.get("parallel_tool_calls") is False:
        hint.append("Call at most one function.")
    instruction = " ".join(hint) or None
    if template is not None and template.name in _TOOLS_IN_SYSTEM_PROMPT and tools:
        described = deepseek_tool_description(tools)
        instruction = f"{described}\n\n{instruction}" if instruction else described
        return ToolPlan(None, markup, instruction)
    return ToolPlan(tools or None, markup, instruction)


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


def _arguments(raw: Any, as_text: bool, where: str) -> Any:
    """A tool call's arguments as the template reads them: an object, or (some families) the
    JSON text."""
    parsed = raw
    if isinstance(raw, str):
        try:
            parsed = orjson.loads(raw) if raw.strip() else {}
        except orjson.JSONDecodeError:
            raise invalid(f"'{where}' must be a JSON object in a string.", where) from None
    if not isinstance(parsed, dict):
        raise invalid(f"'{where}' must be a JSON object in a string.", where)
    return orjson.dumps(parsed).decode() if as_text else parsed


def template_messages(
    messages: list[dict[str, Any]], markup: str | None = None, hint: str | None = None
) -> list[dict[str, Any]]:
    """The conversation as chat templates expect it: role and text content (never null, except
    where DeepSeek-style templates need it), the assistant's tool calls and earlier
    ``reasoning_content``, tool results with their call id and name. ``developer`` is
    ``system``. ``hint`` joins the first system message (or becomes one)."""
    deepseek_style = markup in _DEEPSEEK_STYLE
    same_id = _mistral_id if markup == "mistral" else str
    out: list[dict[str, Any]] = []
    names: dict[str, str] = {}  # tool_call_id -> function name
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        role = message["role"]
        item: dict[str, Any] = {
            "role": "system" if role == "developer" else role,
            "content": _text_of(message.get("content"), where),
        }
        if isinstance(message.get("reasoning_content"), str):
            item["reasoning_content"] = message["reasoning_content"]
        calls = []
        for j, call in enumerate(message.get("tool_calls") or ()):
            function = call.get("function") or {}
            name = function.get("name")
            arguments = _arguments(
                function.get("arguments"),
                deepseek_style,
                f"{where}.tool_calls[{j}].function.arguments",
            )
            call_id = call.get("id") if isinstance(call.get("id"), str) else f"call_{i}_{j}"
            names[call_id] = name
            calls.append(
                {
                    "id": same_id(call_id),
                    "type": "function",
                    "function": {"name": name, "arguments": arguments},
                }
            )
        if calls:
            item["tool_calls"] = calls
            if deepseek_style and not item["content"]:
                item["content"] = None
        if role == "tool":
            call_id = message.get("tool_call_id")
            if isinstance(call_id, str):
                item["tool_call_id"] = same_id(call_id)
                if call_id in names:
                    item["name"] = names[call_id]
        out.append(item)
    if hint:
        if out and out[0]["role"] == "system":
            out[0]["content"] = f"{out[0]['content']}\n\n{hint}".strip()
        else:
            out.insert(0, {"role": "system", "content": hint})
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


def render_prompt(profile: ModelProfile, body: dict[str, Any], plan: ToolPlan | None = None) -> str:
    template = profile.template
    assert template is not None, "a templated provider always gets a template"
    plan = plan or ToolPlan(None, None, None)
    extra = _template_variables(body)
    messages = template_messages(body["messages"], plan.markup, plan.hint)
    try:
        return template.render(
            orjson.dumps(messages),
            add_generation_prompt=True,
            tools_json=orjson.dumps(plan.tools) if plan.tools else None,
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


def prompt_answer_options(
    body: dict[str, Any], prompt: str, plan: ToolPlan, stop: list[str], max_tokens: int | None
) -> dict[str, Any]:
    """The transcoder options for the token events that answer a rendered prompt (DeepInfra
    native and TGI). The stop strings and the tool-call markup are the
    prompt's to strip and parse, the think mode comes from how the prompt ends, and the prompt's
    size is the token estimate should the upstream report no counts."""
    return {
        "logprobs": bool(body.get("logprobs")),
        "stop": stop,
        "think": think_mode(prompt),
        "max_tokens": max_tokens,
        "prompt_tokens": prompt_token_estimate(prompt),
        **({"tools": plan.markup} if plan.markup else {}),
    }
