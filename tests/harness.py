"""Run a trio server in a background thread for the length of a test.

Tests drive servers with ordinary blocking clients (sockets, httpx, the ``openai`` package), so
each server gets its own ``trio.run`` in a daemon thread. Every server is bounded: it is cancelled
when the ``with`` block ends, and in any case after ``lifetime`` seconds.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import trio

StartFn = Callable[..., Awaitable[Any]]


class TrioThread:
    """``with TrioThread(fn) as value:`` runs ``await fn(task_status=...)`` in its own thread.

    ``fn`` must call ``task_status.started(value)`` once it is ready (for a server: after the
    socket is bound); ``value`` (typically the bound port) is what ``__enter__`` returns.
    """

    def __init__(self, fn: StartFn, *, lifetime: float = 120.0, start_timeout: float = 20.0):
        self._fn = fn
        self._lifetime = lifetime
        self._start_timeout = start_timeout
        self._ready = threading.Event()
        self._value: Any = None
        self._error: BaseException | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._scope: trio.CancelScope | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            trio.run(self._main)
        except BaseException as exc:  # surfaced in __enter__/__exit__
            self._error = exc
        finally:
            self._ready.set()

    async def _main(self) -> None:
        self._token = trio.lowlevel.current_trio_token()
        with trio.move_on_after(self._lifetime) as scope:
            self._scope = scope
            async with trio.open_nursery() as nursery:
                self._value = await nursery.start(self._call)
                self._ready.set()

    async def _call(self, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
        await self._fn(task_status=task_status)

    def __enter__(self) -> Any:
        self._thread.start()
        if not self._ready.wait(self._start_timeout):
            raise TimeoutError("server thread did not start in time")
        if self._error is not None:
            raise RuntimeError("server thread failed to start") from self._error
        return self._value

    def stop(self) -> None:
        if self._token is not None and self._scope is not None and self._thread.is_alive():
            with contextlib.suppress(trio.RunFinishedError):
                trio.from_thread.run_sync(self._scope.cancel, trio_token=self._token)
        self._thread.join(timeout=15)
        if self._thread.is_alive():
            raise TimeoutError("server thread did not stop within 15 s")

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
        if self._error is not None and exc_info[0] is None:
            raise RuntimeError("server thread crashed") from self._error


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Wait for a condition another thread makes true (polled; bounded by ``timeout``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()
