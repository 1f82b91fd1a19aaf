"""The Rust transcoder, dialect ``ollama`` (native ``/api/chat`` and ``/api/generate``), through
the built extension.

Fixtures are in tests/fixtures/ollama (provenance in README.md there). Every stream and body is
run whole, split in two at every byte position, and one byte at a time: one OpenAI chunk per
NDJSON line, so the output bytes and the outcome must be identical in all of them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sluicegate._core import DIALECTS, StreamTranscoder, aggregate
from tests.core_harness import DONE, Transcoding, completion, frames

RESPONSE_ID = "chatcmpl-gw0003"
CREATED = 1700000000
MODEL = "ollama/llama3.2"

FIXTURES = Path(__file__).parent / "fixtures" / "ollama"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


GENERATE_STREAM = fixture("generate_stream.ndjson")
GENERATE_ERROR_STREAM = fixture("generate_error_stream.ndjson")
GENERATE_TEXT_ON_DONE_STREAM = fixture("generate_text_on_done_stream.ndjson")
CHAT_TOOL_CALL_STREAM = fixture("chat_tool_call_stream.ndjson")
CHAT_THINKING_TOOL_STREAM = fixture("chat_thinking_tool_stream.ndjson")
CHAT_TEXT_STREAM = fixture("chat_text_stream.ndjson")
CHAT_MIXED_LINE_STREAM = fixture("chat_mixed_line_stream.ndjson")
CHAT_LOGPROBS_STREAM = fixture("chat_logprobs_stream.ndjson")
CHAT_BODY = fixture("chat_body.json")
CHAT_TOOL_BODY = fixture("chat_tool_body.json")
CHAT_THINKING_BODY = fixture("chat_thinking_body.json")
ERROR_BODY = fixture("error_body.json")

CORE = Transcoding("ollama", MODEL, RESPONSE_ID, CREATED)


def lines(stream: bytes) -> list[bytes]:
    """The stream's lines, each with its newline."""
    return stream.splitlines(keepends=True)


# --- streaming -------------------------------------------------------------------------------


def test_generate_stream_with_text_on_the_done_line_exact_bytes() -> None:
    out, t = CORE.transcode(GENERATE_STREAM, include_usage=True)
    usage = b'{"prompt_tokens":0,"completion_tokens":2,"total_tokens":2,"estimated":true}'
    assert out == (
        CORE.delta_chunk(b'"role":"assistant","content":" question"')
        + CORE.delta_chunk(b'"content":"!"')
        + CORE.finish_chunk("stop")
        + CORE.usage_chunk(usage)
        + DONE
    )
    CORE.chunks(out)
    # No counts on the done line: no prompt_eval_count is a cached prompt (0, as reported);
    # no eval_count is the lines that carried text, estimated.
    assert t.usage == {
        "prompt_tokens": 0,
        "completion_tokens": 2,
        "total_tokens": 2,
        "estimated": True,
    }
    assert (t.finish_reason, t.content_emitted, t.error, t.done) == ("stop", True, None, True)


def test_generate_stream_from_the_docs_keeps_every_piece() -> None:
    out, t = CORE.transcode(GENERATE_TEXT_ON_DONE_STREAM)
    assert [d.get("content") for d in CORE.deltas(out)] == ["That", "'", "!"]
    assert b'"usage"' not in out
    assert t.usage is not None and t.usage["completion_tokens"] == 3


def test_chat_text_stream_with_the_metrics_only_trailer_and_no_done_reason() -> None:
    out, t = CORE.transcode(CHAT_TEXT_STREAM, include_usage=True)
    usage = b'{"prompt_tokens":26,"completion_tokens":282,"total_tokens":308}'
    assert out == (
        CORE.delta_chunk(b'"role":"assistant","content":"The"')
        + CORE.delta_chunk(b'"content":" sky"')
        + CORE.finish_chunk("stop")
        + CORE.usage_chunk(usage)
        + DONE
    )
    assert t.usage == {"prompt_tokens": 26, "completion_tokens": 282, "total_tokens": 308}
    assert t.finish_reason == "stop"


def test_chat_tool_call_gets_a_generated_id_and_finishes_with_tool_calls() -> None:
    out, t = CORE.transcode(CHAT_TOOL_CALL_STREAM, include_usage=True)
    parsed = CORE.chunks(out)
    assert len(parsed) == 3  # the call, the finish, the usage
    (call,) = parsed[0]["choices"][0]["delta"]["tool_calls"]
    assert call["id"].startswith("call_") and call["id"].endswith("_0")
    assert call == {
        "index": 0,
        "id": call["id"],
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city":"Tokyo"}'},
    }
    assert parsed[0]["choices"][0]["delta"]["role"] == "assistant"
    assert "content" not in parsed[0]["choices"][0]["delta"]
    assert parsed[1]["choices"][0]["finish_reason"] == "tool_calls"
    assert parsed[2]["usage"] == {
        "prompt_tokens": 169,
        "completion_tokens": 15,
        "total_tokens": 184,
    }
    assert (t.finish_reason, t.content_emitted) == ("tool_calls", True)
    # Derived from the response id: stable for a response, different for another.
    again, _ = CORE.run([CHAT_TOOL_CALL_STREAM])
    assert json.loads(frames(again)[0])["choices"][0]["delta"]["tool_calls"][0]["id"] == call["id"]
    other = StreamTranscoder("ollama", MODEL, response_id="chatcmpl-other", created=CREATED)
    out = other.feed(CHAT_TOOL_CALL_STREAM)
    assert json.loads(frames(out)[0])["choices"][0]["delta"]["tool_calls"][0]["id"] != call["id"]


def test_thinking_content_and_tool_call_stream() -> None:
    out, t = CORE.transcode(CHAT_THINKING_TOOL_STREAM, include_usage=True)
    assert CORE.deltas(out) == [
        {"role": "assistant", "reasoning_content": "Hue is a city."},
        {"content": "Checking."},
        {
            "tool_calls": [
                {
                    "index": 0,
                    "id": "call_cy3xwkra",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Hue"}'},
                }
            ]
        },
    ]
    assert t.finish_reason == "tool_calls"
    assert t.usage == {"prompt_tokens": 120, "completion_tokens": 21, "total_tokens": 141}


def test_tool_call_indexes_run_over_the_whole_response() -> None:
    call = (
        b'{"message":{"content":"","tool_calls":[{"function":{"index":0,"name":"f%d",'
        b'"arguments":%s}}]},"done":false}\n'
    )
    stream = (
        call % (1, b'{"a": [1, 2.50]}')
        + call % (2, b"null")
        + call % (3, b'"{\\"b\\": 1}"')
        + call % (4, b'"not json"')
        + b'{"message":{"content":""},"done":true,"done_reason":"length","eval_count":4}\n'
    )
    out, t = CORE.transcode(stream)
    calls = [d["tool_calls"][0] for d in CORE.deltas(out)]
    assert [c["index"] for c in calls] == [0, 1, 2, 3]
    assert len({c["id"] for c in calls}) == 4
    assert [c["function"]["arguments"] for c in calls] == [
        '{"a":[1,2.50]}',
        "{}",
        '{"b": 1}',
        '"not json"',
    ]
    for c in calls:
        json.loads(c["function"]["arguments"])
    assert t.finish_reason == "length"  # a length cut stays a length cut


def test_a_line_with_thinking_and_content_is_two_chunks_reasoning_first() -> None:
    out, t = CORE.transcode(CHAT_MIXED_LINE_STREAM, include_usage=True)
    assert CORE.deltas(out) == [
        {"role": "assistant", "reasoning_content": "Two plus two"},
        {"reasoning_content": " is four."},
        {"content": "It is"},
        {"content": " 4 é😀."},
    ]
    assert t.finish_reason == "length"
    assert t.usage == {"prompt_tokens": 11, "completion_tokens": 9, "total_tokens": 20}
    assert t.content_emitted is True


def test_empty_lines_send_nothing_and_emit_no_content() -> None:
    t = CORE.new()
    assert t.feed(lines(CHAT_MIXED_LINE_STREAM)[0]) == b""  # content ""
    assert t.content_emitted is False
    assert t.feed(lines(CHAT_MIXED_LINE_STREAM)[1]).count(b"data: ") == 1


def test_logprobs() -> None:
    out, _ = CORE.transcode(CHAT_LOGPROBS_STREAM, logprobs=True)
    parsed = [c["choices"][0] for c in CORE.chunks(out) if c["choices"]]
    assert [(c["delta"], c["logprobs"]) for c in parsed[:3]] == [
        ({"role": "assistant", "reasoning_content": "greet"}, {"content": [], "refusal": None}),
        (
            {"content": "Hi"},
            {
                "content": [
                    {
                        "token": "Hi",
                        "logprob": -0.0025094282,
                        "bytes": [72, 105],
                        "top_logprobs": [
                            {"token": "Hi", "logprob": -0.0025094282, "bytes": [72, 105]},
                            {"token": "Hello", "logprob": -6.25, "bytes": list(b"Hello")},
                        ],
                    }
                ],
                "refusal": None,
            },
        ),
        (
            {"content": " é"},
            {
                "content": [
                    {
                        "token": " é",
                        "logprob": -1.5,
                        "bytes": list(" é".encode()),
                        "top_logprobs": [],
                    }
                ],
                "refusal": None,
            },
        ),
    ]
    out, _ = CORE.transcode(CHAT_LOGPROBS_STREAM)
    assert all(c["choices"][0]["logprobs"] is None for c in CORE.chunks(out) if c["choices"])


def test_lines_after_done_are_ignored() -> None:
    out, t = CORE.transcode(CHAT_TEXT_STREAM + lines(CHAT_TEXT_STREAM)[0] + b"{garbage\n")
    expected, _ = CORE.run([CHAT_TEXT_STREAM])
    assert out == expected and t.error is None


@pytest.mark.parametrize(
    "variant",
    [
        pytest.param(lambda s: s.replace(b"\n", b"\r\n"), id="crlf"),
        pytest.param(lambda s: s.replace(b"\n", b"\n\n  \n"), id="blank-lines"),
        pytest.param(lambda s: b"\xef\xbb\xbf" + s.rstrip(b"\n"), id="bom-no-final-newline"),
    ],
)
def test_framing_variants_give_the_same_bytes(variant: Any) -> None:
    expected, _ = CORE.transcode(CHAT_THINKING_TOOL_STREAM, include_usage=True)
    out, _ = CORE.transcode(variant(CHAT_THINKING_TOOL_STREAM), include_usage=True)
    assert out == expected


# --- streaming: failures ---------------------------------------------------------------------


def test_error_line_after_text() -> None:
    out, t = CORE.transcode(GENERATE_ERROR_STREAM, prompt_tokens=7)
    parsed = CORE.chunks(out)
    assert parsed[0]["choices"][0]["delta"] == {"role": "assistant", "content": "can"}
    assert parsed[1] == {"error": t.error}
    assert len(parsed) == 2
    assert t.error == {
        "message": "The upstream reported an error: an error was encountered while running the "
        "model. Retry the request, or use another model or provider if it keeps happening.",
        "type": "upstream_error",
        "param": None,
        "code": "upstream_stream_error",
    }
    assert t.finish_reason is None and t.content_emitted is True
    # No done line, no counts: the gateway's prompt estimate and the lines seen, estimated.
    assert t.usage == {
        "prompt_tokens": 7,
        "completion_tokens": 1,
        "total_tokens": 8,
        "estimated": True,
    }


def test_overload_is_marked_for_a_later_retry() -> None:
    out, t = CORE.transcode(b'{"error":"server overloaded, please retry shortly"}\n')
    assert t.error["code"] == "upstream_overloaded"
    assert "retry later" in t.error["message"]
    assert CORE.chunks(out) == [{"error": t.error}]
    assert t.content_emitted is False


def test_truncated_stream() -> None:
    cut_off = b"".join(lines(CHAT_TEXT_STREAM)[:2])
    out, t = CORE.transcode(cut_off)
    assert [d.get("content") for d in CORE.deltas(out)] == ["The", " sky"]
    assert t.error["code"] == "upstream_stream_truncated"
    assert CORE.chunks(out)[-1] == {"error": t.error}
    assert t.usage["estimated"] is True and t.usage["completion_tokens"] == 2
    # Cut inside the last line: truncated too, not garbage.
    _, t = CORE.transcode(CHAT_TEXT_STREAM[:-60])
    assert t.error["code"] == "upstream_stream_truncated"


@pytest.mark.parametrize(
    "line",
    [
        b"not json sk-secret",
        b"[1, 2]",
        b'{"message": {"content": 5}}',
        b'{"message": {"tool_calls": [{"id": "x"}]}}',
        b"<html>502 Bad Gateway</html>",
    ],
)
def test_garbage_lines_are_a_bad_response(line: bytes) -> None:
    out, t = CORE.transcode(lines(CHAT_TEXT_STREAM)[0] + line + b"\n" + lines(CHAT_TEXT_STREAM)[1])
    assert [d.get("content") for d in CORE.deltas(out)] == ["The"]
    assert t.error["code"] == "upstream_bad_response"
    assert b"sk-secret" not in out


def test_malformed_logprobs_are_a_bad_response_only_when_asked_for() -> None:
    stream = (
        b'{"message":{"content":"a"},"logprobs":[{"token":"a","logprob":"high"}]}\n'
        + lines(CHAT_TEXT_STREAM)[-1]
    )
    _, t = CORE.transcode(stream, logprobs=True)
    assert t.error["code"] == "upstream_bad_response"
    _, t = CORE.transcode(stream)
    assert t.error is None


def test_a_line_over_the_size_limit_is_too_large() -> None:
    big = b'{"message":{"content":"' + b"x" * (16 * 1024 * 1024) + b'"}}\n'
    out, t = CORE.run([lines(CHAT_TEXT_STREAM)[0], big[:1000], big[1000:]])
    assert t.error["code"] == "upstream_bad_response"
    assert "larger than 16 MiB" in t.error["message"]
    assert [d.get("content") for d in CORE.deltas(out)] == ["The"]


def test_abort_reports_the_usage_so_far() -> None:
    t = CORE.new()
    first = t.feed(lines(CHAT_TEXT_STREAM)[0])
    tail = t.abort("The upstream went quiet; retry.", "upstream_error", "upstream_idle_timeout")
    assert CORE.chunks(first + tail)[-1] == {"error": t.error}
    assert t.error["code"] == "upstream_idle_timeout"
    assert t.usage == {
        "prompt_tokens": 0,
        "completion_tokens": 1,
        "total_tokens": 1,
        "estimated": True,
    }
    assert t.finish() == b""


# --- not streaming ---------------------------------------------------------------------------


def test_chat_body_exact_bytes() -> None:
    out, t = CORE.transcode(CHAT_BODY, stream=False)
    assert out == (
        b'{"id":"chatcmpl-gw0003","object":"chat.completion","created":1700000000,'
        b'"model":"ollama/llama3.2","choices":[{"index":0,"message":{"role":"assistant",'
        b'"content":"Hello! How are you today?"},"logprobs":null,"finish_reason":"stop"}],'
        b'"usage":{"prompt_tokens":26,"completion_tokens":298,"total_tokens":324}}'
    )
    completion(out)
    assert (t.finish_reason, t.content_emitted, t.error, t.done) == ("stop", True, None, True)


def test_chat_tool_body() -> None:
    out, t = CORE.transcode(CHAT_TOOL_BODY, stream=False)
    choice = completion(out)["choices"][0]
    assert choice["message"]["content"] is None
    (call,) = choice["message"]["tool_calls"]
    assert call["id"].startswith("call_")
    assert call["type"] == "function"
    assert call["function"] == {
        "name": "get_current_weather",
        "arguments": '{"format":"celsius","location":"Paris, FR"}',
    }
    assert choice["finish_reason"] == "tool_calls" == t.finish_reason
    # The same id as the streamed answer to the same response id would give.
    streamed, _ = CORE.run([CHAT_TOOL_BODY])
    assert (
        json.loads(frames(streamed)[0])["choices"][0]["delta"]["tool_calls"][0]["id"] == call["id"]
    )


def test_chat_thinking_body() -> None:
    out, t = CORE.transcode(CHAT_THINKING_BODY, stream=False)
    body = completion(out)
    assert body["choices"][0]["message"] == {
        "role": "assistant",
        "content": "The word strawberry has 3 r's.",
        "reasoning_content": "Let me count: s-t-r-a-w-b-e-r-r-y.",
    }
    assert (
        body["usage"]
        == t.usage
        == {
            "prompt_tokens": 12,
            "completion_tokens": 40,
            "total_tokens": 52,
        }
    )


def test_an_empty_answer_body_has_empty_content() -> None:
    out, _ = CORE.transcode(
        b'{"message":{"role":"assistant","content":""},"done":true}', stream=False
    )
    assert completion(out)["choices"][0]["message"] == {"role": "assistant", "content": ""}


def test_pretty_printed_body_is_one_answer() -> None:
    pretty = json.dumps(json.loads(CHAT_BODY), indent=2).encode()
    out, _ = CORE.transcode(pretty, stream=False)
    expected, _ = CORE.run([CHAT_BODY], stream=False)
    assert out == expected


def test_ndjson_body_is_aggregated() -> None:
    out, t = CORE.transcode(CHAT_THINKING_TOOL_STREAM, stream=False)
    message = completion(out)["choices"][0]["message"]
    assert message["reasoning_content"] == "Hue is a city."
    assert message["content"] == "Checking."
    assert message["tool_calls"][0]["id"] == "call_cy3xwkra"
    assert t.finish_reason == "tool_calls"
    out, _ = CORE.transcode(CHAT_MIXED_LINE_STREAM, stream=False)
    message = completion(out)["choices"][0]["message"]
    assert (message["reasoning_content"], message["content"]) == (
        "Two plus two is four.",
        "It is 4 é😀.",
    )


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (ERROR_BODY, "upstream_reported_error"),
        (b'{"error":"model is overloaded"}', "upstream_overloaded"),
        (GENERATE_ERROR_STREAM, "upstream_stream_error"),
        (b"".join(lines(CHAT_TEXT_STREAM)[:2]), "upstream_stream_truncated"),
        (CHAT_TEXT_STREAM[:-60], "upstream_stream_truncated"),
        (b'{"message":{"content":"partial"},"done":false}', "upstream_stream_truncated"),
        (b"<html>502 Bad Gateway</html>", "upstream_bad_response"),
        (b"", "upstream_bad_response"),
        (b" \r\n", "upstream_bad_response"),
    ],
)
def test_not_streaming_failures_give_the_error_envelope(body: bytes, code: str) -> None:
    out, t = CORE.transcode(body, stream=False)
    assert json.loads(out) == {"error": t.error}
    assert t.error["code"] == code
    assert t.error["type"] == "upstream_error"
    assert t.done is True


def test_error_body_quotes_the_upstream_message() -> None:
    _, t = CORE.transcode(ERROR_BODY, stream=False)
    assert t.error["message"].startswith(
        "The upstream reported an error: model 'llama3.3' not found. Retry"
    )


def test_aggregate_is_the_non_streaming_transcoder() -> None:
    for body in (CHAT_TOOL_BODY, CHAT_LOGPROBS_STREAM, ERROR_BODY):
        expected, _ = CORE.run([body], stream=False, logprobs=True)
        assert (
            aggregate(
                "ollama", body, MODEL, response_id=RESPONSE_ID, created=CREATED, logprobs=True
            )
            == expected
        )


# --- the module surface ----------------------------------------------------------------------


def test_ollama_is_a_dialect() -> None:
    assert "ollama" in DIALECTS


def test_options_for_raw_text_dialects_are_accepted_and_ignored() -> None:
    plain, _ = CORE.run([CHAT_MIXED_LINE_STREAM])
    ignored, _ = CORE.run([CHAT_MIXED_LINE_STREAM], stop=["It"], think="off", max_tokens=1)
    assert ignored == plain
    with pytest.raises(ValueError, match="off, auto, open"):
        StreamTranscoder("ollama", MODEL, response_id="r", created=0, think="on")
