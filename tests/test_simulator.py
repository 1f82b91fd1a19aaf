"""The provider simulator (OpenAI dialect): every directive, stream and non-stream."""

from __future__ import annotations

import time

import httpx
import openai
import orjson
import pytest

from sluicegate.errors import GatewayError
from sluicegate.simulator import SimulatorState, parse_behaviour, token_text
from sluicegate.simulator.behaviour import KNOWN_KEYS, Behaviour
from sluicegate.simulator.openai import StreamRenderer
from sluicegate.simulator.script import Ask, Finish, Start, Text, Usage, build_script
from tests.harness import wait_until
from tests.simulator_client import (  # noqa: F401 (fixtures: sim, base, http, state)
    WAIT,
    module_simulator,
    simulator_base,
    simulator_http,
    simulator_state,
)


def chat(content: str, **extra: object) -> dict:
    return {"model": "sim-small", "messages": [{"role": "user", "content": content}], **extra}


def frames(raw: bytes) -> list[bytes]:
    return [f.removeprefix(b"data: ") for f in raw.split(b"\n\n") if f]


def chunks_of(raw: bytes) -> list[dict]:
    return [orjson.loads(f) for f in frames(raw) if f != b"[DONE]"]


# --- plain answers --------------------------------------------------------------------------


def test_healthz_and_models(http: httpx.Client) -> None:
    assert http.get("/healthz").json() == {"status": "ok"}
    models = http.get("/v1/models").json()
    assert models["object"] == "list"
    assert {"sim-small", "sim-large", "sim-tools"} <= {m["id"] for m in models["data"]}


def test_non_stream_answer(http: httpx.Client) -> None:
    answer = http.post("/v1/chat/completions", json=chat("one two three #sim tokens=5"))
    assert answer.status_code == 200
    body = answer.json()
    assert body["object"] == "chat.completion"
    assert body["id"].startswith("chatcmpl-")
    assert body["model"] == "sim-small"
    choice = body["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": token_text(5), "refusal": None}
    assert choice["finish_reason"] == "stop"
    assert body["usage"]["prompt_tokens"] == 5  # one per word of the messages
    assert body["usage"]["completion_tokens"] == 5
    assert body["usage"]["total_tokens"] == 10
    assert body["usage"]["prompt_tokens_details"] == {"cached_tokens": 0}


def test_default_is_eight_deterministic_tokens(http: httpx.Client) -> None:
    first = http.post("/v1/chat/completions", json=chat("hi")).json()
    again = http.post("/v1/chat/completions", json=chat("something else")).json()
    assert first["choices"][0]["message"]["content"] == token_text(8)
    assert again["choices"][0]["message"]["content"] == token_text(8)
    assert token_text(3) == " The quick brown"


def test_stream_wire_sequence(http: httpx.Client) -> None:
    raw = http.post("/v1/chat/completions", json=chat("hi #sim tokens=3", stream=True))
    assert raw.headers["content-type"] == "text/event-stream"
    events = frames(raw.content)
    assert events[-1] == b"[DONE]"
    chunks = [orjson.loads(e) for e in events[:-1]]
    assert len(chunks) == 1 + 3 + 1
    assert len({(c["id"], c["created"]) for c in chunks}) == 1
    assert all(c["object"] == "chat.completion.chunk" and c["model"] == "sim-small" for c in chunks)
    deltas = [c["choices"][0]["delta"] for c in chunks]
    assert deltas[0] == {"role": "assistant", "content": "", "refusal": None}
    assert [d["content"] for d in deltas[1:4]] == [" The", " quick", " brown"]
    assert deltas[4] == {}
    assert [c["choices"][0]["finish_reason"] for c in chunks] == [None, None, None, None, "stop"]
    assert all("usage" not in c for c in chunks)


def test_stream_with_include_usage_ends_with_a_usage_chunk(http: httpx.Client) -> None:
    body = chat("a b #sim tokens=2", stream=True, stream_options={"include_usage": True})
    chunks = chunks_of(http.post("/v1/chat/completions", json=body).content)
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["completion_tokens"] == 2
    assert chunks[-1]["usage"]["prompt_tokens"] == 4
    assert chunks[-1]["usage"]["prompt_tokens_details"] == {"cached_tokens": 0}


def test_max_tokens_cuts_the_answer_with_length(http: httpx.Client) -> None:
    body = http.post("/v1/chat/completions", json=chat("x #sim tokens=9", max_tokens=2)).json()
    assert body["choices"][0]["message"]["content"] == token_text(2)
    assert body["choices"][0]["finish_reason"] == "length"


def test_renderer_matches_the_recorded_openai_shape() -> None:
    """Byte-exact against PROTOCOLS.md §5.3 (ids, model and fingerprint swapped for ours)."""
    behaviour = Behaviour()
    renderer = StreamRenderer(
        "m", include_usage=True, behaviour=behaviour, response_id="chatcmpl-X", created=7
    )
    steps = [Start(), Text("I'm"), Finish("stop", Usage(14, 1))]
    out = b"".join(renderer.render(s) for s in steps)
    head = (
        b'data: {"id":"chatcmpl-X","object":"chat.completion.chunk","created":7,"model":"m",'
        b'"system_fingerprint":"fp_sim",'
    )
    tail = b',"logprobs":null,"finish_reason":'
    assert out == (
        head
        + b'"choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null}'
        + tail
        + b"null}]}\n\n"
        + head
        + b'"choices":[{"index":0,"delta":{"content":"I\'m"}'
        + tail
        + b"null}]}\n\n"
        + head
        + b'"choices":[{"index":0,"delta":{}'
        + tail
        + b'"stop"}]}\n\n'
        + head
        + b'"choices":[],"usage":{"prompt_tokens":14,"completion_tokens":1,'
        b'"total_tokens":15,"prompt_tokens_details":{"cached_tokens":0},'
        b'"completion_tokens_details":{"reasoning_tokens":0}}}\n\n'
    )


# --- directives -----------------------------------------------------------------------------


def test_only_the_last_user_message_counts(http: httpx.Client) -> None:
    messages = [
        {"role": "user", "content": "#sim tokens=1"},
        {"role": "assistant", "content": "ok #sim tokens=2"},
        {"role": "user", "content": [{"type": "text", "text": "again\n#sim tokens=3\nbye"}]},
    ]
    body = http.post("/v1/chat/completions", json={"model": "m", "messages": messages}).json()
    assert body["choices"][0]["message"]["content"] == token_text(3)


def test_header_wins_over_the_message(http: httpx.Client) -> None:
    answer = http.post(
        "/v1/chat/completions",
        json=chat("x #sim tokens=2 ping=1"),
        headers={"x-sim": "tokens=4"},
    )
    assert answer.json()["choices"][0]["message"]["content"] == token_text(4)


@pytest.mark.parametrize("stream", [False, True])
def test_headers_ms_delays_the_response_head(base: str, stream: bool) -> None:
    started = time.monotonic()
    with httpx.stream(
        "POST", f"{base}/v1/chat/completions", json=chat("#sim headers_ms=300", stream=stream)
    ) as answer:
        assert answer.status_code == 200
        elapsed = time.monotonic() - started
    assert elapsed >= 0.3


def test_ttft_and_gap_shape_the_stream_timing(base: str) -> None:
    body = chat("#sim tokens=3 ttft_ms=200 gap_ms=100", stream=True)
    arrivals: list[tuple[float, bytes]] = []
    started = time.monotonic()
    with httpx.stream("POST", f"{base}/v1/chat/completions", json=body, timeout=WAIT) as answer:
        head_at = time.monotonic() - started
        for piece in answer.iter_raw():
            arrivals.append((time.monotonic() - started, piece))
    assert head_at < 0.2, "headers go out before the first token"
    content_times = [t for t, piece in arrivals if b'"content":" ' in piece]
    assert content_times[0] >= 0.2
    assert arrivals[-1][0] >= 0.2 + 2 * 0.1
    assert len(arrivals) >= 3, "tokens separated by a gap arrive in separate writes"


def test_ttft_delays_the_non_stream_answer(http: httpx.Client) -> None:
    started = time.monotonic()
    assert http.post("/v1/chat/completions", json=chat("#sim ttft_ms=200 tokens=1")).is_success
    assert time.monotonic() - started >= 0.2


@pytest.mark.parametrize(
    ("status", "error_type", "code"),
    [
        (400, "invalid_request_error", None),
        (401, "authentication_error", "invalid_api_key"),
        (404, "not_found_error", "model_not_found"),
        (429, "rate_limit_error", "rate_limit_exceeded"),
        (500, "server_error", None),
        (503, "server_error", None),
    ],
)
@pytest.mark.parametrize("stream", [False, True])
def test_status_directive(
    http: httpx.Client, status: int, error_type: str, code: str | None, stream: bool
) -> None:
    answer = http.post("/v1/chat/completions", json=chat(f"#sim status={status}", stream=stream))
    assert answer.status_code == status
    error = answer.json()["error"]
    assert (error["type"], error["code"]) == (error_type, code)
    assert error["message"]
    if status == 429:
        assert answer.headers["retry-after"] == "1"
    else:
        assert "retry-after" not in answer.headers


def test_retry_after(http: httpx.Client) -> None:
    answer = http.post("/v1/chat/completions", json=chat("#sim status=429 retry_after=7"))
    assert answer.headers["retry-after"] == "7"


def test_error_after_stream(http: httpx.Client) -> None:
    raw = http.post("/v1/chat/completions", json=chat("#sim tokens=5 error_after=2", stream=True))
    events = frames(raw.content)
    assert b"[DONE]" not in events
    chunks = [orjson.loads(e) for e in events]
    assert [c["choices"][0]["delta"].get("content") for c in chunks[1:3]] == [" The", " quick"]
    error = chunks[-1]["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert all(c.get("choices", [{}])[0].get("finish_reason") is None for c in chunks)


def test_error_after_non_stream(http: httpx.Client) -> None:
    answer = http.post("/v1/chat/completions", json=chat("#sim error_after=2"))
    assert answer.status_code == 500
    assert answer.json()["error"]["type"] == "server_error"


def test_truncate_after_stream(http: httpx.Client) -> None:
    body = chat("#sim tokens=5 truncate_after=2", stream=True)
    raw = http.post("/v1/chat/completions", json=body).content  # the HTTP message is complete
    chunks = chunks_of(raw)
    assert [c["choices"][0]["delta"].get("content") for c in chunks] == ["", " The", " quick"]
    assert b"[DONE]" not in raw
    assert all(c["choices"][0]["finish_reason"] is None for c in chunks)


def test_truncate_after_non_stream(http: httpx.Client) -> None:
    answer = http.post("/v1/chat/completions", json=chat("#sim truncate_after=2"))
    assert answer.status_code == 200
    assert answer.content.startswith(b'{"id":"chatcmpl-')
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(answer.content)


def test_reset_after_stream(base: str) -> None:
    received = b""
    body = chat("#sim tokens=5 reset_after=2", stream=True)
    with (
        pytest.raises(httpx.RemoteProtocolError),
        httpx.stream("POST", f"{base}/v1/chat/completions", json=body) as answer,
    ):
        for piece in answer.iter_bytes():
            received += piece
    chunks = chunks_of(received)
    assert [c["choices"][0]["delta"].get("content") for c in chunks] == ["", " The", " quick"]
    assert b"[DONE]" not in received


def test_reset_after_non_stream(http: httpx.Client) -> None:
    with pytest.raises(httpx.RemoteProtocolError):
        http.post("/v1/chat/completions", json=chat("#sim reset_after=2"))


def test_stall_after_keeps_the_connection_open_and_counts_the_disconnect(
    base: str, state: SimulatorState
) -> None:
    before = state.client_disconnects
    received = b""
    body = chat("#sim tokens=5 stall_after=2", stream=True)
    timeout = httpx.Timeout(WAIT, read=0.5)
    with (
        pytest.raises(httpx.ReadTimeout),
        httpx.stream("POST", f"{base}/v1/chat/completions", json=body, timeout=timeout) as answer,
    ):
        for piece in answer.iter_bytes():
            received += piece
    assert [c["choices"][0]["delta"].get("content") for c in chunks_of(received)][-1] == " quick"
    assert wait_until(lambda: state.client_disconnects == before + 1)


def test_stall_after_non_stream(http: httpx.Client) -> None:
    with pytest.raises(httpx.ReadTimeout):
        http.post("/v1/chat/completions", json=chat("#sim stall_after=0"), timeout=0.5)


def test_garbage_stream(http: httpx.Client) -> None:
    raw = http.post("/v1/chat/completions", json=chat("#sim tokens=3 garbage=1", stream=True))
    bad = [f for f in frames(raw.content) if f != b"[DONE]" and not f.startswith(b'{"')]
    assert len(bad) == 1
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(bad[0])


def test_garbage_non_stream(http: httpx.Client) -> None:
    answer = http.post("/v1/chat/completions", json=chat("#sim garbage=1"))
    assert answer.status_code == 200
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(answer.content)


TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
            },
        },
    },
    {"type": "function", "function": {"name": "other"}},
]


@pytest.mark.parametrize(
    ("content", "extra"),
    [("#sim tool=1", {}), ("weather?", {"tool_choice": "required"})],
    ids=["directive", "tool_choice"],
)
def test_tool_call_stream(http: httpx.Client, content: str, extra: dict) -> None:
    body = chat(content, stream=True, tools=TOOLS, **extra)
    chunks = chunks_of(http.post("/v1/chat/completions", json=body).content)
    calls = [tc for c in chunks for tc in c["choices"][0]["delta"].get("tool_calls", [])]
    first, rest = calls[0], calls[1:]
    assert first["id"].startswith("call_")
    assert (first["type"], first["function"]) == (
        "function",
        {"name": "get_weather", "arguments": ""},
    )
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert len(rest) >= 3, "arguments arrive in several fragments"
    assert all(set(tc) == {"index", "function"} and tc["index"] == 0 for tc in rest)
    arguments = "".join(tc["function"]["arguments"] for tc in rest)
    assert orjson.loads(arguments) == {"city": "Paris", "days": 3}
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_tool_call_non_stream(http: httpx.Client) -> None:
    body = http.post("/v1/chat/completions", json=chat("#sim tool=1", tools=TOOLS)).json()
    choice = body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    call = choice["message"]["tool_calls"][0]
    assert call["id"].startswith("call_")
    assert call["function"]["name"] == "get_weather"
    assert orjson.loads(call["function"]["arguments"]) == {"city": "Paris", "days": 3}


def test_usage_on_finish(http: httpx.Client) -> None:
    body = chat(
        "#sim tokens=2 usage_on_finish=1", stream=True, stream_options={"include_usage": True}
    )
    chunks = chunks_of(http.post("/v1/chat/completions", json=body).content)
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["usage"]["completion_tokens"] == 2
    assert all(c["choices"] for c in chunks), "no separate usage chunk"


def test_ping_and_crlf(http: httpx.Client) -> None:
    raw = http.post(
        "/v1/chat/completions", json=chat("#sim tokens=2 ping=1 crlf=1", stream=True)
    ).content
    assert b"\n" not in raw.replace(b"\r\n", b"")
    blocks = [b for b in raw.split(b"\r\n\r\n") if b]
    assert blocks[0].startswith(b"data: ")
    assert blocks[1::2] == [b": ping"] * (len(blocks) // 2)
    assert blocks[-1] == b"data: [DONE]"


# --- bad requests ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "code", "param"),
    [
        (b"{not json", "invalid_json", None),
        (b"[]", "invalid_type", None),
        (b'{"model": "m"}', "missing_required_parameter", "messages"),
        (b'{"model": "m", "messages": []}', "missing_required_parameter", "messages"),
        (
            b'{"messages": [{"role": "user", "content": "x"}]}',
            "missing_required_parameter",
            "model",
        ),
        (
            b'{"model": "m", "messages": [{"role": "user", "content": "#sim colour=red"}]}',
            "invalid_sim_directive",
            "colour",
        ),
        (
            b'{"model": "m", "messages": [{"role": "user", "content": "#sim tokens=many"}]}',
            "invalid_sim_directive",
            "tokens",
        ),
    ],
)
def test_bad_requests_are_400(
    http: httpx.Client, body: bytes, code: str, param: str | None
) -> None:
    answer = http.post("/v1/chat/completions", content=body)
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert (error["type"], error["code"], error["param"]) == ("invalid_request_error", code, param)
    if param:
        assert param in error["message"]


def test_unknown_route_is_404(http: httpx.Client) -> None:
    answer = http.get("/v1/nothing")
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "unknown_url"


def test_parse_behaviour() -> None:
    behaviour = parse_behaviour(" tokens=3 gap_ms=5 tool=1", "tokens=4 retry_after=2.5")
    assert (behaviour.tokens, behaviour.gap_ms, behaviour.tool) == (4, 5, True)
    assert behaviour.retry_after == "2.5"
    assert set(Behaviour.__dataclass_fields__) == KNOWN_KEYS
    for bad in ("tool=2", "status=200", "tokens", "retry_after=-1", "nope=1"):
        with pytest.raises(GatewayError) as raised:
            parse_behaviour(bad)
        assert raised.value.status == 400


def test_script_cut_points_beyond_the_end_fire_before_the_finish() -> None:
    script = build_script(Behaviour(tokens=2, error_after=9), Ask(prompt_tokens=1))
    assert [type(s).__name__ for s in script] == ["Start", "Text", "Text", "StreamError"]


# --- introspection --------------------------------------------------------------------------


def test_stats_and_recorded_requests(http: httpx.Client, state: SimulatorState) -> None:
    before = http.get("/sim/stats").json()
    http.post(
        "/v1/chat/completions",
        json=chat("#sim tokens=1", stream=True, seed=3),
        headers={"authorization": "Bearer k"},
    )
    after = http.get("/sim/stats").json()
    assert after["requests"] == before["requests"] + 1
    assert after["completed_streams"] == before["completed_streams"] + 1
    assert after["active_streams"] == 0
    recorded = http.get("/sim/requests").json()["requests"][-1]
    assert recorded["method"] == "POST"
    assert recorded["path"] == "/v1/chat/completions"
    assert recorded["headers"]["authorization"] == "Bearer k"
    assert recorded["body"]["seed"] == 3
    assert state.recent[-1] == recorded


def test_client_drop_mid_stream_is_counted(base: str, http: httpx.Client) -> None:
    before = http.get("/sim/stats").json()["client_disconnects"]
    body = chat("#sim tokens=1000 gap_ms=20", stream=True)
    with httpx.stream("POST", f"{base}/v1/chat/completions", json=body) as answer:
        first = next(answer.iter_bytes())
        assert first.startswith(b"data: ")
    assert wait_until(lambda: http.get("/sim/stats").json()["client_disconnects"] == before + 1)
    assert wait_until(lambda: http.get("/sim/stats").json()["active_streams"] == 0)


# --- the openai package reads it --------------------------------------------------------------


def test_openai_sdk_reads_both_answers(base: str) -> None:
    client = openai.OpenAI(base_url=f"{base}/v1", api_key="x", max_retries=0, timeout=WAIT)
    messages = [{"role": "user", "content": "Hi #sim tokens=4"}]
    answer = client.chat.completions.create(model="sim-large", messages=messages)
    assert answer.choices[0].message.content == token_text(4)
    assert answer.usage is not None and answer.usage.completion_tokens == 4
    stream = client.chat.completions.create(
        model="sim-large", messages=messages, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == token_text(4)
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 4 + 3
    with pytest.raises(openai.APIError):
        for _ in client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "#sim error_after=1"}], stream=True
        ):
            pass
    assert [m.id for m in client.models.list()][:1] == ["sim-small"]
