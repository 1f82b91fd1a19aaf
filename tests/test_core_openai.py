"""The Rust transcoder, dialect ``openai``, through the built extension.

Fixtures are the literal recordings quoted in PROTOCOLS.md §5.3 / §6.5 / §6.1(b) / §6.2(c).
Every transcode is run whole, split in two at every byte position, and one byte at a time; the
output bytes and the reported outcome must be identical in all of them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from openai.types.chat import ChatCompletion

from sluicegate._core import DIALECTS, StreamTranscoder, aggregate
from sluicegate.chat import parse_chat_request
from sluicegate.config import ModelSettings, ProviderConfig
from sluicegate.providers import ModelProfile, openai
from tests.core_harness import Transcoding, frames, outcome

RESPONSE_ID = "chatcmpl-gw0001"
CREATED = 1700000000
MODEL = "openai/gpt-4o"

FIXTURES = Path(__file__).parent / "fixtures" / "openai"  # provenance in README.md there


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


TEXT_STREAM = fixture("text_stream.sse")
# The exact bytes the client must receive for TEXT_STREAM with include_usage.
TEXT_STREAM_OUT = fixture("text_stream.expected")
TOOL_CALL_STREAM = fixture("tool_call_stream.sse")
REFUSAL_STREAM = fixture("refusal_stream.sse")
LOGPROBS_CHUNK = fixture("logprobs_chunk.sse")
DEEPINFRA_STREAM = fixture("deepinfra_stream.sse")
TGI_ERROR_STREAM = fixture("tgi_error_stream.sse")
COMPLETION_BODY = fixture("completion.json")

CORE = Transcoding("openai", MODEL, RESPONSE_ID, CREATED)
HEAD = CORE.head
TEXT_USAGE_CHUNK = (
    HEAD + b',"choices":[],"usage":{"prompt_tokens":14,"completion_tokens":30,"total_tokens":44,'
    b'"completion_tokens_details":{"reasoning_tokens":0}}}\n\n'
)
LOGPROBS_VALUE = (
    b'"logprobs":{"content":[{"token":"Foo","logprob":-0.0025094282,"bytes":[70,111,111],'
    b'"top_logprobs":[]}],"refusal":null}'
)

# --- streaming: the recorded streams --------------------------------------------------------


def test_text_stream_exact_bytes() -> None:
    out, t = CORE.transcode(TEXT_STREAM, include_usage=True)
    assert out == TEXT_STREAM_OUT
    CORE.chunks(out)
    assert t.usage == {
        "prompt_tokens": 14,
        "completion_tokens": 30,
        "total_tokens": 44,
        "completion_tokens_details": {"reasoning_tokens": 0},
    }
    assert t.finish_reason == "stop"
    assert t.content_emitted is True
    assert t.error is None
    assert t.done is True


def test_text_stream_without_include_usage_keeps_usage_for_accounting() -> None:
    out, t = CORE.transcode(TEXT_STREAM)
    assert b'"usage"' not in out
    assert TEXT_USAGE_CHUNK in TEXT_STREAM_OUT
    assert out == TEXT_STREAM_OUT.replace(TEXT_USAGE_CHUNK, b"")
    assert t.usage is not None and t.usage["total_tokens"] == 44


def test_tool_call_stream_passes_fragments_through() -> None:
    out, t = CORE.transcode(TOOL_CALL_STREAM, include_usage=True)
    parsed = CORE.chunks(out)
    assert len(parsed) == 8  # 7 content chunks + the usage chunk
    first_call = parsed[0]["choices"][0]["delta"]["tool_calls"][0]
    assert first_call["id"] == "call_CTf1nWJLqSeRgDqaCG27xZ74"
    arguments = "".join(
        c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"]
        for c in parsed
        if c["choices"] and "tool_calls" in c["choices"][0]["delta"]
    )
    assert json.loads(arguments) == {"city": "Edinburgh"}
    assert parsed[-1]["usage"]["completion_tokens"] == 19
    assert t.finish_reason == "tool_calls"
    assert t.content_emitted is True


def test_refusal_counts_as_content_but_the_empty_first_refusal_does_not() -> None:
    first_only = REFUSAL_STREAM.split(b"\n\n", 1)[0] + b"\n\n"
    _, t = CORE.run([first_only])
    assert t.content_emitted is False
    out, t = CORE.transcode(REFUSAL_STREAM)
    assert CORE.chunks(out)[1]["choices"][0]["delta"] == {"refusal": "I'm"}
    assert t.content_emitted is True
    assert t.usage["prompt_tokens"] == 79


def test_logprobs_pass_through_byte_for_byte() -> None:
    out, t = CORE.transcode(LOGPROBS_CHUNK + b"data: [DONE]\n\n")
    assert LOGPROBS_VALUE in out
    assert out.count(b"data: ") == 3  # the chunk, a synthesized finish, [DONE]
    assert t.content_emitted is True


def test_deepinfra_usage_on_the_finish_chunk() -> None:
    out, t = CORE.transcode(DEEPINFRA_STREAM, include_usage=True)
    parsed = CORE.chunks(out)
    assert [bool(c["choices"]) for c in parsed] == [True, True, True, False]
    assert all("usage" not in c for c in parsed[:3]), "usage is lifted off every forwarded chunk"
    assert parsed[2]["choices"][0]["finish_reason"] == "stop"
    # The usage chunk carries the upstream's exact bytes, e.g. the cost as written.
    assert out.endswith(
        b',"choices":[],"usage":{"prompt_tokens": 48, "total_tokens": 237, '
        b'"completion_tokens": 189, "estimated_cost": 9.24e-05}}\n\ndata: [DONE]\n\n'
    )
    assert t.usage == {
        "prompt_tokens": 48,
        "total_tokens": 237,
        "completion_tokens": 189,
        "estimated_cost": 9.24e-05,
    }
    # `content: ""` on the first chunk is not content; "C" is.
    _, first = CORE.run([DEEPINFRA_STREAM.split(b"\n\n", 1)[0] + b"\n\n"])
    assert first.content_emitted is False
    assert t.content_emitted is True


def test_cached_tokens_zero_is_kept_and_absent_fields_stay_absent() -> None:
    stream = (
        b'data: {"choices":[{"index":0,"delta":{"content":"x"},"finish_reason":"stop"}]}\n\n'
        b'data: {"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":1,"total_tokens":6,'
        b'"prompt_tokens_details":{"cached_tokens":0}}}\n\n'
        b"data: [DONE]\n\n"
    )
    out, t = CORE.transcode(stream, include_usage=True)
    assert b'"prompt_tokens_details":{"cached_tokens":0}}}\n\ndata: [DONE]\n\n' in out
    assert t.usage == {
        "prompt_tokens": 5,
        "completion_tokens": 1,
        "total_tokens": 6,
        "prompt_tokens_details": {"cached_tokens": 0},
    }
    assert "completion_tokens_details" not in t.usage


def test_unknown_fields_keep_their_place_and_bytes() -> None:
    stream = (
        b'data: {"vendor_first":{"k":[1, 2.50]},"id":"x","object":"o","created":1,"model":"m",'
        b'"service_tier":"default","choices":[{"index":0,"delta":{"content":"a"},'
        b'"logprobs":null,"finish_reason":"stop","extra":true}],"obfuscation":"xyz"}\n\n'
    )
    out, _ = CORE.transcode(stream)
    assert frames(out)[0] == (
        HEAD[len(b"data: ") :]
        + b',"vendor_first":{"k":[1, 2.50]},"service_tier":"default","choices":[{"index":0,'
        b'"delta":{"content":"a"},"logprobs":null,"finish_reason":"stop","extra":true}],'
        b'"obfuscation":"xyz"}'
    )


# --- streaming: SSE framing variants ---------------------------------------------------------


@pytest.mark.parametrize(
    "variant",
    [
        pytest.param(lambda s: s.replace(b"\n", b"\r\n"), id="crlf"),
        pytest.param(lambda s: s.replace(b"\n", b"\r"), id="cr"),
        pytest.param(lambda s: b": ping\n\n" + s.replace(b"\n\n", b"\n: ping\n\n"), id="ping"),
        pytest.param(lambda s: b"\xef\xbb\xbf" + s, id="bom"),
        pytest.param(lambda s: s.replace(b"data: ", b"data:"), id="no-space"),
        pytest.param(
            lambda s: s.replace(b"data: ", b"event: message\nid: 1\nretry: 5\nfoo: x\ndata: "),
            id="fields",
        ),
        pytest.param(lambda s: s.replace(b'data: {"id"', b'data: {\ndata: "id"'), id="multi-line"),
        pytest.param(lambda s: s[:-2], id="no-trailing-blank-line"),
    ],
)
def test_framing_variants_give_the_same_output(variant: Any) -> None:
    out, t = CORE.transcode(variant(TEXT_STREAM), include_usage=True)
    assert out == TEXT_STREAM_OUT
    assert t.usage["total_tokens"] == 44


def test_done_goes_out_exactly_once() -> None:
    stream = TEXT_STREAM + b"data: [DONE]\n\n" + TEXT_STREAM
    out, t = CORE.transcode(stream, include_usage=True)
    assert out == TEXT_STREAM_OUT
    assert t.feed(b"data: [DONE]\n\n") == b""
    assert t.finish() == b""


def test_done_without_finish_reason_synthesizes_stop() -> None:
    stream = b'data: {"choices":[{"index":0,"delta":{"content":"Hi"}}]}\n\ndata: [DONE]\n\n'
    out, t = CORE.transcode(stream)
    parsed = CORE.chunks(out)
    assert parsed[-1] == {
        "id": RESPONSE_ID,
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": MODEL,
        "choices": [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}],
    }
    assert t.finish_reason is None  # the upstream reported none
    assert t.error is None


def test_finish_reason_without_done_is_a_complete_answer() -> None:
    stream = TEXT_STREAM.replace(b"data: [DONE]\n\n", b"")
    out, t = CORE.transcode(stream, include_usage=True)
    assert out == TEXT_STREAM_OUT
    assert t.error is None


# --- streaming: failures ---------------------------------------------------------------------


def test_truncated_stream_ends_with_an_error_event_and_done() -> None:
    # The role chunk and one content chunk, then the upstream hangs up.
    stream = b"".join(part + b"\n\n" for part in TEXT_STREAM.split(b"\n\n")[:2])
    out, t = CORE.transcode(stream)
    parsed = CORE.chunks(out)
    assert parsed[-1] == {"error": t.error}
    assert t.error["code"] == "upstream_stream_truncated"
    assert t.error["type"] == "upstream_error"
    assert "Retry" in t.error["message"]
    assert t.content_emitted is True
    assert t.done is True


def test_stream_cut_inside_an_event_is_truncated() -> None:
    out, t = CORE.transcode(TEXT_STREAM[:400])
    assert len(CORE.chunks(out)) == 2  # the role chunk, then the error
    assert t.error["code"] == "upstream_stream_truncated"


def test_empty_stream_is_truncated() -> None:
    out, t = CORE.transcode(b": ping\n\n")
    assert frames(out)[-1] == b"[DONE]"
    assert t.error["code"] == "upstream_stream_truncated"
    assert t.content_emitted is False


def test_error_object_in_stream() -> None:
    first = TEXT_STREAM.split(b"\n\n")[1] + b"\n\n"
    error = (
        b'data: {"error":{"message":"The server had an error","type":"server_error",'
        b'"param":null,"code":502,"internal":"x"}}\n\n'
    )
    out, t = CORE.transcode(first + error + first)
    parsed = CORE.chunks(out)
    assert len(parsed) == 2
    assert parsed[1] == {
        "error": {
            "message": "The server had an error",
            "type": "server_error",
            "param": None,
            "code": "502",
        }
    }
    assert t.error == parsed[1]["error"]
    assert t.content_emitted is True


def test_tgi_string_error_with_error_type() -> None:
    out, t = CORE.transcode(TGI_ERROR_STREAM)
    parsed = CORE.chunks(out)
    assert parsed[0]["choices"][0]["delta"]["content"] == "Both"
    assert t.error == {
        "message": "Input validation error: `inputs` tokens + `max_new_tokens` must be <= 4096. "
        "Given: 6 `inputs` tokens and 4091 `max_new_tokens`",
        "type": "validation",
        "param": None,
        "code": None,
    }
    assert parsed[1] == {"error": t.error}


def test_sse_error_event() -> None:
    stream = (
        b"event: error\n"
        b'data: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n'
    )
    out, t = CORE.transcode(stream)
    assert t.error["type"] == "overloaded_error"
    assert t.error["message"] == "Overloaded"
    assert CORE.chunks(out) == [{"error": t.error}]


@pytest.mark.parametrize(
    "data",
    [b"not json sk-secret", b"[1, 2]", b'"text"', b"42", b'{"choices":[', b'{"choices":"x"}'],
)
def test_garbage_data_is_an_upstream_bad_response(data: bytes) -> None:
    out, t = CORE.transcode(TEXT_STREAM.split(b"\n\n")[0] + b"\n\ndata: " + data + b"\n\n")
    assert t.error["code"] == "upstream_bad_response"
    assert t.error["type"] == "upstream_error"
    assert "Retry" in t.error["message"]
    assert data.decode() not in t.error["message"]
    assert b"sk-secret" not in out
    assert len(CORE.chunks(out)) == 2


def test_event_larger_than_16_mib_is_refused() -> None:
    t = CORE.new()
    out = t.feed(b"data: " + b"x" * (8 << 20))
    out += t.feed(b"x" * (9 << 20))
    out += t.feed(b"\n\n" + TEXT_STREAM)
    out += t.finish()
    assert t.error["code"] == "upstream_bad_response"
    assert "16 MiB" in t.error["message"]
    assert CORE.chunks(out) == [{"error": t.error}]


def test_abort_ends_the_stream_once() -> None:
    t = CORE.new()
    first = t.feed(TEXT_STREAM.split(b"\n\n")[1] + b"\n\n")
    tail = t.abort(
        "Provider 'x' stopped sending; retry.", "upstream_error", "upstream_idle_timeout"
    )
    assert CORE.chunks(first + tail)[-1] == {"error": t.error}
    assert t.error["code"] == "upstream_idle_timeout"
    assert t.done is True
    assert t.finish() == b""
    assert t.abort("again") == b""


# --- not streaming ---------------------------------------------------------------------------


def test_json_body_is_rewritten() -> None:
    out, t = CORE.transcode(b"\xef\xbb\xbf\n " + COMPLETION_BODY, stream=False)
    assert out == (
        b'{"id":"chatcmpl-gw0001","object":"chat.completion","created":1700000000,'
        b'"model":"openai/gpt-4o"' + COMPLETION_BODY[COMPLETION_BODY.index(b',"choices"') :]
    )
    ChatCompletion.model_validate_json(out)
    assert t.usage["prompt_tokens_details"] == {"cached_tokens": 0}
    assert t.finish_reason == "stop"
    assert t.content_emitted is True
    assert t.error is None
    assert t.done is True


def test_feed_returns_nothing_when_not_streaming() -> None:
    t = CORE.new(stream=False)
    assert t.feed(TEXT_STREAM) == b""
    assert t.done is False
    assert t.finish() != b""
    assert t.done is True
    assert t.finish() == b""


def test_sse_body_is_aggregated_with_tool_calls_merged() -> None:
    out, t = CORE.transcode(TOOL_CALL_STREAM, stream=False)
    completion = json.loads(out)
    ChatCompletion.model_validate_json(out)
    assert completion == {
        "id": RESPONSE_ID,
        "object": "chat.completion",
        "created": CREATED,
        "model": MODEL,
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "call_CTf1nWJLqSeRgDqaCG27xZ74",
                            "type": "function",
                            "function": {
                                "name": "get_weather",
                                "arguments": '{"city":"Edinburgh"}',
                            },
                        }
                    ],
                },
                "logprobs": None,
                "finish_reason": "tool_calls",
            }
        ],
        "system_fingerprint": "fp_b40fb1c6fb",
        "usage": {
            "prompt_tokens": 48,
            "completion_tokens": 19,
            "total_tokens": 67,
            "completion_tokens_details": {"reasoning_tokens": 0},
        },
    }
    assert t.finish_reason == "tool_calls"
    assert t.content_emitted is True


def test_sse_body_aggregates_text_refusal_reasoning_and_logprobs() -> None:
    out, _ = CORE.transcode(TEXT_STREAM, stream=False)
    message = json.loads(out)["choices"][0]["message"]
    assert message == {"role": "assistant", "content": "I'm."}

    out, _ = CORE.transcode(REFUSAL_STREAM, stream=False)
    message = json.loads(out)["choices"][0]["message"]
    assert message == {"role": "assistant", "content": None, "refusal": "I'm"}

    reasoning = (
        b'data: {"choices":[{"index":0,"delta":{"content":null,"reasoning_content":"Okay"},'
        b'"logprobs":null,"finish_reason":null}]}\n\n'
    )
    out, _ = CORE.transcode(reasoning + LOGPROBS_CHUNK + b"data: [DONE]\n\n", stream=False)
    choice = json.loads(out)["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": "Foo", "reasoning_content": "Okay"}
    assert choice["logprobs"]["content"][0]["bytes"] == [70, 111, 111]
    assert choice["finish_reason"] == "stop"


@pytest.mark.parametrize(
    ("body", "code", "kind"),
    [
        (
            b'{"error":{"message":"Denied","type":"invalid_request_error"}}',
            None,
            "invalid_request_error",
        ),
        (b'{"error":"Model is loading","error_type":"overloaded"}', None, "overloaded"),
        (b'{"id": "x", "choices": [', "upstream_bad_response", "upstream_error"),
        (b'{"a":1} trailing', "upstream_bad_response", "upstream_error"),
        (b"", "upstream_bad_response", "upstream_error"),
        (b"<html><body>502 Bad Gateway</body></html>", "upstream_bad_response", "upstream_error"),
        (TGI_ERROR_STREAM, None, "validation"),
        (TEXT_STREAM[:200], "upstream_stream_truncated", "upstream_error"),
    ],
)
def test_not_streaming_failures_give_the_error_envelope(
    body: bytes, code: str | None, kind: str
) -> None:
    out, t = CORE.transcode(body, stream=False)
    assert json.loads(out) == {"error": t.error}
    assert t.error["code"] == code
    assert t.error["type"] == kind
    assert set(t.error) == {"message", "type", "param", "code"}
    assert t.done is True


def test_aggregate_is_the_non_streaming_transcoder() -> None:
    for body in (TOOL_CALL_STREAM, COMPLETION_BODY, b"garbage"):
        expected, _ = CORE.run([body], stream=False)
        assert (
            aggregate("openai", body, MODEL, response_id=RESPONSE_ID, created=CREATED) == expected
        )


# --- usage the upstream did not report: the gateway's estimate -------------------------------

# TEXT_STREAM from a server that reports no usage: role chunk, "I'm", ".", finish, [DONE].
NO_USAGE_STREAM = b"".join(
    event + b"\n\n" for event in TEXT_STREAM.split(b"\n\n")[:-1] if b'"usage"' not in event
)
# Two chunks carried output ("I'm", "."); the role chunk and the finish chunk did not.
ESTIMATE = {"prompt_tokens": 14, "completion_tokens": 2, "total_tokens": 16, "estimated": True}
ESTIMATE_CHUNK = (
    HEAD + b',"choices":[],"usage":{"prompt_tokens":14,"completion_tokens":2,"total_tokens":16,'
    b'"estimated":true}}\n\n'
)


def test_no_reported_usage_gets_an_estimate_in_the_closing_usage_chunk() -> None:
    assert b'"usage"' not in NO_USAGE_STREAM and NO_USAGE_STREAM.endswith(b"data: [DONE]\n\n")
    out, t = CORE.transcode(NO_USAGE_STREAM, include_usage=True, prompt_tokens=14)
    assert out == TEXT_STREAM_OUT.replace(TEXT_USAGE_CHUNK, ESTIMATE_CHUNK)
    assert CORE.chunks(out)[-1]["usage"] == ESTIMATE
    assert t.usage == ESTIMATE
    assert (t.finish_reason, t.error) == ("stop", None)


def test_the_estimate_is_recorded_when_the_client_did_not_ask_for_usage() -> None:
    out, t = CORE.transcode(NO_USAGE_STREAM)
    assert out == TEXT_STREAM_OUT.replace(TEXT_USAGE_CHUNK, b"")
    assert t.usage == {**ESTIMATE, "prompt_tokens": 0, "total_tokens": 2}


def test_a_stream_cut_after_content_records_the_partial_usage() -> None:
    # The role chunk and "I'm", then the upstream hangs up: one token went out.
    stream = b"".join(part + b"\n\n" for part in TEXT_STREAM.split(b"\n\n")[:2])
    out, t = CORE.transcode(stream, include_usage=True, prompt_tokens=14)
    assert CORE.chunks(out)[-1] == {"error": t.error}
    assert b'"usage"' not in out, "a failed stream sends no usage chunk"
    assert t.error["code"] == "upstream_stream_truncated"
    assert t.usage == {**ESTIMATE, "completion_tokens": 1, "total_tokens": 15}


def test_an_error_in_the_stream_records_the_partial_usage() -> None:
    _, t = CORE.transcode(TGI_ERROR_STREAM, prompt_tokens=6)
    assert t.error["type"] == "validation"
    assert t.usage == {
        "prompt_tokens": 6,
        "completion_tokens": 1,
        "total_tokens": 7,
        "estimated": True,
    }


def test_abort_records_the_partial_usage() -> None:
    t = CORE.new(include_usage=True, prompt_tokens=14)
    t.feed(NO_USAGE_STREAM[: NO_USAGE_STREAM.index(b'"content":"."')])
    assert t.usage is None, "estimated when the answer ends, not before"
    t.abort("Provider 'x' stopped sending; retry.", "upstream_error", "upstream_idle_timeout")
    assert t.usage == {**ESTIMATE, "completion_tokens": 1, "total_tokens": 15}


@pytest.mark.parametrize(
    "stream",
    [
        b": ping\n\n",
        b'data: {"choices":[]}\n\ndata: [DONE]\n\n',
        b'data: {"error":{"message":"Overloaded"}}\n\n',
        b"data: not json\n\n",
    ],
)
def test_no_estimate_without_a_single_choice(stream: bytes) -> None:
    _, t = CORE.transcode(stream, include_usage=True, prompt_tokens=14)
    assert t.usage is None


REPORTING = [TEXT_STREAM, TOOL_CALL_STREAM, REFUSAL_STREAM, DEEPINFRA_STREAM]


@pytest.mark.parametrize(
    ("answer", "streaming"),
    [(s, True) for s in REPORTING] + [(s, False) for s in [*REPORTING, COMPLETION_BODY]],
)
def test_reported_usage_is_kept_byte_for_byte(answer: bytes, streaming: bool) -> None:
    options = {"stream": streaming, "include_usage": streaming}
    expected, plain = CORE.run([answer], **options)
    out, t = CORE.run([answer], prompt_tokens=999, **options)
    assert out == expected
    assert t.usage == plain.usage
    assert "estimated" not in t.usage


def test_a_stream_merged_into_one_completion_gets_the_same_estimate() -> None:
    out, t = CORE.transcode(NO_USAGE_STREAM, stream=False, prompt_tokens=14)
    completion = json.loads(out)
    ChatCompletion.model_validate_json(out)
    assert completion["usage"] == ESTIMATE
    assert completion["choices"][0]["message"]["content"] == "I'm."
    assert t.usage == ESTIMATE

    # Tool-call fragments are output too; streamed or merged, the count is the same.
    tool_calls = b"".join(
        event + b"\n\n" for event in TOOL_CALL_STREAM.split(b"\n\n")[:-1] if b'"usage"' not in event
    )
    _, streamed = CORE.transcode(tool_calls, prompt_tokens=48)
    out, merged = CORE.transcode(tool_calls, stream=False, prompt_tokens=48)
    assert streamed.usage == merged.usage == json.loads(out)["usage"]
    assert merged.usage == {
        "prompt_tokens": 48,
        "completion_tokens": 6,  # every chunk but the finish
        "total_tokens": 54,
        "estimated": True,
    }


def test_a_completion_body_without_usage_gets_no_estimate() -> None:
    # One JSON body has no chunks to count; it goes out as the upstream sent it.
    body = orjson.loads(COMPLETION_BODY)
    del body["usage"]
    out, t = CORE.transcode(orjson.dumps(body), stream=False, prompt_tokens=14)
    assert b'"usage"' not in out
    assert t.usage is None


PROVIDER = ProviderConfig(name="vllm", kind="openai", base_url="http://127.0.0.1:9/v1", api_keys=())


def build_chat(body: dict[str, Any]) -> Any:
    request = parse_chat_request(orjson.dumps({"model": "vllm/m", **body}))
    return openai.build_chat(PROVIDER, ModelProfile("m", ModelSettings()), request, None)


def test_the_adapter_passes_a_prompt_estimate_to_the_transcoder() -> None:
    built = build_chat({"messages": [{"role": "user", "content": "x" * 400}], "stream": True})
    assert built.transcoder == {"prompt_tokens": 100}
    t = StreamTranscoder(
        built.dialect, MODEL, response_id=RESPONSE_ID, created=CREATED, **built.transcoder
    )
    t.feed(NO_USAGE_STREAM)
    t.finish()
    assert t.usage == {**ESTIMATE, "prompt_tokens": 100, "total_tokens": 102}


def test_the_prompt_estimate_counts_text_and_tools_not_images() -> None:
    tools = [{"type": "function", "function": {"name": "f", "parameters": {}}}]
    call = {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    messages = [
        {"role": "system", "content": "s" * 40},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "t" * 40},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64," + "A" * 4000}},
            ],
        },
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "c", "content": "r" * 40},
    ]
    built = build_chat({"messages": messages, "tools": tools})
    text_chars = 120 + len(orjson.dumps([call])) + len(orjson.dumps(tools))
    assert built.transcoder == {"prompt_tokens": text_chars // 4}
    assert build_chat({"messages": [{"role": "user", "content": ""}]}).transcoder == {
        "prompt_tokens": 1
    }


# --- the module surface ----------------------------------------------------------------------


def test_dialects() -> None:
    assert DIALECTS == ("openai", "deepinfra", "tgi", "ollama", "anthropic")


def test_unknown_dialect_is_a_value_error_naming_the_known_ones() -> None:
    with pytest.raises(ValueError, match="openai"):
        StreamTranscoder("ollamaa", MODEL, response_id=RESPONSE_ID, created=CREATED)
    with pytest.raises(ValueError, match="openai"):
        aggregate("nope", b"{}", MODEL, response_id=RESPONSE_ID, created=CREATED)


def test_properties_before_any_input() -> None:
    t = CORE.new()
    assert outcome(t) == (None, None, False, None, False)
    assert t.feed(b"") == b""
    assert t.feed(b': ping\n\ndata: {"cho') == b""


def test_model_and_id_are_escaped_into_json() -> None:
    t = StreamTranscoder("openai", 'we"ird\\model', response_id="id\n1", created=-5)
    out = t.feed(b'data: {"choices":[]}\n\n')
    assert json.loads(frames(out)[0]) == {
        "id": "id\n1",
        "object": "chat.completion.chunk",
        "created": -5,
        "model": 'we"ird\\model',
        "choices": [],
    }
