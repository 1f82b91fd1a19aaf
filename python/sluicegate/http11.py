"""One upstream HTTP/1.1 connection — h11 over a trio socket — as an httpx transport.

httpx stays the upstream client API (``httpx.Request``/``httpx.Response``, its exceptions, its
transport seam); this module replaces only what sits under it by default, httpcore's connection
pool. The gateway already keeps one connection per transport (see ``UpstreamPool``), so the
pool's machinery — its locks, per-request scans of the connections, layered async generators
and context managers, trace hooks — is pure cost: about a third of the gateway's CPU per
request at concurrency 1 (bench/NOTES.md). What is left here is what one keep-alive connection
needs: connect (TCP, TLS), send one request, hand back the body as it arrives, and keep the
socket for the next request only when the last exchange ended cleanly.

Failures are httpx's exceptions, so callers cannot tell this transport from httpx's own:
``ConnectError``/``ConnectTimeout``, ``WriteError``/``WriteTimeout``, ``ReadError``/
``ReadTimeout`` and ``RemoteProtocolError`` (h11's verdict on what the server sent).
"""

from __future__ import annotations

import functools
import ssl

import h11
import httpx
import trio

READ_SIZE = 64 * 1024
# How long an idle connection is kept for reuse, as httpcore does. Servers close idle
# connections after their own timeout (uvicorn, which vLLM runs on: 5 s); a connection the
# server has closed is also noticed before reuse (its socket turns readable).
KEEPALIVE_EXPIRY = 5.0
_DEFAULT_PORTS = {b"http": 80, b"https": 443}

_Origin = tuple[bytes, str, int]


@functools.cache
def shared_ssl_context() -> ssl.SSLContext:
    """httpx's default TLS context (certifi's roots), built once for every connection: building
    one costs tens of milliseconds."""
    context = httpx.create_ssl_context()
    context.set_alpn_protocols(["http/1.1"])
    return context


def _deadline(timeouts: dict[str, float | None], which: str) -> float:
    seconds = timeouts.get(which)
    return trio.current_time() + seconds if seconds is not None else float("inf")


class HTTP11Transport(httpx.AsyncBaseTransport):
    """A single keep-alive HTTP/1.1 connection, opened on first use and reopened when needed.

    One exchange at a time: the caller reads (or closes) one response before it sends the
    next request. ``ssl_context`` defaults to ``shared_ssl_context()``.
    """

    def __init__(self, ssl_context: ssl.SSLContext | None = None) -> None:
        self._ssl_context = ssl_context
        self._origin: _Origin | None = None
        self._socket_stream: trio.SocketStream | None = None
        self._stream: trio.abc.Stream | None = None
        self._protocol = h11.Connection(h11.CLIENT)
        self._idle_since = 0.0
        self._busy = False

    # --- the connection ------------------------------------------------------------------

    def _reusable(self, origin: _Origin) -> bool:
        """Whether the open connection can carry a request to ``origin`` now."""
        if self._socket_stream is None or origin != self._origin:
            return False
        if self._protocol.our_state is not h11.IDLE:
            return False
        if trio.current_time() - self._idle_since > KEEPALIVE_EXPIRY:
            return False
        # An idle connection with something to read has been closed by the server (or is
        # sending garbage): either way it cannot carry another request.
        return not self._socket_stream.socket.is_readable()

    def _drop(self) -> None:
        """Close the socket at once, without a TLS goodbye: nothing more goes over it."""
        if self._socket_stream is not None:
            self._socket_stream.socket.close()
        self._socket_stream = self._stream = None

    async def _connect(self, origin: _Origin, timeouts: dict) -> None:
        scheme, host, port = origin
        try:
            with trio.fail_at(_deadline(timeouts, "connect")):
                socket_stream = await trio.open_tcp_stream(host, port)
                stream: trio.abc.Stream = socket_stream
                if scheme == b"https":
                    stream = trio.SSLStream(
                        socket_stream,
                        self._ssl_context or shared_ssl_context(),
                        server_hostname=host,
                        https_compatible=True,
                    )
                    try:
                        await stream.do_handshake()
                    except BaseException:
                        socket_stream.socket.close()
                        raise
        except trio.TooSlowError:
            raise httpx.ConnectTimeout(f"connecting to {host}:{port} timed out") from None
        except (OSError, trio.BrokenResourceError) as exc:
            cause = exc.__cause__ if isinstance(exc, trio.BrokenResourceError) else exc
            raise httpx.ConnectError(str(cause or exc) or type(exc).__name__) from None
        self._origin = origin
        self._socket_stream = socket_stream
        self._stream = stream
        self._protocol = h11.Connection(h11.CLIENT)

    # --- one exchange ----------------------------------------------------------------------

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._busy:
            raise RuntimeError("HTTP11Transport carries one exchange at a time")
        url = request.url
        origin = (url.raw_scheme, url.host, url.port or _DEFAULT_PORTS.get(url.raw_scheme, 80))
        timeouts = request.extensions.get("timeout", {})
        body = await request.aread()
        self._busy = True
        try:
            if not self._reusable(origin):
                self._drop()
                await self._connect(origin, timeouts)
            await self._send(self._request_bytes(request, body), timeouts)
            response = await self._receive_head(timeouts)
        except BaseException:
            self._busy = False
            self._drop()
            raise
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            stream=ResponseBody(self, timeouts),
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": response.reason},
        )

    def _request_bytes(self, request: httpx.Request, body: bytes) -> bytes:
        """The whole request, head and body, for one write."""
        protocol = self._protocol
        url = request.url
        try:
            data = protocol.send(
                h11.Request(method=request.method, target=url.raw_path, headers=request.headers.raw)
            )
            if body:
                data += protocol.send(h11.Data(data=body))
            return data + protocol.send(h11.EndOfMessage())
        except h11.LocalProtocolError as exc:
            raise httpx.LocalProtocolError(f"the request cannot be sent: {exc}") from None

    async def _send(self, data: bytes, timeouts: dict) -> None:
        assert self._stream is not None
        try:
            if timeouts.get("write") is None:  # the hot path: the caller's cancel scopes rule
                await self._stream.send_all(data)
            else:
                with trio.fail_at(_deadline(timeouts, "write")):
                    await self._stream.send_all(data)
        except trio.TooSlowError:
            raise httpx.WriteTimeout("sending the request timed out") from None
        except (OSError, trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise httpx.WriteError(f"sending the request failed ({type(exc).__name__})") from None

    async def _next_event(self, timeouts: dict) -> h11.Event:
        """The next event from the server, reading as needed; failures as httpx errors."""
        protocol = self._protocol
        while True:
            try:
                event = protocol.next_event()
            except h11.RemoteProtocolError as exc:
                raise httpx.RemoteProtocolError(str(exc)) from None
            if event is not h11.NEED_DATA:
                return event  # type: ignore[return-value]
            data = await self._read(timeouts)
            if not data and protocol.their_state is h11.SEND_RESPONSE:
                raise httpx.RemoteProtocolError("Server disconnected without sending a response.")
            protocol.receive_data(data)

    async def _read(self, timeouts: dict) -> bytes:
        assert self._stream is not None
        try:
            if timeouts.get("read") is None:  # the hot path: the caller's cancel scopes rule
                return await self._stream.receive_some(READ_SIZE)
            with trio.fail_at(_deadline(timeouts, "read")):
                return await self._stream.receive_some(READ_SIZE)
        except trio.TooSlowError:
            raise httpx.ReadTimeout("reading the response timed out") from None
        except (OSError, trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise httpx.ReadError(f"reading the response failed ({type(exc).__name__})") from None

    async def _receive_head(self, timeouts: dict) -> h11.Response:
        while True:
            event = await self._next_event(timeouts)
            if isinstance(event, h11.Response):
                return event
            # h11.InformationalResponse (100 Continue and the like): the real one follows.

    def _exchange_done(self, complete: bool) -> None:
        """The response body was read to its end (``complete``) or abandoned."""
        self._busy = False
        protocol = self._protocol
        if complete and protocol.our_state is h11.DONE and protocol.their_state is h11.DONE:
            protocol.start_next_cycle()
            self._idle_since = trio.current_time()
        else:
            self._drop()

    async def aclose(self) -> None:
        self._drop()


class ResponseBody(httpx.AsyncByteStream):
    """The body of one response, one item per socket read (never re-chunked).

    A plain iterator rather than an async generator: an abandoned generator is finalised
    later by trio's garbage-collection hook, at a cost, and the connection with it.
    """

    def __init__(self, transport: HTTP11Transport, timeouts: dict) -> None:
        self._transport = transport
        self._timeouts = timeouts
        self._finished = False

    def __aiter__(self) -> ResponseBody:
        return self

    async def __anext__(self) -> bytes:
        if self._finished:
            raise StopAsyncIteration
        try:
            while True:
                event = await self._transport._next_event(self._timeouts)
                kind = type(event)
                if kind is h11.Data:
                    data = event.data  # type: ignore[union-attr]
                    if data:
                        return data if type(data) is bytes else bytes(data)
                elif kind is h11.EndOfMessage:
                    self._finish(complete=True)
                    raise StopAsyncIteration
                else:  # ConnectionClosed before the end of the body
                    raise httpx.RemoteProtocolError("peer closed connection mid-body")
        except StopAsyncIteration:
            raise
        except BaseException:
            self._finish(complete=False)
            raise

    async def drain(self, limit: int) -> bool:
        """Read the rest of the body, discarding up to ``limit`` bytes, so the connection can
        carry the next request; False (and the connection dropped) if there was more.

        For an answer whose end the caller has already seen (an SSE ``[DONE]``, Ollama's
        ``done`` line): what follows is the body's framing, usually already received.
        """
        seen = 0
        try:
            async for chunk in self:
                seen += len(chunk)
                if seen > limit:
                    self._finish(complete=False)
                    return False
        except httpx.TransportError:
            return False
        return True

    def _finish(self, *, complete: bool) -> None:
        if not self._finished:
            self._finished = True
            self._transport._exchange_done(complete)

    async def aclose(self) -> None:
        self._finish(complete=False)
