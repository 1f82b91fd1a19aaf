"""Ordered fallbacks: a request's own "models" list, tried when a route fails before answering."""

from __future__ import annotations

import socket
from dataclasses import replace

import httpx
import pytest

from sluicegate.config import (
    BreakerSettings,
    ModelAlias,
    ModelSettings,
    Pricing,
    ProviderConfig,
    Timeouts,
)
from tests.conftest import Simulator, running_gateway, sim_provider
from tests.harness import wait_until


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


# --- aliases -------------------------------------------------------------------------------------


def with_window(provider: ProviderConfig, window: int) -> ProviderConfig:
    return replace(provider, model_settings=(("*", ModelSettings(context_window=window)),))


def alias(alias_id: str, *routes: str, **fields: object) -> ModelAlias:
    return ModelAlias(id=alias_id, routes=routes, **fields)  # type: ignore[arg-type]


def test_an_alias_tries_its_routes_in_order_and_is_listed(simulator: Simulator) -> None:
    providers = (dead_provider("down"), sim_provider(simulator, "good"))
    smart = alias(
        "smart",
        "down/m",
        "good/sim-small",
        context_window=8192,
        max_tokens=1024,
        pricing=Pricing(input=0.2, output=0.4),
    )
    with running_gateway(providers, models=(smart,)) as base:
        for name in ("smart", "SMART", "sluicegate/smart"):
            answer = ask(base, name)
            assert answer.status_code == 200, answer.text
            assert answer.json()["model"] == name
        assert simulator.state.recent[-1]["body"]["model"] == "sim-small"
        listed = httpx.get(f"{base}/models", timeout=30).json()["data"]
        entry = next(m for m in listed if m["id"] == "smart")
        assert entry["routes"] == ["down/m", "good/sim-small"]
        assert entry["context_length"] == 8192 and entry["max_tokens"] == 1024
        assert entry["pricing"]["input_tokens"] == 0.2
        assert all(ask(base, m["id"]).status_code == 200 for m in listed if m["id"] == "smart")


def test_alias_params_are_defaults_the_request_overrides(simulator: Simulator) -> None:
    short = alias("short", "good/m", params=(("max_tokens", 2), ("temperature", 0.1)))
    with running_gateway((sim_provider(simulator, "good"),), models=(short,)) as base:
        answer = ask(base, "short", text="#sim tokens=9").json()
        assert answer["choices"][0]["finish_reason"] == "length"
        assert simulator.state.recent[-1]["body"]["temperature"] == 0.1
        body = {
            "model": "short",
            "max_tokens": 9,
            "messages": [{"role": "user", "content": "#sim tokens=9"}],
        }
        answer = httpx.post(f"{base}/chat/completions", json=body, timeout=30).json()
        assert answer["choices"][0]["finish_reason"] == "stop"


# --- failures while the answer streams, before its first content ---------------------------------


def test_an_in_stream_error_before_content_falls_back(simulator: Simulator) -> None:
    providers = (failing(simulator, "flaky", "error_after=0"), sim_provider(simulator, "good"))
    with running_gateway(providers) as base:
        answer = ask(base, "flaky/m", "good/m", stream=True)
        assert answer.status_code == 200
        assert b'"error"' not in answer.content and b"quick" in answer.content


def test_a_stall_before_content_falls_back(simulator: Simulator) -> None:
    stalling = replace(failing(simulator, "stuck", "stall_after=0"), timeouts=Timeouts(idle=0.3))
    with running_gateway((stalling, sim_provider(simulator, "good"))) as base:
        answer = ask(base, "stuck/m", "good/m", stream=True)
        assert answer.status_code == 200 and b"quick" in answer.content
        only = ask(base, "stuck/m", stream=True)
        assert only.status_code == 504
        assert only.json()["error"]["code"] == "upstream_idle_timeout"


# --- context windows ------------------------------------------------------------------------------


def test_a_context_error_goes_only_to_larger_windows(simulator: Simulator) -> None:
    small = with_window(failing(simulator, "small", "status=400 overflow=1"), 8192)
    unknown = sim_provider(simulator, "unknown")
    big = with_window(sim_provider(simulator, "big"), 131072)
    long = alias("long", "small/m", "unknown/m", "big/m")
    with running_gateway((small, unknown, big), models=(long,)) as base:
        before = simulator.state.requests
        answer = ask(base, "long")
        assert answer.status_code == 200
        assert simulator.state.requests == before + 2, "'unknown' was skipped"
        assert simulator.state.recent[-1]["headers"].get("x-sim") is None
        alone = ask(base, "small/m", "unknown/m")
        assert alone.status_code == 400
        assert "maximum context length" in alone.json()["error"]["message"]


# --- circuit breaker ------------------------------------------------------------------------------


def test_a_route_that_keeps_failing_is_paused(simulator: Simulator) -> None:
    flaky = replace(
        failing(simulator, "flaky", "status=503"),
        breaker=BreakerSettings(failures=2, open_seconds=60),
    )
    with running_gateway((flaky, sim_provider(simulator, "good"))) as base:
        assert ask(base, "flaky/m").status_code == 503
        assert ask(base, "flaky/m").status_code == 503
        before = simulator.state.requests
        paused = ask(base, "flaky/m")
        assert paused.status_code == 503
        assert paused.json()["error"]["code"] == "upstream_circuit_open"
        assert 55 <= int(paused.headers["retry-after"]) <= 60
        assert simulator.state.requests == before, "the open circuit asked nobody"
        assert ask(base, "flaky/m", "good/m").status_code == 200
        assert simulator.state.requests == before + 1, "straight to the next route"


def test_a_client_that_goes_away_starts_no_fallback(simulator: Simulator) -> None:
    slow = failing(simulator, "slow", "ttft_ms=5000 error_after=0")
    with running_gateway((slow, sim_provider(simulator, "good"))) as base:
        before_requests = simulator.state.requests
        before_gone = simulator.state.client_disconnects
        body = {
            "model": "slow/m",
            "models": ["good/m"],
            "stream": True,
            "messages": [{"role": "user", "content": "#sim tokens=2"}],
        }
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(f"{base}/chat/completions", json=body, timeout=0.5)
        # The gateway dropped its upstream stream at once, long before the 5 s answer...
        assert wait_until(lambda: simulator.state.client_disconnects > before_gone)
        # ...and asked nobody else: the next request is the only other one the simulator saw.
        assert ask(base, "good/m").status_code == 200
        assert simulator.state.requests == before_requests + 2
        assert simulator.state.recent[-2]["headers"].get("x-sim") == "ttft_ms=5000 error_after=0"


def test_every_route_rate_limited_is_a_429_with_the_soonest_retry(simulator: Simulator) -> None:
    providers = (
        failing(simulator, "a", "status=429 retry_after=20"),
        failing(simulator, "b", "status=429 retry_after=5"),
        failing(simulator, "c", "status=429 retry_after=9"),
    )
    with running_gateway(providers) as base:
        answer = ask(base, "a/m", "b/m", "c/m")
        assert answer.status_code == 429
        assert answer.headers["retry-after"] == "5"


@pytest.mark.parametrize(
    ("directive", "timeouts"),
    [
        ("headers_ms=3000", Timeouts(first_byte=0.3)),  # no response headers in time
        ("reset_after=0", Timeouts()),  # the connection drops before any content
        ("truncate_after=0", Timeouts()),  # the body ends before any content
        ("garbage=1 tokens=0", Timeouts()),  # the stream is not the dialect's
    ],
)
@pytest.mark.parametrize("stream", [False, True])
def test_more_failures_before_content_fall_back(
    simulator: Simulator, directive: str, timeouts: Timeouts, stream: bool
) -> None:
    broken = replace(failing(simulator, "broken", directive), timeouts=timeouts)
    with running_gateway((broken, sim_provider(simulator, "good"))) as base:
        answer = ask(base, "broken/m", "good/m", stream=stream)
        assert answer.status_code == 200, answer.text
        assert b"quick" in answer.content and b'"error"' not in answer.content
