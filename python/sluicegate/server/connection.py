"""The trio side of one connection: socket reads and writes, timeouts, disconnect watching.

The HTTP rules live in ``protocol.py``; this module decides *when* to read and write, and turns
a client that goes away into cancellation of whatever is working for it.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from contextlib import contextmanager

import h11
import trio

from sluicegate.errors import GatewayError, error_body
from sluicegate.server.limits import ServerLimits
from sluicegate.server.protocol import RequestRejected, ServerProtocol
from sluicegate.server.types import (
    AbortConnection,
    After,
    Handler,
    Request,
    Response,
    StreamingResponse,
)

log = logging.getLogger("sluicegate.server")

READ_SIZE = 64 * 1024
# After an error answer, keep reading (and discarding) for a moment before closing: closing a
# socket with unread input makes the kernel send RST, which can destroy the answer in flight.
LINGER_SECONDS = 2.0
INTERNAL_ERROR = "internal error in sluicegate; see the gateway log"


class _PeerGone(Exception):
    """The client closed or reset the connection."""


class ConnectionTracker:
    """What graceful shutdown needs to know about the open connections."""

    def __init__(self) -> None:
        self.draining = False
        self._active = 0
        self._idle_scopes: set[trio.CancelScope] = set()
        self._all_closed = trio.Event()

    @contextmanager
    def track(self) -> Iterator[None]:
        self._active += 1
        try:
            yield
        finally:
            self._active -= 1
            if self.draining and self._active == 0:
                self._all_closed.set()

    def idle_scope(self, deadline: float) -> trio.CancelScope:
        """A wait for the next request: ends at ``deadline``, or at once when draining starts.

        Enter the scope, then ``forget`` it. A plain pair of calls rather than a generator
        context manager: this runs once per request, and contextlib's machinery costs more
        than the wait's bookkeeping itself.
        """
        scope = trio.CancelScope(deadline=deadline)
        if self.draining:
            scope.cancel()
        self._idle_scopes.add(scope)
        return scope

    def forget(self, scope: trio.CancelScope) -> None:
        self._idle_scopes.discard(scope)

    def drain(self) -> None:
        """Stop keep-alive: idle connections close now, busy ones after their response."""
        self.draining = True
        for scope in list(self._idle_scopes):
            scope.cancel()
        if self._active == 0:
            self._all_closed.set()

    async def wait_all_closed(self) -> None:
        await self._all_closed.wait()


def tune_socket(stream: trio.SocketStream) -> None:
    """Small SSE frames must leave at once, not wait for Nagle to batch them."""
    stream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, True)


async def serve_connection(
    stream: trio.SocketStream, handler: Handler, limits: ServerLimits, tracker: ConnectionTracker
) -> None:
    """Serve requests on ``stream`` until the client leaves, a limit trips, or draining."""
    with tracker.track():
        try:
            tune_socket(stream)
            await _Connection(stream, handler, limits, tracker).run()
        except (trio.BrokenResourceError, trio.ClosedResourceError, _PeerGone):
            pass
        except Exception:
            # One broken connection must never take the server down with it.
            log.exception("connection failed unexpectedly; closing it")
        finally:
            await stream.aclose()


def _peer_address(stream: trio.SocketStream) -> tuple[str, int] | None:
    try:
        address = stream.socket.getpeername()
    except OSError:
        return None
    return (address[0], address[1]) if isinstance(address, tuple) else None


def _build_request(event: h11.Request, body: bytes, client: tuple[str, int] | None) -> Request:
    target = event.target.decode("latin-1")
    path, _, query = target.partition("?")
    return Request(
        method=event.method.decode("latin-1"),
        target=target,
        path=path,
        query=query,
        headers=list(event.headers),
        body=body,
        client=client,
    )


async def _run_after(after: After, request: Request) -> None:
    """A response's clean-up, once it went out or could not: shielded, because a client that
    left cancels the work around it and the clean-up (closing an upstream) must still run."""
    with trio.CancelScope(shield=True):
        try:
            await after()
        except Exception:
            log.exception("clean-up after %s %s failed", request.method, request.path)


def _internal_error() -> Response:
    return Response(500, error_body(INTERNAL_ERROR, "server_error", "internal_error"))


class _Connection:
    def __init__(
        self,
        stream: trio.SocketStream,
        handler: Handler,
        limits: ServerLimits,
        tracker: ConnectionTracker,
    ) -> None:
        self._stream = stream
        self._handler = handler
        self._limits = limits
        self._tracker = tracker
        self._protocol = ServerProtocol(limits)
        self._client = _peer_address(stream)
        self._accepted_at = trio.current_time()

    async def run(self) -> None:
        first = True
        while True:
            request = await self._read_request(first)
            if request is None:
                return
            first = False
            await self._respond(request)
            if not self._protocol.can_reuse or self._tracker.draining:
                return
            self._protocol.start_next_cycle()

    # --- reading ---------------------------------------------------------------------------

    async def _receive(self) -> bytes:
        try:
            data = await self._stream.receive_some(READ_SIZE)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            data = b""  # a reset is a disconnect like any other
        self._protocol.receive(data)
        return data

    async def _next_event(self) -> h11.Event:
        while True:
            event = self._protocol.next_event()
            if event is not h11.NEED_DATA:
                assert event is not h11.PAUSED, "read a request before the last one was answered"
                return event  # type: ignore[return-value]
            await self._receive()

    async def _wait_for_first_byte(self, first: bool) -> bool:
        """Idle time between requests; False when the connection should close silently."""
        if self._protocol.has_buffered_data:
            return True  # a pipelined request is already here
        if first:
            deadline = self._accepted_at + self._limits.header_timeout
        else:
            deadline = trio.current_time() + self._limits.keepalive_timeout
        scope = self._tracker.idle_scope(deadline)
        try:
            with scope:
                data = await self._receive()
        finally:
            self._tracker.forget(scope)
        return not scope.cancelled_caught and bool(data)

    async def _read_request(self, first: bool) -> Request | None:
        if not await self._wait_for_first_byte(first):
            return None
        start = self._accepted_at if first else trio.current_time()
        try:
            # Usually the whole request came in one read: parse it without arming timers.
            event = self._protocol.next_event()
            if event is h11.NEED_DATA:
                with trio.move_on_at(start + self._limits.header_timeout) as head_scope:
                    event = await self._next_event()
                if head_scope.cancelled_caught:
                    raise RequestRejected(
                        408,
                        f"request headers did not arrive within "
                        f"{self._limits.header_timeout:g} s; send the whole request head at once",
                        "request_timeout",
                    )
            if not isinstance(event, h11.Request):
                return None  # ConnectionClosed: the client left between requests
            if self._protocol.client_waits_for_100_continue:
                await self._send(self._protocol.continue_100())
            parts: list[bytes] = []
            if not self._take_buffered_body(parts):
                with trio.move_on_after(self._limits.body_timeout) as body_scope:
                    await self._read_body(parts)
                if body_scope.cancelled_caught:
                    raise RequestRejected(
                        408,
                        f"request body did not arrive within {self._limits.body_timeout:g} s; "
                        "send the body without pauses",
                        "request_timeout",
                    )
        except RequestRejected as rejected:
            await self._reject(rejected.status, rejected.body())
            return None
        body = parts[0] if len(parts) == 1 else b"".join(parts)
        return _build_request(event, body, self._client)

    def _take_buffered_body(self, parts: list[bytes]) -> bool:
        """Body bytes already received go into ``parts``; True once the body is complete."""
        while True:
            event = self._protocol.next_event()
            if isinstance(event, h11.Data):
                parts.append(event.data)
            elif isinstance(event, h11.EndOfMessage):
                return True
            elif event is h11.NEED_DATA:
                return False
            else:  # h11 raises on a premature close, so this is defensive
                raise _PeerGone

    async def _read_body(self, parts: list[bytes]) -> None:
        while not self._take_buffered_body(parts):
            await self._receive()

    async def _reject(self, status: int, body: bytes) -> None:
        data = self._protocol.error_response(status, body)
        if data is None:
            return
        await self._send(data)
        await self._linger()

    async def _linger(self) -> None:
        with trio.move_on_after(LINGER_SECONDS):
            try:
                await self._stream.send_eof()
                while await self._stream.receive_some(READ_SIZE):
                    pass
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                pass

    # --- answering -------------------------------------------------------------------------

    async def _send(self, data: bytes) -> None:
        try:
            await self._stream.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise _PeerGone from exc

    async def _watch_peer(self, work: trio.CancelScope) -> None:
        """Read while the handler works: EOF or reset cancels the work at once.

        Pipelined bytes are handed to h11 for the next cycle. Past a bound we stop reading
        (TCP backpressure) rather than buffer without limit; disconnects then go unseen until
        a write fails.
        """
        pending = 0
        cap = max(self._limits.max_header_bytes, READ_SIZE)
        while pending < cap:
            data = await self._receive()
            if not data:
                work.cancel()
                return
            pending += len(data)
        await trio.sleep_forever()

    async def _respond(self, request: Request) -> None:
        started = trio.current_time()
        status = 0
        async with trio.open_nursery() as nursery:
            with trio.CancelScope() as work:
                nursery.start_soon(self._watch_peer, work)
                try:
                    status = await self._handle(request)
                except _PeerGone:
                    self._protocol.mark_broken()
            nursery.cancel_scope.cancel()
        if work.cancelled_caught:
            self._protocol.mark_broken()
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "%s %s %s %.1fms%s",
                request.method,
                request.path,
                status or "-",
                (trio.current_time() - started) * 1000,
                " (client went away)" if work.cancelled_caught else "",
            )

    async def _handle(self, request: Request) -> int:
        try:
            response = await self._handler(request)
        except GatewayError as exc:
            response = Response(exc.status, exc.body(), list(exc.headers))
        except AbortConnection:
            self._protocol.mark_broken()
            return 0
        except Exception:
            log.exception("handler failed on %s %s", request.method, request.path)
            response = _internal_error()
        if not isinstance(response, Response | StreamingResponse):
            log.error("handler returned %r for %s %s", type(response), request.method, request.path)
            response = _internal_error()
        after = response.after
        try:
            if isinstance(response, StreamingResponse):
                await self._send_stream(request, response)
            else:
                await self._send_response(request, response)
        except h11.LocalProtocolError:
            # Raised before anything went out (e.g. a header value with a newline).
            log.exception("response for %s %s cannot be sent", request.method, request.path)
            response = _internal_error()
            data = self._protocol.error_response(response.status, response.body)
            if data is None:
                self._protocol.mark_broken()
                return 0
            await self._send(data)
        finally:
            if after is not None:
                await _run_after(after, request)
        return response.status

    async def _send_response(self, request: Request, response: Response) -> None:
        protocol = self._protocol
        head = protocol.response_head(
            response.status,
            response.headers,
            response.content_type,
            len(response.body),
            close=self._tracker.draining,
        )
        body = b"" if request.method == "HEAD" else protocol.body(response.body)
        await self._send(head + body + protocol.end())

    async def _send_stream(self, request: Request, response: StreamingResponse) -> None:
        protocol = self._protocol
        chunks = aiter(response.chunks)
        try:
            head = protocol.response_head(
                response.status,
                response.headers,
                response.content_type,
                None,
                close=self._tracker.draining,
            )
            if request.method == "HEAD":
                await self._send(head + protocol.end())
                return
            await self._send(head + protocol.body(response.first) if response.first else head)
            while True:
                try:
                    chunk = await anext(chunks)
                except StopAsyncIteration:
                    break
                except AbortConnection:
                    protocol.mark_broken()
                    return
                except Exception:
                    # The status line is gone; the app owns in-stream error events. All that is
                    # left is to make the truncation visible: close without the final chunk.
                    log.exception("response stream for %s %s failed", request.method, request.path)
                    protocol.mark_broken()
                    return
                if chunk:
                    await self._send(protocol.body(chunk))
            await self._send(protocol.end())
        finally:
            aclose = getattr(chunks, "aclose", None)
            if aclose is not None:
                await aclose()
