"""The gateway end to end: real sockets, the simulator upstream, the real Rust core."""

from __future__ import annotations

import logging
import socket

import httpx
import openai
import orjson
import pytest

from tests.conftest import Simulator, running_gateway, sim_provider
from tests.harness import wait_until


def chat(content: str, **extra: object) -> dict:
    return {"model": "sim/sim-small", "messages": [{"role": "user", "content": content}], **extra}


def sse_events(raw: bytes) -> list[bytes]:
    return [frame.removeprefix(b"data: ") for frame in raw.split(b"\n\n") if frame]


def direct_text(sim: Simulator, directive: str) -> str:
    """What the simulator itself answers, for comparison with what comes through the gateway."""
    body = {"model": "sim-small", "messages": [{"role": "user", "content": directive}]}
    answer = httpx.post(f"{sim.base_url}/v1/chat/completions", json=body, timeout=10).json()
    return answer["choices"][0]["message"]["content"]


@pytest.fixture
def client(gateway_url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway_url, api_key="unused", max_retries=0, timeout=30)


# --- the openai package, the way real clients talk to us -------------------------------------


def test_openai_sdk_non_stream(client: openai.OpenAI, simulator: Simulator) -> None:
    answer = client.chat.completions.create(
        model="sim/sim-small", messages=[{"role": "user", "content": "Hi #sim tokens=5"}]
    )
    assert answer.model == "sim/sim-small"
    assert answer.object == "chat.completion"
    assert answer.id.startswith("chatcmpl-")
    assert answer.choices[0].message.content == direct_text(simulator, "Hi #sim tokens=5")
    assert answer.choices[0].finish_reason == "stop"
    assert answer.usage is not None
    assert answer.usage.completion_tokens == 5
    assert answer.usage.total_tokens == answer.usage.prompt_tokens + 5


def test_openai_sdk_stream_with_usage(client: openai.OpenAI, simulator: Simulator) -> None:
    stream = client.chat.completions.create(
        model="sim/sim-small",
        messages=[{"role": "user", "content": "Hi #sim tokens=7"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == direct_text(simulator, "Hi #sim tokens=7")
    assert len({c.id for c in chunks}) == 1, "one id per response"
    assert len({c.created for c in chunks}) == 1
    assert {c.model for c in chunks} == {"sim/sim-small"}
    finishes = [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ]
    assert finishes == ["stop"]
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 7
    assert chunks[-1].usage.prompt_tokens_details.cached_tokens == 0


def test_stream_without_include_usage_has_no_usage_chunk(http: httpx.Client) -> None:
    raw = http.post("/v1/chat/completions", json=chat("Hi #sim tokens=3", stream=True)).content
    events = sse_events(raw)
    assert events[-1] == b"[DONE]"
    assert events.count(b"[DONE]") == 1
    parsed = [orjson.loads(e) for e in events[:-1]]
    assert all("usage" not in p or p["usage"] is None for p in parsed)
    assert all(p["choices"] for p in parsed)


def test_upstream_is_asked_for_usage_and_gets_its_own_model_id(
    http: httpx.Client, simulator: Simulator
) -> None:
    http.post("/v1/chat/completions", json=chat("Hi #sim tokens=2", stream=True, seed=7))
    sent = simulator.state.recent[-1]
    assert sent["body"]["model"] == "sim-small"
    assert sent["body"]["stream_options"] == {"include_usage": True}
    assert sent["body"]["seed"] == 7, "unknown-to-us fields pass through to OpenAI upstreams"
    assert sent["headers"]["authorization"] == "Bearer sk-sim-test"


@pytest.mark.parametrize("stream", [False, True])
def test_tool_calls(client: openai.OpenAI, stream: bool) -> None:
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ]
    messages = [{"role": "user", "content": "Weather in Paris? #sim tool=1"}]
    if stream:
        chunks = list(
            client.chat.completions.create(
                model="sim/sim-small", messages=messages, tools=tools, stream=True
            )
        )
        calls: dict[int, dict] = {}
        for c in chunks:
            for tc in (c.choices[0].delta.tool_calls or []) if c.choices else []:
                entry = calls.setdefault(tc.index, {"id": None, "name": None, "arguments": ""})
                entry["id"] = entry["id"] or tc.id
                entry["name"] = entry["name"] or (tc.function.name if tc.function else None)
                entry["arguments"] += (tc.function.arguments or "") if tc.function else ""
        finish = [
            c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
        ]
        assert finish == ["tool_calls"]
        call = calls[0]
    else:
        answer = client.chat.completions.create(
            model="sim/sim-small", messages=messages, tools=tools
        )
        assert answer.choices[0].finish_reason == "tool_calls"
        tc = answer.choices[0].message.tool_calls[0]
        call = {"id": tc.id, "name": tc.function.name, "arguments": tc.function.arguments}
    assert call["id"].startswith("call_")
    assert call["name"] == "get_weather"
    assert isinstance(orjson.loads(call["arguments"]), dict)


def test_models_lists_provider_prefixed_ids(client: openai.OpenAI) -> None:
    ids = [m.id for m in client.models.list()]
    assert "sim/sim-small" in ids
    assert all(i.startswith("sim/") for i in ids)


def test_every_listed_model_works_when_sent_back(client: openai.OpenAI) -> None:
    for model in client.models.list():
        answer = client.chat.completions.create(
            model=model.id, messages=[{"role": "user", "content": "x #sim tokens=1"}]
        )
        assert answer.model == model.id


def test_healthz_and_routing_errors(http: httpx.Client) -> None:
    assert http.get("/healthz").json() == {"status": "ok"}
    missing = http.get("/v1/nope")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "unknown_url"
    wrong = http.get("/v1/chat/completions")
    assert wrong.status_code == 405
    assert wrong.headers["allow"] == "POST"


# --- bad input: a clear error each, and the gateway keeps serving -----------------------------


@pytest.mark.parametrize(
    ("body", "status", "code", "param"),
    [
        (b'{"model": "sim/sim-small", "messages": [', 400, "invalid_json", None),
        (b"[1, 2, 3]", 400, "invalid_type", None),
        (b"", 400, "invalid_value", None),
        (
            b'{"messages": [{"role": "user", "content": "x"}]}',
            400,
            "missing_required_parameter",
            "model",
        ),
        (b'{"model": "sim/sim-small"}', 400, "missing_required_parameter", "messages"),
        (
            b'{"model": 42, "messages": [{"role": "user", "content": "x"}]}',
            400,
            "invalid_value",
            "model",
        ),
        (b'{"model": "sim/x", "messages": "hi"}', 400, "invalid_type", "messages"),
        (
            b'{"model": "sim/x", "messages": [{"role": "robot", "content": "x"}]}',
            400,
            "invalid_value",
            "messages[0].role",
        ),
        (
            b'{"model": "sim/x", "stream": "yes", "messages": [{"role": "user", "content": "x"}]}',
            400,
            "invalid_type",
            "stream",
        ),
        (
            b'{"model": "sim/x", "temperature": "hot", "messages": [{"role": "user"}]}',
            400,
            "invalid_type",
            "temperature",
        ),
        (
            b'{"model": "sim/x", "top_p": 1.5, "messages": [{"role": "user", "content": "x"}]}',
            400,
            "invalid_value",
            "top_p",
        ),
        (
            b'{"model": "sim/x", "max_tokens": 0, "messages": [{"role": "user", "content": "x"}]}',
            400,
            "invalid_value",
            "max_tokens",
        ),
        (
            b'{"model": "nobody/x", "messages": [{"role": "user", "content": "x"}]}',
            404,
            "model_not_found",
            "model",
        ),
        (
            b'{"model": "no-slash", "messages": [{"role": "user", "content": "x"}]}',
            404,
            "model_not_found",
            "model",
        ),
    ],
)
def test_bad_requests(
    http: httpx.Client, body: bytes, status: int, code: str, param: str | None
) -> None:
    answer = http.post(
        "/v1/chat/completions", content=body, headers={"content-type": "application/json"}
    )
    assert answer.status_code == status
    error = answer.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["code"] == code
    assert error["param"] == param
    assert len(error["message"]) > 20
    assert (
        http.post("/v1/chat/completions", json=chat("still fine #sim tokens=1")).status_code == 200
    )


def test_one_upstream_connection_carries_streams_and_plain_answers(simulator: Simulator) -> None:
    """A stream ends at its last event; the framing after it is read, so the connection is
    reused instead of a new one (and a TCP handshake) per stream."""
    with (
        running_gateway((sim_provider(simulator),)) as url,  # its own pool: no other traffic
        httpx.Client(base_url=url.removesuffix("/v1"), timeout=30) as http,
    ):
        for stream in (True, False, True, True, False, True):
            answer = http.post("/v1/chat/completions", json=chat("#sim tokens=5", stream=stream))
            assert answer.status_code == 200
            assert (b"[DONE]" in answer.content) is stream
        seen = list(simulator.state.recent)[-6:]
    assert [r["path"] for r in seen] == ["/v1/chat/completions"] * 6
    assert len({r["client"] for r in seen}) == 1


def test_oversized_body_is_413_and_server_keeps_serving(gateway_url: str) -> None:
    host, port = "127.0.0.1", int(gateway_url.rsplit(":", 1)[1].split("/")[0])
    size = 20 * 1024 * 1024
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
            + f"content-length: {size}\r\n\r\n".encode()
        )
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            data = sock.recv(65536)
            if not data:
                break
            answer += data
    assert answer.startswith(b"HTTP/1.1 413")
    body = answer.split(b"\r\n\r\n", 1)[1]
    assert orjson.loads(body)["error"]["code"] == "request_too_large"
    assert httpx.get(f"{gateway_url.removesuffix('/v1')}/healthz").status_code == 200


# --- upstream failures are mapped, never passed through -------------------------------------


@pytest.mark.parametrize(
    ("directive", "status", "error_type", "code"),
    [
        ("status=500", 502, "upstream_error", "upstream_error"),
        ("status=503", 503, "upstream_error", "upstream_overloaded"),
        ("status=401", 502, "upstream_auth_error", "upstream_auth_failed"),
        ("status=403", 502, "upstream_auth_error", "upstream_auth_failed"),
        ("status=402", 503, "upstream_billing_error", "upstream_insufficient_quota"),
        ("status=429 retry_after=7", 429, "rate_limit_error", "rate_limit_exceeded"),
        ("status=404", 404, "invalid_request_error", "model_not_found"),
    ],
)
@pytest.mark.parametrize("stream", [False, True])
def test_upstream_http_errors_are_mapped(
    http: httpx.Client, directive: str, status: int, error_type: str, code: str, stream: bool
) -> None:
    answer = http.post("/v1/chat/completions", json=chat(f"x #sim {directive}", stream=stream))
    assert answer.status_code == status
    error = answer.json()["error"]
    assert (error["type"], error["code"]) == (error_type, code)
    assert "sk-sim-test" not in answer.text
    if status == 429:
        assert answer.headers["retry-after"] == "7"


def test_in_stream_error_reaches_the_sdk_as_an_error(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="sim/sim-small",
        messages=[{"role": "user", "content": "x #sim tokens=6 error_after=2"}],
        stream=True,
    )
    seen = ""
    with pytest.raises(openai.APIError):
        for c in stream:
            seen += (c.choices[0].delta.content or "") if c.choices else ""
    assert seen, "the text before the error still reached the client"


@pytest.mark.parametrize(
    ("directive", "code"),
    [
        ("truncate_after=2", "upstream_stream_truncated"),
        ("reset_after=2", "upstream_connection_error"),
        ("garbage=1", "upstream_bad_response"),
    ],
)
def test_broken_upstream_streams_end_with_an_error_event(
    http: httpx.Client, directive: str, code: str
) -> None:
    raw = http.post("/v1/chat/completions", json=chat(f"x #sim tokens=5 {directive}", stream=True))
    events = sse_events(raw.content)
    assert events[-1] == b"[DONE]"
    assert orjson.loads(events[-2])["error"]["code"] == code


def test_garbage_non_stream_is_502(http: httpx.Client) -> None:
    answer = http.post("/v1/chat/completions", json=chat("x #sim garbage=1"))
    assert answer.status_code == 502
    assert answer.json()["error"]["code"] == "upstream_bad_response"


def test_unreachable_upstream_is_502() -> None:
    with socket.socket() as s:  # a port nobody listens on: bind, never listen
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        dead = sim_provider_at(f"http://127.0.0.1:{port}/v1")
        with running_gateway((dead,)) as url:
            answer = httpx.post(f"{url}/chat/completions", json=chat("x") | {"model": "dead/m"})
    assert answer.status_code == 502
    assert answer.json()["error"]["code"] == "upstream_unreachable"
    assert f"127.0.0.1:{port}" in answer.json()["error"]["message"]


def sim_provider_at(base_url: str):
    from sluicegate.config import ProviderConfig

    return ProviderConfig(name="dead", kind="openai", base_url=base_url, api_keys=(), source="test")


def test_idle_timeout_ends_the_stream_with_an_error(simulator: Simulator) -> None:
    with running_gateway((sim_provider(simulator, idle=0.3),)) as url:
        raw = httpx.post(
            f"{url}/chat/completions",
            json=chat("x #sim tokens=5 stall_after=2", stream=True),
            timeout=10,
        ).content
    events = sse_events(raw)
    assert events[-1] == b"[DONE]"
    assert orjson.loads(events[-2])["error"]["code"] == "upstream_idle_timeout"


def test_client_disconnect_closes_the_upstream_request(
    gateway_url: str, simulator: Simulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="sluicegate.gateway")
    before = simulator.state.client_disconnects
    with (
        httpx.Client(timeout=10) as c,
        c.stream(
            "POST",
            f"{gateway_url}/chat/completions",
            json=chat("x #sim tokens=1000 gap_ms=20", stream=True),
        ) as response,
    ):
        first = next(response.iter_bytes())
        assert first.startswith(b"data: ")
    # The client is gone: the simulator must see its own connection from the gateway drop.
    assert wait_until(lambda: simulator.state.client_disconnects > before)
    # ...and what was streamed until then is still counted (estimated: the upstream never said).
    assert wait_until(
        lambda: any("error=client_disconnected" in r.getMessage() for r in caplog.records)
    )
    line = next(r.getMessage() for r in caplog.records if "client_disconnected" in r.getMessage())
    assert "usage=estimated" in line and "completion_tokens=None" not in line


# --- client auth ----------------------------------------------------------------------------


def test_client_api_keys(simulator: Simulator) -> None:
    with running_gateway((sim_provider(simulator),), api_keys=("gw-key-1", "gw-key-2")) as url:
        base = url.removesuffix("/v1")
        assert httpx.get(f"{base}/healthz").status_code == 200
        missing = httpx.post(f"{url}/chat/completions", json=chat("x #sim tokens=1"))
        assert missing.status_code == 401
        assert missing.json()["error"]["code"] == "invalid_api_key"
        wrong = httpx.get(f"{url}/models", headers={"authorization": "Bearer nope"})
        assert wrong.status_code == 401
        for key in ("gw-key-1", "gw-key-2"):
            ok = httpx.post(
                f"{url}/chat/completions",
                json=chat("x #sim tokens=1"),
                headers={"authorization": f"Bearer {key}"},
            )
            assert ok.status_code == 200


def test_embeddings_pass_through_an_openai_compatible_provider(
    client: openai.OpenAI, simulator: Simulator
) -> None:
    answer = client.embeddings.create(model="sim/sim-embed", input=["a", "bb"])
    assert answer.model == "sim/sim-embed"
    assert [d.index for d in answer.data] == [0, 1]
    assert len(answer.data[0].embedding) == 8
    assert answer.usage.prompt_tokens > 0
    sent = simulator.state.recent[-1]
    assert sent["path"] == "/v1/embeddings" and sent["body"]["model"] == "sim-embed"
    with pytest.raises(openai.BadRequestError) as info:
        client.embeddings.create(model="sim/sim-embed", input=[])
    assert info.value.param == "input"
