"""The Rust transcoder, dialects ``deepinfra`` and ``tgi`` (token events), through the built
extension.

Fixtures are in tests/fixtures/tokens (provenance in README.md there). Every stream is run whole,
split in two at every byte position, and one byte at a time. The chunks a read produces depend
on how the input was split (one chunk per read), so what must agree in every run is the meaning:
the concatenated content and reasoning, the logprob entries, the finish reason, the usage, the
error and the transcoder's outcome. The whole-input run is also checked byte for byte.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sluicegate._core import DIALECTS, StreamTranscoder, aggregate
from tests.core_harness import Transcoding, completion, events, frames

RESPONSE_ID = "chatcmpl-gw0002"
CREATED = 1700000000
MODEL = "deepinfra/meta-llama/Meta-Llama-3-8B-Instruct"

FIXTURES = Path(__file__).parent / "fixtures" / "tokens"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


DEEPINFRA_STREAM = fixture("deepinfra_stream.sse")
REASONING_STREAM = fixture("reasoning_stream.sse")
TGI_STOP_STREAM = fixture("tgi_stop_stream.sse")
TGI_COMPACT_STREAM = fixture("tgi_compact_stream.sse")
TGI_HF_STREAM = fixture("tgi_hf_stream.sse")
DEEPINFRA_ERROR_STREAM = fixture("deepinfra_error_stream.sse")
TGI_ERROR_STREAM = fixture("tgi_error_stream.sse")
DEEPINFRA_BODY = fixture("deepinfra_body.json")
DEEPINFRA_BODY_TWO = fixture("deepinfra_body_two.json")
TGI_BODY = fixture("tgi_body.json")
TGI_COMPAT_BODY = fixture("tgi_compat_body.json")
DEEPINFRA_ERROR_BODY = fixture("deepinfra_error_body.json")

CORE = Transcoding("deepinfra", MODEL, RESPONSE_ID, CREATED)
HEAD = CORE.head


# --- streaming -------------------------------------------------------------------------------


def test_deepinfra_stream_exact_bytes() -> None:
    out, seen, t = CORE.transcode_meaning(DEEPINFRA_STREAM, include_usage=True)
    assert out == (
        HEAD
        + b',"choices":[{"index":0,"delta":{"role":"assistant","content":", where every time"},'
        b'"logprobs":null,"finish_reason":null}]}\n\n'
        + HEAD
        + b',"choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]}\n\n'
        + HEAD
        + b',"choices":[],"usage":{"prompt_tokens":12,"completion_tokens":5,"total_tokens":17,'
        b'"estimated_cost":0.0000436}}\n\n'
        b"data: [DONE]\n\n"
    )
    assert seen["chunks"] == 1, "one read, one chunk"
    assert t.usage == {
        "prompt_tokens": 12,
        "completion_tokens": 5,
        "total_tokens": 17,
        "estimated_cost": 4.36e-05,
    }
    assert t.finish_reason == "stop"
    assert t.content_emitted is True
    assert t.error is None
    assert t.done is True


def test_one_chunk_per_read_and_nothing_for_a_read_without_text() -> None:
    t = CORE.new()
    outs = [t.feed(event) for event in events(DEEPINFRA_STREAM)]
    assert [out.count(b"data: ") for out in outs] == [1, 0, 1, 1, 0, 1, 2]
    assert outs[1] == b""  # a `: ping` read
    assert json.loads(frames(outs[2])[0])["choices"][0]["delta"] == {"content": " where"}
    assert t.finish() == b""


def test_logprobs_entries_with_bytes() -> None:
    _, seen, _ = CORE.transcode_meaning(DEEPINFRA_STREAM, logprobs=True)
    assert seen["logprobs"] == [
        {"token": ",", "logprob": -2.65625, "bytes": [44], "top_logprobs": []},
        {"token": " where", "logprob": -0.39575195, "bytes": list(b" where"), "top_logprobs": []},
        {"token": " every", "logprob": -3.15625, "bytes": list(b" every"), "top_logprobs": []},
        {"token": " time", "logprob": -0.1385498, "bytes": list(b" time"), "top_logprobs": []},
    ]


def test_reasoning_split_across_tokens_goes_to_reasoning_content() -> None:
    out, seen, t = CORE.transcode_meaning(REASONING_STREAM, think="auto", logprobs=True)
    assert seen["reasoning"] == "\nOkay, 2+2 — easy."
    assert seen["content"] == "It is 4 😀."
    assert "<think>" not in out.decode() and "</think>" not in out.decode()
    # Every non-special token has its entry, the tags' tokens included; the EOS has none.
    assert [e["token"] for e in seen["logprobs"]][:3] == ["<", "think", ">\n"]
    assert len(seen["logprobs"]) == 13
    assert seen["logprobs"][11]["bytes"] == list(" 😀".encode())
    assert t.usage == {"prompt_tokens": 30, "completion_tokens": 14, "total_tokens": 44}
    # Whole: one chunk with both kinds of delta.
    (chunk,) = [json.loads(f) for f in frames(out)[:1]]
    assert chunk["choices"][0]["delta"] == {
        "role": "assistant",
        "content": "It is 4 😀.",
        "reasoning_content": "\nOkay, 2+2 — easy.",
    }


def test_a_read_inside_the_think_tag_sends_nothing_and_emits_no_content() -> None:
    t = CORE.new()
    first = events(REASONING_STREAM)[0]  # the token "<"
    assert t.feed(first) == b""
    assert t.content_emitted is False


def test_think_off_and_open() -> None:
    _, seen, _ = CORE.transcode_meaning(REASONING_STREAM, think="off")
    assert seen["reasoning"] == ""
    assert seen["content"].startswith("<think>\nOkay") and "</think>\n\nIt is 4" in seen["content"]
    opened = b"".join(
        b'data: {"token": {"id": 1, "text": %s, "logprob": -1.0, "special": false}, '
        b'"generated_text": null, "details": null}\n\n' % json.dumps(text).encode()
        for text in ["Let me", " see", "</", "think>", "\n\n", "Done"]
    ) + (
        b'data: {"token": {"id": 2, "text": "", "logprob": 0, "special": true}, '
        b'"generated_text": "", "details": null}\n\n'
    )
    _, seen, t = CORE.transcode_meaning(opened, think="open", prompt_tokens=7)
    assert (seen["reasoning"], seen["content"]) == ("Let me see", "Done")
    assert t.usage == {
        "prompt_tokens": 7,
        "completion_tokens": 7,
        "total_tokens": 14,
        "estimated": True,
    }


def test_stop_string_split_over_tokens_is_trimmed_with_its_logprobs() -> None:
    _, seen, t = CORE.transcode_meaning(TGI_STOP_STREAM, "tgi", stop=["<|eot_id|>"], logprobs=True)
    assert seen["content"] == "Hello!"
    assert [e["token"] for e in seen["logprobs"]] == ["Hello", "!"]
    assert seen["logprobs"][1]["top_logprobs"] == [
        {"token": "!", "logprob": -0.25, "bytes": [33]},
        {"token": "é", "logprob": -4.5, "bytes": [195, 169]},
    ]
    assert t.finish_reason == "stop"
    assert t.usage == {"prompt_tokens": 9, "completion_tokens": 5, "total_tokens": 14}
    # Without the stop string the text is TGI's, stop string included.
    _, seen, _ = CORE.transcode_meaning(TGI_STOP_STREAM, "tgi")
    assert seen["content"] == "Hello!<|eot_id|>"


def test_held_back_stop_prefix_is_released_when_it_cannot_match() -> None:
    stream = TGI_STOP_STREAM.replace(b'"_id|>"', b'"_ok"')
    _, seen, _ = CORE.transcode_meaning(stream, "tgi", stop=["<|eot_id|>"])
    assert seen["content"] == "Hello!<|eot_ok"


def test_tgi_compact_framing_without_done() -> None:
    _, seen, t = CORE.transcode_meaning(
        TGI_COMPACT_STREAM, "tgi", include_usage=True, prompt_tokens=40
    )
    assert seen["content"] == " Deep Learning."
    assert seen["finish_reason"] == "stop"
    # No details: the tokens seen and the gateway's prompt estimate, marked as estimated.
    expected_usage = {
        "prompt_tokens": 40,
        "completion_tokens": 3,
        "total_tokens": 43,
        "estimated": True,
    }
    assert seen["usage"] == t.usage == expected_usage
    _, _, t = CORE.transcode_meaning(TGI_COMPACT_STREAM, "tgi")
    assert t.usage == {
        "prompt_tokens": 0,
        "completion_tokens": 3,
        "total_tokens": 3,
        "estimated": True,
    }


def test_done_after_the_final_event_changes_nothing() -> None:
    out, seen, t = CORE.transcode_meaning(TGI_HF_STREAM, "tgi")
    assert seen["content"] == " trying to"
    assert t.finish_reason == "stop" and t.error is None
    without_done, _ = CORE.run([TGI_HF_STREAM.replace(b"data: [DONE]\n\n", b"")], "tgi")
    assert out == without_done


def test_done_before_a_final_event_ends_the_answer() -> None:
    stream = b"".join(events(DEEPINFRA_STREAM)[:-1]) + b"data: [DONE]\n\n"
    _, seen, t = CORE.transcode_meaning(stream, stop=["time"])
    assert seen["content"] == ", where every "
    assert seen["finish_reason"] == "stop"
    assert t.error is None
    assert t.finish_reason is None  # the upstream never said why it stopped
    assert t.usage == {
        "prompt_tokens": 0,
        "completion_tokens": 4,
        "total_tokens": 4,
        "estimated": True,
    }


def test_special_tokens_are_never_shown() -> None:
    stream = DEEPINFRA_STREAM.replace(
        b'"text": " time", "logprob": -0.1385498, "special": false',
        (b'"text": "<|eot_id|>", "logprob": -0.1385498, "special": true'),
    )
    _, seen, _ = CORE.transcode_meaning(stream, logprobs=True)
    assert seen["content"] == ", where every"
    assert len(seen["logprobs"]) == 3


def test_bytes_after_the_final_event_are_ignored() -> None:
    out, _, _ = CORE.transcode_meaning(
        DEEPINFRA_STREAM + events(DEEPINFRA_STREAM)[0] + b"data: {garbage\n\n"
    )
    expected, _ = CORE.run([DEEPINFRA_STREAM])
    assert out == expected


@pytest.mark.parametrize(
    "variant",
    [
        pytest.param(lambda s: s.replace(b"\n", b"\r\n"), id="crlf"),
        pytest.param(lambda s: s.replace(b"data: ", b"data:"), id="no-space"),
        pytest.param(lambda s: s.replace(b"\n\n", b"\n: keep-alive\n\n"), id="comments"),
        pytest.param(lambda s: b"\xef\xbb\xbf" + s[:-2], id="bom-no-trailing-blank-line"),
    ],
)
def test_framing_variants_mean_the_same(variant: Any) -> None:
    _, expected, _ = CORE.transcode_meaning(DEEPINFRA_STREAM, include_usage=True)
    _, seen, _ = CORE.transcode_meaning(variant(DEEPINFRA_STREAM), include_usage=True)
    assert seen == expected


# --- streaming: failures ---------------------------------------------------------------------


def test_deepinfra_error_event_after_text() -> None:
    _, seen, t = CORE.transcode_meaning(DEEPINFRA_ERROR_STREAM)
    assert seen["content"] == ", where"  # " every" after the error is ignored
    assert seen["finish_reason"] is None
    assert seen["error"] == t.error
    assert t.error["type"] == "upstream_error"
    assert t.error["code"] == "upstream_stream_error"
    assert t.error["param"] is None
    assert '"validation_error"' in t.error["message"]
    assert "ConnectionError: upstream worker went away" in t.error["message"]
    assert t.content_emitted is True
    assert t.usage["estimated"] is True and t.usage["completion_tokens"] == 2


def test_tgi_error_event() -> None:
    _, seen, t = CORE.transcode_meaning(TGI_ERROR_STREAM, "tgi")
    assert seen["content"] == " Deep"
    assert t.error["code"] == "upstream_stream_error"
    assert t.error["message"].startswith(
        'The upstream reported an error of type "generation": Request failed during generation'
    )
    assert "Retry" in t.error["message"]


def test_overloaded_is_marked_for_a_later_retry() -> None:
    stream = b'data:{"error":"Model is overloaded","error_type":"overloaded"}\n\n'
    _, seen, t = CORE.transcode_meaning(stream, "tgi")
    assert t.error["code"] == "upstream_overloaded"
    assert seen["error"] == t.error
    assert t.content_emitted is False


def test_error_releases_the_text_held_back_first() -> None:
    held = events(TGI_STOP_STREAM)[:3]  # "Hello" "!" "<|": "<|" may start the stop string
    error = b'data:{"error":"boom","error_type":"generation"}\n\n'
    out, seen, _ = CORE.transcode_meaning(b"".join(held) + error, "tgi", stop=["<|eot_id|>"])
    assert seen["content"] == "Hello!<|"
    assert seen["error"]["message"].startswith(
        'The upstream reported an error of type "generation"'
    )
    assert frames(out)[-2].startswith(b'{"error":')


def test_truncated_stream_releases_pending_text_then_errors() -> None:
    cut_off = b"".join(events(TGI_STOP_STREAM)[:4])  # ... "<|" "eot", no final event
    _, seen, t = CORE.transcode_meaning(cut_off, "tgi", stop=["<|eot_id|>"], logprobs=True)
    assert seen["content"] == "Hello!<|eot"
    assert [e["token"] for e in seen["logprobs"]] == ["Hello", "!", "<|", "eot"]
    assert t.error["code"] == "upstream_stream_truncated"
    assert seen["error"] == t.error
    assert t.usage["completion_tokens"] == 4 and t.usage["estimated"] is True


def test_stream_cut_inside_an_event_is_truncated_not_garbage() -> None:
    _, seen, t = CORE.transcode_meaning(DEEPINFRA_STREAM[:-60])
    assert seen["content"] == ", where every time"
    assert t.error["code"] == "upstream_stream_truncated"


@pytest.mark.parametrize(
    "data",
    [b"not json sk-secret", b"[1, 2]", b'{"token": {"text": 5}}', b'{"token": "x"}'],
)
def test_unparseable_events_are_a_bad_response(data: bytes) -> None:
    out, seen, t = CORE.transcode_meaning(events(DEEPINFRA_STREAM)[0] + b"data: " + data + b"\n\n")
    assert seen["content"] == ","
    assert t.error["code"] == "upstream_bad_response"
    assert b"sk-secret" not in out


def test_abort_releases_pending_text_first() -> None:
    t = CORE.new("tgi", stop=["<|eot_id|>"])
    first = t.feed(b"".join(events(TGI_STOP_STREAM)[:3]))
    tail = t.abort("The upstream went quiet; retry.", "upstream_error", "upstream_idle_timeout")
    seen = CORE.meaning(first + tail)
    assert seen["content"] == "Hello!<|"
    assert t.error["code"] == "upstream_idle_timeout"


# --- not streaming ---------------------------------------------------------------------------


def test_deepinfra_body() -> None:
    out, _, t = CORE.transcode_meaning(DEEPINFRA_BODY, stream=False)
    assert out == (
        b'{"id":"chatcmpl-gw0002","object":"chat.completion","created":1700000000,'
        b'"model":"deepinfra/meta-llama/Meta-Llama-3-8B-Instruct","choices":[{"index":0,'
        b'"message":{"role":"assistant","content":"Hello! It\'s nice to meet you. Is there '
        b'something I can help you with or would you like to chat for a bit?"},'
        b'"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":12,'
        b'"completion_tokens":25,"total_tokens":37,"estimated_cost":0.0000436}}'
    )
    completion(out)
    assert t.finish_reason == "stop"
    assert t.content_emitted is True
    assert t.done is True


def test_body_finish_reason_is_inferred_from_max_tokens() -> None:
    for max_tokens, reason in [(25, "length"), (24, "length"), (26, "stop"), (None, "stop")]:
        out, _, t = CORE.transcode_meaning(DEEPINFRA_BODY, stream=False, max_tokens=max_tokens)
        assert completion(out)["choices"][0]["finish_reason"] == reason
        assert t.finish_reason == reason


def test_deepinfra_body_with_two_results() -> None:
    out, _, t = CORE.transcode_meaning(
        DEEPINFRA_BODY_TWO, stream=False, stop=["<|eot_id|>"], max_tokens=4
    )
    body = completion(out)
    assert [c["message"] for c in body["choices"]] == [
        {"role": "assistant", "content": "Yes.", "reasoning_content": "short"},
        {"role": "assistant", "content": "No, not at all"},
    ]
    # 8 tokens for two sequences of at most 4 each: both hit the limit.
    assert [c["finish_reason"] for c in body["choices"]] == ["length", "length"]
    assert body["usage"] == {
        "prompt_tokens": 7,
        "completion_tokens": 8,
        "total_tokens": 15,
        "estimated_cost": 9.24e-05,
    }
    assert t.usage == body["usage"]


def test_tgi_body_with_logprobs() -> None:
    out, _, t = CORE.transcode_meaning(
        TGI_BODY, "tgi", stream=False, logprobs=True, prompt_tokens=6
    )
    choice = completion(out)["choices"][0]
    assert choice["message"] == {
        "role": "assistant",
        "content": " le faire fondre à la casserole avec",
    }
    assert choice["finish_reason"] == "length"
    assert choice["logprobs"]["content"] == [
        {"token": " le", "logprob": -1.7822266, "bytes": list(b" le"), "top_logprobs": []},
        {"token": " faire", "logprob": -2.4882812, "bytes": list(b" faire"), "top_logprobs": []},
    ]
    assert t.usage == {
        "prompt_tokens": 6,
        "completion_tokens": 10,
        "total_tokens": 16,
        "estimated": True,
    }
    out, _, _ = CORE.transcode_meaning(TGI_BODY, "tgi", stream=False)
    assert completion(out)["choices"][0]["logprobs"] is None


def test_tgi_compat_array_body() -> None:
    out, _, t = CORE.transcode_meaning(
        TGI_COMPAT_BODY, "tgi", stream=False, stop=["</s>"], logprobs=True
    )
    choice = completion(out)["choices"][0]
    assert choice["message"]["content"] == "Paris."
    assert [e["token"] for e in choice["logprobs"]["content"]] == ["Paris", "."]
    assert choice["finish_reason"] == "stop"
    assert t.usage["completion_tokens"] == 3


def test_sse_body_is_aggregated() -> None:
    out, _, t = CORE.transcode_meaning(REASONING_STREAM, stream=False)
    body = completion(out)
    assert body["choices"][0]["message"] == {
        "role": "assistant",
        "content": "It is 4 😀.",
        "reasoning_content": "\nOkay, 2+2 — easy.",
    }
    assert body["usage"] == {"prompt_tokens": 30, "completion_tokens": 14, "total_tokens": 44}
    assert t.finish_reason == "stop"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (DEEPINFRA_ERROR_BODY, "upstream_reported_error"),
        (b'{"error": "Model is overloaded", "error_type": "overloaded"}', "upstream_overloaded"),
        (b'{"request_id": "x", "inference_status": {"status": "queued"}}', "upstream_bad_response"),
        (b'{"results": []}', "upstream_bad_response"),
        (b'{"generated_text": 5}', "upstream_bad_response"),
        (b"<html>502</html>", "upstream_bad_response"),
        (DEEPINFRA_ERROR_STREAM, "upstream_stream_error"),
        (DEEPINFRA_STREAM[:-60], "upstream_stream_truncated"),
    ],
)
def test_not_streaming_failures_give_the_error_envelope(body: bytes, code: str) -> None:
    out, _, t = CORE.transcode_meaning(body, stream=False)
    assert json.loads(out) == {"error": t.error}
    assert t.error["code"] == code
    assert t.error["type"] == "upstream_error"
    assert t.done is True


def test_aggregate_is_the_non_streaming_transcoder() -> None:
    options = {"stop": ["<|eot_id|>"], "think": "auto", "logprobs": True, "max_tokens": 4}
    for body in (DEEPINFRA_BODY_TWO, REASONING_STREAM, DEEPINFRA_ERROR_BODY):
        expected, _ = CORE.run([body], stream=False, **options)
        assert (
            aggregate("deepinfra", body, MODEL, response_id=RESPONSE_ID, created=CREATED, **options)
            == expected
        )


# --- the module surface ----------------------------------------------------------------------


def test_dialects() -> None:
    assert DIALECTS == ("openai", "deepinfra", "tgi", "ollama", "anthropic")


def test_bad_options_are_value_errors_that_say_what_to_use() -> None:
    with pytest.raises(ValueError, match="off, auto, open"):
        StreamTranscoder("tgi", MODEL, response_id="r", created=0, think="on")
    with pytest.raises(ValueError, match="empty"):
        StreamTranscoder("deepinfra", MODEL, response_id="r", created=0, stop=["x", ""])
    with pytest.raises(ValueError, match="off, auto, open"):
        aggregate("tgi", b"{}", MODEL, response_id="r", created=0, think="maybe")


def test_openai_accepts_and_ignores_the_generation_options() -> None:
    stream = (
        b'data: {"choices":[{"index":0,"delta":{"content":"<think>a</think>STOP"},'
        b'"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n'
    )
    plain, _ = CORE.run([stream], "openai")
    with_options, _ = CORE.run(
        [stream],
        "openai",
        logprobs=True,
        stop=("STOP",),
        think="open",
        max_tokens=1,
        prompt_tokens=3,
    )
    assert with_options == plain
