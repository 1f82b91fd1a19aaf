"""The floor of the project's stack: the least work any trio + h11 gateway does per request.

A relay with nothing but the two HTTP/1.1 state machines and the sockets: each request read with
h11, sent upstream unchanged over a keep-alive connection with h11, and the answer relayed back
chunk by chunk. No JSON, routing, auth, transcoding, timeouts, disconnect watching or logging —
nothing a real gateway can leave out of its requests is here, and nothing a gateway needs
beyond the fixed stack (trio + h11 for the server, an h11-based upstream client) is either.
``make bench`` measures it beside sluicegate at concurrency 1: what it adds is the part of
sluicegate's added latency that no amount of work inside sluicegate can remove.

    python floor_proxy.py LISTEN_PORT UPSTREAM_PORT
"""

from __future__ import annotations

import socket
import sys
from functools import partial

import h11
import trio

READ_SIZE = 64 * 1024
RELAYED_HEADERS = {b"content-type", b"content-length", b"transfer-encoding"}


async def next_event(protocol: h11.Connection, stream: trio.SocketStream) -> object:
    while True:
        event = protocol.next_event()
        if event is not h11.NEED_DATA:
            return event
        protocol.receive_data(await stream.receive_some(READ_SIZE))


async def relay(client: trio.SocketStream, upstream_port: int) -> None:
    client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, True)
    server = h11.Connection(h11.SERVER)
    upstream = await trio.open_tcp_stream("127.0.0.1", upstream_port)
    to_upstream = h11.Connection(h11.CLIENT)
    try:
        while True:
            request = await next_event(server, client)
            if not isinstance(request, h11.Request):
                return  # the client closed the connection
            body = b""
            while not isinstance(event := await next_event(server, client), h11.EndOfMessage):
                body += event.data  # type: ignore[attr-defined]
            head = h11.Request(
                method=request.method,
                target=request.target,
                headers=[(b"host", b"127.0.0.1")]
                + [(k, v) for k, v in request.headers if k != b"host"],
            )
            await upstream.send_all(
                to_upstream.send(head)
                + to_upstream.send(h11.Data(data=body))
                + to_upstream.send(h11.EndOfMessage())
            )
            pending = b""
            while True:
                event = await next_event(to_upstream, upstream)
                if isinstance(event, h11.Response):
                    headers = [(k, v) for k, v in event.headers if k in RELAYED_HEADERS]
                    answer = h11.Response(status_code=event.status_code, headers=headers)
                    pending = server.send(answer)
                elif isinstance(event, h11.Data):
                    await client.send_all(pending + server.send(h11.Data(data=event.data)))
                    pending = b""
                elif isinstance(event, h11.EndOfMessage):
                    await client.send_all(pending + server.send(h11.EndOfMessage()))
                    break
            if server.our_state is not h11.DONE or to_upstream.our_state is not h11.DONE:
                return  # "Connection: close" on either side (health checks send it)
            server.start_next_cycle()
            to_upstream.start_next_cycle()
    except (trio.BrokenResourceError, h11.ProtocolError):
        pass  # a client gone or broken: its connection ends, the relay goes on
    finally:
        await upstream.aclose()


async def serve(
    listen_port: int,
    upstream_port: int,
    *,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Relay 127.0.0.1:``listen_port`` (0: any free port, reported through ``task_status``)
    to the server at 127.0.0.1:``upstream_port``."""

    async def handler(stream: trio.SocketStream) -> None:
        await relay(stream, upstream_port)

    async with trio.open_nursery() as nursery:
        serve_tcp = partial(trio.serve_tcp, handler, listen_port, host="127.0.0.1")
        listeners = await nursery.start(serve_tcp)
        task_status.started(listeners[0].socket.getsockname()[1])


if __name__ == "__main__":
    trio.run(serve, int(sys.argv[1]), int(sys.argv[2]))
