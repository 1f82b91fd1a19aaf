"""HTTP11Transport: one upstream connection as an httpx transport, against scripted servers.

Every server here is a trio listener on 127.0.0.1 inside the test's own ``trio.run``, bounded by
a deadline and cancelled when the test's client is done. The client and the server share one
trio run, so ``wait_all_tasks_blocked`` says deterministically that the client has read
everything sent so far and waits for more — which is how the split tests put a read boundary
at every byte.
"""

from __future__ import annotations

import gzip
import ssl
from collections.abc import Awaitable, Callable
from functools import partial

import h11
import httpx
import pytest
import trio
import trio.testing
import trustme

from sluicegate.http11 import HTTP11Transport, ResponseBody

Answer = Callable[[trio.abc.Stream], Awaitable[bool]]  # True: keep the connection open


def send(raw: bytes) -> Answer:
    async def answer(stream: trio.abc.Stream) -> bool:
        await stream.send_all(raw)
        return True

    return answer


def send_split(raw: bytes, at: int) -> Answer:
    """``raw`` in two writes, the client having read the first before the second is sent."""

    async def answer(stream: trio.abc.Stream) -> bool:
        await stream.send_all(raw[:at])
        await trio.testing.wait_all_tasks_blocked()
        await stream.send_all(raw[at:])
        return True

    return answer


def send_then_close(raw: bytes) -> Answer:
    async def answer(stream: trio.abc.Stream) -> bool:
        if raw:
            await stream.send_all(raw)
        return False

    return answer


async def hang(stream: trio.abc.Stream) -> bool:
    await trio.sleep_forever()
    return False


class Upstream:
    """Answers each request with the next entry of ``answers``; records what it saw."""

    def __init__(self, answers: list[Answer]) -> None:
        self.answers = list(answers)
        self.connections = 0
        self.requests: list[tuple[h11.Request, bytes]] = []

    async def handle(self, stream: trio.abc.Stream) -> None:
        self.connections += 1
        leftover = b""
        try:
            while True:
                protocol = h11.Connection(h11.SERVER)
                if leftover:  # (b"" would tell h11 the client closed)
                    protocol.receive_data(leftover)
                head: h11.Request | None = None
                body = b""
                while True:
                    event = protocol.next_event()
                    if event is h11.NEED_DATA:
                        protocol.receive_data(await stream.receive_some(65536))
                    elif isinstance(event, h11.Request):
                        head = event
                    elif isinstance(event, h11.Data):
                        body += event.data
                    elif isinstance(event, h11.EndOfMessage):
                        break
                    else:  # the client closed the connection
                        return
                assert head is not None
                self.requests.append((head, body))
                leftover = protocol.trailing_data[0]
                if not await self.answers.pop(0)(stream):
                    return
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        finally:
            await trio.aclose_forcefully(stream)


def exchange(
    answers: list[Answer],
    client: Callable[[int], Awaitable[None]],
    *,
    server_tls: ssl.SSLContext | None = None,
) -> Upstream:
    """Serve ``answers`` on 127.0.0.1 while ``client(port)`` runs; at most 10 s."""
    upstream = Upstream(answers)

    async def main() -> None:
        with trio.fail_after(10):
            async with trio.open_nursery() as nursery:
                if server_tls is None:
                    serve = partial(trio.serve_tcp, upstream.handle, 0, host="127.0.0.1")
                else:
                    serve = partial(
                        trio.serve_ssl_over_tcp, upstream.handle, 0, server_tls, host="127.0.0.1"
                    )
                listeners = await nursery.start(serve)
                socket = getattr(listeners[0], "transport_listener", listeners[0]).socket
                await client(socket.getsockname()[1])
                nursery.cancel_scope.cancel()

    trio.run(main)
    return upstream


def post(port: int, body: bytes = b'{"model":"m"}', *, host: str = "127.0.0.1", **timeout: float):
    scheme = "https" if host == "localhost" else "http"
    return httpx.Request(
        "POST",
        f"{scheme}://{host}:{port}/v1/chat?x=1",
        headers={"content-type": "application/json"},
        content=body,
        extensions={"timeout": timeout} if timeout else {},
    )


async def read_all(response: httpx.Response) -> bytes:
    try:
        return b"".join([chunk async for chunk in response.stream])
    finally:
        await response.aclose()


JSON_ANSWER = (
    b'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 11\r\n\r\n{"ok":true}'
)
# An SSE answer as OpenAI-compatible servers send it: chunked, the last event, then the end.
SSE_ANSWER = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
    b'1f\r\ndata: {"choices":["h\\u00e9"]}\n\n\r\n'
    b"e\r\ndata: [DONE]\n\n\r\n"
    b"0\r\n\r\n"
)
SSE_BODY = b'data: {"choices":["h\\u00e9"]}\n\ndata: [DONE]\n\n'


def test_keep_alive_carries_every_request_on_one_connection() -> None:
    bodies: list[bytes] = []

    async def client(port: int) -> None:
        transport = HTTP11Transport()
        for _ in range(3):
            response = await transport.handle_async_request(post(port))
            assert response.status_code == 200
            assert response.headers["content-type"] == "application/json"
            bodies.append(await read_all(response))
        await transport.aclose()

    upstream = exchange([send(JSON_ANSWER)] * 3, client)
    assert bodies == [b'{"ok":true}'] * 3
    assert upstream.connections == 1
    head, body = upstream.requests[0]
    assert (head.method, head.target) == (b"POST", b"/v1/chat?x=1")
    assert (b"host", b"127.0.0.1:" + str(upstream_port(head)).encode()) in head.headers
    assert (b"content-length", b"13") in head.headers
    assert body == b'{"model":"m"}'


def upstream_port(head: h11.Request) -> int:
    host = dict(head.headers)[b"host"]
    return int(host.rsplit(b":", 1)[1])


def test_a_chunked_answer_split_at_every_byte_reads_the_same() -> None:
    positions = range(1, len(SSE_ANSWER))
    bodies: list[bytes] = []

    async def client(port: int) -> None:
        transport = HTTP11Transport()
        for _ in positions:
            response = await transport.handle_async_request(post(port))
            bodies.append(await read_all(response))
        await transport.aclose()

    upstream = exchange([send_split(SSE_ANSWER, at) for at in positions], client)
    assert bodies == [SSE_BODY] * len(positions)
    assert upstream.connections == 1


def test_a_content_length_answer_split_at_every_byte_reads_the_same() -> None:
    positions = range(1, len(JSON_ANSWER))
    statuses: list[tuple[int, bytes]] = []

    async def client(port: int) -> None:
        transport = HTTP11Transport()
        for _ in positions:
            response = await transport.handle_async_request(post(port))
            statuses.append((response.status_code, await read_all(response)))
        await transport.aclose()

    upstream = exchange([send_split(JSON_ANSWER, at) for at in positions], client)
    assert statuses == [(200, b'{"ok":true}')] * len(positions)
    assert upstream.connections == 1


def test_connection_close_answer_makes_the_next_request_reconnect() -> None:
    closing = JSON_ANSWER.replace(b"\r\n\r\n", b"\r\nconnection: close\r\n\r\n", 1)
    bodies: list[bytes] = []

    async def client(port: int) -> None:
        transport = HTTP11Transport()
        for _ in range(2):
            bodies.append(await read_all(await transport.handle_async_request(post(port))))
        await transport.aclose()

    upstream = exchange([send_then_close(closing), send(JSON_ANSWER)], client)
    assert bodies == [b'{"ok":true}'] * 2
    assert upstream.connections == 2


def test_an_idle_connection_the_server_closed_is_not_reused() -> None:
    bodies: list[bytes] = []

    async def client(port: int) -> None:
        transport = HTTP11Transport()
        bodies.append(await read_all(await transport.handle_async_request(post(port))))
        await trio.testing.wait_all_tasks_blocked()  # the server's close has arrived
        bodies.append(await read_all(await transport.handle_async_request(post(port))))
        await transport.aclose()

    # No "connection: close" header: the server just goes away after answering.
    upstream = exchange([send_then_close(JSON_ANSWER), send(JSON_ANSWER)], client)
    assert bodies == [b'{"ok":true}'] * 2
    assert upstream.connections == 2


def test_a_truncated_body_is_a_protocol_error_and_the_connection_is_dropped() -> None:
    truncated = b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n" + b"x" * 10
    seen: list[object] = []

    async def client(port: int) -> None:
        transport = HTTP11Transport()
        response = await transport.handle_async_request(post(port))
        with pytest.raises(httpx.RemoteProtocolError):
            await read_all(response)
        seen.append(await read_all(await transport.handle_async_request(post(port))))

    upstream = exchange([send_then_close(truncated), send(JSON_ANSWER)], client)
    assert seen == [b'{"ok":true}']
    assert upstream.connections == 2


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (b"garbage\r\n\r\n", "illegal status line"),
        (b"", "Server disconnected without sending a response"),
        (b"HTTP/1.1 200 OK\r\ncontent-length: x\r\n\r\n", "bad Content-Length"),
    ],
)
def test_garbage_or_no_answer_is_a_protocol_error(answer: bytes, message: str) -> None:
    errors: list[str] = []

    async def client(port: int) -> None:
        transport = HTTP11Transport()
        with pytest.raises(httpx.RemoteProtocolError) as caught:
            await transport.handle_async_request(post(port))
        errors.append(str(caught.value))
        # The transport stays usable: the next request gets a fresh connection.
        assert (await transport.handle_async_request(post(port))).status_code == 200

    exchange([send_then_close(answer), send(JSON_ANSWER)], client)
    assert message.lower() in errors[0].lower()


def test_nothing_listening_is_a_connect_error() -> None:
    async def main() -> None:
        listener = trio.socket.socket()
        await listener.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        port = listener.getsockname()[1]
        try:
            with pytest.raises(httpx.ConnectError):
                await HTTP11Transport().handle_async_request(post(port))
        finally:
            listener.close()

    trio.run(main)


def test_a_server_that_never_answers_hits_the_read_timeout() -> None:
    async def client(port: int) -> None:
        transport = HTTP11Transport()
        with pytest.raises(httpx.ReadTimeout):
            await transport.handle_async_request(post(port, read=0.2))

    exchange([hang], client)


def test_an_abandoned_body_drops_the_connection_and_a_cancelled_read_too() -> None:
    bodies: list[bytes] = []

    async def client(port: int) -> None:
        transport = HTTP11Transport()
        response = await transport.handle_async_request(post(port))
        assert await anext(aiter(response.stream)) == b'data: {"choices":["h\\u00e9"]}\n\n'
        await response.aclose()  # the rest is never read
        response = await transport.handle_async_request(post(port))
        with trio.move_on_after(0.1):
            await read_all(response)  # the server never finishes this one
        bodies.append(await read_all(await transport.handle_async_request(post(port))))

    first_event = SSE_ANSWER[: SSE_ANSWER.index(b"e\r\ndata: [DONE]")]
    upstream = exchange([send_then_close(SSE_ANSWER), send(first_event), send(JSON_ANSWER)], client)
    assert bodies == [b'{"ok":true}']
    assert upstream.connections == 3


def test_drain_after_the_last_event_keeps_the_connection() -> None:
    results: list[bool] = []

    async def client(port: int) -> None:
        transport = HTTP11Transport()
        for _ in range(2):
            response = await transport.handle_async_request(post(port))
            stream = response.stream
            assert isinstance(stream, ResponseBody)
            async for chunk in stream:
                if b"[DONE]" in chunk:
                    break
            results.append(await stream.drain(limit=1024))
            await response.aclose()

    # The terminating chunk comes in a write of its own, after the last event.
    at = SSE_ANSWER.index(b"0\r\n\r\n")
    upstream = exchange([send_split(SSE_ANSWER, at)] * 2, client)
    assert results == [True, True]
    assert upstream.connections == 1


def test_drain_gives_up_past_its_limit() -> None:
    results: list[bool] = []
    long_answer = b"HTTP/1.1 200 OK\r\ncontent-length: 5000\r\n\r\n" + b"x" * 5000

    async def client(port: int) -> None:
        transport = HTTP11Transport()
        response = await transport.handle_async_request(post(port))
        stream = response.stream
        assert isinstance(stream, ResponseBody)
        results.append(await stream.drain(limit=100))
        assert (await transport.handle_async_request(post(port))).status_code == 200

    upstream = exchange([send(long_answer), send(JSON_ANSWER)], client)
    assert results == [False]
    assert upstream.connections == 2


def test_an_informational_answer_is_skipped() -> None:
    answer = b"HTTP/1.1 100 Continue\r\n\r\n" + JSON_ANSWER
    bodies: list[tuple[int, bytes]] = []

    async def client(port: int) -> None:
        response = await HTTP11Transport().handle_async_request(post(port))
        bodies.append((response.status_code, await read_all(response)))

    exchange([send(answer)], client)
    assert bodies == [(200, b'{"ok":true}')]


def test_one_exchange_at_a_time() -> None:
    async def client(port: int) -> None:
        transport = HTTP11Transport()
        response = await transport.handle_async_request(post(port))
        with pytest.raises(RuntimeError, match="one exchange at a time"):
            await transport.handle_async_request(post(port))
        assert await read_all(response) == b'{"ok":true}'

    exchange([send(JSON_ANSWER)], client)


def test_through_an_async_client_with_a_compressed_answer() -> None:
    """The catalog calls go through ``httpx.AsyncClient``: it decodes what the transport hands
    it as raw bytes."""
    packed = gzip.compress(b'{"data":[]}')
    answer = (
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-encoding: gzip\r\n"
        b"content-length: " + str(len(packed)).encode() + b"\r\n\r\n" + packed
    )
    seen: list[object] = []

    async def client(port: int) -> None:
        async with httpx.AsyncClient(transport=HTTP11Transport()) as http:
            response = await http.get(f"http://127.0.0.1:{port}/v1/models")
            seen.append(response.json())

    exchange([send(answer)], client)
    assert seen == [{"data": []}]


def test_tls_with_one_handshake_for_several_requests() -> None:
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    bodies: list[bytes] = []

    async def client(port: int) -> None:
        transport = HTTP11Transport(client_context)
        for _ in range(2):
            response = await transport.handle_async_request(post(port, host="localhost"))
            bodies.append(await read_all(response))
        await transport.aclose()

    upstream = exchange([send(JSON_ANSWER)] * 2, client, server_tls=server_context)
    assert bodies == [b'{"ok":true}'] * 2
    assert upstream.connections == 1


def test_tls_with_an_untrusted_certificate_is_a_connect_error() -> None:
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    trustme.CA().issue_cert("localhost").configure_cert(server_context)
    errors: list[str] = []

    async def client(port: int) -> None:
        with pytest.raises(httpx.ConnectError) as caught:
            # The default context trusts the public roots, not this test CA.
            await HTTP11Transport().handle_async_request(post(port, host="localhost"))
        errors.append(str(caught.value))

    exchange([], client, server_tls=server_context)
    assert "certificate" in errors[0].lower()
