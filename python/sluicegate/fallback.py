"""Walking a request's routes in order: skip what is known to fail, try the rest until one
answers, and say why each attempt failed.

The rules (written for OpenClaw's failover, OPENCLAW.md §5): a route fails over when it fails
before any byte of the answer went to the client (``RouteFailed``). A context-length error goes
on only to routes known to have a larger context window. Any other client error (a 400, say)
ends the walk at once: another route would refuse it too. Each route has a circuit breaker:
after ``failures`` upstream failures in a row it is skipped for ``open_seconds``, then one probe
is let through. Knows nothing about HTTP or wire formats: ``attempt`` does the talking.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sluicegate.errors import GatewayError
from sluicegate.resilience import CircuitBreaker, retry_after_seconds
from sluicegate.routing import Route

log = logging.getLogger("sluicegate.fallback")

T = TypeVar("T")


class RouteFailed(Exception):
    """An attempt failed in a way another route could still answer (before any byte went to
    the client); ``error`` is what the client sees if no route is left."""

    def __init__(self, error: GatewayError):
        super().__init__(error.message)
        self.error = error


def _label(route: Route) -> str:
    return f"{route.provider.name}/{route.upstream_model}"


class RouteWalker:
    def __init__(self, window_of: Callable[[Route], int | None]):
        """``window_of`` tells a route's context window in tokens, when known."""
        self._window_of = window_of
        self._breakers: dict[tuple[str, str], CircuitBreaker] = {}

    def breaker(self, route: Route) -> CircuitBreaker:
        key = (route.provider.name, route.upstream_model.lower())
        breaker = self._breakers.get(key)
        if breaker is None:
            breaker = self._breakers[key] = CircuitBreaker(route.provider.breaker)
        return breaker

    async def walk(
        self, asked: str, routes: list[Route], attempt: Callable[[Route], Awaitable[T]]
    ) -> T:
        """The first answer ``attempt`` gets from ``routes``, in order. When none answers, raises
        the last error — or, when every attempt was rate-limited, the 429 with the soonest
        ``Retry-After``."""
        last: GatewayError | None = None
        rate_limited: list[GatewayError] = []  # 429s; when every route said so, the soonest wins
        failures = 0
        too_long_for: int | None = None  # the window a context-length error was reported in
        for number, route in enumerate(routes, 1):
            where = f"attempt {number}/{len(routes)} for {asked} via {_label(route)}"
            if too_long_for is not None:
                window = self._window_of(route)
                if window is None or window <= too_long_for:
                    log.info("%s skipped: its context window is not known to be larger", where)
                    continue
            breaker = self.breaker(route)
            if not breaker.allow():
                wait = max(1, math.ceil(breaker.retry_after()))
                log.warning("%s skipped: its circuit is open for %d s more", where, wait)
                last = last or _circuit_open(route, wait)
                continue
            try:
                answer = await attempt(route)
            except RouteFailed as failed:
                if failed.error.type == "upstream_error":  # the route's health, not a key's
                    breaker.failure()
                else:
                    breaker.abandon()
                log.warning(
                    "%s failed: %s (HTTP %d)", where, failed.error.code, failed.error.status
                )
                last = failed.error
                failures += 1
                if failed.error.status == 429:
                    rate_limited.append(failed.error)
                continue
            except GatewayError as error:
                breaker.success()  # the upstream answered: the route works
                window = self._window_of(route)
                if error.code == "context_length_exceeded" and window is not None:
                    log.warning("%s failed: context length (window %d)", where, window)
                    too_long_for, last = window, error
                    continue
                raise
            except BaseException:
                breaker.abandon()
                raise
            breaker.success()
            return answer
        assert last is not None, "a walk over at least one route ends with an answer or an error"
        if rate_limited and len(rate_limited) == failures:
            raise min(rate_limited, key=_retry_after)
        raise last


def _retry_after(error: GatewayError) -> float:
    value = next((v for name, v in error.headers if name.lower() == "retry-after"), None)
    seconds = retry_after_seconds(value)
    return math.inf if seconds is None else seconds


def _circuit_open(route: Route, wait: int) -> GatewayError:
    return GatewayError(
        503,
        f"Route {_label(route)} failed repeatedly and is paused for {wait} s (circuit breaker). "
        "Retry later, or send a model with other routes.",
        "upstream_error",
        "upstream_circuit_open",
        headers=(("retry-after", str(wait)),),
    )
