"""What the simulator saw: counters and the last requests, for tests and `/sim/*`."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

RECENT_LIMIT = 50


@dataclass(slots=True)
class SimulatorState:
    """Shared by every request of one simulator; read by tests from another thread.

    Plain ints and a bounded deque: single assignments and appends are atomic under the GIL, so
    readers need no lock.
    """

    requests: int = 0
    active_streams: int = 0
    completed_streams: int = 0
    client_disconnects: int = 0
    recent: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=RECENT_LIMIT))

    def record(
        self,
        method: str,
        path: str,
        headers: dict[str, str],
        body: Any,
        client: tuple[str, int] | None = None,
    ) -> None:
        """``client``: the connection's peer address, so tests can see connection reuse."""
        self.requests += 1
        self.recent.append(
            {
                "method": method,
                "path": path,
                "headers": headers,
                "body": body,
                "client": f"{client[0]}:{client[1]}" if client else None,
            }
        )

    def stats(self) -> dict[str, int]:
        return {
            "requests": self.requests,
            "active_streams": self.active_streams,
            "completed_streams": self.completed_streams,
            "client_disconnects": self.client_disconnects,
        }
