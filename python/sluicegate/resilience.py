"""Per-key cool-downs and per-route circuit breakers: the memory that lets the router skip
what is known to be failing.

Both are plain objects with an injectable clock (``time.monotonic`` by default), so their rules
are tested without waiting. They hold state for one process; replicas that must share it use
Redis (not built yet).
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable

from sluicegate.config import BreakerSettings

Clock = Callable[[], float]

DEFAULT_RATE_LIMIT_COOLDOWN = (
    30.0  # seconds a 429'd key rests when the upstream gave no Retry-After
)
DEFAULT_AUTH_COOLDOWN = 300.0  # seconds a key the upstream refused (401/403) is left out
MAX_COOLDOWN = 3600.0  # a Retry-After beyond this is capped: an hour is long enough to re-check


def retry_after_seconds(value: str | None) -> float | None:
    """A ``Retry-After`` header's delay in seconds, or None when it is absent or not a number
    (an HTTP date, or garbage)."""
    try:
        seconds = float(value) if value else None
    except ValueError:
        return None
    return seconds if seconds is not None and math.isfinite(seconds) and seconds >= 0 else None


def key_fingerprint(key: str) -> str:
    """How logs name a key: never its value, a short hash that tells keys apart."""
    return "key-" + hashlib.sha256(key.encode()).hexdigest()[:8]


class AllKeysCooling(Exception):
    """Every key of the provider is resting; ``retry_after`` is when the first one is back,
    ``reason`` why that one rests ("rate_limited" or "refused")."""

    def __init__(self, retry_after: float, reason: str):
        super().__init__(f"every key is resting ({reason}) for another {retry_after:.0f} s")
        self.retry_after = retry_after
        self.reason = reason


class KeyRing:
    """A provider's keys, handed out round-robin, skipping keys that are cooling down."""

    def __init__(self, keys: tuple[str, ...], clock: Clock = time.monotonic):
        self._keys = keys
        self._clock = clock
        self._next = 0
        self._resting_until: dict[str, float] = {}
        self._reasons: dict[str, str] = {}

    def __bool__(self) -> bool:
        return bool(self._keys)

    def take(self) -> str | None:
        """The next usable key (None for a provider without keys).

        Raises ``AllKeysCooling`` when every key is resting.
        """
        if not self._keys:
            return None
        now = self._clock()
        for _ in range(len(self._keys)):
            key = self._keys[self._next]
            self._next = (self._next + 1) % len(self._keys)
            if self._resting_until.get(key, 0.0) <= now:
                return key
        first = min(self._resting_until, key=self._resting_until.__getitem__)
        raise AllKeysCooling(self._resting_until[first] - now, self._reasons[first])

    def rest(self, key: str, seconds: float, reason: str = "rate_limited") -> None:
        """Leave ``key`` out for ``seconds`` (capped at an hour)."""
        seconds = min(max(seconds, 0.0), MAX_COOLDOWN)
        until = self._clock() + seconds
        if until > self._resting_until.get(key, 0.0):
            self._resting_until[key] = until
            self._reasons[key] = reason


class CircuitBreaker:
    """Closed: requests flow. ``failures`` failures in a row open it: requests are refused
    for ``open_seconds``. Then it is half-open: one probe request is let through; its success
    closes the circuit, its failure opens it again for another ``open_seconds``."""

    def __init__(self, settings: BreakerSettings, clock: Clock = time.monotonic):
        self._settings = settings
        self._clock = clock
        self._failures = 0
        self._open_until: float | None = None
        self._probing = False

    @property
    def state(self) -> str:
        if self._open_until is None:
            return "closed"
        if self._clock() < self._open_until or self._probing:
            return "open"
        return "half-open"

    def allow(self) -> bool:
        """Whether a request may go now; in half-open state only the first caller gets a yes."""
        state = self.state
        if state == "closed":
            return True
        if state == "half-open":
            self._probing = True
            return True
        return False

    def retry_after(self) -> float:
        """Seconds until the circuit lets a probe through (0 when it would now)."""
        if self._open_until is None:
            return 0.0
        return max(self._open_until - self._clock(), 0.0)

    def abandon(self) -> None:
        """The request let through ended without saying anything about the route (the client
        went away): a probe slot it held is free again."""
        self._probing = False

    def success(self) -> None:
        self._failures = 0
        self._open_until = None
        self._probing = False

    def failure(self) -> None:
        self._failures += 1
        if self._probing or self._failures >= self._settings.failures:
            self._open_until = self._clock() + self._settings.open_seconds
            self._probing = False
