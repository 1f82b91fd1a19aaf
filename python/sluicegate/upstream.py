"""Talking to upstreams: connections kept per provider, explicit timeouts.

Each connection is an ``HTTP11Transport`` (sluicegate.http11: h11 on a trio socket) under an
``httpx.AsyncClient``. The gateway applies its own first-byte, idle and total deadlines with
trio cancel scopes (httpx has one ``read`` timeout for both waiting for headers and waiting
between chunks, and LLMs need those to differ). Transport failures become ``GatewayError``s
with a message that names the provider and what to check — never a key.

The chat hot path hands an ``httpx.Request`` straight to the connection's transport
(``handle_async_request``, httpx's public transport API) instead of going through
``AsyncClient.send``: the client's per-request machinery (header and cookie merging, auth and
redirect flows, event hooks) cost ~0.25 ms per request and the gateway needs none of it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import httpx
import trio

from sluicegate import __version__
from sluicegate.config import ProviderConfig, Timeouts
from sluicegate.errors import GatewayError
from sluicegate.http11 import HTTP11Transport, ResponseBody
from sluicegate.providers import UpstreamRequest

log = logging.getLogger("sluicegate.upstream")

# Bounded so a misbehaving upstream cannot make the gateway buffer without limit.
MAX_ERROR_BODY_BYTES = 64 * 1024
MAX_JSON_BODY_BYTES = 64 * 1024 * 1024
# After a stream's last event, what is left of its body (the chunked framing, a final newline)
# is read so the connection can be reused; an upstream that sends more, or not at once, loses
# its connection instead.
MAX_DRAIN_BYTES = 64 * 1024
DRAIN_SECONDS = 0.05

USER_AGENT = f"sluicegate/{__version__}"
_MAX_CACHED_URLS = 1024


def describe_url(url: str) -> str:
    """``scheme://host:port/path`` of an upstream URL, without any userinfo it may carry."""
    parsed = httpx.URL(url)
    port = f":{parsed.port}" if parsed.port else ""
    return f"{parsed.scheme}://{parsed.host}{port}{parsed.path}"


@dataclass(slots=True)
class UpstreamConnection:
    """One upstream connection: ``client`` for occasional calls, ``transport`` for chat.

    The client is built over the transport, so both use (and keep alive) the same socket.
    """

    client: httpx.AsyncClient
    transport: httpx.AsyncBaseTransport


@dataclass(slots=True)
class _ProviderState:
    idle: list[UpstreamConnection] = field(default_factory=list)
    # httpx's per-request timeout extension (see _state): only connecting has its own timeout.
    timeout: dict[str, float | None] = field(default_factory=dict)


class UpstreamPool:
    """Upstream connections, one socket each, reused per provider.

    Why one connection per transport: a shared pool (httpcore's) looks at every connection it
    holds (with a readability syscall each) for every request, so with 64 busy connections it
    costs milliseconds of CPU per request. A stack of single-connection transports makes taking
    and returning a connection O(1); the most recently used one (the warmest connection) is
    handed out first. All of them share one TLS context (sluicegate.http11), built on the first
    TLS connection, because building it costs tens of milliseconds.

    ``transport`` is the seam for tests and special set-ups (an ``httpx.AsyncBaseTransport``
    used for every connection instead of the network).
    """

    MAX_IDLE_PER_PROVIDER = 64

    def __init__(self, transport: httpx.AsyncBaseTransport | None = None):
        self._transport = transport
        self._providers: dict[str, _ProviderState] = {}
        self._urls: dict[str, tuple[httpx.URL, str]] = {}  # url -> (parsed, Host)

    def _state(self, provider: ProviderConfig) -> _ProviderState:
        state = self._providers.get(provider.name)
        if state is None:
            t = provider.timeouts
            # read and write None: open_upstream's first-byte deadline covers sending the request
            # and waiting for the head; the body's deadlines are BodyChunks'.
            timeout = {"connect": t.connect, "read": None, "write": None, "pool": t.connect}
            state = self._providers[provider.name] = _ProviderState(timeout=timeout)
        return state

    def _new_connection(self, provider: ProviderConfig) -> UpstreamConnection:
        transport = self._transport or HTTP11Transport()
        t = provider.timeouts
        client = httpx.AsyncClient(
            transport=transport,
            timeout=httpx.Timeout(connect=t.connect, read=None, write=t.connect, pool=t.connect),
            headers={"user-agent": USER_AGENT},
            follow_redirects=False,
            trust_env=False,
        )
        return UpstreamConnection(client, transport)

    def checkout(self, provider: ProviderConfig) -> UpstreamConnection:
        """A connection for one exchange; hand it back with ``checkin`` when done."""
        idle = self._state(provider).idle
        return idle.pop() if idle else self._new_connection(provider)

    async def checkin(self, provider: ProviderConfig, connection: UpstreamConnection) -> None:
        idle = self._state(provider).idle
        if len(idle) < self.MAX_IDLE_PER_PROVIDER and not connection.client.is_closed:
            idle.append(connection)
        elif self._transport is None:  # a shared test transport outlives one connection
            with trio.CancelScope(shield=True):
                await connection.client.aclose()

    @asynccontextmanager
    async def lease(self, provider: ProviderConfig) -> AsyncIterator[httpx.AsyncClient]:
        """A client (one upstream connection) for the length of one exchange."""
        connection = self.checkout(provider)
        try:
            yield connection.client
        finally:
            await self.checkin(provider, connection)

    def build_request(self, provider: ProviderConfig, request: UpstreamRequest) -> httpx.Request:
        """``request`` as an ``httpx.Request``, complete for the transport (no client defaults)."""
        cached = self._urls.get(request.url)
        if cached is None:
            if len(self._urls) >= _MAX_CACHED_URLS:
                self._urls.clear()
            url = httpx.URL(request.url)
            cached = self._urls[request.url] = (url, url.netloc.decode("ascii"))
        url, host = cached
        headers = [("host", host), *request.headers]
        given = {name.lower() for name, _ in request.headers}
        if "user-agent" not in given:
            headers.append(("user-agent", USER_AGENT))
        if "accept-encoding" not in given:
            # The body as it is: the transcoder reads raw bytes, with no decoder in between.
            headers.append(("accept-encoding", "identity"))
        headers.append(("content-length", str(len(request.body))))
        return httpx.Request(
            request.method,
            url,
            headers=headers,
            stream=httpx.ByteStream(request.body),
            extensions={"timeout": self._state(provider).timeout},
        )

    async def aclose(self) -> None:
        for state in self._providers.values():
            for connection in state.idle:
                await connection.client.aclose()
            state.idle.clear()


def transport_error(provider: ProviderConfig, url: str, exc: Exception) -> GatewayError:
    """The client-facing error for a failure to reach or read from an upstream."""
    where = describe_url(url)
    name = provider.name
    if isinstance(exc, httpx.ConnectTimeout):
        return GatewayError(
            504,
            f"Timed out connecting to provider '{name}' at {where} after "
            f"{provider.timeouts.connect:g} s. Check that it is reachable, then retry.",
            "upstream_error",
            "upstream_connect_timeout",
        )
    if isinstance(exc, httpx.ConnectError):
        return GatewayError(
            502,
            f"Could not connect to provider '{name}' at {where} ({exc or 'connection failed'}). "
            "Check that it is running and that its base URL is right.",
            "upstream_error",
            "upstream_unreachable",
        )
    if isinstance(exc, trio.TooSlowError):
        return GatewayError(
            504,
            f"Provider '{name}' sent no response within {provider.timeouts.first_byte:g} s "
            "(first-byte timeout). Retry, or raise timeouts.first_byte for this provider.",
            "upstream_error",
            "upstream_timeout",
        )
    return GatewayError(
        502,
        f"The connection to provider '{name}' failed ({type(exc).__name__}). Retry the request.",
        "upstream_error",
        "upstream_connection_error",
    )


class UpstreamExchange:
    """One request sent upstream and its response, headers received, body not yet read.

    ``aclose`` must follow (in a ``finally``): it closes the response and returns the
    connection to the pool. A plain object rather than a context manager because the streaming
    path closes it from inside the response generator, after the handler has returned.
    """

    __slots__ = ("_closed", "_connection", "_pool", "_provider", "response")

    def __init__(
        self,
        pool: UpstreamPool,
        provider: ProviderConfig,
        connection: UpstreamConnection,
        response: httpx.Response,
    ) -> None:
        self._pool = pool
        self._provider = provider
        self._connection = connection
        self._closed = False
        self.response = response

    async def aclose(self, *, answered: bool = False) -> None:
        """``answered``: the answer is complete (its last event was read), so what is left of
        the body is framing worth reading to keep the connection; otherwise an unfinished body
        drops the connection."""
        if self._closed:
            return
        self._closed = True
        # Shielded: on client disconnect this runs inside a cancelled scope, and the upstream
        # connection must still be closed at once (the client pays for tokens).
        with trio.CancelScope(shield=True):
            stream = self.response.stream
            if answered and isinstance(stream, ResponseBody):
                with trio.move_on_after(DRAIN_SECONDS):
                    await stream.drain(MAX_DRAIN_BYTES)
            with trio.move_on_after(2):
                await self.response.aclose()
            await self._pool.checkin(self._provider, self._connection)


async def open_upstream(
    pool: UpstreamPool, provider: ProviderConfig, request: UpstreamRequest
) -> UpstreamExchange:
    """Send ``request`` and return the exchange once the response headers arrived.

    Raises ``GatewayError`` when the upstream cannot be reached or sends no headers in time.
    """
    built = pool.build_request(provider, request)
    connection = pool.checkout(provider)
    try:
        # move_on_after + a check: fail_after's generator-based context manager costs more.
        with trio.move_on_after(provider.timeouts.first_byte) as first_byte:
            response = await connection.transport.handle_async_request(built)
        if first_byte.cancelled_caught:
            raise trio.TooSlowError
    except (httpx.TransportError, trio.TooSlowError) as exc:
        await pool.checkin(provider, connection)
        error = transport_error(provider, request.url, exc)
        log.warning("provider %s: %s", provider.name, error)
        raise error from None
    except BaseException:
        await pool.checkin(provider, connection)
        raise
    return UpstreamExchange(pool, provider, connection, response)


async def read_body(response: httpx.Response, limit: int, timeouts: Timeouts) -> bytes:
    """The whole body, within the idle and total deadlines and the size ``limit``."""
    parts: list[bytes] = []
    size = 0
    async for chunk in BodyChunks(response, timeouts):
        size += len(chunk)
        if size > limit:
            raise GatewayError(
                502,
                f"The upstream answer is larger than {limit} bytes; sluicegate stopped reading it.",
                "upstream_error",
                "upstream_response_too_large",
            )
        parts.append(chunk)
    return parts[0] if len(parts) == 1 else b"".join(parts)


class IdleTimeout(Exception):
    """No bytes from the upstream for longer than the idle timeout."""


class TotalTimeout(Exception):
    """The whole upstream exchange took longer than the total timeout."""


def _body_stream(response: httpx.Response) -> AsyncIterator[bytes]:
    """The body's bytes as read from the socket; decoded only if the upstream compressed it
    although the gateway asked for ``identity``."""
    encoding = response.headers.get("content-encoding")
    if encoding is None or encoding.strip().lower() == "identity":
        return aiter(response.stream)  # type: ignore[arg-type]
    return response.aiter_bytes()


class BodyChunks:
    """The response body as it arrives, one item per upstream read.

    Raises ``IdleTimeout``/``TotalTimeout`` when a deadline passes and lets
    ``httpx.TransportError`` through when the connection fails mid-body. A plain iterator, not
    an async generator: the stream relay stops reading at the answer's last event, and an
    abandoned generator is finalised later by trio's garbage-collection hook, at a cost.
    """

    __slots__ = ("_idle", "_reads", "_total_deadline")

    def __init__(self, response: httpx.Response, timeouts: Timeouts) -> None:
        self._total_deadline = trio.current_time() + timeouts.total if timeouts.total else math.inf
        self._idle = timeouts.idle or math.inf
        self._reads = _body_stream(response)

    def __aiter__(self) -> BodyChunks:
        return self

    async def __anext__(self) -> bytes:
        while True:
            deadline = min(trio.current_time() + self._idle, self._total_deadline)
            with trio.move_on_at(deadline) as scope:
                chunk = await anext(self._reads)
            if scope.cancelled_caught:
                if trio.current_time() >= self._total_deadline:
                    raise TotalTimeout
                raise IdleTimeout
            if chunk:
                return chunk
