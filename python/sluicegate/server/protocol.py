"""HTTP/1.1 for one connection, without I/O: bytes in, events and bytes out.

A thin layer over h11 that adds what h11 leaves to its caller: request size limits, the
sluicegate response headers and the error envelope. The trio side (``connection.py``) owns the
socket and the clocks; everything here can be driven by a test with plain bytes.
"""

from __future__ import annotations

from http import HTTPStatus

import h11

from sluicegate.errors import error_body
from sluicegate.server.limits import ServerLimits

NEED_DATA = h11.NEED_DATA
PAUSED = h11.PAUSED

SERVER_HEADER = (b"server", b"sluicegate")


class RequestRejected(Exception):
    """The request cannot be served: answer ``status`` with the error envelope and close."""

    def __init__(self, status: int, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code

    def body(self) -> bytes:
        return error_body(self.message, "invalid_request_error", self.code)


# Reason phrases looked up once, not per response.
_REASONS = {status.value: status.phrase.encode("ascii") for status in HTTPStatus}


def _reason(status: int) -> bytes:
    return _REASONS.get(status, b"")


def _encode_headers(headers: list[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    return [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers]


class ServerProtocol:
    """One connection's HTTP state: h11 plus sluicegate's limits and response conventions."""

    def __init__(self, limits: ServerLimits) -> None:
        self._limits = limits
        self._h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=limits.max_header_bytes)
        self._head_bytes = 0  # bytes received since the current request's head began
        self._in_head = True
        self._body_bytes = 0
        self._head_sent = False

    # --- receiving -------------------------------------------------------------------------

    def receive(self, data: bytes) -> None:
        """Feed bytes from the socket; ``b""`` means the peer closed its side."""
        if self._in_head:
            self._head_bytes += len(data)
        self._h11.receive_data(data)

    @property
    def has_buffered_data(self) -> bool:
        """Bytes of a request that has not been parsed yet (pipelining) are waiting."""
        data, closed = self._h11.trailing_data
        return bool(data) or closed

    def next_event(self) -> h11.Event | type[h11.NEED_DATA] | type[h11.PAUSED]:
        """The next request event, with limits enforced; raises ``RequestRejected``."""
        try:
            event = self._h11.next_event()
        except h11.RemoteProtocolError as exc:
            if exc.error_status_hint == 431:
                raise self._headers_too_large() from None
            raise RequestRejected(
                400,
                f"malformed HTTP request ({exc}); send a valid HTTP/1.1 request",
                "malformed_request",
            ) from None
        if isinstance(event, h11.Request):
            self._begin_request(event)
        elif isinstance(event, h11.Data):
            self._count_body(len(event.data))
        return event

    def _headers_too_large(self) -> RequestRejected:
        return RequestRejected(
            431,
            f"request headers are larger than this server's limit of "
            f"{self._limits.max_header_bytes} bytes; send fewer or smaller headers",
            "request_header_fields_too_large",
        )

    def _body_too_large(self) -> RequestRejected:
        return RequestRejected(
            413,
            f"request body is larger than this server's limit of "
            f"{self._limits.max_body_bytes} bytes; send a smaller request",
            "request_too_large",
        )

    def _begin_request(self, event: h11.Request) -> None:
        # h11 only bounds an *incomplete* head; a head that completes within one large read
        # slips past it, so measure the head that was actually consumed.
        leftover, _ = self._h11.trailing_data
        self._in_head = False
        if self._head_bytes - len(leftover) > self._limits.max_header_bytes:
            raise self._headers_too_large()
        for name, value in event.headers:
            # h11 has already checked that Content-Length is a well-formed, single number.
            if name == b"content-length" and int(value) > self._limits.max_body_bytes:
                raise self._body_too_large()

    def _count_body(self, size: int) -> None:
        self._body_bytes += size
        if self._body_bytes > self._limits.max_body_bytes:
            raise self._body_too_large()

    @property
    def client_waits_for_100_continue(self) -> bool:
        return self._h11.they_are_waiting_for_100_continue

    # --- sending ---------------------------------------------------------------------------

    def continue_100(self) -> bytes:
        return self._h11.send(h11.InformationalResponse(status_code=100, headers=[]))

    def response_head(
        self,
        status: int,
        headers: list[tuple[str, str]],
        content_type: str,
        content_length: int | None,
        close: bool,
    ) -> bytes:
        """The status line and headers; ``content_length=None`` means a streamed body.

        Raises ``h11.LocalProtocolError`` (before any state changes) for headers that cannot go
        on the wire, e.g. a value with a newline.
        """
        out = _encode_headers(headers)
        names = {name.lower() for name, _ in out}
        if b"content-type" not in names:
            out.append((b"content-type", content_type.encode("latin-1")))
        if content_length is not None:
            out = [(n, v) for n, v in out if n.lower() != b"content-length"]
            out.append((b"content-length", str(content_length).encode("ascii")))
        if content_type.startswith("text/event-stream") and b"cache-control" not in names:
            # Proxies and browsers must not buffer or cache a token stream.
            out.append((b"cache-control", b"no-cache"))
        if b"server" not in names:
            out.append(SERVER_HEADER)
        if close:
            out.append((b"connection", b"close"))
        head = self._h11.send(h11.Response(status_code=status, headers=out, reason=_reason(status)))
        self._head_sent = True
        return head or b""

    def body(self, data: bytes) -> bytes:
        """``data`` framed for the wire (chunked or plain): one bytes object, one write."""
        return self._h11.send(h11.Data(data=data)) or b""

    def end(self) -> bytes:
        return self._h11.send(h11.EndOfMessage()) or b""

    def error_response(
        self, status: int, body: bytes, headers: list[tuple[str, str]] | None = None
    ) -> bytes | None:
        """A complete error response that also closes the connection; None if too late.

        It is too late once a response head went out: the client already has a status.
        """
        if self._head_sent or self._h11.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            return None
        return (
            self.response_head(
                status, list(headers or []), "application/json", len(body), close=True
            )
            + self.body(body)
            + self.end()
        )

    def mark_broken(self) -> None:
        """A send failed or the response was abandoned midway: the connection cannot be reused."""
        self._h11.send_failed()

    # --- connection reuse ------------------------------------------------------------------

    @property
    def can_reuse(self) -> bool:
        return self._h11.our_state is h11.DONE and self._h11.their_state is h11.DONE

    def start_next_cycle(self) -> None:
        self._h11.start_next_cycle()
        leftover, _ = self._h11.trailing_data
        self._head_bytes = len(leftover)
        self._in_head = True
        self._body_bytes = 0
        self._head_sent = False
