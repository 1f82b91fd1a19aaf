"""Ollama native end to end: the openai package → gateway → the simulator's /api/chat."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from sluicegate.config import Config, ProviderConfig, ServerConfig
from sluicegate.discovery import local_ollama_env, ollama_answers, with_local_ollama
from sluicegate.simulator.script import token_text
from tests.conftest import Simulator, running_gateway
from tests.openai_streams import last_finish_reason, stream_parts

MODEL = "ollama/qwen3:8b"
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "The weather in a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
]


@pytest.fixture(scope="module")
def client(simulator: Simulator) -> Iterator[openai.OpenAI]:
    provider = ProviderConfig("ollama", "ollama", simulator.base_url, (), source="test")
    with running_gateway((provider,)) as url:
        yield openai.OpenAI(base_url=url, api_key="unused", max_retries=0, timeout=30)


def last_chat(sim: Simulator) -> dict[str, Any]:
    return [r for r in sim.state.recent if r["path"] == "/api/chat"][-1]["body"]


def test_stream_text_and_usage(client: openai.OpenAI, simulator: Simulator) -> None:
    content, reasoning, chunks = stream_parts(
        client,
        model=MODEL,
        messages=[{"role": "user", "content": "Hi #sim tokens=4"}],
        stream_options={"include_usage": True},
        max_tokens=20,
    )
    assert content == token_text(4) and reasoning == ""
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 4
    sent = last_chat(simulator)
    assert sent["stream"] is True and sent["options"]["num_predict"] == 20
    assert sent["model"] == "qwen3:8b"


def test_reasoning_through_think(client: openai.OpenAI, simulator: Simulator) -> None:
    content, reasoning, _ = stream_parts(
        client,
        model=MODEL,
        messages=[{"role": "user", "content": "Hi #sim think=3 tokens=2 mixed=1"}],
        reasoning_effort="high",
    )
    assert content == token_text(2) and reasoning.strip()
    assert last_chat(simulator)["think"] == "high"
    answer = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Hi #sim think=3 tokens=2"}],
        reasoning_effort="low",
    )
    assert answer.choices[0].message.content == token_text(2)
    assert answer.choices[0].message.model_extra["reasoning_content"].strip()


@pytest.mark.parametrize("stream", [True, False])
def test_tool_calls_and_a_tool_result_turn(
    client: openai.OpenAI, simulator: Simulator, stream: bool
) -> None:
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Weather? #sim tool=1"}]
    if stream:
        chunks = list(
            client.chat.completions.create(model=MODEL, messages=messages, tools=TOOLS, stream=True)
        )
        calls = [tc for c in chunks if c.choices for tc in c.choices[0].delta.tool_calls or []]
        assert len(calls) == 1 and calls[0].index == 0
        call = calls[0]
        name, arguments, call_id = call.function.name, call.function.arguments, call.id
        finish = last_finish_reason(chunks)
    else:
        answer = client.chat.completions.create(model=MODEL, messages=messages, tools=TOOLS)
        (call,) = answer.choices[0].message.tool_calls
        name, arguments, call_id = call.function.name, call.function.arguments, call.id
        finish = answer.choices[0].finish_reason
    assert finish == "tool_calls"
    assert name == "get_weather" and isinstance(json.loads(arguments), dict)
    assert call_id
    # The result goes back; Ollama gets the arguments as an object and the tool's name.
    messages += [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": call_id,
                    "type": "function",
                    "function": {"name": name, "arguments": arguments},
                }
            ],
        },
        {"role": "tool", "tool_call_id": call_id, "content": "sunny"},
        {"role": "user", "content": "Thanks #sim tokens=2"},
    ]
    answer = client.chat.completions.create(model=MODEL, messages=messages, tools=TOOLS)
    assert answer.choices[0].message.content == token_text(2)
    sent = last_chat(simulator)["messages"]
    assert sent[1]["tool_calls"][0]["function"]["arguments"] == json.loads(arguments)
    assert sent[2] == {
        "role": "tool",
        "content": "sunny",
        "tool_call_id": call_id,
        "tool_name": "get_weather",
    }


def test_images_go_inline(client: openai.OpenAI, simulator: Simulator) -> None:
    image = base64.b64encode(b"fake png").decode()
    content = [
        {"type": "text", "text": "What is this? #sim tokens=1"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{image}"}},
    ]
    client.chat.completions.create(
        model="ollama/llava:7b", messages=[{"role": "user", "content": content}]
    )
    assert last_chat(simulator)["messages"][0]["images"] == [image]


def test_errors(client: openai.OpenAI) -> None:
    with pytest.raises(openai.APIError):
        stream_parts(
            client,
            model=MODEL,
            messages=[{"role": "user", "content": "#sim tokens=5 error_after=2"}],
        )
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(
            model="ollama/missing-model", messages=[{"role": "user", "content": "x"}]
        )


def test_models_and_embeddings(client: openai.OpenAI) -> None:
    listed = {m.id: m for m in client.models.list()}
    qwen = listed["ollama/qwen3:8b"]
    assert qwen.model_extra["context_length"] > 0
    assert "tools" in qwen.model_extra["capabilities"]
    vectors = client.embeddings.create(model="ollama/all-minilm", input=["a", "b"])
    assert len(vectors.data) == 2 and vectors.usage.prompt_tokens > 0


def test_a_local_ollama_is_found_at_start_up(simulator: Simulator) -> None:
    assert ollama_answers(simulator.base_url)
    config = Config(server=ServerConfig(), providers=(), notices=(), path=None)
    found = with_local_ollama(config, {"SLUICEGATE_LOCAL_OLLAMA": simulator.base_url})
    (provider,) = found.providers
    assert (provider.name, provider.kind, provider.base_url) == (
        "ollama",
        "ollama",
        simulator.base_url,
    )
    # The supervisor hands its answer to its workers, so they neither ask again nor disagree.
    assert local_ollama_env(found) == {"OLLAMA_BASE_URL": simulator.base_url}
    assert local_ollama_env(config) == {"SLUICEGATE_LOCAL_OLLAMA": "off"}
    assert with_local_ollama(config, {"SLUICEGATE_LOCAL_OLLAMA": "off"}).providers == ()
    assert (
        with_local_ollama(config, {"SLUICEGATE_LOCAL_OLLAMA": "http://127.0.0.1:9"}).providers == ()
    )
