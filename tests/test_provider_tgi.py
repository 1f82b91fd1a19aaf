"""The TGI adapter on its own: TGI's validation rules applied before anything is sent."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from sluicegate._core import ChatTemplate
from sluicegate.config import ModelSettings, ProviderConfig
from sluicegate.errors import GatewayError
from sluicegate.providers import ModelProfile, tgi
from tests.provider_requests import ChatBuilds

PROVIDER = ProviderConfig(name="tgi", kind="tgi", base_url="http://127.0.0.1:9", api_keys=())
PROFILE = ModelProfile(
    "meta-llama/Llama-3.1-8B-Instruct", ModelSettings(), ChatTemplate.builtin("llama3")
)
HELLO = [{"role": "user", "content": "Hello!"}]


ADAPTER = ChatBuilds(tgi.build_chat, PROVIDER, PROFILE, None, {"model": "tgi/x", "messages": HELLO})


def test_stream_and_not_pick_the_endpoint_and_always_ask_for_details() -> None:
    native, built = ADAPTER.build({"stream": True})
    assert built.url == "http://127.0.0.1:9/generate_stream" and built.dialect == "tgi"
    assert native["inputs"].endswith("<|start_header_id|>assistant<|end_header_id|>\n\n")
    assert native["parameters"] == {"details": True, "stop": ["<|eot_id|>", "<|eom_id|>"]}
    assert not any(name == "authorization" for name, _ in built.headers)
    _, built = ADAPTER.build({})
    assert built.url == "http://127.0.0.1:9/generate"


def test_temperature_zero_is_greedy_and_top_p_one_is_left_out() -> None:
    native, _ = ADAPTER.build({"temperature": 0, "top_p": 1, "top_k": 0})
    assert native["parameters"] == {
        "details": True,
        "do_sample": False,
        "stop": ["<|eot_id|>", "<|eom_id|>"],
    }
    native, _ = ADAPTER.build(
        {"temperature": 0.7, "top_p": 0.9, "top_k": 40, "seed": 3, "max_tokens": 5}
    )
    params = native["parameters"]
    assert (params["temperature"], params["do_sample"], params["top_p"]) == (0.7, True, 0.9)
    assert (params["top_k"], params["seed"], params["max_new_tokens"]) == (40, 3, 5)


def test_at_most_four_stop_sequences_the_clients_first() -> None:
    native, built = ADAPTER.build({"stop": ["a", "b", "c"]})
    assert native["parameters"]["stop"] == ["a", "b", "c", "<|eot_id|>"]
    assert built.transcoder["stop"] == ["a", "b", "c", "<|eot_id|>", "<|eom_id|>"]


def test_response_formats_become_grammars() -> None:
    native, _ = ADAPTER.build({"response_format": {"type": "json_object"}})
    assert native["parameters"]["grammar"] == {"type": "json", "value": {"type": "object"}}
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}
    native, _ = ADAPTER.build({"response_format": fmt})
    assert native["parameters"]["grammar"] == {"type": "json", "value": schema}


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("min_p", 0.1, "use top_p or top_k"),
        ("presence_penalty", 0.5, "frequency_penalty"),
        ("n", 2, "'n' greater than 1"),
        ("top_k", -3, "between 0 and 100000"),
        ("repetition_penalty", 9, "between 0.01 and 5"),
    ],
)
def test_what_tgi_cannot_do_is_a_400_naming_the_field(field: str, value: Any, words: str) -> None:
    with pytest.raises(GatewayError) as info:
        ADAPTER.build({field: value})
    assert info.value.status == 400 and info.value.param == field
    assert words in info.value.message


def test_configured_defaults_apply_the_same_rules() -> None:
    settings = ModelSettings(params=(("temperature", 0), ("max_new_tokens", 64)))
    profile = ModelProfile(PROFILE.upstream_model, settings, PROFILE.template)
    native, _ = ADAPTER.build({}, profile)
    assert native["parameters"]["do_sample"] is False
    assert native["parameters"]["max_new_tokens"] == 64


def test_tgi_errors_are_mapped() -> None:
    body = orjson.dumps(
        {"error": "Input validation error: `top_p` must be > 0.0 and < 1.0", "error_type": "x"}
    )
    failure = tgi.classify_error(PROVIDER, 422, body, None)
    assert failure.error.status == 400 and "top_p" in failure.error.message
    assert not failure.retryable
    failure = tgi.classify_error(
        PROVIDER, 424, b'{"error":"Request failed during generation"}', None
    )
    assert failure.retryable and failure.error.status == 502
    overloaded = tgi.classify_error(PROVIDER, 429, b'{"error":"Model is overloaded"}', None)
    assert overloaded.error.status == 429 and overloaded.retryable
    long = orjson.dumps(
        {"error": "Input validation error: `inputs` tokens + `max_new_tokens` must be <= 4096"}
    )
    assert tgi.classify_error(PROVIDER, 422, long, None).error.code == "context_length_exceeded"


def test_info_is_the_catalog() -> None:
    info = b'{"model_id":"meta-llama/Llama-3.1-8B-Instruct","max_total_tokens":8192}'
    assert tgi.read_models(info) == [
        {
            "id": "meta-llama/Llama-3.1-8B-Instruct",
            "object": "model",
            "owned_by": "tgi",
            "context_length": 8192,
        }
    ]
    assert tgi.read_models(b"[]") is None
