"""The Rust transcoder, dialect ``anthropic`` (the Messages API ``/v1/messages``), through the
built extension.

Fixtures are in tests/fixtures/anthropic (provenance in README.md there). Every stream and body
is run whole, split in two at every byte position, and one byte at a time: one OpenAI chunk per
Anthropic delta, so the output bytes and the outcome must be identical in all of them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sluicegate._core import DIALECTS, StreamTranscoder, aggregate
from tests.core_harness import DONE, Transcoding, completion, events

RESPONSE_ID = "chatcmpl-gw0004"
CREATED = 1700000000
MODEL = "anthropic/claude-sonnet-4-5"

FIXTURES = Path(__file__).parent / "fixtures" / "anthropic"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


BASIC_TEXT = fixture("basic_text.sse")
TOOL_USE = fixture("tool_use.sse")
THINKING_REFUSAL = fixture("thinking_refusal.sse")
PARALLEL_TOOLS = fixture("parallel_tools.sse")
ERROR_MIDSTREAM = fixture("error_midstream.sse")
CACHE_USAGE = fixture("cache_usage.sse")
TRUNCATED = fixture("truncated.sse")
MESSAGE_TEXT = fixture("message_text.json")
MESSAGE_TOOL_USE = fixture("message_tool_use.json")
MESSAGE_THINKING = fixture("message_thinking.json")
ERROR_BODY = fixture("error_body.json")

CORE = Transcoding("anthropic", MODEL, RESPONSE_ID, CREATED)


def tool_arguments(out: bytes) -> dict[int, str]:
    """Each call's arguments, concatenated by index as OpenAI clients do."""
    calls: dict[int, str] = {}
    for delta in CORE.deltas(out):
        for call in delta.get("tool_calls", []):
            calls[call["index"]] = calls.get(call["index"], "") + call["function"]["arguments"]
    return calls


# --- streaming -------------------------------------------------------------------------------


def test_basic_text_stream_exact_bytes() -> None:
    out, t = CORE.transcode(BASIC_TEXT, include_usage=True)
    usage = b'{"prompt_tokens":11,"completion_tokens":6,"total_tokens":17}'
    assert out == (
        CORE.delta_chunk(b'"role":"assistant","content":"Hello"')
        + CORE.delta_chunk(b'"content":" there"')
        + CORE.delta_chunk(b'"content":"!"')
        + CORE.finish_chunk("stop")
        + CORE.usage_chunk(usage)
        + DONE
    )
    CORE.chunks(out)
    assert t.usage == {"prompt_tokens": 11, "completion_tokens": 6, "total_tokens": 17}
    assert (t.finish_reason, t.content_emitted, t.error, t.done) == ("stop", True, None, True)


def test_usage_chunk_only_when_asked() -> None:
    out, t = CORE.transcode(BASIC_TEXT)
    assert b'"usage"' not in out
    assert out.endswith(CORE.finish_chunk("stop") + DONE)
    assert t.usage == {"prompt_tokens": 11, "completion_tokens": 6, "total_tokens": 17}


def test_text_then_tool_use_stream() -> None:
    out, t = CORE.transcode(TOOL_USE, include_usage=True)
    assert CORE.deltas(out) == [
        {"role": "assistant", "content": "I'll check the weather in Paris."},
        {
            "tool_calls": [
                {
                    "index": 0,
                    "id": "toolu_01NRLabsLyVHZPKxbKvkfSMn",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": ""},
                }
            ]
        },
        # The first fragment, "", sends nothing.
        {"tool_calls": [{"index": 0, "function": {"arguments": '{"locati'}}]},
        {"tool_calls": [{"index": 0, "function": {"arguments": 'on": "P'}}]},
        {"tool_calls": [{"index": 0, "function": {"arguments": "ar"}}]},
        {"tool_calls": [{"index": 0, "function": {"arguments": 'is"}'}}]},
    ]
    # Call 0 although Anthropic's block index is 1: calls count tool blocks only.
    assert tool_arguments(out) == {0: '{"location": "Paris"}'}
    parsed = CORE.chunks(out)
    assert parsed[-2]["choices"][0]["finish_reason"] == "tool_calls"
    assert parsed[-1]["usage"] == {
        "prompt_tokens": 377,
        "completion_tokens": 65,
        "total_tokens": 442,
        "prompt_tokens_details": {"cached_tokens": 0},
    }
    assert (t.finish_reason, t.content_emitted) == ("tool_calls", True)


def test_thinking_with_trailing_spaces_signature_dropped_and_a_refusal() -> None:
    out, t = CORE.transcode(THINKING_REFUSAL, include_usage=True)
    usage = (
        b'{"prompt_tokens":24,"completion_tokens":70,"total_tokens":94,'
        b'"completion_tokens_details":{"reasoning_tokens":67}}'
    )
    assert out == (
        CORE.delta_chunk(b'"role":"assistant","reasoning_content":"Simple educ"')
        + CORE.finish_chunk("content_filter")
        + CORE.usage_chunk(usage)
        + DONE
    )
    CORE.chunks(out)
    assert t.finish_reason == "content_filter"
    assert t.usage == {
        "prompt_tokens": 24,
        "completion_tokens": 70,
        "total_tokens": 94,
        "completion_tokens_details": {"reasoning_tokens": 67},
    }


def test_parallel_tool_calls_and_a_tool_without_input() -> None:
    out, t = CORE.transcode(PARALLEL_TOOLS, include_usage=True)
    headers = [
        call for delta in CORE.deltas(out) for call in delta.get("tool_calls", []) if "id" in call
    ]
    assert [(h["index"], h["id"], h["function"]["name"]) for h in headers] == [
        (0, "toolu_01A", "get_weather"),
        (1, "toolu_01B", "get_time"),
    ]
    assert tool_arguments(out) == {0: '{"city": "Hué"}', 1: "{}"}
    # The "{}" goes out when the empty block stops, before the finish.
    assert CORE.deltas(out)[-1] == {"tool_calls": [{"index": 1, "function": {"arguments": "{}"}}]}
    assert t.finish_reason == "tool_calls"
    assert t.usage == {"prompt_tokens": 512, "completion_tokens": 48, "total_tokens": 560}


def test_whole_input_at_block_start_is_the_arguments() -> None:
    """A server that sends the tool's input whole in the block start and no deltas."""
    stream = (
        events(BASIC_TEXT)[0]
        + b'event: content_block_start\ndata: {"type":"content_block_start","index":0,'
        b'"content_block":{"type":"tool_use","id":"toolu_1","name":"f",'
        b'"input":{"a": [1, 2.50], "b": "x y"}}}\n\n'
        b'event: content_block_stop\ndata: {"type":"content_block_stop","index":0}\n\n'
        + events(TOOL_USE)[-2]
        + events(TOOL_USE)[-1]
    )
    out, _ = CORE.transcode(stream)
    assert tool_arguments(out) == {0: '{"a":[1,2.50],"b":"x y"}'}


def test_cache_usage() -> None:
    out, t = CORE.transcode(CACHE_USAGE, include_usage=True)
    usage = {
        "prompt_tokens": 21 + 188 + 2048,
        "completion_tokens": 12,
        "total_tokens": 21 + 188 + 2048 + 12,
        "prompt_tokens_details": {"cached_tokens": 2048},
    }
    assert CORE.chunks(out)[-1]["usage"] == usage == t.usage
    assert t.finish_reason == "length"


@pytest.mark.parametrize(
    ("stop_reason", "finish_reason"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("pause_turn", "stop"),
        ("max_tokens", "length"),
        ("model_context_window_exceeded", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        ("something_new", "stop"),
    ],
)
def test_stop_reasons(stop_reason: str, finish_reason: str) -> None:
    stream = BASIC_TEXT.replace(b'"end_turn"', json.dumps(stop_reason).encode())
    out, t = CORE.run([stream])
    assert CORE.chunks(out)[-1]["choices"][0]["finish_reason"] == finish_reason == t.finish_reason


@pytest.mark.parametrize(
    "variant",
    [
        pytest.param(lambda s: s.replace(b"\n", b"\r\n"), id="crlf"),
        pytest.param(
            lambda s: b"\n".join(line for line in s.split(b"\n") if not line.startswith(b"event:")),
            id="no-event-lines",
        ),
        pytest.param(lambda s: s.replace(b"\n\n", b"\n\n: keep-alive\n\n"), id="comments"),
        pytest.param(lambda s: s.replace(b"data: ", b"data:"), id="no-space"),
        pytest.param(lambda s: b"\xef\xbb\xbf" + s.rstrip(b"\n"), id="bom-no-final-blank-line"),
    ],
)
def test_framing_variants_give_the_same_bytes(variant: Any) -> None:
    expected, _ = CORE.run([TOOL_USE], include_usage=True)
    out, _ = CORE.transcode(variant(TOOL_USE), include_usage=True)
    assert out == expected


def test_message_start_goes_out_with_the_first_delta() -> None:
    t = CORE.new()
    for event in events(BASIC_TEXT)[:3]:  # message_start, the block start, ping
        assert t.feed(event) == b""
    assert t.content_emitted is False
    assert t.feed(events(BASIC_TEXT)[3]) == CORE.delta_chunk(
        b'"role":"assistant","content":"Hello"'
    )


def test_events_after_message_stop_are_ignored() -> None:
    out, t = CORE.transcode(BASIC_TEXT + events(BASIC_TEXT)[3] + b"data: {garbage\n\n")
    expected, _ = CORE.run([BASIC_TEXT])
    assert out == expected and t.error is None


# --- streaming: failures ---------------------------------------------------------------------


def test_error_event_mid_stream() -> None:
    out, t = CORE.transcode(ERROR_MIDSTREAM, include_usage=True, prompt_tokens=99)
    parsed = CORE.chunks(out)
    assert parsed[0]["choices"][0]["delta"] == {"role": "assistant", "content": "Once upon"}
    assert parsed[1] == {"error": t.error}
    assert len(parsed) == 2
    assert t.error == {
        "message": "The upstream reported an error: Overloaded. The model is busy: retry later, "
        "or use another model or provider.",
        "type": "overloaded_error",
        "param": None,
        "code": "upstream_overloaded",
    }
    assert t.finish_reason is None and t.content_emitted is True
    # Anthropic's prompt count; no final output count, so the pieces sent, estimated.
    assert t.usage == {
        "prompt_tokens": 15,
        "completion_tokens": 1,
        "total_tokens": 16,
        "estimated": True,
    }


def test_other_error_types_are_stream_errors() -> None:
    error = (
        b'event: error\ndata: {"type":"error","error":{"type":"api_error",'
        b'"message":"Internal server error"}}\n\n'
    )
    out, t = CORE.transcode(events(BASIC_TEXT)[0] + error)
    assert CORE.chunks(out) == [{"error": t.error}]
    assert (t.error["type"], t.error["code"]) == ("api_error", "upstream_stream_error")
    assert t.error["message"].startswith(
        "The upstream reported an error: Internal server error. Retry"
    )
    assert t.content_emitted is False


def test_an_error_object_without_an_event_line_is_an_error_too() -> None:
    unnamed = (
        b'data: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n'
    )
    _, t = CORE.transcode(unnamed)
    assert t.error["code"] == "upstream_overloaded"


def test_truncated_stream() -> None:
    out, t = CORE.transcode(TRUNCATED, prompt_tokens=99)
    assert [d.get("content") for d in CORE.deltas(out)] == ["Hello", " there"]
    assert t.error["code"] == "upstream_stream_truncated"
    assert CORE.chunks(out)[-1] == {"error": t.error}
    assert t.usage == {
        "prompt_tokens": 11,
        "completion_tokens": 2,
        "total_tokens": 13,
        "estimated": True,
    }
    # Cut inside an event: truncated too, not garbage.
    _, t = CORE.transcode(BASIC_TEXT[:-20])
    assert t.error["code"] == "upstream_stream_truncated"
    # Nothing but the opening: the gateway's prompt estimate.
    _, t = CORE.transcode(events(TOOL_USE)[1], prompt_tokens=7)
    assert t.usage == {
        "prompt_tokens": 7,
        "completion_tokens": 0,
        "total_tokens": 7,
        "estimated": True,
    }


def test_a_stop_reason_without_message_stop_is_complete() -> None:
    out, t = CORE.transcode(b"".join(events(BASIC_TEXT)[:-1]), include_usage=True)
    expected, _ = CORE.run([BASIC_TEXT], include_usage=True)
    assert out == expected
    assert (t.error, t.finish_reason) == (None, "stop")


@pytest.mark.parametrize(
    "data",
    [
        b"not json sk-ant-secret",
        b"[1, 2]",
        b'{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":5}}',
        b"<html>502 Bad Gateway</html>",
    ],
)
def test_garbage_events_are_a_bad_response(data: bytes) -> None:
    head = b"".join(events(BASIC_TEXT)[:4])
    out, t = CORE.transcode(head + b"data: " + data + b"\n\n" + events(BASIC_TEXT)[4])
    assert [d.get("content") for d in CORE.deltas(out)] == ["Hello"]
    assert t.error["code"] == "upstream_bad_response"
    assert b"sk-ant-secret" not in out


def test_abort_reports_the_usage_so_far() -> None:
    t = CORE.new()
    first = t.feed(b"".join(events(BASIC_TEXT)[:4]))
    tail = t.abort("The upstream went quiet; retry.", "upstream_error", "upstream_idle_timeout")
    assert CORE.chunks(first + tail)[-1] == {"error": t.error}
    assert t.error["code"] == "upstream_idle_timeout"
    assert t.usage == {
        "prompt_tokens": 11,
        "completion_tokens": 1,
        "total_tokens": 12,
        "estimated": True,
    }
    assert t.finish() == b""


# --- not streaming ---------------------------------------------------------------------------


def test_text_message_exact_bytes() -> None:
    out, t = CORE.transcode(MESSAGE_TEXT, stream=False)
    assert out == (
        b'{"id":"chatcmpl-gw0004","object":"chat.completion","created":1700000000,'
        b'"model":"anthropic/claude-sonnet-4-5","choices":[{"index":0,"message":{"role":'
        b'"assistant","content":"Hi, I\'m Claude."},"logprobs":null,"finish_reason":"stop"}],'
        b'"usage":{"prompt_tokens":12,"completion_tokens":9,"total_tokens":21,'
        b'"prompt_tokens_details":{"cached_tokens":0}}}'
    )
    completion(out)
    assert (t.finish_reason, t.content_emitted, t.error, t.done) == ("stop", True, None, True)


def test_tool_use_message() -> None:
    out, t = CORE.transcode(MESSAGE_TOOL_USE, stream=False)
    choice = completion(out)["choices"][0]
    assert choice["message"] == {
        "role": "assistant",
        "content": "Hi, I'm Claude.",
        "tool_calls": [
            {
                "id": "toolu_01A09q90qw90lq917835lq9",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"location":"Paris"}'},
            }
        ],
    }
    assert choice["finish_reason"] == "tool_calls" == t.finish_reason


def test_thinking_message() -> None:
    out, t = CORE.transcode(MESSAGE_THINKING, stream=False)
    body = completion(out)
    assert body["choices"][0]["message"] == {
        "role": "assistant",
        "content": 'There are 3 r\'s in "strawberry".',
        "reasoning_content": "Count the r's: s-t-r-a-w-b-e-r-r-y.",
    }
    assert body["choices"][0]["finish_reason"] == "length"
    assert (
        body["usage"]
        == t.usage
        == {
            "prompt_tokens": 40,
            "completion_tokens": 120,
            "total_tokens": 160,
            "completion_tokens_details": {"reasoning_tokens": 95},
        }
    )


def test_a_stream_is_aggregated() -> None:
    out, t = CORE.transcode(PARALLEL_TOOLS, stream=False)
    message = completion(out)["choices"][0]["message"]
    assert message["content"] is None
    assert [(c["id"], c["function"]["arguments"]) for c in message["tool_calls"]] == [
        ("toolu_01A", '{"city": "Hué"}'),
        ("toolu_01B", "{}"),
    ]
    assert t.finish_reason == "tool_calls"
    out, _ = CORE.transcode(THINKING_REFUSAL, stream=False)
    body = completion(out)
    assert body["choices"][0]["message"]["reasoning_content"] == "Simple educ"
    assert body["choices"][0]["finish_reason"] == "content_filter"


@pytest.mark.parametrize(
    ("body", "kind", "code"),
    [
        (ERROR_BODY, "not_found_error", "upstream_reported_error"),
        (
            b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}',
            "overloaded_error",
            "upstream_overloaded",
        ),
        (ERROR_MIDSTREAM, "overloaded_error", "upstream_overloaded"),
        (TRUNCATED, "upstream_error", "upstream_stream_truncated"),
        (b'{"type":"message","role":"assistant"}', "upstream_error", "upstream_bad_response"),
        (b"<html>502 Bad Gateway</html>", "upstream_error", "upstream_bad_response"),
        (b"", "upstream_error", "upstream_bad_response"),
    ],
)
def test_not_streaming_failures_give_the_error_envelope(body: bytes, kind: str, code: str) -> None:
    out, t = CORE.transcode(body, stream=False)
    assert json.loads(out) == {"error": t.error}
    assert (t.error["type"], t.error["code"]) == (kind, code)
    assert t.done is True


def test_error_body_quotes_the_upstream_message() -> None:
    _, t = CORE.transcode(ERROR_BODY, stream=False)
    assert t.error["message"].startswith(
        "The upstream reported an error: model: claude-nonexistent. Retry"
    )


def test_aggregate_is_the_non_streaming_transcoder() -> None:
    for body in (MESSAGE_TOOL_USE, TOOL_USE, ERROR_BODY):
        expected, _ = CORE.run([body], stream=False)
        assert (
            aggregate("anthropic", body, MODEL, response_id=RESPONSE_ID, created=CREATED)
            == expected
        )


# --- the module surface ----------------------------------------------------------------------


def test_anthropic_is_a_dialect() -> None:
    assert DIALECTS[-1] == "anthropic"


def test_options_for_raw_text_dialects_are_accepted_and_ignored() -> None:
    plain, _ = CORE.run([TOOL_USE])
    ignored, _ = CORE.run([TOOL_USE], stop=["Paris"], think="open", max_tokens=1, logprobs=True)
    assert ignored == plain
    with pytest.raises(ValueError, match="off, auto, open"):
        StreamTranscoder("anthropic", MODEL, response_id="r", created=0, think="on")
