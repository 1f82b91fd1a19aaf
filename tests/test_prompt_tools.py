"""Tools in the prompt of native text-generation models: rendered through each family's chat
template, with tool_choice and parallel_tool_calls turned into what a template can say."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from sluicegate._core import ChatTemplate
from sluicegate.config import ModelSettings, ProviderConfig
from sluicegate.errors import GatewayError
from sluicegate.providers import ModelProfile
from sluicegate.providers.prompt import plan_tools, render_prompt, template_messages

PROVIDER = ProviderConfig("deepinfra", "deepinfra", "http://127.0.0.1:9", ())
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
TIME = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}}
HISTORY: list[dict[str, Any]] = [
    {"role": "system", "content": "You are helpful."},
    {"role": "user", "content": "Weather in Paris?"},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
            }
        ],
    },
    {"role": "tool", "tool_call_id": "call_1", "content": "18 C and sunny"},
]


def profile(family: str, **settings: Any) -> ModelProfile:
    return ModelProfile("m", ModelSettings(**settings), ChatTemplate.builtin(family))


def prompt(family: str, **body: Any) -> tuple[str, Any]:
    request = {"messages": HISTORY, "tools": [WEATHER, TIME], **body}
    prof = profile(family)
    plan = plan_tools(PROVIDER, prof, request, "native API")
    return render_prompt(prof, request, plan), plan


@pytest.mark.parametrize(
    ("family", "markup", "call", "result"),
    [
        (
            "llama3",
            "llama3",
            '{"name": "get_weather", "parameters": {"city": "Paris"}}',
            "18 C and sunny",
        ),
        (
            "chatml",
            "hermes",
            '{"name": "get_weather", "arguments": {"city": "Paris"}}',
            "<tool_response>\n18 C and sunny\n</tool_response>",
        ),
        (
            "qwen3",
            "hermes",
            '{"name": "get_weather", "arguments": {"city": "Paris"}}',
            "<tool_response>\n18 C and sunny\n</tool_response>",
        ),
        (
            "mistral_tools",
            "mistral",
            '"name": "get_weather", "arguments": {"city": "Paris"}',
            "[TOOL_RESULTS]",
        ),
        (
            "mistral_nemo",
            "mistral",
            '"name": "get_weather", "arguments": {"city": "Paris"}',
            "[TOOL_RESULTS]",
        ),
    ],
)
def test_each_family_renders_tools_calls_and_results(
    family: str, markup: str, call: str, result: str
) -> None:
    text, plan = prompt(family)
    assert plan.markup == markup and plan.hint is None
    assert '"get_weather"' in text and '"get_time"' in text, "the tools are offered"
    assert call in text, "the earlier call is rendered in the family's markup"
    assert result in text, "the tool result is rendered"


def test_tool_choice_none_offers_no_tools_and_parses_nothing() -> None:
    text, plan = prompt("chatml", tool_choice="none")
    assert plan.markup is None and plan.tools is None
    assert "get_time" not in text


def test_required_and_named_choices_become_instructions() -> None:
    text, plan = prompt("chatml", tool_choice="required", parallel_tool_calls=False)
    assert plan.hint == (
        "You must answer by calling one or more of the available functions. "
        "Call at most one function."
    )
    assert "You are helpful.\n\nYou must answer by calling" in text
    named = {"type": "function", "function": {"name": "get_time"}}
    text, plan = prompt("chatml", tool_choice=named)
    assert [t["function"]["name"] for t in plan.tools] == ["get_time"]
    assert "You must answer by calling the function get_time." in text
    assert '"name": "get_weather", "description"' not in text
    with pytest.raises(GatewayError) as info:
        prompt("chatml", tool_choice={"type": "function", "function": {"name": "nope"}})
    assert info.value.param == "tool_choice"


def test_deepseek_history_renders_in_its_own_tokens() -> None:
    request = {"messages": HISTORY, "tools": [WEATHER]}
    prof = profile("deepseek", tool_format="deepseek")
    plan = plan_tools(PROVIDER, prof, request, "native API")
    text = render_prompt(prof, request, plan)
    assert plan.markup == "deepseek"
    bar = "\uff5c"  # DeepSeek's markers use the full-width vertical line
    assert f"<{bar}tool▁call▁begin{bar}>function<{bar}tool▁sep{bar}>get_weather" in text
    assert '{"city":"Paris"}' in text and "18 C and sunny" in text


def test_deepseek_v3_offers_tools_in_the_system_prompt_as_its_model_card_says() -> None:
    """DeepSeek V3.1's published template reads no `tools`: the definitions go after the system
    prompt in the block the model card gives, and the history renders in V3.1's markup
    (arguments as JSON text, no type, no code fence)."""
    request = {"messages": HISTORY, "tools": [WEATHER, TIME]}
    prof = profile("deepseek_v3")
    plan = plan_tools(PROVIDER, prof, request, "native API")
    text = render_prompt(prof, request, plan)
    assert plan.markup == "deepseek" and plan.tools is None
    bar = "\uff5c"  # DeepSeek's markers use the full-width vertical line
    assert text.startswith(
        f"<{bar}begin▁of▁sentence{bar}>You are helpful.\n\n## Tools\n"
        "You have access to the following tools:\n\n### get_weather\n"
        "Description: The weather in a city\n\nParameters: "
        '{"type": "object", "properties": {"city": {"type": "string"}}}\n\n### get_time\n'
    )
    assert "IMPORTANT: ALWAYS adhere to this exact format for tool use:" in text
    call = f'<{bar}tool▁call▁begin{bar}>get_weather<{bar}tool▁sep{bar}>{{"city":"Paris"}}'
    assert call in text, "the earlier call is rendered in V3.1's markup"
    assert text.endswith(f"<{bar}tool▁output▁begin{bar}>18 C and sunny<{bar}tool▁output▁end{bar}>")


def test_a_family_without_a_tool_format_is_a_400_unless_configured() -> None:
    request = {"messages": HISTORY[:2], "tools": [WEATHER]}
    with pytest.raises(GatewayError) as info:
        plan_tools(PROVIDER, profile("glm4"), request, "native API")
    assert info.value.code == "tools_not_supported" and "tool_format" in info.value.message
    plan = plan_tools(PROVIDER, profile("glm4", tool_format="hermes"), request, "native API")
    assert plan.markup == "hermes"


def test_messages_for_templates_never_have_null_content() -> None:
    messages = template_messages(HISTORY, "qwen3")
    assert messages[2]["content"] == ""
    assert messages[2]["tool_calls"][0]["function"]["arguments"] == {"city": "Paris"}
    assert messages[3] == {
        "role": "tool",
        "content": "18 C and sunny",
        "tool_call_id": "call_1",
        "name": "get_weather",
    }
    as_text = template_messages(HISTORY, "deepseek")
    assert as_text[2]["tool_calls"][0]["function"]["arguments"] == '{"city":"Paris"}'
    assert as_text[2]["content"] is None
    with pytest.raises(GatewayError) as info:
        bad = [
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "c", "type": "function", "function": {"name": "f", "arguments": "[1]"}}
                ],
            }
        ]
        template_messages(bad)
    assert info.value.param == "messages[0].tool_calls[0].function.arguments"
    assert orjson.dumps(messages)  # JSON-serialisable as the template binding needs
