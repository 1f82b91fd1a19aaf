"""Talking to upstreams: one pooled ``httpx.AsyncClient`` per provider, explicit timeouts.

httpx is used as a plain transport: the gateway applies its own first-byte, idle and total
deadlines with trio cancel scopes (httpx has one ``read`` timeout for both waiting for headers
and waiting between chunks, and LLMs need those to differ). Transport failures become
``GatewayError``s with a message that names the provider and what to check — never a key.
"""

from __future__ import annotations

import logging
import math
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import trio

from sluicegate import __version__
from sluicegate.config import ProviderConfig, Timeouts
from sluicegate.errors import GatewayError
from sluicegate.providers import UpstreamRequest

log = logging.getLogger("sluicegate.upstream")

# Bounded so a misbehaving upstream cannot make the gateway buffer without limit.
MAX_ERROR_BODY_BYTES = 64 * 1024
MAX_JSON_BODY_BYTES = 64 * 1024 * 1024


def describe_url(url: str) -> str:
    """``scheme://host:port/path`` of an upstream URL, without any userinfo it may carry."""
    parsed = httpx.URL(url)
    port = f":{parsed.port}" if parsed.port else ""
    return f"{parsed.scheme}://{parsed.host}{port}{parsed.path}"


class UpstreamPool:
    """httpx clients for the upstreams, one connection each, reused per provider.

    Why one connection per client: httpcore's connection pool looks at every connection it
    holds (with a readability syscall each) for every request, so a shared pool with 64 busy
    connections costs milliseconds of CPU per request. A stack of single-connection clients
    makes taking and returning a connection O(1); the most recently used client (the warmest
    connection) is handed out first. All clients of the pool share one TLS context, built
    once, because building it costs tens of milliseconds.

    ``transport`` is the seam for tests and special set-ups (an ``httpx.AsyncBaseTransport``
    used for every client instead of the network).
    """

    MAX_IDLE_PER_PROVIDER = 64

    def __init__(self, transport: httpx.AsyncBaseTransport | None = None):
        self._transport = transport
        self._idle: dict[str, list[httpx.AsyncClient]] = {}
        self._ssl_context: ssl.SSLContext | None = None

    def _new_client(self, provider: ProviderConfig) -> httpx.AsyncClient:
        if self._ssl_context is None:
            self._ssl_context = httpx.create_ssl_context()
        t = provider.timeouts
        return httpx.AsyncClient(
            transport=self._transport,
            verify=self._ssl_context,
            # read=None: first-byte / idle / total deadlines are applied by the caller.
            timeout=httpx.Timeout(connect=t.connect, read=None, write=t.connect, pool=t.connect),
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
            headers={"user-agent": f"sluicegate/{__version__}"},
            follow_redirects=False,
            trust_env=False,
        )

    @asynccontextmanager
    async def lease(self, provider: ProviderConfig) -> AsyncIterator[httpx.AsyncClient]:
        """A client (one upstream connection) for the length of one exchange."""
        idle = self._idle.setdefault(provider.name, [])
        client = idle.pop() if idle else self._new_client(provider)
        try:
            yield client
        finally:
            if len(idle) < self.MAX_IDLE_PER_PROVIDER and not client.is_closed:
                idle.append(client)
            else:
                with trio.CancelScope(shield=True):
                    await client.aclose()

    async def aclose(self) -> None:
        for idle in self._idle.values():
            for client in idle:
                await client.aclose()
        self._idle.clear()


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


@asynccontextmanager
async def open_upstream(
    pool: UpstreamPool, provider: ProviderConfig, request: UpstreamRequest
) -> AsyncIterator[httpx.Response]:
    """Send ``request`` and yield the response once its headers arrived; always closes it.

    Raises ``GatewayError`` when the upstream cannot be reached or sends no headers in time.
    """
    async with pool.lease(provider) as client:
        built = client.build_request(
            request.method, request.url, headers=list(request.headers), content=request.body
        )
        try:
            with trio.fail_after(provider.timeouts.first_byte):
                response = await client.send(built, stream=True)
        except (httpx.TransportError, trio.TooSlowError) as exc:
            error = transport_error(provider, request.url, exc)
            log.warning("provider %s: %s", provider.name, error)
            raise error from None
        try:
            yield response
        finally:
            # Shielded: on client disconnect this runs inside a cancelled scope, and the
            # upstream connection must still be closed at once (the client pays for tokens).
            with trio.CancelScope(shield=True), trio.move_on_after(2):
                await response.aclose()


async def read_body(response: httpx.Response, limit: int, timeouts: Timeouts) -> bytes:
    """The whole body, within the idle and total deadlines and the size ``limit``."""
    parts: list[bytes] = []
    size = 0
    async for chunk in iter_chunks(response, timeouts):
        size += len(chunk)
        if size > limit:
            raise GatewayError(
                502,
                f"The upstream answer is larger than {limit} bytes; sluicegate stopped reading it.",
                "upstream_error",
                "upstream_response_too_large",
            )
        parts.append(chunk)
    return b"".join(parts)


class IdleTimeout(Exception):
    """No bytes from the upstream for longer than the idle timeout."""


class TotalTimeout(Exception):
    """The whole upstream exchange took longer than the total timeout."""


async def iter_chunks(response: httpx.Response, timeouts: Timeouts) -> AsyncIterator[bytes]:
    """The response body as it arrives, one item per upstream read.

    Raises ``IdleTimeout``/``TotalTimeout`` when a deadline passes and lets
    ``httpx.TransportError`` through when the connection fails mid-body.
    """
    total_deadline = trio.current_time() + timeouts.total if timeouts.total else math.inf
    reads = response.aiter_bytes()
    while True:
        now = trio.current_time()
        idle_deadline = now + timeouts.idle if timeouts.idle else math.inf
        with trio.move_on_at(min(idle_deadline, total_deadline)) as scope:
            try:
                chunk = await reads.__anext__()
            except StopAsyncIteration:
                return
        if scope.cancelled_caught:
            if trio.current_time() >= total_deadline:
                raise TotalTimeout
            raise IdleTimeout
        yield chunk
