"""The Rust transcoder's tool-call parsing for token-event dialects (``deepinfra``, ``tgi``):
``tools="hermes" | "llama3" | "deepseek" | "mistral"``, through the built extension.

Fixtures are in tests/fixtures/tool_calls (provenance in README.md there): DeepInfra-style token
events whose texts split the markup in awkward places. Every stream is run whole, split in two
at every byte position (so inside multi-byte characters too) and one byte at a time; what the
client makes of it (content, reasoning, each call's id, name and concatenated arguments, the
finish reason, usage) and the transcoder's outcome must agree in every run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from openai.types.chat import ChatCompletion

from sluicegate._core import StreamTranscoder, aggregate
from tests.core_harness import Transcoding, events

RESPONSE_ID = "chatcmpl-tools01"
CREATED = 1700000000
MODEL = "deepinfra/Qwen/Qwen2.5-72B-Instruct"
FIXTURES = Path(__file__).parent / "fixtures" / "tool_calls"
CORE = Transcoding("deepinfra", MODEL, RESPONSE_ID, CREATED)


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def call(name: str, arguments: str, index: int) -> dict[str, Any]:
    return {"id": call_id(index), "type": "function", "name": name, "arguments": arguments}


def call_id(index: int) -> str:
    # The core's derived id: "call_" + 8 base-36 characters from the response id + "_" + index.
    hash_ = 0xCBF29CE484222325
    for byte in RESPONSE_ID.encode():
        hash_ = ((hash_ ^ byte) * 0x100000001B3) % 2**64
    digits = ""
    for _ in range(8):
        digits = "0123456789abcdefghijklmnopqrstuvwxyz"[hash_ % 36] + digits
        hash_ //= 36
    return f"call_{digits}_{index}"


def assert_json_objects(calls: list[dict[str, Any]]) -> None:
    for c in calls:
        assert isinstance(json.loads(c["arguments"]), dict), c


# --- each family, streaming ------------------------------------------------------------------


def test_hermes_stream_exact_bytes_and_meaning() -> None:
    out, seen, t = CORE.transcode_meaning(
        fixture("hermes_stream.sse"), tools="hermes", include_usage=True
    )
    head = (
        b'data: {"id":"chatcmpl-tools01","object":"chat.completion.chunk","created":1700000000,'
        b'"model":"deepinfra/Qwen/Qwen2.5-72B-Instruct","choices":[{"index":0,"delta":'
    )
    first, second = call_id(0).encode(), call_id(1).encode()
    assert out == (
        head + b'{"role":"assistant","content":"Let me check both.\\n","tool_calls":['
        b'{"index":0,"id":"' + first + b'","type":"function","function":{"name":"get_weather",'
        b'"arguments":"{\\"city\\": \\"Hu\xc3\xa9 \xf0\x9f\x98\x80\\", \\"days\\": [1, 2]}"}},'
        b'{"index":1,"id":"' + second + b'","type":"function","function":{"name":"get_time",'
        b'"arguments":"{}"}}]},"logprobs":null,"finish_reason":null}]}\n\n'
        + head
        + b'{},"logprobs":null,"finish_reason":"tool_calls"}]}\n\n'
        b'data: {"id":"chatcmpl-tools01","object":"chat.completion.chunk","created":1700000000,'
        b'"model":"deepinfra/Qwen/Qwen2.5-72B-Instruct","choices":[],"usage":{"prompt_tokens":40,'
        b'"completion_tokens":21,"total_tokens":61}}\n\n'
        b"data: [DONE]\n\n"
    )
    assert seen["content"] == "Let me check both.\n"
    assert seen["calls"] == [
        call("get_weather", '{"city": "Hué 😀", "days": [1, 2]}', 0),
        call("get_time", "{}", 1),
    ]
    assert t.finish_reason == "tool_calls"
    assert t.content_emitted is True and t.error is None


def test_hermes_one_event_per_read_streams_the_arguments() -> None:
    t = CORE.new(tools="hermes")
    deltas = []
    for event in events(fixture("hermes_stream.sse"))[:-1]:  # the token events, not the final
        out = t.feed(event)
        deltas.append([json.loads(f[6:])["choices"][0]["delta"] for f in out.split(b"\n\n") if f])
    # "<tool" and "_c": only possible markup, held; the name alone is not enough for a header,
    # the arguments must have started too. Then the header and the first fragment share a read.
    assert deltas[5:11] == [[]] * 6
    assert deltas[11] == [
        {
            "tool_calls": [
                {
                    "index": 0,
                    "id": call_id(0),
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Hu'},
                }
            ]
        }
    ]
    assert deltas[12] == [{"tool_calls": [{"index": 0, "function": {"arguments": "é 😀"}}]}]
    assert all("<tool" not in json.dumps(d, ensure_ascii=False) for d in deltas)


def test_llama3_stream() -> None:
    _, seen, t = CORE.transcode_meaning(fixture("llama3_stream.sse"), "tgi", tools="llama3")
    assert seen["content"] == ""
    assert seen["calls"] == [call("get_weather", '{"city": "Paris", "when": {"day": "today"}}', 0)]
    assert seen["finish_reason"] == "tool_calls" == t.finish_reason


def test_deepseek_stream_with_multibyte_markers() -> None:
    _, seen, t = CORE.transcode_meaning(
        fixture("deepseek_stream.sse"), tools="deepseek", logprobs=True
    )
    assert seen["content"] == "Let me look."
    assert seen["calls"] == [
        call("get_weather", '{"city": "東京"}', 0),
        call("get_time", "{}", 1),
    ]
    assert "\uff5c" not in seen["content"]  # the full-width bar of the markers
    # Every shown token has its entry; the markup's go with the tool-call chunks.
    assert len(seen["logprobs"]) == 10
    assert t.finish_reason == "tool_calls"


def test_mistral_stream() -> None:
    _, seen, _ = CORE.transcode_meaning(fixture("mistral_stream.sse"), tools="mistral")
    assert seen["content"] == ""
    assert seen["calls"] == [
        call("get_weather", '{"city": "Paris"}', 0),
        call("get_time", '{"tz": "Europe/Paris"}', 1),
    ]
    assert seen["finish_reason"] == "tool_calls"


def test_think_stop_and_tools_together() -> None:
    _, seen, t = CORE.transcode_meaning(
        fixture("hermes_think_stop_stream.sse"),
        tools="hermes",
        think="auto",
        stop=["<|im_end|>"],
        logprobs=True,
    )
    assert seen["reasoning"] == "\nNeed weather."
    assert seen["content"] == ""
    assert seen["calls"] == [call("get_weather", '{"city": "Oslo"}', 0)]
    # The stop string's tokens have no entries; the tags' and the markup's do.
    assert [e["token"] for e in seen["logprobs"]][:3] == ["<think>", "\nNeed weather", ".</think>"]
    assert len(seen["logprobs"]) == 5
    assert t.finish_reason == "tool_calls"


# --- failures --------------------------------------------------------------------------------


def test_malformed_markup_is_given_back_as_content() -> None:
    _, seen, t = CORE.transcode_meaning(fixture("hermes_malformed_stream.sse"), tools="hermes")
    assert seen["content"] == "Sure. <tool_call>\nnot json</tool_call>"
    assert seen["calls"] == []
    assert t.finish_reason == "stop"


def test_a_call_cut_off_by_max_tokens_ends_with_valid_arguments() -> None:
    _, seen, t = CORE.transcode_meaning(fixture("hermes_cut_stream.sse"), tools="hermes")
    assert seen["calls"] == [call("search", '{"q": "rust serde", "limit": 1}', 0)]
    assert seen["content"] == ""
    assert t.finish_reason == "length"


def test_a_stream_cut_inside_markup_releases_it() -> None:
    held = b"".join(events(fixture("hermes_stream.sse"))[:9])  # ... "<tool" "_c" "all>\n{"" "name"
    _, seen, t = CORE.transcode_meaning(held, tools="hermes")
    assert seen["content"] == 'Let me check both.\n<tool_call>\n{"name'
    assert seen["calls"] == []
    assert t.error["code"] == "upstream_stream_truncated"


def test_done_without_a_final_event_still_finishes_with_tool_calls() -> None:
    stream = b"".join(events(fixture("llama3_stream.sse"))[:-1]) + b"data: [DONE]\n\n"
    _, seen, t = CORE.transcode_meaning(stream, tools="llama3")
    assert seen["calls"][0]["name"] == "get_weather"
    assert_json_objects(seen["calls"])
    assert seen["finish_reason"] == "tool_calls"
    assert t.error is None


# --- plain answers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tools", "texts"),
    [
        ("hermes", ["a < b", " and <tool", "s>"]),
        ("llama3", ["{not", " a call"]),
        ("llama3", ["Hello", ' {"name": 1}']),
        ("deepseek", ["<\uff5ctool", " x"]),
        ("mistral", ["[1]", " note"]),
    ],
)
def test_text_that_looks_like_markup_is_content(tools: str, texts: list[str]) -> None:
    stream = b"".join(
        b'data: {"token": {"id": 1, "text": %s, "logprob": -1.0, "special": false}, '
        b'"generated_text": null, "details": null}\n\n' % json.dumps(text).encode()
        for text in texts
    ) + (
        b'data: {"token": {"id": 2, "text": "", "logprob": 0, "special": true}, '
        b'"generated_text": "", "details": {"finish_reason": "eos_token"}}\n\n'
    )
    _, seen, t = CORE.transcode_meaning(stream, tools=tools)
    assert seen["content"] == "".join(texts)
    assert seen["calls"] == []
    assert t.finish_reason == "stop"


def test_without_tools_nothing_changes() -> None:
    stream = fixture("hermes_stream.sse")
    plain, _ = CORE.run([stream])
    explicit, _ = CORE.run([stream], tools=None)
    assert plain == explicit
    assert b"<tool_call>" in plain


# --- not streaming ---------------------------------------------------------------------------


def test_body_gives_message_tool_calls() -> None:
    out, _, t = CORE.transcode_meaning(fixture("hermes_body.json"), stream=False, tools="hermes")
    ChatCompletion.model_validate_json(out)
    choice = json.loads(out)["choices"][0]
    assert choice["message"] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": call_id(0),
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Hue"}'},
            }
        ],
    }
    assert choice["finish_reason"] == "tool_calls" == t.finish_reason


def test_aggregated_stream_matches_the_stream() -> None:
    data = fixture("deepseek_stream.sse")
    _, seen, _ = CORE.transcode_meaning(data, tools="deepseek")
    body = aggregate(
        "deepinfra", data, MODEL, response_id=RESPONSE_ID, created=CREATED, tools="deepseek"
    )
    message = json.loads(body)["choices"][0]["message"]
    assert message["content"] == seen["content"]
    assert [
        {"id": c["id"], "type": c["type"], **c["function"]} for c in message["tool_calls"]
    ] == seen["calls"]


# --- the option ------------------------------------------------------------------------------


def test_unknown_format_is_a_value_error_naming_the_four() -> None:
    with pytest.raises(ValueError, match="hermes, llama3, deepseek, mistral"):
        StreamTranscoder("tgi", MODEL, response_id="r", created=0, tools="qwen")
    with pytest.raises(ValueError, match="hermes, llama3, deepseek, mistral"):
        aggregate("deepinfra", b"{}", MODEL, response_id="r", created=0, tools="")


@pytest.mark.parametrize(
    ("dialect", "stream"),
    [
        (
            "openai",
            b'data: {"choices":[{"index":0,"delta":{"content":"<tool_call>{}"},'
            b'"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n',
        ),
        ("ollama", b'{"message":{"content":"<tool_call>"},"done":true}\n'),
        (
            "anthropic",
            b'event: message_stop\ndata: {"type":"message_stop"}\n\n',
        ),
    ],
)
def test_other_dialects_accept_and_ignore_it(dialect: str, stream: bytes) -> None:
    plain, _ = CORE.run([stream], dialect)
    with_tools, _ = CORE.run([stream], dialect, tools="hermes")
    assert with_tools == plain
