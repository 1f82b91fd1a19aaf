"""The HTTP server layer over real sockets on 127.0.0.1 (plus its sans-IO protocol core)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial

import h11
import orjson
import pytest
import trio

from sluicegate.errors import GatewayError, error_body
from sluicegate.server import (
    Request,
    Response,
    ServerLimits,
    StreamingResponse,
    serve,
)
from sluicegate.server.connection import ConnectionTracker, serve_connection
from sluicegate.server.protocol import RequestRejected, ServerProtocol
from tests.harness import TrioThread

WAIT = 10.0  # upper bound for anything the server must do "at once"


# --- a tiny raw HTTP client ---------------------------------------------------------------


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    raw: bytes


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


class Reader:
    """Reads HTTP responses off a blocking socket (Content-Length, chunked, or to EOF)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""
        self.raw = b""

    def _fill(self) -> bool:
        data = self.sock.recv(65536)
        self.buffer += data
        self.raw += data
        return bool(data)

    def until(self, marker: bytes) -> bytes:
        while marker not in self.buffer:
            if not self._fill():
                raise EOFError(f"connection closed before {marker!r}; got {self.buffer!r}")
        head, self.buffer = self.buffer.split(marker, 1)
        return head + marker

    def exactly(self, size: int) -> bytes:
        while len(self.buffer) < size:
            if not self._fill():
                raise EOFError("connection closed mid-body")
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    def to_eof(self) -> bytes:
        while self._fill():
            pass
        data, self.buffer = self.buffer, b""
        return data

    def response(self) -> Answer:
        start = len(self.raw) - len(self.buffer)
        head = self.until(b"\r\n\r\n").decode("latin-1")
        status_line, *lines = head.strip().split("\r\n")
        headers = {k.lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines)}
        status = int(status_line.split()[1])
        if status == 100:
            return self.response()
        if "content-length" in headers:
            body = self.exactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding") == "chunked":
            body = b""
            while True:
                size = int(self.until(b"\r\n")[:-2], 16)
                body += self.exactly(size)
                self.until(b"\r\n")
                if size == 0:
                    break
        else:
            body = self.to_eof()
        return Answer(status, headers, body, self.raw[start:])

    def closed(self) -> bool:
        """True when the server closed the connection (EOF or reset) and sent nothing more."""
        try:
            return not self._fill()
        except ConnectionResetError:
            return True


def get(path: str, extra: bytes = b"") -> bytes:
    return f"GET {path} HTTP/1.1\r\nhost: t\r\n".encode() + extra + b"\r\n"


def post(path: str, body: bytes, extra: bytes = b"") -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nhost: t\r\ncontent-length: {len(body)}\r\n".encode()
        + extra
        + b"\r\n"
        + body
    )


def error_of(answer: Answer) -> dict:
    error = orjson.loads(answer.body)["error"]
    assert set(error) == {"message", "type", "param", "code"}
    return error


# --- a test application ---------------------------------------------------------------------


class App:
    """A handler whose routes exercise the server; flags are set from the trio thread."""

    def __init__(self) -> None:
        self.stream_closed = threading.Event()
        self.handler_cancelled = threading.Event()
        self.release: trio.Event | None = None  # created inside the server's trio run
        self.gate = threading.Event()
        self.nodelay: list[int] = []
        self.after_ran = threading.Event()
        self.after_calls = 0

    async def __call__(self, request: Request) -> Response | StreamingResponse:
        if self.release is None:
            self.release = trio.Event()
        path = request.path
        if path == "/echo":
            info = {
                "method": request.method,
                "target": request.target,
                "path": request.path,
                "query": request.query,
                "body": request.body.decode(),
                "x_test": request.header("X-Test"),
                "missing": request.header("x-missing"),
                "client_host": request.client[0] if request.client else None,
            }
            return Response(200, orjson.dumps(info), [("x-echo", "1")])
        if path == "/missing":
            return Response(404, error_body("no such thing", "not_found_error", "unknown_url"))
        if path == "/gateway-error":
            raise GatewayError(
                429, "slow down", "rate_limit_error", "rate_limited", None, (("retry-after", "7"),)
            )
        if path == "/bad-header":
            return Response(200, b"x", [("x-bad", "line\nbreak")])
        if path == "/boom":
            raise RuntimeError("secret-token-123 must not leak")
        if path == "/stream":
            return StreamingResponse(200, self._chunks([b"data: one\n\n", b"", b"data: two\n\n"]))
        if path == "/stream-forever":
            return StreamingResponse(200, self._forever())
        if path == "/stream-until-released":
            return StreamingResponse(200, self._until_released())
        if path == "/stream-fails":
            return StreamingResponse(200, self._fails())
        if path == "/hang":
            try:
                await trio.sleep_forever()
            finally:
                self.handler_cancelled.set()
        if path == "/after-gated":  # its clean-up waits for the test's gate
            return Response(200, b"done", after=self._gated_after)
        if path == "/after-fails":
            return Response(200, b"done", after=self._failing_after)
        if path == "/stream-first-after":
            chunks = self._chunks([b"data: two\n\n"])
            return StreamingResponse(200, chunks, first=b"data: one\n\n", after=self._after)
        if path == "/stream-forever-after":
            return StreamingResponse(200, self._forever(), after=self._after)
        if path == "/gate":
            await trio.to_thread.run_sync(self.gate.wait, WAIT, abandon_on_cancel=True)
            return Response(200, b"gate")
        return Response(200, b"ok", content_type="text/plain")

    async def _after(self) -> None:
        await trio.lowlevel.checkpoint()  # cancelled here, were it not shielded
        self.after_calls += 1
        self.after_ran.set()

    async def _gated_after(self) -> None:
        await trio.to_thread.run_sync(self.gate.wait, WAIT)
        await self._after()

    async def _failing_after(self) -> None:
        raise RuntimeError("clean-up broke")

    async def _chunks(self, items: list[bytes]):
        try:
            for item in items:
                yield item
        finally:
            self.stream_closed.set()

    async def _forever(self):
        try:
            yield b"data: first\n\n"
            await trio.sleep_forever()
        finally:
            self.stream_closed.set()

    async def _until_released(self):
        try:
            yield b"data: before\n\n"
            assert self.release is not None
            await self.release.wait()
            yield b"data: after\n\n"
        finally:
            self.stream_closed.set()

    async def _fails(self):
        try:
            yield b"data: partial\n\n"
            raise ValueError("stream broke")
        finally:
            self.stream_closed.set()


@contextmanager
def running(app: App, **limits: float) -> Iterator[int]:
    with TrioThread(partial(serve, app, "127.0.0.1", 0, limits=ServerLimits(**limits))) as port:
        yield port


@pytest.fixture
def app() -> App:
    return App()


@pytest.fixture
def port(app: App) -> Iterator[int]:
    with running(app) as p:
        yield p


# --- requests and responses -----------------------------------------------------------------


def test_keep_alive_serves_two_requests_on_one_connection(port: int) -> None:
    with connect(port) as sock:
        reader = Reader(sock)
        sock.sendall(post("/echo?x=1", b"hello", b"x-test: A\r\n"))
        first = reader.response()
        sock.sendall(get("/plain"))
        second = reader.response()
    assert first.status == 200
    assert first.headers["server"] == "sluicegate"
    assert first.headers["content-type"] == "application/json"
    assert first.headers["x-echo"] == "1"
    assert orjson.loads(first.body) == {
        "method": "POST",
        "target": "/echo?x=1",
        "path": "/echo",
        "query": "x=1",
        "body": "hello",
        "x_test": "A",
        "missing": None,
        "client_host": "127.0.0.1",
    }
    assert (second.status, second.body, second.headers["content-type"]) == (
        200,
        b"ok",
        "text/plain",
    )


def test_pipelined_requests_are_answered_in_order(port: int) -> None:
    with connect(port) as sock:
        reader = Reader(sock)
        sock.sendall(post("/echo", b"1") + post("/echo", b"2") + get("/plain"))
        bodies = [reader.response().body for _ in range(3)]
    assert [orjson.loads(b)["body"] for b in bodies[:2]] == ["1", "2"]
    assert bodies[2] == b"ok"


def test_bytes_arriving_while_the_handler_runs_are_kept(app: App, port: int) -> None:
    with connect(port) as sock:
        reader = Reader(sock)
        sock.sendall(get("/gate"))
        sock.sendall(post("/echo", b"second"))  # arrives while /gate's handler still waits
        app.gate.set()
        first, second = reader.response(), reader.response()
    assert first.body == b"gate"
    assert orjson.loads(second.body)["body"] == "second"


def test_request_fed_one_byte_at_a_time(port: int) -> None:
    raw = (
        b"POST /echo HTTP/1.1\r\nhost: t\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
    )
    with connect(port) as sock:
        for i in range(len(raw)):
            sock.sendall(raw[i : i + 1])
        answer = Reader(sock).response()
    assert orjson.loads(answer.body)["body"] == "abc"


def test_http_1_0_gets_a_complete_answer_and_a_close(port: int) -> None:
    with connect(port) as sock:
        sock.sendall(b"GET /plain HTTP/1.0\r\n\r\n")
        reader = Reader(sock)
        answer = reader.response()
        assert reader.closed()
    assert (answer.status, answer.body) == (200, b"ok")


def test_streaming_response_on_the_wire(app: App, port: int) -> None:
    with connect(port) as sock:
        sock.sendall(get("/stream"))
        reader = Reader(sock)
        answer = reader.response()
        sock.sendall(get("/plain"))  # the connection stays usable after a stream
        assert reader.response().body == b"ok"
    head, body = answer.raw.split(b"\r\n\r\n", 1)
    assert head.split(b"\r\n")[0] == b"HTTP/1.1 200 OK"
    assert answer.headers["transfer-encoding"] == "chunked"
    assert answer.headers["content-type"] == "text/event-stream"
    assert answer.headers["cache-control"] == "no-cache"
    assert answer.headers["server"] == "sluicegate"
    # One chunk per non-empty item (the empty one is skipped, not sent as a terminator).
    assert body == b"b\r\ndata: one\n\n\r\nb\r\ndata: two\n\n\r\n0\r\n\r\n"
    assert app.stream_closed.wait(WAIT)


def test_after_runs_once_the_response_went_out(app: App, port: int) -> None:
    with connect(port) as sock:
        sock.sendall(get("/after-gated"))
        reader = Reader(sock)
        assert reader.response().body == b"done"  # while the clean-up still waits
        assert not app.after_ran.is_set()
        app.gate.set()
        assert app.after_ran.wait(WAIT)
        sock.sendall(get("/plain"))
        assert reader.response().body == b"ok"
    assert app.after_calls == 1


def test_a_failing_after_is_logged_and_the_connection_keeps_serving(
    port: int, caplog: pytest.LogCaptureFixture
) -> None:
    with connect(port) as sock:
        sock.sendall(get("/after-fails"))
        reader = Reader(sock)
        assert reader.response().body == b"done"
        sock.sendall(get("/plain"))
        assert reader.response().body == b"ok"
    assert "clean-up after GET /after-fails failed" in caplog.text


def test_stream_first_bytes_go_with_the_head_then_after_runs(app: App, port: int) -> None:
    with connect(port) as sock:
        sock.sendall(get("/stream-first-after"))
        answer = Reader(sock).response()
    assert answer.body == b"data: one\n\ndata: two\n\n"
    assert answer.raw.endswith(b"\r\n\r\nb\r\ndata: one\n\n\r\nb\r\ndata: two\n\n\r\n0\r\n\r\n")
    assert app.after_ran.wait(WAIT)
    assert app.after_calls == 1


def test_after_runs_when_the_client_leaves_mid_stream(app: App, port: int) -> None:
    sock = connect(port)
    sock.sendall(get("/stream-forever-after"))
    Reader(sock).until(b"data: first\n\n")
    sock.close()
    assert app.stream_closed.wait(WAIT)
    assert app.after_ran.wait(WAIT), "the clean-up must run, shielded, when the client left"
    assert app.after_calls == 1


def test_stream_failure_midway_closes_the_connection(app: App, port: int) -> None:
    with connect(port) as sock:
        sock.sendall(get("/stream-fails"))
        reader = Reader(sock)
        reader.until(b"\r\n\r\n")
        rest = reader.to_eof()
    assert rest == b"f\r\ndata: partial\n\n\r\n", "no terminating chunk: the truncation shows"
    assert app.stream_closed.wait(WAIT)


# --- errors ---------------------------------------------------------------------------------


def test_handler_error_response_passes_through(port: int) -> None:
    with connect(port) as sock:
        sock.sendall(get("/missing"))
        answer = Reader(sock).response()
    assert answer.status == 404
    assert error_of(answer)["code"] == "unknown_url"


def test_gateway_error_becomes_its_status_body_and_headers(port: int) -> None:
    with connect(port) as sock:
        sock.sendall(get("/gateway-error"))
        answer = Reader(sock).response()
    assert answer.status == 429
    assert answer.headers["retry-after"] == "7"
    assert error_of(answer) == {
        "message": "slow down",
        "type": "rate_limit_error",
        "param": None,
        "code": "rate_limited",
    }


def test_unexpected_exception_is_500_and_the_connection_keeps_working(
    port: int, caplog: pytest.LogCaptureFixture
) -> None:
    with connect(port) as sock:
        reader = Reader(sock)
        sock.sendall(get("/boom"))
        answer = reader.response()
        sock.sendall(get("/plain"))
        after = reader.response()
    assert answer.status == 500
    error = error_of(answer)
    assert error["type"] == "server_error"
    assert error["message"] == "internal error in sluicegate; see the gateway log"
    assert b"secret-token" not in answer.raw
    assert after.body == b"ok"
    assert "RuntimeError" in caplog.text, "the traceback goes to the log"


def test_unsendable_handler_headers_are_500(port: int) -> None:
    with connect(port) as sock:
        sock.sendall(get("/bad-header"))
        answer = Reader(sock).response()
    assert answer.status == 500
    assert b"line" not in answer.raw


def test_head_gets_headers_only(app: App, port: int) -> None:
    with connect(port) as sock:
        reader = Reader(sock)
        sock.sendall(b"HEAD /stream HTTP/1.1\r\nhost: t\r\n\r\n")
        head = reader.until(b"\r\n\r\n")
        sock.sendall(get("/plain"))
        after = reader.response()
    assert head.startswith(b"HTTP/1.1 200 ")
    assert after.raw.startswith(b"HTTP/1.1 200 "), "no body bytes between the two answers"
    assert after.body == b"ok"


def test_malformed_request_line_is_400_and_close(port: int) -> None:
    with connect(port) as sock:
        sock.sendall(b"THIS IS NOT HTTP\r\n\r\n")
        reader = Reader(sock)
        answer = reader.response()
        assert reader.closed()
    assert answer.status == 400
    assert error_of(answer)["type"] == "invalid_request_error"
    assert answer.headers["connection"] == "close"
    with connect(port) as sock:  # one bad connection does not affect the next
        sock.sendall(get("/plain"))
        assert Reader(sock).response().body == b"ok"


def test_declared_body_over_the_limit_is_413_before_reading_it(app: App) -> None:
    with running(app, max_body_bytes=100) as port, connect(port) as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nhost: t\r\ncontent-length: 101\r\n\r\n")
        reader = Reader(sock)
        answer = reader.response()
        assert reader.closed()
    assert answer.status == 413
    error = error_of(answer)
    assert error["code"] == "request_too_large"
    assert "100 bytes" in error["message"]


def test_chunked_body_over_the_limit_is_413_as_it_arrives(app: App) -> None:
    with running(app, max_body_bytes=100) as port, connect(port) as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nhost: t\r\ntransfer-encoding: chunked\r\n\r\n")
        sock.sendall(b"3c\r\n" + b"x" * 60 + b"\r\n" + b"3c\r\n" + b"x" * 60 + b"\r\n")
        answer = Reader(sock).response()
    assert answer.status == 413
    assert error_of(answer)["code"] == "request_too_large"


def test_20_mib_body_with_the_default_limit_is_413_without_sending_it(port: int) -> None:
    with connect(port) as sock:
        size = 20 * 1024 * 1024
        sock.sendall(f"POST /echo HTTP/1.1\r\nhost: t\r\ncontent-length: {size}\r\n\r\n".encode())
        sock.sendall(b"{" * 65536)  # part of the body is on its way; the answer must still arrive
        answer = Reader(sock).response()
    assert answer.status == 413
    assert str(16 * 1024 * 1024) in error_of(answer)["message"]


def test_slow_headers_are_408(app: App) -> None:
    with running(app, header_timeout=0.3) as port, connect(port) as sock:
        sock.sendall(b"GET /plain HTTP/1.1\r\nhost: t\r\n")  # the blank line never comes
        started = time.monotonic()
        reader = Reader(sock)
        answer = reader.response()  # blocks until the server gives up on us
        assert reader.closed()
    assert time.monotonic() - started >= 0.25
    assert answer.status == 408
    assert error_of(answer)["code"] == "request_timeout"


def test_slow_body_is_408(app: App) -> None:
    with running(app, body_timeout=0.3) as port, connect(port) as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nhost: t\r\ncontent-length: 10\r\n\r\nabc")
        answer = Reader(sock).response()
    assert answer.status == 408
    assert "body" in error_of(answer)["message"]


def test_idle_connection_without_a_request_is_closed_silently(app: App) -> None:
    with running(app, header_timeout=0.3) as port, connect(port) as sock:
        assert Reader(sock).closed()


def test_idle_keep_alive_connection_is_closed_silently(app: App) -> None:
    with running(app, keepalive_timeout=0.3) as port, connect(port) as sock:
        reader = Reader(sock)
        sock.sendall(get("/plain"))
        assert reader.response().body == b"ok"
        assert reader.closed()
        assert reader.buffer == b""


@pytest.mark.parametrize("split", [False, True], ids=["one-write", "many-writes"])
def test_oversized_headers_are_431(app: App, split: bool) -> None:
    raw = get("/plain", b"x-big: " + b"a" * 4000 + b"\r\n")
    with running(app, max_header_bytes=1024) as port, connect(port) as sock:
        if split:
            for i in range(0, len(raw), 500):
                sock.sendall(raw[i : i + 500])
        else:
            sock.sendall(raw)
        answer = Reader(sock).response()
    assert answer.status == 431
    error = error_of(answer)
    assert error["code"] == "request_header_fields_too_large"
    assert "1024 bytes" in error["message"]


def test_expect_100_continue(port: int) -> None:
    with connect(port) as sock:
        sock.sendall(
            b"POST /echo HTTP/1.1\r\nhost: t\r\nexpect: 100-continue\r\ncontent-length: 4\r\n\r\n"
        )
        reader = Reader(sock)
        interim = reader.until(b"\r\n\r\n")
        sock.sendall(b"body")
        answer = reader.response()
    assert interim.startswith(b"HTTP/1.1 100 ")
    assert orjson.loads(answer.body)["body"] == "body"


def test_expect_100_continue_with_a_body_over_the_limit_gets_413_instead(app: App) -> None:
    with running(app, max_body_bytes=10) as port, connect(port) as sock:
        sock.sendall(
            b"POST /echo HTTP/1.1\r\nhost: t\r\nexpect: 100-continue\r\ncontent-length: 11\r\n\r\n"
        )
        answer = Reader(sock).response()
    assert answer.status == 413
    assert b"100 Continue" not in answer.raw


# --- disconnects and shutdown ---------------------------------------------------------------


def test_client_disconnect_mid_stream_closes_the_stream_at_once(app: App, port: int) -> None:
    sock = connect(port)
    sock.sendall(get("/stream-forever"))
    reader = Reader(sock)
    reader.until(b"data: first\n\n")
    assert not app.stream_closed.is_set()
    sock.close()
    assert app.stream_closed.wait(WAIT), "the stream iterator was not closed on disconnect"


def test_client_disconnect_cancels_a_running_handler(app: App, port: int) -> None:
    sock = connect(port)
    sock.sendall(get("/hang"))
    sock.shutdown(socket.SHUT_WR)  # EOF while the handler works
    assert app.handler_cancelled.wait(WAIT)
    sock.close()


@dataclass
class Control:
    port: int
    token: trio.lowlevel.TrioToken
    shutdown: trio.Event
    stopped: threading.Event

    def trigger(self, event: trio.Event | None) -> None:
        assert event is not None
        trio.from_thread.run_sync(event.set, trio_token=self.token)


async def serve_with_shutdown(
    app: App, limits: ServerLimits, task_status: trio.TaskStatus[Control]
) -> None:
    shutdown = trio.Event()
    stopped = threading.Event()
    async with trio.open_nursery() as nursery:
        port = await nursery.start(
            partial(serve, app, "127.0.0.1", 0, limits=limits, shutdown=shutdown)
        )
        task_status.started(Control(port, trio.lowlevel.current_trio_token(), shutdown, stopped))
    stopped.set()
    await trio.sleep_forever()  # the harness ends us


def test_graceful_shutdown_lets_streams_finish_and_refuses_new_work(app: App) -> None:
    start = partial(serve_with_shutdown, app, ServerLimits(shutdown_grace=WAIT))
    with TrioThread(start) as control:
        busy, idle = connect(control.port), connect(control.port)
        idle_reader = Reader(idle)
        idle.sendall(get("/plain"))
        assert idle_reader.response().body == b"ok"
        busy.sendall(get("/stream-until-released"))
        busy_reader = Reader(busy)
        busy_reader.until(b"data: before\n\n")

        control.trigger(control.shutdown)
        assert idle_reader.closed(), "idle keep-alive connections close at once"
        with pytest.raises(ConnectionRefusedError):
            connect(control.port).close()
        assert not control.stopped.is_set(), "an in-flight stream holds the shutdown"

        control.trigger(app.release)
        rest = busy_reader.until(b"0\r\n\r\n")
        assert busy_reader.closed()
        assert control.stopped.wait(WAIT)
        busy.close()
        idle.close()
    assert b"data: after\n\n" in rest


def test_shutdown_grace_cancels_what_is_left(app: App) -> None:
    start = partial(serve_with_shutdown, app, ServerLimits(shutdown_grace=0.3))
    with TrioThread(start) as control, connect(control.port) as sock:
        sock.sendall(get("/stream-forever"))
        Reader(sock).until(b"data: first\n\n")
        control.trigger(control.shutdown)
        assert control.stopped.wait(WAIT)
        assert app.stream_closed.is_set()


def test_accepted_sockets_have_tcp_nodelay(app: App) -> None:
    seen: list[int] = []

    async def accept_one(task_status: trio.TaskStatus[int]) -> None:
        listener = (await trio.open_tcp_listeners(0, host="127.0.0.1"))[0]
        task_status.started(listener.socket.getsockname()[1])
        async with listener:
            stream = await listener.accept()
        # Switch Nagle back on so the assertion sees what serve_connection does, not trio.
        stream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, False)

        async def handler(request: Request) -> Response:
            seen.append(stream.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            return Response(200, b"ok")

        await serve_connection(stream, handler, ServerLimits(), ConnectionTracker())
        await trio.sleep_forever()

    with TrioThread(accept_one) as port, connect(port) as sock:
        sock.sendall(get("/"))
        assert Reader(sock).response().body == b"ok"
    assert seen and seen[0] != 0


# --- the sans-IO core -----------------------------------------------------------------------

FIXTURE = (
    b"POST /v1/chat/completions?a=b HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
    b"X-Test: v\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
)


def parse_all(pieces: list[bytes], limits: ServerLimits | None = None) -> tuple:
    protocol = ServerProtocol(limits or ServerLimits())
    events: list = []
    for piece in pieces:
        protocol.receive(piece)
        while True:
            event = protocol.next_event()
            if event in (h11.NEED_DATA, h11.PAUSED):
                break
            events.append(event)
    request = events[0]
    body = b"".join(e.data for e in events if isinstance(e, h11.Data))
    return request.method, request.target, list(request.headers), body, type(events[-1])


def test_protocol_parses_the_same_at_every_split() -> None:
    whole = parse_all([FIXTURE])
    assert whole[0] == b"POST"
    assert whole[3] == b"hello world"
    assert whole[4] is h11.EndOfMessage
    for i in range(1, len(FIXTURE)):
        assert parse_all([FIXTURE[:i], FIXTURE[i:]]) == whole, f"split at {i}"


def test_protocol_limits_are_exact() -> None:
    head = FIXTURE.index(b"\r\n\r\n") + 4
    parse_all([FIXTURE], ServerLimits(max_header_bytes=head, max_body_bytes=11))
    with pytest.raises(RequestRejected) as too_big:
        parse_all([FIXTURE], ServerLimits(max_header_bytes=head - 1))
    assert too_big.value.status == 431
    with pytest.raises(RequestRejected) as too_long:
        parse_all([FIXTURE], ServerLimits(max_body_bytes=10))
    assert too_long.value.status == 413
