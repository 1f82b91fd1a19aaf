"""Key cool-downs and circuit breakers, on a hand-driven clock."""

from __future__ import annotations

import pytest

from sluicegate.config import BreakerSettings
from sluicegate.resilience import (
    AllKeysCooling,
    CircuitBreaker,
    KeyRing,
    key_fingerprint,
    retry_after_seconds,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_keys_go_round_robin_and_a_resting_key_is_skipped() -> None:
    clock = Clock()
    ring = KeyRing(("a", "b", "c"), clock)
    assert [ring.take() for _ in range(4)] == ["a", "b", "c", "a"]
    ring.rest("b", 10)
    assert [ring.take() for _ in range(4)] == ["c", "a", "c", "a"]
    clock.now += 10
    assert [ring.take() for _ in range(3)] == ["b", "c", "a"]


def test_all_keys_resting_says_when_the_first_is_back() -> None:
    clock = Clock()
    ring = KeyRing(("a", "b"), clock)
    ring.rest("a", 20)
    ring.rest("b", 5, "refused")
    with pytest.raises(AllKeysCooling) as info:
        ring.take()
    assert info.value.retry_after == 5 and info.value.reason == "refused"
    clock.now += 5
    assert ring.take() == "b"


def test_a_longer_rest_is_not_shortened_and_rests_are_capped() -> None:
    clock = Clock()
    ring = KeyRing(("a",), clock)
    ring.rest("a", 100)
    ring.rest("a", 1)
    clock.now += 50
    with pytest.raises(AllKeysCooling):
        ring.take()
    ring.rest("a", 10**9)
    with pytest.raises(AllKeysCooling) as info:
        ring.take()
    assert info.value.retry_after == 3600


def test_no_keys_means_no_key() -> None:
    ring = KeyRing(())
    assert not ring and ring.take() is None


def test_fingerprints_tell_keys_apart_without_showing_them() -> None:
    a, b = key_fingerprint("sk-secret-aaaa"), key_fingerprint("sk-secret-bbbb")
    assert a != b and a.startswith("key-") and "secret" not in a
    assert key_fingerprint("sk-secret-aaaa") == a


def test_breaker_opens_after_n_failures_in_a_row() -> None:
    clock = Clock()
    breaker = CircuitBreaker(BreakerSettings(failures=3, open_seconds=30), clock)
    breaker.failure()
    breaker.failure()
    breaker.success()  # the count is of failures in a row
    breaker.failure()
    breaker.failure()
    assert breaker.allow() and breaker.state == "closed"
    breaker.failure()
    assert breaker.state == "open" and not breaker.allow()
    assert breaker.retry_after() == 30


def test_half_open_lets_one_probe_through() -> None:
    clock = Clock()
    breaker = CircuitBreaker(BreakerSettings(failures=1, open_seconds=30), clock)
    breaker.failure()
    clock.now += 30
    assert breaker.state == "half-open"
    assert breaker.allow(), "the probe"
    assert not breaker.allow(), "only one probe at a time"
    breaker.failure()  # the probe failed: open again for a full period
    assert breaker.state == "open" and breaker.retry_after() == 30
    clock.now += 30
    assert breaker.allow()
    breaker.success()
    assert breaker.state == "closed" and breaker.allow() and breaker.allow()


def test_retry_after_is_read_as_seconds_or_not_at_all() -> None:
    assert retry_after_seconds("7") == 7 and retry_after_seconds("1.5") == 1.5
    for unusable in (None, "", "Wed, 21 Oct 2026 07:28:00 GMT", "-3", "inf", "nan"):
        assert retry_after_seconds(unusable) is None, unusable
