"""TGI native end to end: the openai package → gateway → the simulator's /generate_stream."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import orjson
import pytest

from sluicegate._core import ChatTemplate
from sluicegate.config import ProviderConfig
from sluicegate.simulator.script import token_text
from tests.conftest import Simulator, running_gateway
from tests.openai_streams import last_finish_reason, stream_parts

LLAMA = "meta-llama/Llama-3.1-8B-Instruct"
MODEL = f"tgi/{LLAMA}"


@pytest.fixture(scope="module")
def client(simulator: Simulator) -> Iterator[openai.OpenAI]:
    provider = ProviderConfig("tgi", "tgi", simulator.base_url, (), source="test")
    with running_gateway((provider,)) as url:
        yield openai.OpenAI(base_url=url, api_key="unused", max_retries=0, timeout=30)


def ask(text: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": "Be brief."}, {"role": "user", "content": text}]


def last_request(sim: Simulator, path: str) -> dict[str, Any]:
    return [r for r in sim.state.recent if r["path"] == path][-1]


def test_stream_with_usage_and_the_rendered_prompt(
    client: openai.OpenAI, simulator: Simulator
) -> None:
    messages = ask("Hi #sim tokens=5")
    content, reasoning, chunks = stream_parts(
        client,
        model=MODEL,
        messages=messages,
        temperature=0,
        top_p=1,
        stream_options={"include_usage": True},
    )
    assert content == token_text(5) and reasoning == ""
    assert last_finish_reason(chunks) == "stop"
    usage = chunks[-1].usage
    assert usage is not None and usage.completion_tokens >= 5 and usage.prompt_tokens > 0
    assert "estimated" not in usage.model_extra, "TGI reported the counts (details: true)"
    sent = last_request(simulator, "/generate_stream")["body"]
    assert sent["inputs"] == ChatTemplate.builtin("llama3").render(orjson.dumps(messages))
    assert sent["parameters"]["details"] is True
    assert sent["parameters"]["do_sample"] is False
    assert "temperature" not in sent["parameters"] and "top_p" not in sent["parameters"]


def test_non_stream_and_length(client: openai.OpenAI, simulator: Simulator) -> None:
    answer = client.chat.completions.create(
        model=MODEL, messages=ask("#sim tokens=9"), max_tokens=3
    )
    assert answer.choices[0].message.content == token_text(3)
    assert answer.choices[0].finish_reason == "length"
    assert last_request(simulator, "/generate")["body"]["parameters"]["max_new_tokens"] == 3


def test_reasoning_and_stop(client: openai.OpenAI) -> None:
    content, reasoning, _ = stream_parts(client, model=MODEL, messages=ask("#sim think=3 tokens=2"))
    assert content == token_text(2).lstrip() and reasoning.strip()
    content, _, chunks = stream_parts(
        client, model=MODEL, messages=ask("#sim tokens=6 stop_at=2"), stop=["###"]
    )
    assert content == token_text(2)
    assert last_finish_reason(chunks) == "stop"


def test_errors(client: openai.OpenAI) -> None:
    with pytest.raises(openai.APIError):
        stream_parts(client, model=MODEL, messages=ask("#sim tokens=6 error_after=2"))
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model=MODEL, messages=ask("hi"), extra_body={"min_p": 0.1})
    assert info.value.param == "min_p"


def test_the_served_model_is_listed(client: openai.OpenAI) -> None:
    ids = {m.id for m in client.models.list()}
    assert any(i.startswith("tgi/") for i in ids), ids
