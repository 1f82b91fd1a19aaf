"""``serve --workers N``: N gateway processes sharing one port through SO_REUSEPORT.

The supervisor (this module) only starts the workers, forwards SIGTERM/SIGINT to them, and
waits. Each worker is a plain ``sluicegate serve`` process that binds the port with
SO_REUSEPORT; the kernel spreads new connections between them. A worker that dies on its own
stops the whole group with exit code 1 — restarting is left to the service manager (systemd's
``Restart=on-failure``), which sees the failure instead of a silently shrinking pool.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Mapping

log = logging.getLogger("sluicegate.workers")

MAX_WORKERS = 64
# Workers run the same code as this process, also from the zipapp (whose packages live on
# sys.path only after its bootstrap), so they get this process's sys.path explicitly.
_WORKER_BOOT = "import sys; from sluicegate.cli import main; sys.exit(main())"


def reserve_port(host: str, port: int) -> tuple[socket.socket, int]:
    """A bound (not listening) SO_REUSEPORT socket holding ``port``, or a free one if it is 0.

    Held until the workers listen, so nothing else takes an ephemeral port in between; a
    socket that does not listen receives no connections.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock, sock.getsockname()[1]


def _die_with_parent() -> None:
    """In a worker, before exec: get SIGTERM if the supervisor dies (Linux), so a supervisor
    killed outright (OOM killer, SIGKILL) leaves no orphaned workers holding the port."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def run_workers(
    count: int,
    worker_args: list[str],
    reservation: socket.socket,
    extra_env: Mapping[str, str] | None = None,
) -> int:
    """Start ``count`` workers running ``sluicegate <worker_args>`` with ``extra_env`` added to
    the environment; returns the exit code."""
    env = dict(os.environ) | dict(extra_env or {})
    env["SLUICEGATE_WORKERS"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    command = [sys.executable, "-c", _WORKER_BOOT, *worker_args]
    children: list[subprocess.Popen[bytes]] = []
    stopping = False

    def forward(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        for _ in range(count):
            # Own process group: a terminal's Ctrl-C reaches only the supervisor, which forwards
            # it once (a second signal would mean "stop at once" to a worker).
            children.append(
                subprocess.Popen(command, env=env, process_group=0, preexec_fn=_die_with_parent)
            )
        log.info("started %d workers: pids %s", count, ", ".join(str(c.pid) for c in children))
        reservation.close()
        failed = False
        running = {c.pid: c for c in children}
        while running:
            pid, status = os.waitpid(-1, 0)
            child = running.pop(pid, None)
            if child is None:
                continue
            code = os.waitstatus_to_exitcode(status)
            child.returncode = code
            if not stopping:
                log.error("worker %d exited (code %d) on its own; stopping the others", pid, code)
                failed = True
                forward(signal.SIGTERM, None)
            elif code != 0:
                failed = True
        return 1 if failed else 0
    finally:
        reservation.close()
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
