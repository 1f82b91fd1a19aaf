"""Several keys per provider: rotation, and keys that rest after a 429 or a refusal."""

from __future__ import annotations

from dataclasses import replace

import httpx

from tests.conftest import Simulator, running_gateway, sim_provider


def keys_seen(sim: Simulator, since: int) -> list[str]:
    """The keys of the requests the simulator received after it had received ``since``."""
    recent = list(sim.state.recent)
    newer = sim.state.requests - since
    return [r["headers"]["authorization"] for r in recent[len(recent) - newer :]]


def request_count(sim: Simulator) -> int:
    return sim.state.requests


def post(base: str, directive: str) -> httpx.Response:
    body = {"model": "sim/m", "messages": [{"role": "user", "content": directive}]}
    return httpx.post(f"{base}/chat/completions", json=body, timeout=30)


def test_a_rate_limited_key_rests_and_the_others_carry_on(simulator: Simulator) -> None:
    provider = replace(sim_provider(simulator), api_keys=("sk-one", "sk-two"))
    with running_gateway((provider,)) as base:
        start = request_count(simulator)
        assert post(base, "#sim status=429 retry_after=60").status_code == 429
        assert post(base, "#sim tokens=1").status_code == 200
        assert post(base, "#sim tokens=1").status_code == 200
        assert keys_seen(simulator, start) == ["Bearer sk-one", "Bearer sk-two", "Bearer sk-two"]
        assert post(base, "#sim status=429 retry_after=30").status_code == 429
        # Both keys rest now: the gateway answers itself, without asking the upstream.
        before = request_count(simulator)
        answer = post(base, "#sim tokens=1")
        assert answer.status_code == 429
        assert answer.json()["error"]["code"] == "rate_limit_exceeded"
        assert 25 <= int(answer.headers["retry-after"]) <= 30
        assert request_count(simulator) == before


def test_refused_keys_rest_and_then_the_provider_is_an_auth_failure(simulator: Simulator) -> None:
    provider = replace(sim_provider(simulator), api_keys=("sk-one", "sk-two"))
    with running_gateway((provider,)) as base:
        assert post(base, "#sim status=401").status_code == 502
        assert post(base, "#sim status=403").status_code == 502
        before = request_count(simulator)
        answer = post(base, "#sim tokens=1")
        assert answer.status_code == 502
        assert answer.json()["error"]["code"] == "upstream_auth_failed"
        assert "sk-" not in answer.text
        assert request_count(simulator) == before


def test_a_single_key_never_rests(simulator: Simulator) -> None:
    with running_gateway((sim_provider(simulator),)) as base:
        assert post(base, "#sim status=429 retry_after=60").status_code == 429
        assert post(base, "#sim tokens=1").status_code == 200
