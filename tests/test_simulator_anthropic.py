"""The provider simulator speaking Anthropic's Messages API (PROTOCOLS.md §4), over real sockets."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator

import httpx
import orjson
import pytest

from sluicegate.simulator import token_text
from sluicegate.simulator.anthropic import (
    IMAGE_INPUT_TOKENS,
    MODELS,
    thinking_signature,
    tool_input,
)
from sluicegate.simulator.script import REASONING_WORDS, WORDS, ToolSpec
from tests.conftest import Simulator

WAIT = 10.0
HEADERS = {"x-api-key": "sk-ant-sim", "anthropic-version": "2023-06-01"}
MESSAGE_ID = re.compile(rb'"id":"(msg_01[A-Za-z0-9]{22})"')
TOOL_ID = re.compile(r"toolu_01[A-Za-z0-9]{22}")
REQUEST_ID = re.compile(r"req_01[A-Za-z0-9]{22}")
WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Current weather for a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
        "required": ["city"],
    },
}
TIME_TOOL = {
    "name": "get_time",
    "input_schema": {"type": "object", "properties": {"utc": {"type": "boolean"}}},
}
WEATHER_INPUT = tool_input(ToolSpec("get_weather", (("city", "string"), ("days", "integer"))))
THINKING = {"type": "enabled", "budget_tokens": 1024}


@pytest.fixture
def http(simulator: Simulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=simulator.base_url, timeout=WAIT, headers=HEADERS) as client:
        yield client


def ask(content: object, model: str = "claude-sonnet-4-5", **extra: object) -> dict:
    body = {"model": model, "max_tokens": 2048, "messages": [{"role": "user", "content": content}]}
    return body | extra


def events(answer: httpx.Response) -> list[tuple[str, dict]]:
    """The (event name, data) pairs of a stream, after checking the framing of each."""
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert REQUEST_ID.fullmatch(answer.headers["request-id"])
    frames = answer.content.split(b"\n\n")
    assert frames[-1] == b""  # every event ends with a blank line
    out = []
    for frame in frames[:-1]:
        name, data = frame.split(b"\n")
        name, data = name.removeprefix(b"event: "), data.removeprefix(b"data: ")
        payload = orjson.loads(data)
        assert payload["type"] == name.decode()  # the data's type repeats the event name
        compact = name == b"ping" or name == b"error" or data == orjson.dumps(payload)
        assert compact, data
        out.append((name.decode(), payload))
    return out


def stream(http: httpx.Client, body: dict, **headers: str) -> list[tuple[str, dict]]:
    return events(http.post("/v1/messages", json=body | {"stream": True}, headers=headers))


def names(stream_events: list[tuple[str, dict]]) -> list[str]:
    return [name for name, _ in stream_events]


def deltas(stream_events: list[tuple[str, dict]], kind: str) -> list[tuple[int, str]]:
    """(block index, piece) of each delta of ``kind`` (its one field besides ``type``)."""
    out = []
    for name, data in stream_events:
        if name == "content_block_delta" and data["delta"]["type"] == kind:
            (piece,) = (v for k, v in data["delta"].items() if k != "type")
            out.append((data["index"], piece))
    return out


def final(stream_events: list[tuple[str, dict]]) -> dict:
    """The message_delta event's data."""
    (delta,) = [data for name, data in stream_events if name == "message_delta"]
    return delta


def error_of(answer: httpx.Response, status: int) -> tuple[str, str]:
    """(error.type, message) of an Anthropic error answer, after checking its shape."""
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert list(body) == ["type", "error", "request_id"] and body["type"] == "error"
    assert list(body["error"]) == ["type", "message"]
    assert REQUEST_ID.fullmatch(body["request_id"])
    assert answer.headers["request-id"] == body["request_id"]
    return body["error"]["type"], body["error"]["message"]


# --- the stream -----------------------------------------------------------------------------


def test_text_stream_bytes_follow_the_sdk_fixture(http: httpx.Client) -> None:
    raw = http.post("/v1/messages", json=ask("one two #sim tokens=3", stream=True)).content
    match = MESSAGE_ID.search(raw)
    assert match
    message_id = match.group(1)

    def delta(text: str) -> bytes:
        return (
            b"event: content_block_delta\n"
            b'data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta",'
            b'"text":"' + text.encode() + b'"}}\n\n'
        )

    assert raw == (
        b"event: message_start\n"
        b'data: {"type":"message_start","message":{"id":"' + message_id + b'","type":"message",'
        b'"role":"assistant","content":[],"model":"claude-sonnet-4-5","stop_reason":null,'
        b'"stop_sequence":null,"usage":{"input_tokens":4,"output_tokens":1}}}\n\n'
        b"event: content_block_start\n"
        b'data: {"type":"content_block_start","index":0,"content_block":{"type":"text",'
        b'"text":""}}\n\n'
        b"event: ping\n"
        b'data: {"type": "ping"}\n\n'
        + delta(WORDS[0])
        + delta(WORDS[1])
        + delta(WORDS[2])
        + b"event: content_block_stop\n"
        b'data: {"type":"content_block_stop","index":0}\n\n'
        b"event: message_delta\n"
        b'data: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},'
        b'"usage":{"output_tokens":3}}\n\n'
        b"event: message_stop\n"
        b'data: {"type":"message_stop"}\n\n'
    )


def test_thinking_block_comes_first_and_ends_with_its_signature(http: httpx.Client) -> None:
    got = stream(http, ask("hi #sim tokens=2 think=3", thinking=THINKING))
    assert names(got) == [
        "message_start",
        "content_block_start",
        "ping",
        *["content_block_delta"] * 4,  # three thinking pieces, then the signature
        "content_block_stop",
        "content_block_start",
        *["content_block_delta"] * 2,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert got[1][1]["content_block"] == {"type": "thinking", "thinking": "", "signature": ""}
    assert deltas(got, "thinking_delta") == [(0, word) for word in REASONING_WORDS[:3]]
    thought = "".join(REASONING_WORDS[:3])
    assert deltas(got, "signature_delta") == [(0, thinking_signature(thought))]
    assert names(got)[6:8] == ["content_block_delta", "content_block_stop"]  # just before stop
    assert deltas(got, "text_delta") == [(1, WORDS[0]), (1, WORDS[1])]
    assert final(got)["usage"] == {"output_tokens": 5}  # thinking is output too
    # think=N only applies when the request enables thinking
    plain = stream(http, ask("hi #sim tokens=2 think=3"))
    assert not deltas(plain, "thinking_delta") and len(deltas(plain, "text_delta")) == 2
    adaptive = stream(http, ask("hi #sim tokens=1 think=1", thinking={"type": "adaptive"}))
    assert deltas(adaptive, "thinking_delta") == [(0, REASONING_WORDS[0])]


def test_tool_use_arguments_come_as_awkward_fragments(http: httpx.Client) -> None:
    got = stream(http, ask("weather? #sim tool=1", tools=[WEATHER_TOOL, TIME_TOOL]))
    starts = [data for name, data in got if name == "content_block_start"]
    assert len(starts) == 1 and starts[0]["index"] == 0
    block = starts[0]["content_block"]
    assert TOOL_ID.fullmatch(block.pop("id"))
    assert block == {
        "type": "tool_use",
        "name": "get_weather",
        "caller": {"type": "direct"},
        "input": {},
    }
    fragments = [piece for _, piece in deltas(got, "input_json_delta")]
    assert WEATHER_INPUT == '{"city": "Paris", "days": 3}'  # spaced, as the model writes it
    # the first fragment is empty (like the fixture), the others split inside keys and values
    assert fragments == ["", '{"city', '": "Pa', 'ris", ', '"days"', ": 3}"]
    assert not deltas(got, "text_delta")
    assert final(got)["delta"] == {"stop_reason": "tool_use", "stop_sequence": None}
    assert names(got)[-3:] == ["content_block_stop", "message_delta", "message_stop"]


def test_preamble_and_thinking_put_the_tool_block_at_a_later_index(http: httpx.Client) -> None:
    got = stream(
        http, ask("#sim tool=1 preamble=1 tokens=2 think=1", thinking=THINKING, tools=[TIME_TOOL])
    )
    starts = [data["content_block"]["type"] for name, data in got if name == "content_block_start"]
    assert starts == ["thinking", "text", "tool_use"]
    assert deltas(got, "text_delta") == [(1, WORDS[0]), (1, WORDS[1])]
    assert {index for index, _ in deltas(got, "input_json_delta")} == {2}
    assert "".join(f for _, f in deltas(got, "input_json_delta")) == '{"utc": true}'


def test_parallel_sends_two_tool_blocks(http: httpx.Client) -> None:
    got = stream(http, ask("#sim tool=1 parallel=1", tools=[WEATHER_TOOL, TIME_TOOL]))
    blocks = [data["content_block"] for name, data in got if name == "content_block_start"]
    assert [b["name"] for b in blocks] == ["get_weather", "get_time"]
    assert blocks[0]["id"] != blocks[1]["id"]
    by_index: dict[int, str] = {}
    for index, fragment in deltas(got, "input_json_delta"):
        by_index[index] = by_index.get(index, "") + fragment
    assert by_index == {0: WEATHER_INPUT, 1: '{"utc": true}'}
    one = {"type": "auto", "disable_parallel_tool_use": True}
    single = stream(
        http, ask("#sim tool=1 parallel=1", tools=[WEATHER_TOOL, TIME_TOOL], tool_choice=one)
    )
    assert names(single).count("content_block_start") == 1


def test_tool_choice_picks_or_forbids_the_tool(http: httpx.Client) -> None:
    named = {"type": "tool", "name": "get_time"}
    got = stream(http, ask("what time", tools=[WEATHER_TOOL, TIME_TOOL], tool_choice=named))
    blocks = [data["content_block"] for name, data in got if name == "content_block_start"]
    assert [b["name"] for b in blocks] == ["get_time"]  # forced without tool=1
    forced = stream(http, ask("hi", tools=[WEATHER_TOOL], tool_choice={"type": "any"}))
    assert final(forced)["delta"]["stop_reason"] == "tool_use"
    none = stream(http, ask("#sim tool=1", tools=[WEATHER_TOOL], tool_choice={"type": "none"}))
    assert final(none)["delta"]["stop_reason"] == "end_turn"


def test_noinput_sends_a_tool_block_without_deltas(http: httpx.Client) -> None:
    got = stream(http, ask("#sim tool=1 noinput=1", tools=[WEATHER_TOOL]))
    assert names(got) == [
        "message_start",
        "content_block_start",
        "ping",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    whole = http.post("/v1/messages", json=ask("#sim tool=1 noinput=1", tools=[WEATHER_TOOL]))
    assert whole.json()["content"][0]["input"] == {}


def test_max_tokens_caps_the_answer(http: httpx.Client) -> None:
    got = stream(http, ask("hi #sim tokens=9", max_tokens=4))
    assert "".join(text for _, text in deltas(got, "text_delta")) == token_text(4)
    assert final(got) == {
        "type": "message_delta",
        "delta": {"stop_reason": "max_tokens", "stop_sequence": None},
        "usage": {"output_tokens": 4},
    }


def test_stop_at_reports_the_stop_sequence_it_trimmed(http: httpx.Client) -> None:
    got = stream(http, ask("hi #sim tokens=9 stop_at=2", stop_sequences=["\n\nHuman:", "END"]))
    assert "".join(text for _, text in deltas(got, "text_delta")) == token_text(2)
    assert final(got)["delta"] == {"stop_reason": "stop_sequence", "stop_sequence": "\n\nHuman:"}
    ignored = stream(http, ask("hi #sim tokens=3 stop_at=2"))  # no stop_sequences: no effect
    assert final(ignored)["delta"]["stop_reason"] == "end_turn"


def test_refusal_ends_with_stop_reason_refusal(http: httpx.Client) -> None:
    got = stream(http, ask("hi #sim tokens=2 refusal=1"))
    assert final(got)["delta"] == {"stop_reason": "refusal", "stop_sequence": None}
    body = http.post("/v1/messages", json=ask("hi #sim tokens=2 refusal=1")).json()
    assert body["stop_reason"] == "refusal"


def test_cache_puts_cache_fields_in_the_start_usage(http: httpx.Client) -> None:
    got = stream(http, ask("one two #sim tokens=1 cache=100"))
    assert got[0][1]["message"]["usage"] == {
        "input_tokens": 5,  # one per word; the cached tokens come on top
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 100,
        "output_tokens": 1,
        "service_tier": "standard",
    }
    zero = stream(http, ask("#sim tokens=1 cache=0"))[0][1]["message"]["usage"]
    assert zero["cache_read_input_tokens"] == 0  # present, and 0
    body = http.post("/v1/messages", json=ask("one two #sim tokens=1 cache=100")).json()
    assert body["usage"]["cache_read_input_tokens"] == 100


def test_error_after_ends_the_stream_with_an_error_event(http: httpx.Client) -> None:
    answer = http.post("/v1/messages", json=ask("#sim tokens=5 error_after=2", stream=True))
    got = events(answer)
    assert names(got) == [
        "message_start",
        "content_block_start",
        "ping",
        "content_block_delta",
        "content_block_delta",
        "error",
    ]
    assert answer.content.endswith(
        b"event: error\n"
        b'data: {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}'
        b"\n\n"
    )


def test_truncate_garbage_crlf_and_ping(http: httpx.Client) -> None:
    cut = stream(http, ask("#sim tokens=5 truncate_after=2"))
    assert names(cut)[-1] == "content_block_delta"
    raw = http.post("/v1/messages", json=ask("#sim tokens=2 garbage=1", stream=True)).content
    assert b"event: content_block_delta\ndata: {this is not JSON\n\n" in raw
    assert raw.endswith(b'event: message_stop\ndata: {"type":"message_stop"}\n\n')
    crlf = http.post("/v1/messages", json=ask("#sim tokens=1 crlf=1", stream=True)).content
    assert crlf.endswith(b'event: message_stop\r\ndata: {"type":"message_stop"}\r\n\r\n')
    assert b"\n" not in crlf.replace(b"\r\n", b"")
    pinged = stream(http, ask("#sim tokens=2 ping=1"))
    assert names(pinged).count("ping") > 3


# --- errors before the answer --------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error_type"),
    [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (403, "permission_error"),
        (404, "not_found_error"),
        (413, "request_too_large"),
        (429, "rate_limit_error"),
        (500, "api_error"),
        (503, "api_error"),
        (529, "overloaded_error"),
    ],
)
def test_status_directive_answers_with_anthropic_errors(
    http: httpx.Client, status: int, error_type: str
) -> None:
    answer = http.post("/v1/messages", json=ask(f"#sim status={status} retry_after=7"))
    assert error_of(answer, status)[0] == error_type
    assert answer.headers.get("retry-after") == ("7" if status == 429 else None)


def test_status_from_the_header_and_overflow(http: httpx.Client) -> None:
    answer = http.post("/v1/messages", json=ask("hi", stream=True), headers={"x-sim": "status=529"})
    assert error_of(answer, 529) == ("overloaded_error", "Overloaded (#sim status=529)")
    long = http.post("/v1/messages", json=ask("#sim status=400 overflow=1"))
    assert error_of(long, 400)[1].startswith("prompt is too long:")


def test_headers_are_required(simulator: Simulator) -> None:
    with httpx.Client(base_url=simulator.base_url, timeout=WAIT) as bare:
        no_key = bare.post("/v1/messages", json=ask("hi"), headers={"anthropic-version": "x"})
        assert error_of(no_key, 401) == ("authentication_error", "x-api-key header is required")
        no_version = bare.post("/v1/messages", json=ask("hi"), headers={"x-api-key": "k"})
        kind, message = error_of(no_version, 400)
        assert kind == "invalid_request_error" and "anthropic-version" in message
        bearer = bare.post(
            "/v1/messages",
            json=ask("hi"),
            headers={"authorization": "Bearer k", "anthropic-version": "2023-06-01"},
        )
        assert bearer.status_code == 401


_BAD_BODIES: list[tuple[dict, str]] = [
    ({"max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}, "model: Field required"),
    (
        {"model": "m", "messages": [{"role": "user", "content": "x"}]},
        "max_tokens: Field required",
    ),
    (ask("x", max_tokens=0), "greater than or equal to 1"),
    (ask("x", max_tokens="9"), "max_tokens"),
    ({"model": "m", "max_tokens": 5}, "messages: Field required"),
    (ask("x") | {"messages": []}, "at least one message"),
    (
        ask("x") | {"messages": [{"role": "system", "content": "be brief"}]},
        "top-level `system` parameter",
    ),
    (ask("x") | {"messages": [{"role": "tool", "content": "x"}]}, "'user' or 'assistant'"),
    (
        ask("x") | {"messages": [{"role": "assistant", "content": "x"}]},
        'first message must use the "user" role',
    ),
    (ask(""), "non-empty content"),
    (ask([{"type": "text", "text": ""}]), "text content blocks must be non-empty"),
    (ask([{"type": "video"}]), "does not match the expected tags"),
    (
        ask([{"type": "image", "source": {"type": "base64", "media_type": "image/tiff"}}]),
        "media_type",
    ),
    (
        ask(
            [
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/png", "data": "!!"},
                }
            ]
        ),
        "base64",
    ),
    (ask([{"type": "tool_use", "id": "t", "name": "f", "input": {}}]), "assistant messages"),
    (ask("x", n=2), "n: Extra inputs are not permitted"),
    (ask("x", temperature=1.5), "temperature"),
    (ask("x", top_k=-1), "top_k"),
    (ask("x", stream="yes"), "stream"),
    (ask("x", stop_sequences="END"), "stop_sequences"),
    (ask("x", system=[{"type": "image"}]), "system"),
    (ask("x", tools=[{"name": "f"}]), "input_schema: Field required"),
    (ask("x", tools=[{"name": "bad name", "input_schema": {"type": "object"}}]), "pattern"),
    (ask("x", tool_choice={"type": "required"}), "tool_choice"),
    (ask("x", tool_choice={"type": "any"}), "while providing tools"),
    (ask("x", tools=[WEATHER_TOOL], tool_choice={"type": "tool", "name": "nope"}), "nope"),
    (ask("x", thinking={"type": "enabled", "budget_tokens": 512}), "1024"),
    (
        ask("x", max_tokens=1024, thinking=THINKING),
        "`max_tokens` must be greater than `thinking.budget_tokens`",
    ),
    (ask("x", thinking=THINKING, temperature=0.2), "`temperature` may only be set to 1"),
    (
        ask("x", thinking=THINKING, tools=[WEATHER_TOOL], tool_choice={"type": "any"}),
        "Thinking may not be enabled when tool_choice forces tool use",
    ),
    (ask("#sim nope=1"), "unknown key 'nope'"),
    (ask("#sim tool=1"), "no 'tools'"),
]


@pytest.mark.parametrize(("body", "wanted"), _BAD_BODIES)
def test_validation(http: httpx.Client, body: dict, wanted: str) -> None:
    kind, message = error_of(http.post("/v1/messages", json=body), 400)
    assert kind == "invalid_request_error"
    assert wanted in message


def test_bad_json_and_missing_models(http: httpx.Client) -> None:
    assert "JSON" in error_of(http.post("/v1/messages", content=b"{nope"), 400)[1]
    missing = http.post("/v1/messages", json=ask("hi", "claude-missing-1"))
    assert error_of(missing, 404) == ("not_found_error", "model: claude-missing-1")


def test_tool_use_and_tool_result_must_pair(http: httpx.Client) -> None:
    call = {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "x"}}
    result = {"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny and warm"}
    turn = [
        {"role": "user", "content": "weather? #sim tokens=2"},
        {"role": "assistant", "content": [{"type": "text", "text": "Checking."}, call]},
        {"role": "user", "content": [result]},
    ]
    body = ask("x", tools=[WEATHER_TOOL]) | {"messages": turn}
    answer = http.post("/v1/messages", json=body)
    assert answer.status_code == 200, answer.text
    # the tool result's words count, and the directive comes from the typed turn
    assert answer.json()["usage"]["input_tokens"] == 3 + 1 + 3
    assert answer.json()["content"] == [{"type": "text", "text": token_text(2)}]
    unanswered = body | {"messages": [*turn[:2], {"role": "user", "content": "and?"}]}
    message = error_of(http.post("/v1/messages", json=unanswered), 400)[1]
    assert "`tool_use` ids were found without `tool_result` blocks" in message
    stray = body | {"messages": [turn[0], {"role": "assistant", "content": "ok"}, turn[2]]}
    message = error_of(http.post("/v1/messages", json=stray), 400)[1]
    assert "unexpected `tool_use_id`" in message


# --- the non-streamed answer ---------------------------------------------------------------


def test_non_stream_message_holds_every_block(http: httpx.Client) -> None:
    body = ask(
        "a b #sim tool=1 preamble=1 tokens=2 think=2",
        thinking=THINKING,
        tools=[WEATHER_TOOL],
        system="You are terse.",
    )
    answer = http.post("/v1/messages", json=body)
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    message = answer.json()
    assert re.fullmatch(r"msg_01[A-Za-z0-9]{22}", message.pop("id"))
    assert TOOL_ID.fullmatch(message["content"][2].pop("id"))
    assert message == {
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5",
        "content": [
            {"type": "thinking", "thinking": "Let me", "signature": thinking_signature("Let me")},
            {"type": "text", "text": token_text(2)},
            {
                "type": "tool_use",
                "name": "get_weather",
                "caller": {"type": "direct"},
                "input": {"city": "Paris", "days": 3},
            },
        ],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 10,  # 3 system words + 7 of the message
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": 2 + 2 + 7,  # thinking, text, tool start + 6 argument fragments
            "service_tier": "standard",
        },
    }


def test_non_stream_failures(http: httpx.Client) -> None:
    failed = http.post("/v1/messages", json=ask("#sim error_after=1"))
    assert error_of(failed, 529) == ("overloaded_error", "Overloaded")
    cut = http.post("/v1/messages", json=ask("#sim truncate_after=1"))
    assert cut.status_code == 200
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(cut.content)
    garbage = http.post("/v1/messages", json=ask("#sim garbage=1"))
    assert garbage.status_code == 200 and garbage.content.startswith(b"<html>")


def test_images_count_in_the_input(http: httpx.Client) -> None:
    data = base64.b64encode(b"\x89PNG fake").decode()
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": data}}
    linked = {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}}
    content = [image, linked, {"type": "text", "text": "what is this"}]
    answer = http.post("/v1/messages", json=ask(content))
    assert answer.status_code == 200, answer.text
    assert answer.json()["usage"]["input_tokens"] == 3 + 2 * IMAGE_INPUT_TOKENS


# --- the models list and recording ---------------------------------------------------------


def test_models_list_is_anthropics_only_with_its_headers(simulator: Simulator) -> None:
    with httpx.Client(base_url=simulator.base_url, timeout=WAIT) as bare:
        listed = bare.get("/v1/models", headers=HEADERS).json()
        assert listed == {
            "data": [
                {"type": "model", "id": model_id, "display_name": name, "created_at": created}
                for model_id, name, created in MODELS
            ],
            "has_more": False,
            "first_id": MODELS[0][0],
            "last_id": MODELS[-1][0],
        }
        for headers in ({}, {"x-api-key": "k"}, {"anthropic-version": "2023-06-01"}):
            openai = bare.get("/v1/models", headers=headers).json()
            assert openai["object"] == "list" and "has_more" not in openai


def test_the_request_is_recorded(http: httpx.Client, simulator: Simulator) -> None:
    body = ask("recorded 9c1d #sim tokens=1", metadata={"user_id": "u-1"})
    http.post("/v1/messages", json=body)
    seen = [r for r in simulator.state.recent if r["path"] == "/v1/messages" and r["body"] == body]
    assert seen and seen[-1]["method"] == "POST"
    assert seen[-1]["headers"]["anthropic-version"] == "2023-06-01"
