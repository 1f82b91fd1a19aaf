"""Tool calling through native text-generation APIs, end to end: the openai package →
gateway (tools rendered by the model's template) → the simulator answering in the family's
markup, split in awkward places → the gateway's parser → OpenAI tool_calls."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from sluicegate.config import ProviderConfig
from tests.conftest import Simulator, running_gateway
from tests.openai_streams import streamed_calls

# One model per tool-call format, all served by the simulator's DeepInfra-native endpoint.
MODELS = {
    "llama3": "deepinfra/meta-llama/Meta-Llama-3.1-8B-Instruct",
    "hermes": "deepinfra/Qwen/Qwen2.5-72B-Instruct",
    "hermes-qwen3": "deepinfra/Qwen/Qwen3-32B",
    "mistral": "deepinfra/mistralai/Mistral-7B-Instruct-v0.3",
    "deepseek": "deepinfra/deepseek-ai/DeepSeek-V3.1",
}


def tool(name: str, **properties: str) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": f"The {name} tool",
            "parameters": {
                "type": "object",
                "properties": {k: {"type": v} for k, v in properties.items()},
            },
        },
    }


WEATHER = tool("get_weather", city="string", days="integer")
CLOCK = tool("get_time", zone="string")


@pytest.fixture(scope="module")
def client(simulator: Simulator) -> Iterator[openai.OpenAI]:
    provider = ProviderConfig("deepinfra", "deepinfra", simulator.base_url, (), source="test")
    with running_gateway((provider,)) as url:
        yield openai.OpenAI(base_url=url, api_key="unused", max_retries=0, timeout=30)


@pytest.mark.parametrize("family", sorted(MODELS))
def test_a_tool_call_streamed_and_not(client: openai.OpenAI, family: str) -> None:
    messages = [{"role": "user", "content": "Weather in Paris? #sim tool=1"}]
    content, calls, finish = streamed_calls(
        client, model=MODELS[family], messages=messages, tools=[WEATHER, CLOCK]
    )
    assert finish == "tool_calls"
    assert content.strip() == "", "markup never leaks into content"
    (call,) = calls
    assert call["name"] == "get_weather" and call["id"].startswith("call_")
    # The simulator reads argument types from the prompt's JSON tool definitions; DeepSeek's
    # prompt describes tools in Markdown, so it falls back to {"city": "Paris"}.
    arguments = json.loads(call["arguments"])
    assert arguments == (
        {"city": "Paris"} if family == "deepseek" else {"city": "Paris", "days": 3}
    )
    answer = client.chat.completions.create(
        model=MODELS[family], messages=messages, tools=[WEATHER, CLOCK]
    )
    message = answer.choices[0].message
    assert answer.choices[0].finish_reason == "tool_calls"
    (whole,) = message.tool_calls
    assert whole.function.name == "get_weather"
    assert json.loads(whole.function.arguments) == arguments


@pytest.mark.parametrize("family", ["hermes", "llama3", "mistral"])
def test_parallel_calls_get_distinct_indices(client: openai.OpenAI, family: str) -> None:
    messages = [{"role": "user", "content": "Weather and time? #sim tool=1 parallel=1"}]
    _, calls, finish = streamed_calls(
        client, model=MODELS[family], messages=messages, tools=[WEATHER, CLOCK]
    )
    assert finish == "tool_calls"
    assert [c["name"] for c in calls] == ["get_weather", "get_time"]
    assert len({c["id"] for c in calls}) == 2
    assert all(isinstance(json.loads(c["arguments"]), dict) for c in calls)


def test_text_before_a_call_stays_content(client: openai.OpenAI) -> None:
    messages = [{"role": "user", "content": "Weather? #sim tool=1 text_before=1 tokens=3"}]
    content, calls, _ = streamed_calls(
        client, model=MODELS["hermes"], messages=messages, tools=[WEATHER]
    )
    assert content.strip() == "The quick brown"
    assert [c["name"] for c in calls] == ["get_weather"]


def test_malformed_markup_is_given_back_as_content(client: openai.OpenAI) -> None:
    messages = [{"role": "user", "content": "Weather? #sim tool=1 malformed=1"}]
    content, calls, _ = streamed_calls(
        client, model=MODELS["hermes"], messages=messages, tools=[WEATHER]
    )
    assert calls == []
    assert "<tool_call>" in content and "oops" in content, "no text is lost"


def test_an_openclaw_shaped_turn(client: openai.OpenAI, simulator: Simulator) -> None:
    tools = [
        tool(name, arg="string")
        for name in (
            "apply_patch",
            "edit",
            "exec",
            "ls",
            "process",
            "read",
            "sessions_yield",
            "tool_call",
            "tool_describe",
            "tool_search",
        )
    ]
    messages = [
        {"role": "system", "content": "<!-- openclaw:attempt:STABLE --> You are an agent. " * 20},
        {"role": "user", "content": "List the files."},
        {"role": "user", "content": [{"type": "text", "text": "(internal context)"}]},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call42fc",
                    "type": "function",
                    "function": {"name": "ls", "arguments": '{"arg": "."}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "call42fc", "content": "README.md\nsrc"},
        {"role": "user", "content": "Now read the README. #sim tool=1"},
    ]
    content, calls, finish = streamed_calls(
        client,
        model=MODELS["hermes-qwen3"],
        messages=messages,
        tools=tools,
        stream_options={"include_usage": True},
    )
    assert finish == "tool_calls" and content.strip() == ""
    assert calls[0]["name"] == "apply_patch"  # the simulator calls the first tool offered
    sent = [r for r in simulator.state.recent if r["path"].startswith("/v1/inference/")][-1]
    prompt = sent["body"]["input"]
    assert "<tool_response>\nREADME.md\nsrc\n</tool_response>" in prompt
    assert '"name": "ls", "arguments": {"arg": "."}' in prompt
    assert all(f'"name": "{t["function"]["name"]}"' in prompt for t in tools)
