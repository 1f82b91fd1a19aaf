"""What the server hands to a handler and what a handler hands back.

Plain data, no I/O: the gateway and the simulator build these, the connection code writes them.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Awaitable, Callable
from dataclasses import dataclass, field


@dataclass(slots=True)
class Request:
    method: str
    target: str
    path: str
    query: str
    headers: list[tuple[bytes, bytes]]
    body: bytes
    client: tuple[str, int] | None

    def header(self, name: str) -> str | None:
        """First value of header ``name`` (case-insensitive), latin-1 decoded; None if absent."""
        wanted = name.lower().encode("latin-1")
        for key, value in self.headers:
            # h11 lower-cases names already; .lower() keeps hand-built Requests working too.
            if key == wanted or key.lower() == wanted:
                return value.decode("latin-1")
        return None


# Work a handler leaves for after its response went out (or could not): clean-up that need not
# hold up the client, such as returning an upstream connection and logging. Run exactly once,
# shielded from cancellation.
After = Callable[[], Awaitable[None]]


@dataclass(slots=True)
class Response:
    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    content_type: str = "application/json"
    after: After | None = None


@dataclass(slots=True)
class StreamingResponse:
    """Headers go out at once, with ``first`` (body bytes ready now) in the same write; each
    item of ``chunks`` is then one chunk and one socket write; ``after`` runs once the last
    chunk went out, or the client went away."""

    status: int
    chunks: AsyncIterable[bytes]
    headers: list[tuple[str, str]] = field(default_factory=list)
    content_type: str = "text/event-stream"
    first: bytes = b""
    after: After | None = None


Handler = Callable[[Request], Awaitable[Response | StreamingResponse]]


class AbortConnection(Exception):
    """Raise from a handler or a stream to drop the connection without a (complete) response.

    For simulating broken peers (the simulator's ``truncate_after``); nothing is logged as an
    error because the drop is intended.
    """
