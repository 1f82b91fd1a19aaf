"""DeepInfra native end to end: the openai package → gateway → simulator's /v1/inference.

Real sockets, the real Rust core (template rendering and the deepinfra dialect), the simulator
speaking DeepInfra's native wire format (tests/test_simulator_deepinfra.py pins that format).
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import orjson
import pytest

from sluicegate._core import ChatTemplate
from sluicegate.config import ProviderConfig
from sluicegate.simulator.script import token_text
from tests.conftest import Simulator, running_gateway
from tests.openai_streams import stream_parts

LLAMA = "meta-llama/Meta-Llama-3.1-8B-Instruct"
MODEL = f"deepinfra/{LLAMA}"


def deepinfra_provider(sim: Simulator) -> ProviderConfig:
    return ProviderConfig(
        name="deepinfra",
        kind="deepinfra",
        base_url=sim.base_url,  # native providers take the server root
        api_keys=("di-test-key",),
        source="test",
    )


@pytest.fixture(scope="module")
def gateway(simulator: Simulator) -> Iterator[str]:
    with running_gateway((deepinfra_provider(simulator),)) as url:
        yield url


@pytest.fixture
def client(gateway: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway, api_key="unused", max_retries=0, timeout=30)


def ask(text: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": "Be brief."}, {"role": "user", "content": text}]


def last_native_request(sim: Simulator) -> dict[str, Any]:
    requests = httpx.get(f"{sim.base_url}/sim/requests", timeout=10).json()["requests"]
    native = [r for r in requests if r["path"].startswith("/v1/inference/")]
    return native[-1]


def test_stream_text_usage_and_cost(client: openai.OpenAI, simulator: Simulator) -> None:
    content, reasoning, chunks = stream_parts(
        client,
        model=MODEL,
        messages=ask("Hi #sim tokens=6"),
        stream_options={"include_usage": True},
    )
    assert content == token_text(6)
    assert reasoning == ""
    assert "<|eot_id|>" not in content, "special tokens never reach the client"
    finishes = [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ]
    assert finishes == ["stop"]
    usage = chunks[-1].usage
    assert chunks[-1].choices == [] and usage is not None
    assert usage.completion_tokens == 7  # six words and the end-of-sequence token
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert usage.model_extra["estimated_cost"] > 0
    assert "estimated" not in usage.model_extra
    assert {c.model for c in chunks} == {MODEL}


def test_the_prompt_is_the_models_template_and_stops_at_its_end_of_turn(
    client: openai.OpenAI, simulator: Simulator
) -> None:
    messages = ask("What is 2+2? #sim tokens=2")
    client.chat.completions.create(
        model=MODEL,
        messages=messages,
        max_tokens=50,
        extra_body={"repetition_penalty": 1.2, "min_p": 0.1, "top_k": 7},
    )
    sent = last_native_request(simulator)
    assert sent["path"] == f"/v1/inference/{LLAMA}"
    assert sent["headers"]["authorization"] == "Bearer di-test-key"
    body = sent["body"]
    expected = ChatTemplate.builtin("llama3").render(orjson.dumps(messages))
    assert body["input"] == expected
    assert body["stop"] == ["<|eot_id|>", "<|eom_id|>"]
    assert body["max_new_tokens"] == 50 and body["top_k"] == 7
    assert body["repetition_penalty"] == 1.2 and body["min_p"] == 0.1
    assert body["stream"] is False


def test_non_stream_answer_with_usage_and_cost(client: openai.OpenAI) -> None:
    answer = client.chat.completions.create(model=MODEL, messages=ask("Hi #sim tokens=4"))
    assert answer.object == "chat.completion" and answer.model == MODEL
    assert answer.choices[0].message.content == token_text(4)
    assert answer.choices[0].finish_reason == "stop"
    assert answer.usage is not None and answer.usage.completion_tokens >= 4
    assert answer.usage.model_extra["estimated_cost"] > 0


def test_max_tokens_gives_length(client: openai.OpenAI) -> None:
    for stream in (False, True):
        if stream:
            _, _, chunks = stream_parts(
                client, model=MODEL, messages=ask("#sim tokens=9"), max_tokens=3
            )
            reasons = [c.choices[0].finish_reason for c in chunks if c.choices]
            assert reasons[-1] == "length"
        else:
            answer = client.chat.completions.create(
                model=MODEL, messages=ask("#sim tokens=9"), max_tokens=3
            )
            assert answer.choices[0].finish_reason == "length"
            assert answer.choices[0].message.content == token_text(3)


def test_reasoning_goes_to_reasoning_content(client: openai.OpenAI) -> None:
    model = "deepinfra/deepseek-ai/DeepSeek-R1"
    content, reasoning, _ = stream_parts(client, model=model, messages=ask("#sim think=4 tokens=3"))
    # The whitespace that follows </think> is dropped, as reasoning parsers do.
    assert content == token_text(3).lstrip()
    assert reasoning.strip() and "<think>" not in reasoning and "</think>" not in reasoning
    assert "think>" not in content
    answer = client.chat.completions.create(model=model, messages=ask("#sim think=4 tokens=3"))
    message = answer.choices[0].message
    assert message.content == token_text(3).lstrip()
    assert message.model_extra["reasoning_content"].strip() == reasoning.strip()


def test_a_stop_string_is_trimmed(client: openai.OpenAI) -> None:
    content, _, chunks = stream_parts(
        client, model=MODEL, messages=ask("#sim tokens=6 stop_at=2"), stop=["###"]
    )
    assert content == token_text(2)
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    answer = client.chat.completions.create(
        model=MODEL, messages=ask("#sim tokens=6 stop_at=2"), stop="###"
    )
    assert answer.choices[0].message.content == token_text(2)


def test_logprobs_when_asked(client: openai.OpenAI) -> None:
    _, _, chunks = stream_parts(client, model=MODEL, messages=ask("#sim tokens=3"), logprobs=True)
    entries = [
        e
        for c in chunks
        if c.choices and c.choices[0].logprobs
        for e in c.choices[0].logprobs.content or []
    ]
    assert "".join(e.token for e in entries) == token_text(3)
    assert all(e.logprob < 0 for e in entries)
    assert entries[0].bytes == list(entries[0].token.encode())
    _, _, plain = stream_parts(client, model=MODEL, messages=ask("#sim tokens=3"))
    assert all(c.choices[0].logprobs is None for c in plain if c.choices)


def test_usage_without_native_counts_is_estimated(client: openai.OpenAI) -> None:
    _, _, chunks = stream_parts(
        client,
        model=MODEL,
        messages=ask("#sim tokens=5 native_usage=0"),
        stream_options={"include_usage": True},
    )
    usage = chunks[-1].usage
    assert usage is not None and usage.model_extra.get("estimated") is True
    assert usage.completion_tokens == 6 and usage.prompt_tokens > 0


def test_an_in_stream_error_reaches_the_sdk(client: openai.OpenAI) -> None:
    received = ""
    with pytest.raises(openai.APIError) as info:
        for chunk in client.chat.completions.create(
            model=MODEL, messages=ask("#sim tokens=6 error_after=2"), stream=True
        ):
            if chunk.choices:
                received += chunk.choices[0].delta.content or ""
    assert received == token_text(2), "text sent before the error is kept"
    assert "error_after" in str(info.value.message)


def test_rate_limit_is_a_429_with_retry_after(client: openai.OpenAI) -> None:
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model=MODEL, messages=ask("#sim status=429 retry_after=7"))
    assert info.value.response.headers["retry-after"] == "7"


def test_model_ids_ignore_case_and_use_the_catalogs_spelling(
    client: openai.OpenAI, simulator: Simulator
) -> None:
    answer = client.chat.completions.create(
        model="deepinfra/META-LLAMA/meta-llama-3.1-8b-instruct", messages=ask("#sim tokens=1")
    )
    assert answer.choices[0].message.content == token_text(1)
    assert last_native_request(simulator)["path"] == f"/v1/inference/{LLAMA}"


def test_models_list_carries_context_and_pricing(client: openai.OpenAI) -> None:
    listed = {m.id: m for m in client.models.list()}
    llama = listed[MODEL]
    assert llama.model_extra["context_length"] > 0
    assert llama.model_extra["pricing"]["input_tokens"] > 0


def test_tools_for_a_family_without_a_tool_format_are_a_clear_400(client: openai.OpenAI) -> None:
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(
            model="deepinfra/google/gemma-2-9b-it",
            messages=[{"role": "user", "content": "hi"}],
            tools=tools,
        )
    assert info.value.code == "tools_not_supported"


def test_a_model_without_a_template_is_a_400_naming_the_fix(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="deepinfra/acme/unknown-base-7b", messages=ask("hi"))
    assert info.value.code == "chat_template_missing"
    assert "chat_template" in info.value.message


@pytest.mark.parametrize("encoding", ["float", "base64"])
def test_embeddings(client: openai.OpenAI, simulator: Simulator, encoding: str) -> None:
    raw = httpx.post(
        f"{client.base_url}embeddings",
        json={
            "model": "deepinfra/BAAI/bge-base-en-v1.5",
            "input": ["a", "bb"],
            "encoding_format": encoding,
        },
        timeout=30,
    ).json()
    assert [d["index"] for d in raw["data"]] == [0, 1]
    assert raw["usage"]["prompt_tokens"] > 0 and raw["usage"]["estimated_cost"] > 0
    assert last_native_request(simulator)["body"] == {"inputs": ["a", "bb"]}
    vectors = client.embeddings.create(model="deepinfra/BAAI/bge-base-en-v1.5", input=["a", "bb"])
    first = raw["data"][0]["embedding"]
    if encoding == "base64":
        data = base64.b64decode(first)
        first = list(struct.unpack(f"<{len(data) // 4}f", data))
    assert first == pytest.approx(vectors.data[0].embedding, rel=1e-6)
