"""The Ollama adapter on its own: message shapes, options, catalog and embedding bodies."""

from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest

from sluicegate.config import ModelSettings, ProviderConfig
from sluicegate.embeddings import parse_embeddings_request
from sluicegate.providers import ModelProfile, ollama
from tests.provider_requests import ChatBuilds

PROVIDER = ProviderConfig("ollama", "ollama", "http://127.0.0.1:11434", ())
PROFILE = ModelProfile("qwen3:8b", ModelSettings())
PNG = base64.b64encode(b"\x89PNG fake").decode()


ADAPTER = ChatBuilds(ollama.build_chat, PROVIDER, PROFILE, None, {"model": "ollama/qwen3:8b"})


TOOL_TURN = [
    {"role": "developer", "content": "Be brief."},
    {
        "role": "user",
        "content": [
            {"type": "text", "text": "What is in it?"},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
        ],
    },
    {
        "role": "assistant",
        "content": None,
        "reasoning_content": "Look it up.",
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "lookup", "arguments": '{"q": "cat"}'},
            }
        ],
    },
    {"role": "tool", "tool_call_id": "call_1", "content": "a cat"},
]


def test_messages_keep_their_structure() -> None:
    native, built = ADAPTER.build({"messages": TOOL_TURN, "stream": True})
    assert built.url == "http://127.0.0.1:11434/api/chat" and built.dialect == "ollama"
    assert native["model"] == "qwen3:8b" and native["stream"] is True
    assert native["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What is in it?", "images": [PNG]},
        {
            "role": "assistant",
            "content": "",
            "thinking": "Look it up.",
            "tool_calls": [
                {"id": "call_1", "function": {"name": "lookup", "arguments": {"q": "cat"}}}
            ],
        },
        {"role": "tool", "content": "a cat", "tool_call_id": "call_1", "tool_name": "lookup"},
    ]


def test_stream_is_always_explicit() -> None:
    native, _ = ADAPTER.build({"messages": [{"role": "user", "content": "hi"}]})
    assert native["stream"] is False


def test_knobs_go_to_options() -> None:
    body = {
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 50,
        "temperature": 0.2,
        "top_p": 0.9,
        "top_k": 20,
        "min_p": 0.05,
        "repetition_penalty": 1.1,
        "seed": 4,
        "stop": "###",
        "response_format": {"type": "json_object"},
        "reasoning_effort": "none",
        "logprobs": True,
        "top_logprobs": 2,
    }
    settings = ModelSettings(
        params=(("top_k", 40), ("temperature", 0.7)), num_ctx=16000, keep_alive="10m"
    )
    native, built = ADAPTER.build(body, ModelProfile("qwen3:8b", settings))
    assert native["options"] == {
        "temperature": 0.2,
        "top_p": 0.9,
        "top_k": 20,
        "min_p": 0.05,
        "repeat_penalty": 1.1,
        "seed": 4,
        "num_predict": 50,
        "stop": ["###"],
        "num_ctx": 16000,
    }
    assert native["format"] == "json" and native["think"] is False
    assert native["keep_alive"] == "10m"
    assert native["logprobs"] is True and native["top_logprobs"] == 2
    assert built.transcoder["logprobs"] is True and built.transcoder["prompt_tokens"] >= 1


def test_schemas_tools_and_thinking_levels() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    tools = [{"type": "function", "function": {"name": "f", "parameters": schema}}]
    native, _ = ADAPTER.build(
        {
            "messages": [{"role": "user", "content": "hi"}],
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "x", "schema": schema},
            },
            "tools": tools,
            "reasoning_effort": "high",
        }
    )
    assert native["format"] == schema and native["tools"] == tools and native["think"] == "high"
    native, _ = ADAPTER.build(
        {"messages": [{"role": "user", "content": "hi"}], "tools": tools, "tool_choice": "none"}
    )
    assert "tools" not in native


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "image_url", "image_url": {"url": "https://x/cat.png"}}
                        ],
                    }
                ]
            },
            "messages[0].content[0].image_url.url",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "image_url", "image_url": {"url": "data:image/png;base64,@@@"}}
                        ],
                    }
                ]
            },
            "messages[0].content[0].image_url.url",
        ),
        (
            {
                "messages": [
                    {
                        "role": "assistant",
                        "content": None,
                        "tool_calls": [
                            {
                                "id": "c",
                                "type": "function",
                                "function": {"name": "f", "arguments": "[1]"},
                            }
                        ],
                    }
                ]
            },
            "messages[0].tool_calls[0].arguments",
        ),
        ({"messages": [{"role": "user", "content": "x"}], "n": 2}, "n"),
        (
            {"messages": [{"role": "user", "content": "x"}], "reasoning_effort": "max!"},
            "reasoning_effort",
        ),
        ({"messages": [{"role": "user", "content": "x"}], "top_k": 1.5}, "top_k"),
    ],
)
def test_bad_input_names_the_field(body: dict[str, Any], param: str) -> None:
    assert ADAPTER.error(body).param == param


def test_errors_catalog_and_embeddings() -> None:
    missing = ollama.ADAPTER.classify_error(
        PROVIDER, 404, b'{"error":"model \'x\' not found"}', None
    )
    assert missing.error.status == 404 and missing.error.code == "model_not_found"
    tags = orjson.dumps({"models": [{"name": "llama3.2:latest", "details": {"family": "llama"}}]})
    assert ollama.read_models(tags) == [
        {
            "id": "llama3.2:latest",
            "object": "model",
            "owned_by": "ollama",
            "details": {"family": "llama"},
        }
    ]
    shown = orjson.dumps(
        {
            "model_info": {"general.architecture": "llama", "llama.context_length": 131072},
            "capabilities": ["completion", "tools"],
        }
    )
    assert ollama.read_model_details(shown) == {
        "context_length": 131072,
        "capabilities": ["completion", "tools"],
    }
    assert ollama.model_details(PROVIDER, "llama3.2:latest") == (
        "POST",
        "http://127.0.0.1:11434/api/show",
        b'{"model":"llama3.2:latest"}',
    )
    wanted = parse_embeddings_request(
        b'{"model":"ollama/all-minilm","input":["a","b"],"dimensions":4}'
    )
    built = ollama.build_embeddings(
        PROVIDER, ModelProfile("all-minilm", ModelSettings()), wanted, None
    )
    assert built.url.endswith("/api/embed")
    assert orjson.loads(built.body) == {"model": "all-minilm", "input": ["a", "b"], "dimensions": 4}
    answer = orjson.loads(
        ollama.read_embeddings(wanted, b'{"embeddings":[[0.5,0.5],[1,0]],"prompt_eval_count":6}')
    )
    assert answer["usage"] == {"prompt_tokens": 6, "total_tokens": 6}
    assert [d["index"] for d in answer["data"]] == [0, 1]
