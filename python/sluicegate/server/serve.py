"""Listening, accepting and graceful shutdown: one trio task per connection."""

from __future__ import annotations

import errno
import logging
import socket

import trio

from sluicegate.server.connection import ConnectionTracker, serve_connection
from sluicegate.server.limits import ServerLimits
from sluicegate.server.types import Handler

log = logging.getLogger("sluicegate.server")

# Out of file descriptors or memory: back off and retry instead of spinning or dying.
_CAPACITY_ERRNOS = {errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS}
_ACCEPT_BACKOFF_SECONDS = 0.1


async def serve(
    handler: Handler,
    host: str,
    port: int,
    *,
    limits: ServerLimits = ServerLimits(),  # noqa: B008 - frozen, so sharing it is safe
    shutdown: trio.Event | None = None,
    reuse_port: bool = False,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``handler`` over HTTP/1.1 on ``host:port`` (0 = any free port).

    Reports the bound port through ``task_status``. Runs until cancelled, or until ``shutdown``
    is set: then it stops accepting at once, closes idle keep-alive connections, lets in-flight
    responses finish within ``limits.shutdown_grace`` seconds, cancels the rest and returns.
    ``reuse_port`` sets SO_REUSEPORT, so several worker processes can listen on one port and
    the kernel spreads new connections between them.
    """
    listeners = await open_listeners(host, port, reuse_port=reuse_port)
    bound_port = listeners[0].socket.getsockname()[1]
    tracker = ConnectionTracker()
    try:
        async with trio.open_nursery() as connections:
            async with trio.open_nursery() as acceptors:
                for listener in listeners:
                    acceptors.start_soon(
                        _accept_loop, listener, connections, handler, limits, tracker
                    )
                task_status.started(bound_port)
                if shutdown is None:
                    await trio.sleep_forever()
                await shutdown.wait()
                acceptors.cancel_scope.cancel()
            await _close_all(listeners)  # refuse new connections from now on
            tracker.drain()
            grace = limits.shutdown_grace
            log.info("shutting down: in-flight requests have %gs to finish", grace)
            with trio.move_on_after(grace) as waiting:
                await tracker.wait_all_closed()
            if waiting.cancelled_caught:
                log.warning("shutdown grace of %gs is over; cancelling what is left", grace)
            connections.cancel_scope.cancel()
    finally:
        with trio.CancelScope(shield=True):
            await _close_all(listeners)


async def open_listeners(host: str, port: int, *, reuse_port: bool) -> list[trio.SocketListener]:
    """Listening sockets for every address ``host`` resolves to (all interfaces if empty)."""
    infos = await trio.socket.getaddrinfo(
        host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )
    listeners: list[trio.SocketListener] = []
    try:
        for family, type_, proto, _, address in infos:
            sock = trio.socket.socket(family, type_, proto)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if reuse_port:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                if family == socket.AF_INET6:
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                await sock.bind(address)
                sock.listen(socket.SOMAXCONN)
            except BaseException:
                sock.close()
                raise
            listeners.append(trio.SocketListener(sock))
            if port == 0:
                # An ephemeral port would differ per address family: serve the first one only.
                break
    except BaseException:
        await _close_all(listeners)
        raise
    return listeners


async def _close_all(listeners: list[trio.SocketListener]) -> None:
    for listener in listeners:
        await listener.aclose()


async def _accept_loop(
    listener: trio.SocketListener,
    connections: trio.Nursery,
    handler: Handler,
    limits: ServerLimits,
    tracker: ConnectionTracker,
) -> None:
    while True:
        try:
            stream = await listener.accept()
        except OSError as exc:
            if exc.errno not in _CAPACITY_ERRNOS:
                raise
            log.error("cannot accept connections (%s); raise the open-file limit", exc)
            await trio.sleep(_ACCEPT_BACKOFF_SECONDS)
            continue
        connections.start_soon(serve_connection, stream, handler, limits, tracker)
