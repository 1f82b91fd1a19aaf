"""Ordered fallbacks: a request's own "models" list, tried when a route fails before answering."""

from __future__ import annotations

import socket
from dataclasses import replace

import httpx
import pytest

from sluicegate.config import ProviderConfig
from tests.conftest import Simulator, running_gateway, sim_provider


def failing(sim: Simulator, name: str, directive: str) -> ProviderConfig:
    """The simulator as a provider whose every answer follows ``directive`` (x-sim header)."""
    return replace(sim_provider(sim, name), headers=(("x-sim", directive),))


def dead_provider(name: str) -> ProviderConfig:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return ProviderConfig(name, "openai", f"http://127.0.0.1:{port}/v1", (), source="test")


def ask(
    base: str, *models: str, stream: bool = False, text: str = "#sim tokens=2"
) -> httpx.Response:
    body = {
        "model": models[0],
        "models": list(models[1:]),
        "messages": [{"role": "user", "content": text}],
        "stream": stream,
    }
    return httpx.post(f"{base}/chat/completions", json=body, timeout=30)


@pytest.mark.parametrize("stream", [False, True])
def test_an_unreachable_or_failing_route_falls_back(simulator: Simulator, stream: bool) -> None:
    providers = (
        dead_provider("down"),
        failing(simulator, "busy", "status=503"),
        sim_provider(simulator, "good"),
    )
    with running_gateway(providers) as base:
        answer = ask(base, "down/m", "busy/m", "good/m", stream=stream)
        assert answer.status_code == 200
        assert b"quick" in answer.content and b"error" not in answer.content
        sent = simulator.state.recent[-1]
        assert sent["headers"].get("x-sim") is None, "the last attempt went to 'good'"
        assert "models" not in sent["body"], "the fallback list is the gateway's, not upstream's"


def test_an_invalid_request_does_not_fall_back(simulator: Simulator) -> None:
    providers = (failing(simulator, "strict", "status=400"), sim_provider(simulator, "good"))
    with running_gateway(providers) as base:
        before = simulator.state.requests
        answer = ask(base, "strict/m", "good/m")
        assert answer.status_code == 400
        assert simulator.state.requests == before + 1, "'good' was never asked"


def test_when_every_route_fails_the_last_error_is_answered(simulator: Simulator) -> None:
    providers = (dead_provider("down"), failing(simulator, "limited", "status=429 retry_after=9"))
    with running_gateway(providers) as base:
        answer = ask(base, "down/m", "limited/m")
        assert answer.status_code == 429
        assert answer.headers["retry-after"] == "9"
        assert answer.json()["error"]["code"] == "rate_limit_exceeded"


def test_fallback_names_are_checked_before_anything_is_sent(simulator: Simulator) -> None:
    with running_gateway((sim_provider(simulator, "good"),)) as base:
        before = simulator.state.requests
        answer = ask(base, "good/m", "nope/m")
        assert answer.status_code == 404 and "nope/m" in answer.json()["error"]["message"]
        assert simulator.state.requests == before
        bad = httpx.post(
            f"{base}/chat/completions",
            json={
                "model": "good/m",
                "models": "good/m",
                "messages": [{"role": "user", "content": "x"}],
            },
            timeout=30,
        )
        assert bad.status_code == 400 and bad.json()["error"]["param"] == "models"


def test_an_error_after_content_is_not_retried(simulator: Simulator) -> None:
    providers = (sim_provider(simulator, "flaky"), sim_provider(simulator, "good"))
    with running_gateway(providers) as base:
        before = simulator.state.requests
        answer = ask(base, "flaky/m", "good/m", stream=True, text="#sim tokens=5 error_after=2")
        assert answer.status_code == 200
        assert b'"error"' in answer.content and answer.content.endswith(b"data: [DONE]\n\n")
        assert answer.content.count(b"[DONE]") == 1
        assert simulator.state.requests == before + 1
