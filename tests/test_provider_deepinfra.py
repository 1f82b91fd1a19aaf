"""The DeepInfra-native adapter on its own: request mapping, checks, error bodies, catalog items.

Pure functions, no sockets; the end-to-end path through the simulator is in
tests/test_deepinfra_e2e.py.
"""

from __future__ import annotations

import base64
import struct
from typing import Any

import orjson
import pytest

from sluicegate._core import ChatTemplate
from sluicegate.config import ModelSettings, ProviderConfig
from sluicegate.embeddings import parse_embeddings_request
from sluicegate.errors import GatewayError
from sluicegate.providers import ModelProfile, deepinfra
from sluicegate.providers.failures import error_fields
from tests.provider_requests import ChatBuilds

PROVIDER = ProviderConfig(
    name="deepinfra", kind="deepinfra", base_url="http://127.0.0.1:9", api_keys=("di-secret",)
)
LLAMA = "meta-llama/Meta-Llama-3.1-8B-Instruct"


def profile(
    model: str = LLAMA, settings: ModelSettings | None = None, family: str = "llama3"
) -> ModelProfile:
    return ModelProfile(model, settings or ModelSettings(), ChatTemplate.builtin(family))


ADAPTER = ChatBuilds(
    deepinfra.build_chat, PROVIDER, profile(), "di-secret", {"model": "deepinfra/x"}
)


HELLO = [{"role": "user", "content": "Hello!"}]


def test_the_prompt_is_the_rendered_template_and_the_url_keeps_the_slashes() -> None:
    native, built = ADAPTER.build({"messages": HELLO, "stream": True})
    assert built.url == f"http://127.0.0.1:9/v1/inference/{LLAMA}"
    assert built.dialect == "deepinfra" and built.stream
    assert native["input"].startswith("<|begin_of_text|><|start_header_id|>system<|end_header_id|>")
    assert native["input"].endswith(
        "<|start_header_id|>user<|end_header_id|>\n\nHello!<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
    )
    assert native["stream"] is True
    assert native["stop"] == ["<|eot_id|>", "<|eom_id|>"]
    assert ("authorization", "Bearer di-secret") in built.headers
    assert ("accept", "text/event-stream") in built.headers
    assert built.transcoder["think"] == "auto"
    assert built.transcoder["stop"] == native["stop"]
    assert built.transcoder["prompt_tokens"] == len(native["input"]) // 4


def test_every_native_knob_is_mapped() -> None:
    body = {
        "messages": HELLO,
        "max_completion_tokens": 64,
        "temperature": 0.3,
        "top_p": 0.9,
        "top_k": 40,
        "min_p": 0.05,
        "repetition_penalty": 1.1,
        "presence_penalty": 0.5,
        "frequency_penalty": -0.5,
        "seed": 7,
        "stop": "###",
        "response_format": {"type": "json_object"},
        "logprobs": True,
        "top_logprobs": 3,
        "n": 2,
    }
    native, built = ADAPTER.build(body)
    assert {k: v for k, v in native.items() if k != "input"} == {
        "stream": False,
        "max_new_tokens": 64,
        "temperature": 0.3,
        "top_p": 0.9,
        "top_k": 40,
        "min_p": 0.05,
        "repetition_penalty": 1.1,
        "presence_penalty": 0.5,
        "frequency_penalty": -0.5,
        "seed": 7,
        "stop": ["###", "<|eot_id|>", "<|eom_id|>"],
        "response_format": {"type": "json_object"},
        "top_n_tokens": 3,
        "num_responses": 2,
    }
    assert built.transcoder["logprobs"] is True
    assert built.transcoder["max_tokens"] == 64


def test_configured_params_are_defaults_a_request_overrides() -> None:
    settings = ModelSettings(params=(("repetition_penalty", 1.2), ("top_k", 50)), stop=("END",))
    native, _ = ADAPTER.build(
        {"messages": HELLO, "top_k": 5, "max_tokens": 9}, profile(settings=settings)
    )
    assert native["repetition_penalty"] == 1.2
    assert native["top_k"] == 5
    assert native["max_new_tokens"] == 9
    assert native["stop"][-1] == "END"


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("top_k", -1, "between 0 and 100000"),
        ("top_k", 2.5, "whole number"),
        ("min_p", 1.5, "between 0 and 1"),
        ("repetition_penalty", 0, "between 0.01 and 5"),
        ("repetition_penalty", "1.1", "must be a number"),
        ("seed", 1.5, "whole number"),
        ("top_logprobs", 50, "0 to 20"),
        ("chat_template_kwargs", [1], "object of template variables"),
    ],
)
def test_values_out_of_range_name_the_field(field: str, value: Any, words: str) -> None:
    err = ADAPTER.error({"messages": HELLO, field: value})
    assert err.param == field and words in err.message


def test_n_above_one_cannot_stream_and_is_at_most_two() -> None:
    assert (
        "cannot be streamed" in ADAPTER.error({"messages": HELLO, "n": 2, "stream": True}).message
    )
    assert "at most 2" in ADAPTER.error({"messages": HELLO, "n": 3}).message


def test_json_schema_is_refused_with_the_alternative() -> None:
    fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}}
    err = ADAPTER.error({"messages": HELLO, "response_format": fmt})
    assert err.param == "response_format" and "json_object" in err.message


def test_tools_need_a_family_with_a_known_tool_format() -> None:
    tools = [{"type": "function", "function": {"name": "f", "parameters": {}}}]
    err = ADAPTER.error(
        {"messages": HELLO, "tools": tools}, profile("google/gemma-2-9b-it", family="gemma")
    )
    assert err.code == "tools_not_supported" and "tool_format" in err.message
    turns = [*HELLO, {"role": "tool", "tool_call_id": "c", "content": "{}"}]
    gemma = profile("google/gemma-2-9b-it", family="gemma")
    assert ADAPTER.error({"messages": turns}, gemma).code == "tools_not_supported"


def test_text_parts_are_joined_images_refused_developer_is_system() -> None:
    parts = [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]
    native, _ = ADAPTER.build(
        {
            "messages": [
                {"role": "developer", "content": "Be brief."},
                {"role": "user", "content": parts},
            ]
        }
    )
    assert "system<|end_header_id|>\n\n" in native["input"] and "Be brief." in native["input"]
    assert "a\nb<|eot_id|>" in native["input"]
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}}
    err = ADAPTER.error({"messages": [{"role": "user", "content": [image]}]})
    assert err.code == "unsupported_content" and err.param == "messages[0].content"


def test_a_template_refusal_is_a_400_that_says_what_to_fix() -> None:
    turns = [{"role": "system", "content": "s"}, {"role": "user", "content": "hi"}]
    err = ADAPTER.error({"messages": turns}, profile("google/gemma-2-9b-it", family="gemma"))
    assert err.code == "chat_template_error" and "gemma" in err.message


def test_a_prompt_that_opens_a_think_block_starts_in_reasoning() -> None:
    qwen3 = profile("Qwen/Qwen3-32B", family="qwen3")
    _, built = ADAPTER.build({"messages": HELLO}, qwen3)
    assert built.transcoder["think"] == "auto"  # Qwen3 writes its own <think>
    opening = ChatTemplate(
        "{% for m in messages %}{{ m.content }}{% endfor %}<|Assistant|><think>\n", name="r1"
    )
    _, built = ADAPTER.build({"messages": HELLO}, ModelProfile("r1", ModelSettings(), opening))
    assert built.transcoder["think"] == "open"


def test_reasoning_effort_and_template_kwargs_reach_the_template() -> None:
    qwen3 = profile("Qwen/Qwen3-32B", family="qwen3")
    native, _ = ADAPTER.build({"messages": HELLO, "reasoning_effort": "none"}, qwen3)
    # Qwen3 with thinking switched off closes an empty think block in the prompt itself.
    assert native["input"].endswith("<think>\n\n</think>\n\n")
    kwargs = {"enable_thinking": False}
    native, _ = ADAPTER.build({"messages": HELLO, "chat_template_kwargs": kwargs}, qwen3)
    assert native["input"].endswith("<think>\n\n</think>\n\n")
    native, _ = ADAPTER.build({"messages": HELLO}, qwen3)
    assert native["input"].endswith("<|im_start|>assistant\n")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"error": "Model not found"}', "Model not found"),
        (b'{"error": {"message": "Not authenticated", "code": null}}', "Not authenticated"),
        (
            b'{"detail": [{"loc": ["body", "input"], "msg": "Field required"}]}',
            "input: Field required",
        ),
        (b'{"detail": "Rate limited"}', "Rate limited"),
        (b'{"error_type": "validation_error", "error_message": "bad"}', "bad"),
        (b"<html>", None),
        # The other dialects' shapes go through the same reader.
        (
            b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}',
            "Overloaded",
        ),
        (b'{"error":"Input validation error","error_type":"validation"}', "Input validation error"),
        (b'{"message": "bare"}', "bare"),
    ],
)
def test_error_bodies_give_their_message(body: bytes, message: str | None) -> None:
    assert error_fields(body)[0] == message


def test_upstream_errors_are_mapped_never_passed_through() -> None:
    auth = deepinfra.ADAPTER.classify_error(PROVIDER, 401, b'{"error":"bad key di-secret"}', None)
    assert auth.error.status == 502 and "di-secret" not in auth.error.message
    limited = deepinfra.ADAPTER.classify_error(PROVIDER, 429, b'{"error":"Rate limited"}', "3")
    assert limited.error.status == 429 and ("retry-after", "3") in limited.error.headers
    bad = deepinfra.ADAPTER.classify_error(
        PROVIDER, 422, b'{"detail":[{"loc":["body","top_k"],"msg":"too big"}]}', None
    )
    assert bad.error.status == 400 and "top_k: too big" in bad.error.message
    assert not bad.retryable


def test_deepinfras_over_long_input_500_is_a_context_error() -> None:
    body = (
        b'{"error": {"message": "Requested input length 99009 exceeds maximum input length 8192"}}'
    )
    failure = deepinfra.ADAPTER.classify_error(PROVIDER, 500, body, None)
    assert failure.error.status == 400 and failure.error.code == "context_length_exceeded"
    assert "maximum context length" in failure.error.message and not failure.retryable


def test_catalog_items_lift_their_metadata() -> None:
    item = {
        "id": "Qwen/Qwen3-Max",
        "object": "model",
        "metadata": {
            "context_length": 262144,
            "max_tokens": 32768,
            "pricing": {"input_tokens": 1.2, "output_tokens": 6.0},
            "tags": ["chat"],
            "description": "d",
        },
    }
    entry = deepinfra.model_entry(item)
    assert "metadata" not in entry
    assert entry["context_length"] == 262144 and entry["max_tokens"] == 32768
    assert entry["pricing"] == {"input_tokens": 1.2, "output_tokens": 6.0}
    assert deepinfra.model_entry({"id": "x", "metadata": None}) == {"id": "x"}


def test_embeddings_request_and_answer() -> None:
    wanted = parse_embeddings_request(
        b'{"model": "deepinfra/BAAI/bge-base-en-v1.5", "input": ["a", "b"], '
        b'"encoding_format": "base64"}'
    )
    prof = ModelProfile("BAAI/bge-base-en-v1.5", ModelSettings())
    built = deepinfra.build_embeddings(PROVIDER, prof, wanted, None)
    assert built.url.endswith("/v1/inference/BAAI/bge-base-en-v1.5")
    assert orjson.loads(built.body) == {"inputs": ["a", "b"]}
    native = orjson.dumps(
        {
            "embeddings": [[0.5, -1.0], [0.25, 2.0]],
            "input_tokens": 4,
            "inference_status": {"status": "succeeded", "cost": 2e-07},
        }
    )
    answer = orjson.loads(deepinfra.read_embeddings(wanted, native))
    assert answer["model"] == "deepinfra/BAAI/bge-base-en-v1.5"
    assert answer["usage"] == {"prompt_tokens": 4, "total_tokens": 4, "estimated_cost": 2e-07}
    first = answer["data"][0]
    assert first["index"] == 0
    assert struct.unpack("<2f", base64.b64decode(first["embedding"])) == (0.5, -1.0)
    with pytest.raises(GatewayError) as info:
        deepinfra.read_embeddings(wanted, b'{"embeddings": [[1.0]]}')
    assert info.value.status == 502
    with pytest.raises(GatewayError) as info:
        deepinfra.build_embeddings(
            PROVIDER,
            prof,
            parse_embeddings_request(b'{"model": "m", "input": "a", "dimensions": 64}'),
            None,
        )
    assert info.value.param == "dimensions"
