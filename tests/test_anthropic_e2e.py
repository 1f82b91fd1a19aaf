"""Anthropic Messages end to end: the openai package → gateway → the simulator's /v1/messages,
and the setup OpenClaw operators copy: local Ollama first, Claude when it is down."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from sluicegate.config import ModelAlias, ProviderConfig
from sluicegate.simulator.script import token_text
from tests.conftest import Simulator, running_gateway
from tests.openai_streams import last_finish_reason, stream_parts, streamed_calls

MODEL = "anthropic/claude-sonnet-4-5"
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "The weather in a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]


def anthropic_provider(sim: Simulator) -> ProviderConfig:
    return ProviderConfig("anthropic", "anthropic", sim.base_url, ("sk-ant-test",), source="test")


@pytest.fixture(scope="module")
def client(simulator: Simulator) -> Iterator[openai.OpenAI]:
    with running_gateway((anthropic_provider(simulator),)) as url:
        yield openai.OpenAI(base_url=url, api_key="unused", max_retries=0, timeout=30)


def last_messages_request(sim: Simulator) -> dict[str, Any]:
    return [r for r in sim.state.recent if r["path"] == "/v1/messages"][-1]


def test_text_stream_with_usage(client: openai.OpenAI, simulator: Simulator) -> None:
    content, reasoning, chunks = stream_parts(
        client,
        model=MODEL,
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi #sim tokens=5"},
        ],
        stream_options={"include_usage": True},
    )
    assert content == token_text(5) and reasoning == ""
    assert last_finish_reason(chunks) == "stop"
    usage = chunks[-1].usage
    assert usage is not None and usage.completion_tokens > 0 and usage.prompt_tokens > 0
    sent = last_messages_request(simulator)
    assert sent["headers"]["x-api-key"] == "sk-ant-test"
    assert sent["body"]["system"] == "Be brief." and sent["body"]["max_tokens"] > 0


def test_thinking_becomes_reasoning_content(client: openai.OpenAI) -> None:
    content, reasoning, _ = stream_parts(
        client,
        model=MODEL,
        messages=[{"role": "user", "content": "Think #sim think=4 tokens=2"}],
        reasoning_effort="low",
        max_tokens=4000,
    )
    assert content == token_text(2) and reasoning.strip()
    answer = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Think #sim think=4 tokens=2"}],
        reasoning_effort="low",
        max_tokens=4000,
    )
    assert answer.choices[0].message.content == token_text(2)
    assert answer.choices[0].message.model_extra["reasoning_content"].strip()


@pytest.mark.parametrize("stream", [True, False])
def test_tool_calls(client: openai.OpenAI, stream: bool) -> None:
    messages = [{"role": "user", "content": "Weather? #sim tool=1 parallel=1"}]
    if stream:
        _, found, finish = streamed_calls(client, model=MODEL, messages=messages, tools=TOOLS)
    else:
        answer = client.chat.completions.create(model=MODEL, messages=messages, tools=TOOLS)
        finish = answer.choices[0].finish_reason
        found = [
            {"id": c.id, "name": c.function.name, "arguments": c.function.arguments}
            for c in answer.choices[0].message.tool_calls or []
        ]
    assert finish == "tool_calls"
    assert len(found) == 2 and found[0]["id"] != found[1]["id"]
    for call in found:
        assert call["name"] == "get_weather" and isinstance(json.loads(call["arguments"]), dict)


def test_an_in_stream_overload_reaches_the_sdk(client: openai.OpenAI) -> None:
    with pytest.raises(openai.APIError):
        stream_parts(
            client,
            model=MODEL,
            messages=[{"role": "user", "content": "#sim tokens=6 error_after=2"}],
        )


def test_local_ollama_first_then_claude(simulator: Simulator) -> None:
    with socket.socket() as s:  # an Ollama that is down: nothing listens here
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    ollama = ProviderConfig("ollama", "ollama", f"http://127.0.0.1:{dead}", (), source="test")
    alias = ModelAlias(id="assistant", routes=("ollama/llama3.2:latest", MODEL))
    with running_gateway((ollama, anthropic_provider(simulator)), models=(alias,)) as url:
        client = openai.OpenAI(base_url=url, api_key="unused", max_retries=0, timeout=30)
        answer = client.chat.completions.create(
            model="assistant", messages=[{"role": "user", "content": "Hi #sim tokens=3"}]
        )
        assert answer.choices[0].message.content == token_text(3)
        assert answer.model == "assistant"
        assert last_messages_request(simulator)["body"]["model"] == "claude-sonnet-4-5"
