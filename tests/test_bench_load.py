"""The benchmark's load generator must find the first token of both stream framings it times.

bench/run.py measures time to first token on two routes: OpenAI SSE (gateways, and the
simulator's /v1) and Ollama's native NDJSON (the simulator's /api/chat). A miss on either would
make its TTFT figures wrong, or empty, without any error.
"""

from __future__ import annotations

import asyncio
import json
import sys
from functools import partial
from pathlib import Path

import httpx
import pytest

from tests.conftest import Simulator
from tests.harness import TrioThread

BENCH = Path(__file__).parent.parent / "bench"
sys.path.insert(0, str(BENCH))
import floor_proxy  # noqa: E402
from load import closed_loop, has_content  # noqa: E402


@pytest.mark.parametrize(
    ("chunk", "expected"),
    [
        # OpenAI SSE: the role chunk is empty, a delta with text is content.
        (b'data: {"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}\n\n', False),
        (b'data: {"choices":[{"index":0,"delta":{"content":" The"}}]}\n\n', True),
        (b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n', False),
        # Ollama NDJSON: thinking lines and the done trailer carry "content":"".
        (b'{"model":"m","message":{"role":"assistant","content":"","thinking":"Let"}}\n', False),
        (b'{"model":"m","message":{"role":"assistant","content":" The"},"done":false}\n', True),
        (b'{"model":"m","message":{"role":"assistant","content":"\\u003cb"},"done":false}\n', True),
        (b'{"model":"m","message":{"role":"assistant","content":""},"done":true}\n', False),
        # Several lines in one read: one with text is enough.
        (
            b'{"message":{"role":"assistant","content":"","thinking":"x"}}\n'
            b'{"message":{"role":"assistant","content":" y"}}\n',
            True,
        ),
    ],
)
def test_has_content(chunk: bytes, expected: bool) -> None:
    assert has_content(chunk) is expected


def chat(model: str, directive: str, *, stream: bool, **extra: object) -> bytes:
    message = {"role": "user", "content": f"Benchmark. #sim {directive}"}
    return json.dumps({"model": model, "stream": stream, "messages": [message], **extra}).encode()


def test_ollama_stream_first_token_is_the_first_content_line(simulator: Simulator) -> None:
    # Three thinking lines, then two answer lines, 20 ms apart: the first token is the fourth
    # line, so at least three gaps after the request; one gap between the two answer lines.
    body = chat("qwen3:8b", "think=3 tokens=2 gap_ms=20", stream=True, think=True)
    results = asyncio.run(
        closed_loop(simulator.port, "/api/chat", body, concurrency=1, stream=True, count=2)
    )
    assert len(results) == 2
    for r in results:
        assert r.ok
        assert r.first_content is not None
        assert 0.055 <= r.first_content <= r.latency
        assert len(r.gaps) == 1


def test_ollama_non_stream_and_openai_stream(simulator: Simulator) -> None:
    plain = chat("sim-small", "tokens=16", stream=False)
    [answer] = asyncio.run(
        closed_loop(simulator.port, "/api/chat", plain, concurrency=1, stream=False, count=1)
    )
    assert answer.ok and answer.first_content is None and answer.latency > 0
    sse = chat("sim-small", "tokens=4", stream=True)
    [streamed] = asyncio.run(
        closed_loop(
            simulator.port, "/v1/chat/completions", sse, concurrency=1, stream=True, count=1
        )
    )
    assert streamed.ok and streamed.first_content is not None


PATH = "/v1/chat/completions"


def test_floor_relay_answers_as_the_simulator_does(simulator: Simulator) -> None:
    """The floor relay is only a fair floor if it does the whole exchange: the same status and
    answer, streams to their end, over one keep-alive upstream connection per client."""

    def text(answer: httpx.Response, stream: bool) -> str:
        if not stream:
            return answer.json()["choices"][0]["message"]["content"]
        assert answer.text.endswith("data: [DONE]\n\n")
        frames = [frame.removeprefix("data: ") for frame in answer.text.split("\n\n")]
        events = [frame for frame in frames if frame not in ("", "[DONE]")]
        return "".join(json.loads(e)["choices"][0]["delta"].get("content") or "" for e in events)

    with (
        TrioThread(partial(floor_proxy.serve, 0, simulator.port)) as port,
        httpx.Client(timeout=10) as http,
    ):
        # A health check that closes its connection (as run.py's does) leaves the relay serving.
        health = http.get(f"http://127.0.0.1:{port}/healthz", headers={"connection": "close"})
        assert health.status_code == 200
        for stream in (False, True, False, True):
            body = chat("sim-small", "tokens=4", stream=stream)
            via, direct = (
                http.post(f"http://127.0.0.1:{target}{PATH}", content=body)
                for target in (port, simulator.port)
            )
            assert via.status_code == direct.status_code == 200
            assert text(via, stream) == text(direct, stream) != ""
    relayed = list(simulator.state.recent)[-8::2]  # the relay's four, not the direct ones
    assert len({r["client"] for r in relayed}) == 1
