"""The Anthropic adapter on its own: the conversation reshaped for the Messages API."""

from __future__ import annotations

from typing import Any

import pytest

from sluicegate.config import ModelSettings, ProviderConfig
from sluicegate.providers import ModelProfile, anthropic
from tests.provider_requests import ChatBuilds

PROVIDER = ProviderConfig("anthropic", "anthropic", "http://127.0.0.1:9", ("sk-ant-secret",))
PROFILE = ModelProfile("claude-sonnet-4-5", ModelSettings())
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]


ADAPTER = ChatBuilds(
    anthropic.build_chat, PROVIDER, PROFILE, "sk-ant-secret", {"model": "anthropic/claude"}
)


def test_a_conversation_with_tools_is_reshaped() -> None:
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "developer", "content": "Use metric units."},
        {"role": "user", "content": "Weather in Paris and Rome?"},
        {
            "role": "user",
            "content": [{"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,QUJD"}}],
        },
        {
            "role": "assistant",
            "content": "Checking.",
            "tool_calls": [
                {
                    "id": "toolu_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                },
                {
                    "id": "toolu_2",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": ""},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "toolu_1", "content": "18 C"},
        {"role": "tool", "tool_call_id": "toolu_2", "content": ""},
    ]
    native, built = ADAPTER.build({"messages": messages, "tools": TOOLS, "stream": True})
    assert built.url == "http://127.0.0.1:9/v1/messages" and built.dialect == "anthropic"
    assert ("x-api-key", "sk-ant-secret") in built.headers
    assert ("anthropic-version", "2023-06-01") in built.headers
    assert not any(name == "authorization" for name, _ in built.headers)
    assert native["system"] == "Be brief.\n\nUse metric units."
    assert native["max_tokens"] == anthropic.DEFAULT_MAX_TOKENS and native["stream"] is True
    assert native["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Weather in Paris and Rome?"},
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/jpeg", "data": "QUJD"},
                },
            ],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Checking."},
                {
                    "type": "tool_use",
                    "id": "toolu_1",
                    "name": "get_weather",
                    "input": {"city": "Paris"},
                },
                {"type": "tool_use", "id": "toolu_2", "name": "get_weather", "input": {}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18 C"},
                {"type": "tool_result", "tool_use_id": "toolu_2", "content": "(no output)"},
            ],
        },
    ]
    assert native["tools"] == [
        {
            "name": "get_weather",
            "description": "Weather",
            "input_schema": TOOLS[0]["function"]["parameters"],
        }
    ]
    assert "tool_choice" not in native


@pytest.mark.parametrize(
    ("extra", "choice"),
    [
        ({"tool_choice": "required"}, {"type": "any"}),
        (
            {"tool_choice": {"type": "function", "function": {"name": "get_weather"}}},
            {"type": "tool", "name": "get_weather"},
        ),
        ({"parallel_tool_calls": False}, {"type": "auto", "disable_parallel_tool_use": True}),
        (
            {"tool_choice": "required", "parallel_tool_calls": False},
            {"type": "any", "disable_parallel_tool_use": True},
        ),
    ],
)
def test_tool_choice(extra: dict[str, Any], choice: dict[str, Any]) -> None:
    native, _ = ADAPTER.build(
        {"messages": [{"role": "user", "content": "x"}], "tools": TOOLS, **extra}
    )
    assert native["tool_choice"] == choice


def test_none_drops_the_tools() -> None:
    native, _ = ADAPTER.build(
        {"messages": [{"role": "user", "content": "x"}], "tools": TOOLS, "tool_choice": "none"}
    )
    assert "tools" not in native


def test_knobs_stop_and_thinking() -> None:
    hello = [{"role": "user", "content": "x"}]
    knobs = {"temperature": 0.3, "top_p": 0.9, "top_k": 40, "stop": "END", "user": "agent-7"}
    native, _ = ADAPTER.build({"messages": hello, "max_completion_tokens": 20000, **knobs})
    assert native["max_tokens"] == 20000
    assert (native["temperature"], native["top_p"], native["top_k"]) == (0.3, 0.9, 40)
    assert native["stop_sequences"] == ["END"]
    assert native["metadata"] == {"user_id": "agent-7"}
    # Extended thinking takes no sampling changes: the clashing ones are left out.
    native, _ = ADAPTER.build(
        {"messages": hello, "max_tokens": 20000, "reasoning_effort": "medium", **knobs}
    )
    assert native["thinking"] == {"type": "enabled", "budget_tokens": 8192}
    assert not {"temperature", "top_p", "top_k"} & native.keys()
    assert native["stop_sequences"] == ["END"]
    native, _ = ADAPTER.build({"messages": hello, "max_tokens": 5000, "reasoning_effort": "high"})
    assert native["thinking"] == {"type": "enabled", "budget_tokens": 4999}
    native, _ = ADAPTER.build({"messages": hello, "reasoning_effort": "none"})
    assert native["thinking"] == {"type": "disabled"}


def test_the_models_configured_maximum_is_the_default_max_tokens() -> None:
    profile = ModelProfile("claude", ModelSettings(params=(("max_new_tokens", 1234),)))
    native, _ = ADAPTER.build({"messages": [{"role": "user", "content": "x"}]}, profile)
    assert native["max_tokens"] == 1234


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"temperature": 1.5}, "temperature"),
        ({"reasoning_effort": "high", "max_tokens": 500}, "max_tokens"),
        ({"reasoning_effort": "extreme"}, "reasoning_effort"),
        ({"n": 2}, "n"),
        ({"tool_choice": "sometimes", "tools": TOOLS}, "tool_choice"),
        (
            {
                "tool_choice": "required",
                "tools": TOOLS,
                "reasoning_effort": "low",
                "max_tokens": 5000,
            },
            "tool_choice",
        ),
    ],
)
def test_bad_values_name_the_field(body: dict[str, Any], param: str) -> None:
    assert ADAPTER.error({"messages": [{"role": "user", "content": "x"}], **body}).param == param


def test_errors_and_catalog() -> None:
    body = b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}'
    overloaded = anthropic.ADAPTER.classify_error(PROVIDER, 529, body, None)
    assert overloaded.error.status == 503 and overloaded.retryable
    auth = anthropic.ADAPTER.classify_error(
        PROVIDER,
        401,
        b'{"type":"error","error":{"type":"authentication_error",'
        b'"message":"invalid x-api-key sk-ant-secret"}}',
        None,
    )
    assert auth.error.status == 502 and "sk-ant-secret" not in auth.error.message
    listed = anthropic.read_models(
        b'{"data":[{"type":"model","id":"claude-sonnet-4-5","display_name":"Claude Sonnet 4.5"}]}'
    )
    assert listed == [
        {
            "id": "claude-sonnet-4-5",
            "object": "model",
            "owned_by": "anthropic",
            "name": "Claude Sonnet 4.5",
        }
    ]
