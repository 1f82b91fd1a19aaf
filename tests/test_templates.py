"""Chat templates rendered by the Rust core (minijinja) against Python's jinja2.

The reference engine is configured exactly as transformers' ``apply_chat_template`` configures
it, and both engines render the same published template text (``rust/template/builtin``), so a
mismatch is a difference between the engines, not between two copies of a template. Each family
also has one prompt written out by hand from the model's documented format.
"""

from __future__ import annotations

import functools
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2
import orjson
import pytest
from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment

from sluicegate._core import BUILTIN_FAMILIES, ChatTemplate

ROOT = Path(__file__).resolve().parents[1]
BUILTIN_DIR = ROOT / "rust" / "template" / "builtin"
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "templates"
CONVERSATIONS: dict[str, list[dict[str, Any]]] = json.loads(
    (FIXTURES / "conversations.json").read_text(encoding="utf-8")
)
TOOLS: list[dict[str, Any]] = json.loads((FIXTURES / "tools.json").read_text(encoding="utf-8"))

# Extra variables some families read; rendered with and without them.
FAMILY_EXTRAS: dict[str, list[dict[str, Any]]] = {
    "llama3": [{"date_string": "01 Feb 2025"}, {"tools_in_user_message": False}],
    "qwen3": [{"enable_thinking": False}, {"enable_thinking": True}],
    # DeepSeek V3.1 reads `thinking`, and `enable_thinking` only when `thinking` is unset.
    "deepseek_v3": [
        {"thinking": True},
        {"enable_thinking": True},
        {"thinking": False, "enable_thinking": True},
    ],
}


class TemplateRaised(jinja2.exceptions.TemplateError):
    """What transformers' ``raise_exception`` raises."""


def _strftime_now(format: str) -> str:
    # UTC, as the Rust core does (transformers uses local time; see rust/template/strftime.rs).
    return datetime.now(UTC).strftime(format)


def _reference_environment() -> ImmutableSandboxedEnvironment:
    """transformers' ``_compile_jinja_template`` environment."""

    def raise_exception(message: str) -> None:
        raise TemplateRaised(message)

    def tojson(
        x: Any,
        ensure_ascii: bool = False,
        indent: int | None = None,
        separators: Any = None,
        sort_keys: bool = False,
    ) -> str:
        return json.dumps(
            x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys
        )

    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols]
    )
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = _strftime_now
    return env


REFERENCE = _reference_environment()

# DeepSeek's special tokens use FULLWIDTH VERTICAL LINE and LOWER ONE EIGHTH BLOCK; spelled with
# escapes so no one "fixes" them into ASCII.
DS_BOS = "<\uff5cbegin\u2581of\u2581sentence\uff5c>"
DS_EOS = "<\uff5cend\u2581of\u2581sentence\uff5c>"
DS_USER = "<\uff5cUser\uff5c>"
DS_ASSISTANT = "<\uff5cAssistant\uff5c>"


@functools.cache
def _reference_template(source: str) -> jinja2.Template:
    return REFERENCE.from_string(source)


def reference_render(
    source: str,
    messages: list[dict[str, Any]],
    *,
    bos_token: str,
    eos_token: str,
    add_generation_prompt: bool = True,
    tools: list[dict[str, Any]] | None = None,
    extra: dict[str, Any] | None = None,
) -> str:
    """``tokenizer.apply_chat_template(messages, tools=tools, tokenize=False, ...)``."""
    variables = {"bos_token": bos_token, "eos_token": eos_token, **(extra or {})}
    return _reference_template(source).render(
        messages=messages,
        tools=tools,
        documents=None,
        add_generation_prompt=add_generation_prompt,
        **variables,
    )


def rust_render(
    template: ChatTemplate,
    messages: list[dict[str, Any]],
    *,
    add_generation_prompt: bool = True,
    tools: list[dict[str, Any]] | None = None,
    extra: dict[str, Any] | None = None,
) -> str:
    return template.render(
        orjson.dumps(messages),
        add_generation_prompt=add_generation_prompt,
        tools_json=None if tools is None else orjson.dumps(tools),
        extra_json=None if extra is None else orjson.dumps(extra),
    )


def assert_same_as_reference(
    family: str,
    messages: list[dict[str, Any]],
    *,
    add_generation_prompt: bool = True,
    tools: list[dict[str, Any]] | None = None,
    extra: dict[str, Any] | None = None,
) -> str:
    """Renders with both engines; the prompts, or the refusals, must be the same."""
    template = ChatTemplate.builtin(family)
    source = (BUILTIN_DIR / f"{family}.jinja").read_text(encoding="utf-8")
    kwargs: dict[str, Any] = {
        "add_generation_prompt": add_generation_prompt,
        "tools": tools,
        "extra": extra,
    }
    try:
        expected = reference_render(
            source, messages, bos_token=template.bos_token, eos_token=template.eos_token, **kwargs
        )
    except TemplateRaised as raised:
        with pytest.raises(ValueError) as refused:
            rust_render(template, messages, **kwargs)
        assert str(refused.value).endswith(f"refused the conversation: {raised}")
        return "raised"
    except (TypeError, jinja2.exceptions.TemplateError):
        # The published template cannot take this conversation (e.g. `str + None`); ours must
        # fail as well rather than invent a prompt.
        with pytest.raises(ValueError, match=f"chat template {family!r}".replace("'", '"')):
            rust_render(template, messages, **kwargs)
        return "failed"
    assert rust_render(template, messages, **kwargs) == expected
    return "rendered"


# --- the built-ins against jinja2 -----------------------------------------------------------


@pytest.mark.parametrize("family", BUILTIN_FAMILIES)
def test_builtin_matches_jinja2_on_every_conversation(family: str) -> None:
    outcomes: dict[str, int] = {}
    for messages in CONVERSATIONS.values():
        for add_generation_prompt in (True, False):
            for tools in (None, TOOLS):
                for extra in [None, *FAMILY_EXTRAS.get(family, [])]:
                    outcome = assert_same_as_reference(
                        family,
                        messages,
                        add_generation_prompt=add_generation_prompt,
                        tools=tools,
                        extra=extra,
                    )
                    outcomes[outcome] = outcomes.get(outcome, 0) + 1
    # Most of the matrix must be real prompts, or the comparison proves little.
    assert outcomes.get("rendered", 0) >= 12, outcomes


def test_the_matrix_exercises_tools_and_refusals() -> None:
    """The cases above reach the interesting branches: tool prompts and template refusals."""
    tool_prompt = rust_render(
        ChatTemplate.builtin("chatml"), CONVERSATIONS["tool_round_trip"], tools=TOOLS
    )
    assert '<tool_call>\n{"name": "get_weather", "arguments": ' in tool_prompt
    assert "température incluse" in tool_prompt  # tojson keeps non-ASCII, as ensure_ascii=False
    assert '<tool_response>\n{"temperature": 18.5' in tool_prompt
    assert assert_same_as_reference("llama3", CONVERSATIONS["parallel_tool_calls"]) == "raised"
    assert assert_same_as_reference("mistral", CONVERSATIONS["consecutive_users"]) == "raised"
    assert assert_same_as_reference("gemma", CONVERSATIONS["system_user"]) == "raised"
    assert assert_same_as_reference("gemma3", CONVERSATIONS["system_user"]) == "rendered"
    assert assert_same_as_reference("gemma3", CONVERSATIONS["consecutive_users"]) == "raised"
    # Mistral's tool templates want 9-character call ids; OpenAI's "call_abc123" is refused.
    for family in ("mistral_tools", "mistral_nemo"):
        assert assert_same_as_reference(family, CONVERSATIONS["tool_round_trip"]) == "raised"
        mistral_round_trip = CONVERSATIONS["mistral_tool_round_trip"]
        assert assert_same_as_reference(family, mistral_round_trip, tools=TOOLS) == "rendered"


def test_llama3_tools_are_indented_json_in_the_first_user_turn() -> None:
    prompt = assert_same_as_reference("llama3", CONVERSATIONS["system_user"], tools=TOOLS)
    assert prompt == "rendered"
    text = rust_render(ChatTemplate.builtin("llama3"), CONVERSATIONS["system_user"], tools=TOOLS)
    assert "Environment: ipython\n" in text
    assert '{\n    "type": "function",\n    "function": {\n        "name": "get_weather"' in text
    assert '"default": 1.0' in text  # a float stays a float, as Python prints it


def test_long_conversation_matches_jinja2() -> None:
    """Over 64 KiB the core renders without the GIL; the prompt must not change."""
    turns: list[dict[str, Any]] = [{"role": "system", "content": "Summarise."}]
    for index in range(400):
        turns.append({"role": "user", "content": f"Question {index}: " + "lorem ipsum " * 15})
        turns.append({"role": "assistant", "content": f"Answer {index}."})
    turns.append({"role": "user", "content": "Done?"})
    assert len(orjson.dumps(turns)) > 64 * 1024
    for family in ("llama3", "chatml", "mistral"):
        assert assert_same_as_reference(family, turns) == "rendered"


# --- the built-ins against the models' documented formats ------------------------------------

SYSTEM_USER = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Hi"},
]

DOCUMENTED_PROMPTS = {
    "llama3": (
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
        "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n"
        "Be brief.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
    ),
    "chatml": (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
        "<|im_start|>assistant\n"
    ),
    "qwen3": (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
        "<|im_start|>assistant\n"
    ),
    "deepseek": f"{DS_BOS}Be brief.{DS_USER}Hi{DS_ASSISTANT}",
    # V3.1's non-thinking mode (the default) closes the think block at once.
    "deepseek_v3": f"{DS_BOS}Be brief.{DS_USER}Hi{DS_ASSISTANT}</think>",
    "mistral": "<s> [INST] Be brief.\n\nHi [/INST]",
    # v3 tokenizer: no space before [/INST]; tekken (Nemo): no space after [INST] either.
    "mistral_tools": "<s>[INST] Be brief.\n\nHi[/INST]",
    "mistral_nemo": "<s>[INST]Be brief.\n\nHi[/INST]",
    "glm4": "[gMASK]<sop><|system|>\nBe brief.<|user|>\nHi<|assistant|>\n",
    # Gemma 3 has no system turn either, but folds the system message into the first user turn.
    "gemma3": "<bos><start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n<start_of_turn>model\n",
}


@pytest.mark.parametrize("family", sorted(DOCUMENTED_PROMPTS))
def test_system_user_prompt_as_documented(family: str) -> None:
    assert rust_render(ChatTemplate.builtin(family), SYSTEM_USER) == DOCUMENTED_PROMPTS[family]


def test_gemma_prompt_as_documented() -> None:
    # Gemma has no system turn; its template refuses one (see test_gemma_refuses_...).
    messages = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "Bye"},
    ]
    assert rust_render(ChatTemplate.builtin("gemma"), messages) == (
        "<bos><start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\nHello!<end_of_turn>\n"
        "<start_of_turn>user\nBye<end_of_turn>\n<start_of_turn>model\n"
    )


def test_gemma3_system_prefix_only_on_the_first_turn_and_content_parts() -> None:
    messages = [
        {"role": "system", "content": [{"type": "text", "text": "Be brief."}]},
        {"role": "user", "content": [{"type": "text", "text": " Hi "}]},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "Bye"},
    ]
    prompt = rust_render(ChatTemplate.builtin("gemma3"), messages)
    assert prompt == (
        "<bos><start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n"
        "<start_of_turn>model\nHello!<end_of_turn>\n"
        "<start_of_turn>user\nBye<end_of_turn>\n<start_of_turn>model\n"
    )
    assert assert_same_as_reference("gemma3", messages) == "rendered"


def test_qwen3_thinking_switch_and_history() -> None:
    qwen3 = ChatTemplate.builtin("qwen3")
    no_thinking = rust_render(qwen3, SYSTEM_USER, extra={"enable_thinking": False})
    assert no_thinking.endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")
    # Reasoning of earlier turns is dropped from the history; only the answer stays.
    history = rust_render(qwen3, CONVERSATIONS["thinking_history"])
    assert "<|im_start|>assistant\n4<|im_end|>" in history
    assert "Simple sum" not in history


def test_deepseek_drops_earlier_reasoning() -> None:
    prompt = rust_render(ChatTemplate.builtin("deepseek"), CONVERSATIONS["thinking_history"])
    assert prompt == (
        f"{DS_BOS}{DS_USER}2+2?{DS_ASSISTANT}\n\n4{DS_EOS}{DS_USER}And 3+3?{DS_ASSISTANT}"
    )


DS_CALLS = "<\uff5ctool\u2581calls\u2581begin\uff5c>"
DS_CALLS_END = "<\uff5ctool\u2581calls\u2581end\uff5c>"
DS_CALL = "<\uff5ctool\u2581call\u2581begin\uff5c>"
DS_CALL_END = "<\uff5ctool\u2581call\u2581end\uff5c>"
DS_SEP = "<\uff5ctool\u2581sep\uff5c>"
DS_OUTPUT = "<\uff5ctool\u2581output\u2581begin\uff5c>"
DS_OUTPUT_END = "<\uff5ctool\u2581output\u2581end\uff5c>"


def test_deepseek_v3_tool_round_trip_as_documented() -> None:
    """DeepSeek V3.1's format (its model card): `NAME<sep>ARGUMENTS` calls without type or code
    fence, results in tool-output markers, and after a result no new assistant header."""
    deepseek_v3 = ChatTemplate.builtin("deepseek_v3")
    prompt = rust_render(deepseek_v3, CONVERSATIONS["tool_round_trip"], tools=TOOLS)
    assert prompt == (
        f"{DS_BOS}You can look up the weather.{DS_USER}Weather in Paris?{DS_ASSISTANT}</think>"
        f'{DS_CALLS}{DS_CALL}get_weather{DS_SEP}{{"city": "Paris", "unit": "celsius"}}'
        f"{DS_CALL_END}{DS_CALLS_END}{DS_EOS}"
        f'{DS_OUTPUT}{{"temperature": 18.5, "sky": "clear"}}{DS_OUTPUT_END}'
        f"18.5 \u00b0C and clear.{DS_EOS}{DS_USER}Thanks{DS_ASSISTANT}</think>"
    )
    # The published template reads no `tools`: the definitions never reach the prompt.
    assert prompt == rust_render(deepseek_v3, CONVERSATIONS["tool_round_trip"])
    parallel = rust_render(deepseek_v3, CONVERSATIONS["parallel_tool_calls"])
    assert parallel.endswith(
        f'{DS_CALL}get_weather{DS_SEP}{{"city": "Rome"}}{DS_CALL_END}{DS_CALLS_END}{DS_EOS}'
        f"{DS_OUTPUT}Sunny{DS_OUTPUT_END}{DS_OUTPUT}Rain{DS_OUTPUT_END}"
    ), "the answer to tool results follows them directly"
    # Arguments are concatenated as text: an object is refused by jinja2 and by us alike.
    assert assert_same_as_reference("deepseek_v3", CONVERSATIONS["tool_call_dict_arguments"]) == (
        "failed"
    )
    # Content beside calls is written before the calls block.
    with_text = json.loads(json.dumps(CONVERSATIONS["parallel_tool_calls"]))
    with_text[1]["content"] = "Checking."
    assert assert_same_as_reference("deepseek_v3", with_text) == "rendered"
    assert f"{DS_ASSISTANT}</think>Checking.{DS_CALLS}{DS_CALL}" in rust_render(
        deepseek_v3, with_text
    )


def test_deepseek_v3_thinking_switch_and_history() -> None:
    deepseek_v3 = ChatTemplate.builtin("deepseek_v3")
    history = CONVERSATIONS["thinking_history"]
    thinking = rust_render(deepseek_v3, history, extra={"thinking": True})
    # Earlier reasoning is cut at its first </think>; only the last turn opens a think block.
    assert thinking == (
        f"{DS_BOS}{DS_USER}2+2?{DS_ASSISTANT}</think>\n\n4{DS_EOS}"
        f"{DS_USER}And 3+3?{DS_ASSISTANT}<think>"
    )
    assert rust_render(deepseek_v3, history, extra={"enable_thinking": True}) == thinking
    off = rust_render(deepseek_v3, history, extra={"thinking": False, "enable_thinking": True})
    assert off.endswith(f"{DS_ASSISTANT}</think>")


MISTRAL_TOOLS_JSON = (
    '[{"type": "function", "function": {"name": "get_weather", '
    '"description": "Current weather for a city \u2014 temp\u00e9rature incluse.", '
    '"parameters": {"type": "object", "properties": {"city": {"type": "string", '
    '"description": "City name, e.g. \\"Paris\\""}, "unit": {"type": "string", '
    '"enum": ["celsius", "fahrenheit"]}, "days": {"type": "integer", "minimum": 1, '
    '"maximum": 7, "default": 1.0}}, "required": ["city"]}}}]'
)


def test_mistral_tools_round_trip_as_documented() -> None:
    """Mistral v3 tool format: tools before the last user turn, calls with their 9-char ids,
    results keyed by call id, the system message folded into the last user turn."""
    prompt = rust_render(
        ChatTemplate.builtin("mistral_tools"), CONVERSATIONS["mistral_tool_round_trip"], tools=TOOLS
    )
    assert prompt == (
        "<s>[INST] Weather in Paris?[/INST]"
        '[TOOL_CALLS] [{"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius", '
        '"days": 2, "ratio": 0.5, "tags": ["\u00e9", true]}, "id": "w3athr0K1"}]</s>'
        '[TOOL_RESULTS] {"content": {"temperature": 18.5, "sky": "clear"}, '
        '"call_id": "w3athr0K1"}[/TOOL_RESULTS]'
        " 18.5 \u00b0C and clear.</s>"
        f"[AVAILABLE_TOOLS] {MISTRAL_TOOLS_JSON}[/AVAILABLE_TOOLS]"
        "[INST] You can look up the weather.\n\nAnd in Rome?[/INST]"
    )


def test_mistral_nemo_writes_no_spaces_around_control_tokens() -> None:
    prompt = rust_render(
        ChatTemplate.builtin("mistral_nemo"), CONVERSATIONS["mistral_tool_round_trip"], tools=TOOLS
    )
    assert prompt.startswith("<s>[INST]Weather in Paris?[/INST][TOOL_CALLS][{")
    assert '[TOOL_RESULTS]{"content": {"temperature"' in prompt
    assert "[/TOOL_RESULTS]  18.5 \u00b0C and clear.  </s>[AVAILABLE_TOOLS][{" in prompt  # no trim
    assert prompt.endswith("[INST]You can look up the weather.\n\nAnd in Rome?[/INST]")


def test_mistral_tools_quirks_as_published() -> None:
    """What the published template does that a caller must know (checked against jinja2 too)."""
    mistral = ChatTemplate.builtin("mistral_tools")
    parallel = CONVERSATIONS["mistral_parallel_string_arguments"]
    assert assert_same_as_reference("mistral_tools", parallel, tools=TOOLS) == "rendered"
    prompt = rust_render(mistral, parallel, tools=TOOLS)
    # String arguments stay a JSON string inside the call; the model was trained on objects.
    assert '"arguments": "{\\"city\\": \\"Paris\\"}", "id": "paris0001"}, {"name"' in prompt
    # A tool result is written as is, not JSON-quoted; the template ignores add_generation_prompt.
    assert prompt.endswith(
        '[TOOL_RESULTS] {"content": Rain, "call_id": "rome00002"}[/TOOL_RESULTS]'
    )
    assert rust_render(mistral, parallel, tools=TOOLS, add_generation_prompt=False) == prompt
    # The system message goes into the last user turn only, and is lost when the
    # conversation ends with a tool result.
    with_system = [{"role": "system", "content": "Be brief."}, *parallel]
    assert "Be brief." not in rust_render(mistral, with_system, tools=TOOLS)
    # Ids are checked for length only (exactly 9), on calls and on results alike.
    long_id = [
        *parallel[:3],
        {"role": "tool", "tool_call_id": "call_abc123", "content": "Rain"},
    ]
    with pytest.raises(ValueError) as refused:
        rust_render(mistral, long_id)
    assert str(refused.value) == (
        'chat template "mistral_tools" refused the conversation: '
        "Tool call IDs should be alphanumeric strings with length 9!"
    )
    not_alphanumeric = json.loads(json.dumps(parallel).replace("paris0001", "par-is_01"))
    assert "par-is_01" in rust_render(mistral, not_alphanumeric)


def test_llama3_date_string_and_no_generation_prompt() -> None:
    prompt = rust_render(
        ChatTemplate.builtin("llama3"),
        SYSTEM_USER,
        add_generation_prompt=False,
        extra={"date_string": "01 Feb 2025"},
    )
    assert "Today Date: 01 Feb 2025\n" in prompt
    assert prompt.endswith("Hi<|eot_id|>")


# --- refusals: raise_exception ---------------------------------------------------------------


def test_gemma_refuses_a_system_message() -> None:
    with pytest.raises(ValueError) as refused:
        rust_render(ChatTemplate.builtin("gemma"), SYSTEM_USER)
    assert (
        str(refused.value)
        == 'chat template "gemma" refused the conversation: System role not supported'
    )


def test_gemma_refuses_roles_out_of_order() -> None:
    messages = [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]
    with pytest.raises(ValueError, match="Conversation roles must alternate user/assistant"):
        rust_render(ChatTemplate.builtin("gemma"), messages)


def test_custom_raise_exception_with_a_computed_message() -> None:
    template = ChatTemplate(FIXTURES.joinpath("alpaca.jinja").read_text(encoding="utf-8"))
    with pytest.raises(ValueError, match=r"alpaca has no tool role$"):
        rust_render(template, [{"role": "tool", "content": "x"}])


# --- model ids -------------------------------------------------------------------------------

MODEL_FAMILIES = {
    "meta-llama/Meta-Llama-3.1-8B-Instruct": "llama3",
    "meta-llama/Meta-Llama-3.1-70B-Instruct-Turbo": "llama3",
    "meta-llama/Llama-3.2-3B-Instruct": "llama3",
    "meta-llama/Llama-3.3-70B-Instruct": "llama3",
    "nvidia/Llama-3.1-Nemotron-70B-Instruct": "llama3",
    "Qwen/Qwen2.5-72B-Instruct": "chatml",
    "Qwen/Qwen2.5-Coder-32B-Instruct": "chatml",
    "Qwen/QwQ-32B": "chatml",
    "NousResearch/Hermes-3-Llama-3.1-405B": "chatml",
    "Qwen/Qwen3-235B-A22B": "qwen3",
    "qwen/qwen3-32b": "qwen3",
    "deepseek-ai/DeepSeek-V3": "deepseek",
    "deepseek-ai/DeepSeek-R1": "deepseek",
    "deepseek-ai/DeepSeek-R1-Distill-Llama-70B": "deepseek",
    "deepseek-chat": "deepseek",
    # V3 (Dec 2024) and V3-0324 publish the older call format; V3.1 (and Terminus) the new one.
    "deepseek-ai/DeepSeek-V3-0324": "deepseek",
    "deepseek-ai/DeepSeek-V3.1": "deepseek_v3",
    "deepseek-ai/DeepSeek-V3.1-Terminus": "deepseek_v3",
    "deepseek-v3.1:671b": "deepseek_v3",
    "deepseek/deepseek-chat-v3.1": "deepseek_v3",
    "mistralai/Mistral-7B-Instruct-v0.2": "mistral",
    "mistralai/Mixtral-8x7B-Instruct-v0.1": "mistral",
    "mistralai/Mistral-7B-Instruct-v0.3": "mistral_tools",
    "mistralai/Mixtral-8x22B-Instruct-v0.1": "mistral_tools",
    "mistralai/Mistral-Small-Instruct-2409": "mistral_tools",
    "mistralai/Mistral-Large-Instruct-2407": "mistral_tools",
    "mistralai/Mistral-Nemo-Instruct-2407": "mistral_nemo",
    "mistral-nemo:12b": "mistral_nemo",
    "google/gemma-2-9b-it": "gemma",
    "google/gemma-3-27b-it": "gemma3",
    "google/gemma-3-4b-it": "gemma3",
    "google/gemma-3n-E4B-it": "gemma3",
    "gemma3:12b": "gemma3",
    "THUDM/glm-4-9b-chat": "glm4",
    "deepinfra/meta-llama/Meta-Llama-3.1-8B-Instruct": "llama3",
}


@pytest.mark.parametrize(("model_id", "family"), sorted(MODEL_FAMILIES.items()))
def test_for_model_picks_the_family(model_id: str, family: str) -> None:
    template = ChatTemplate.for_model(model_id)
    assert template is not None
    assert template.name == family
    assert ChatTemplate.for_model(model_id.upper()).name == family


@pytest.mark.parametrize(
    "model_id",
    ["gpt-4o", "claude-3-5-sonnet", "microsoft/phi-4", "mistralai/Mistral-7B-v0.1", "", "llama2"],
)
def test_for_model_returns_none_for_unknown_models(model_id: str) -> None:
    assert ChatTemplate.for_model(model_id) is None


# --- stop strings, tokens, families -----------------------------------------------------------

FAMILY_STOPS = {
    "llama3": ["<|eot_id|>", "<|eom_id|>"],
    "chatml": ["<|im_end|>"],
    "qwen3": ["<|im_end|>"],
    "deepseek": [f"{DS_EOS}"],
    "deepseek_v3": [f"{DS_EOS}"],
    "mistral": ["</s>"],
    "mistral_tools": ["</s>"],
    "mistral_nemo": ["</s>"],
    "gemma": ["<end_of_turn>"],
    "gemma3": ["<end_of_turn>"],
    "glm4": ["<|user|>", "<|observation|>", "<|endoftext|>"],
}


def test_builtin_families_and_their_stop_strings() -> None:
    assert set(BUILTIN_FAMILIES) == set(FAMILY_STOPS)
    assert BUILTIN_FAMILIES[:2] == ("llama3", "chatml")
    for family, stop in FAMILY_STOPS.items():
        template = ChatTemplate.builtin(family)
        assert (template.name, template.stop) == (family, stop)


def test_builtin_special_tokens() -> None:
    tokens = {
        family: (ChatTemplate.builtin(family).bos_token, ChatTemplate.builtin(family).eos_token)
        for family in BUILTIN_FAMILIES
    }
    assert tokens["llama3"] == ("<|begin_of_text|>", "<|eot_id|>")
    assert tokens["chatml"] == ("", "<|im_end|>")
    assert tokens["deepseek"] == (f"{DS_BOS}", f"{DS_EOS}")
    assert tokens["deepseek_v3"] == (f"{DS_BOS}", f"{DS_EOS}")
    assert tokens["mistral"] == ("<s>", "</s>")
    assert tokens["mistral_tools"] == ("<s>", "</s>")
    assert tokens["mistral_nemo"] == ("<s>", "</s>")
    assert tokens["gemma"] == ("<bos>", "<eos>")
    assert tokens["gemma3"] == ("<bos>", "<eos>")
    assert tokens["glm4"] == ("", "<|endoftext|>")


def test_builtin_overrides_for_a_model_config() -> None:
    template = ChatTemplate.builtin("llama3", bos_token="", stop=["<|eot_id|>", "\n\nUser:"])
    assert template.stop == ["<|eot_id|>", "<|eom_id|>", "\n\nUser:"]
    assert rust_render(template, SYSTEM_USER).startswith("<|start_header_id|>system")
    # The cached family is untouched.
    assert ChatTemplate.builtin("llama3").bos_token == "<|begin_of_text|>"


def test_unknown_family_lists_the_builtins() -> None:
    with pytest.raises(ValueError) as unknown:
        ChatTemplate.builtin("llama2")
    message = str(unknown.value)
    assert '"llama2"' in message
    assert all(family in message for family in BUILTIN_FAMILIES)


# --- custom templates ---------------------------------------------------------------------------


def test_custom_template_from_a_file() -> None:
    source = FIXTURES.joinpath("alpaca.jinja").read_text(encoding="utf-8")
    template = ChatTemplate(source, bos_token="<s>", eos_token="</s>", stop=["###", "</s>", "###"])
    assert (template.name, template.stop) == ("custom", ["###", "</s>"])
    messages = [
        *SYSTEM_USER,
        {"role": "assistant", "content": " Hello. "},
        {"role": "user", "content": "Bye"},
    ]
    prompt = rust_render(template, messages)
    assert prompt == (
        "<s>Be brief.\n\n### Instruction:\nHi\n\n### Response:\nHello.</s>\n\n"
        "### Instruction:\nBye\n\n### Response:\n"
    )
    expected = reference_render(source, messages, bos_token="<s>", eos_token="</s>")
    assert prompt == expected


def test_custom_template_name_and_repr() -> None:
    template = ChatTemplate("{{ messages[0].content }}", name="acme-7b", stop=("<end>",))
    assert template.name == "acme-7b"
    assert repr(template) == 'ChatTemplate(name="acme-7b", stop=["<end>"])'
    assert rust_render(template, [{"role": "user", "content": "x"}]) == "x"


def test_python_methods_and_values_print_as_in_python() -> None:
    source = (
        "{{ messages[0].content.strip().title() }}|{{ messages[0].content.split() | length }}|"
        "{{ messages[0].get('name', 'anon') }}|{{ messages[0].flag }}|{{ messages[0].none }}|"
        "{{ messages[0].items() | list | length }}|{{ messages[0].content.startswith('  hello') }}|"
        "{% for k, v in messages[0].items() %}{{ k }};{% endfor %}|{{ messages[0].list }}"
    )
    messages = [
        {
            "role": "user",
            "content": "  hello big world ",
            "flag": True,
            "none": None,
            "list": [1, "a", 2.5],
        }
    ]
    out = rust_render(ChatTemplate(source), messages)
    assert out == reference_render(source, messages, bos_token="", eos_token="")
    assert (
        out == "Hello Big World|3|anon|True|None|5|True|role;content;flag;none;list;|[1, 'a', 2.5]"
    )


def test_strftime_now_is_today_in_utc() -> None:
    template = ChatTemplate("{{ strftime_now('%d %b %Y') }}")
    before = _strftime_now("%d %b %Y")
    rendered = rust_render(template, [])
    after = _strftime_now("%d %b %Y")
    assert rendered in {before, after}


# --- bad input --------------------------------------------------------------------------------


def test_syntax_error_names_the_template_and_line() -> None:
    with pytest.raises(ValueError) as bad:
        ChatTemplate("{{ bos_token }}\n{% for m in messages %}{{ m.content }}", name="broken")
    message = str(bad.value)
    assert '"broken"' in message
    assert "syntax error on line 2" in message
    assert "fix the template" in message


def test_render_error_names_the_line() -> None:
    template = ChatTemplate("ok\n{{ messages[0].content + 1 }}", name="adder")
    with pytest.raises(ValueError, match=r'chat template "adder" failed on line 2'):
        rust_render(template, [{"role": "user", "content": "x"}])


@pytest.mark.parametrize(
    ("messages_json", "kwargs", "expected"),
    [
        (b"[{", {}, "messages_json is not valid JSON"),
        (b'{"role": "user"}', {}, "messages_json must be a JSON array"),
        (b"[]", {"tools_json": b'{"a": 1}'}, "tools_json must be a JSON array"),
        (b"[]", {"tools_json": b"[,]"}, "tools_json is not valid JSON"),
        (b"[]", {"extra_json": b"[1]"}, "extra_json must be a JSON object"),
        (b"[]", {"extra_json": b'{"tools": []}'}, 'extra_json may not set "tools"'),
    ],
)
def test_bad_json_input_is_named(
    messages_json: bytes, kwargs: dict[str, bytes], expected: str
) -> None:
    with pytest.raises(ValueError, match=expected):
        ChatTemplate.builtin("chatml").render(messages_json, **kwargs)


def test_wrong_argument_types_are_refused() -> None:
    template = ChatTemplate.builtin("chatml")
    with pytest.raises(TypeError):
        template.render('[{"role": "user", "content": "x"}]')  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        ChatTemplate("x", stop="</s>")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="stop string is empty"):
        ChatTemplate("x", stop=[""])


def test_templates_are_immutable() -> None:
    template = ChatTemplate.builtin("llama3")
    with pytest.raises(AttributeError):
        template.name = "other"  # type: ignore[misc]
    template.stop.append("<mine>")
    assert template.stop == ["<|eot_id|>", "<|eom_id|>"]
