"""``serve --workers N``: several processes on one port (SO_REUSEPORT), stopped together."""

from __future__ import annotations

import os
import signal
import socket
from contextlib import AbstractContextManager
from pathlib import Path

import httpx
import pytest

from tests.conftest import Simulator
from tests.harness import wait_until
from tests.test_cli import Running, clean_env, run_cli, running


def start_workers(simulator: Simulator, count: int) -> AbstractContextManager[Running]:
    env = clean_env(VLLM_BASE_URL=f"{simulator.base_url}/v1")
    return running("serve", "--port", "0", "--workers", str(count), env=env)


def listening_pids(supervisor: Running, count: int) -> tuple[int, set[int]]:
    ports, pids = set(), set()
    for _ in range(count):
        match = supervisor.wait_for(r"listening on http://127\.0\.0\.1:(\d+)/v1 \(pid (\d+)\)")
        ports.add(int(match.group(1)))
        pids.add(int(match.group(2)))
    assert len(ports) == 1, "every worker listens on the same port"
    return ports.pop(), pids


def test_two_workers_share_one_port_and_stop_together(simulator: Simulator) -> None:
    with start_workers(simulator, 2) as supervisor:
        port, pids = listening_pids(supervisor, 2)
        assert len(pids) == 2 and supervisor.proc.pid not in pids
        # Fresh connections, held open: the kernel hashes each to one worker, so with 16 of
        # them both workers get some unless the odds (2 in 65536) say otherwise.
        held = [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in range(16)]
        try:
            for conn in held:  # one answered request each, so every accept has happened
                assert _health_status(conn) == 200
            counts = {pid: _connections_held(pid, port) for pid in pids}
            assert sum(counts.values()) == len(held), counts  # each connection, exactly once
            assert all(counts.values()), f"a worker got no connection: {counts}"
        finally:
            for conn in held:
                conn.close()
        answer = httpx.post(
            f"http://127.0.0.1:{port}/v1/chat/completions",
            json={
                "model": "vllm/sim-small",
                "messages": [{"role": "user", "content": "x #sim tokens=2"}],
            },
            timeout=30,
        )
        assert answer.status_code == 200
        supervisor.proc.send_signal(signal.SIGTERM)
        assert supervisor.proc.wait(timeout=30) == 0
        for pid in pids:
            with pytest.raises(ProcessLookupError):
                os.kill(pid, 0)


def _health_status(conn: socket.socket) -> int:
    conn.sendall(b"GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
    head = b""
    while b"\r\n\r\n" not in head:
        data = conn.recv(4096)
        assert data, "the worker closed the connection"
        head += data
    return int(head.split(b" ", 2)[1])


def _connections_held(pid: int, port: int) -> int:
    """Established TCP connections on local ``port`` whose socket is open in process ``pid``."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue  # closed since the listing
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    held = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local_port = int(fields[1].rsplit(":", 1)[1], 16)
        if local_port == port and fields[3] == "01" and fields[9] in inodes:  # 01 = ESTABLISHED
            held += 1
    return held


def test_a_dying_worker_stops_the_group_with_an_error(simulator: Simulator) -> None:
    with start_workers(simulator, 2) as supervisor:
        _, pids = listening_pids(supervisor, 2)
        victim, survivor = sorted(pids)
        os.kill(victim, signal.SIGKILL)
        assert supervisor.proc.wait(timeout=30) == 1
        supervisor.wait_for(rf"worker {victim} exited .* on its own")
        with pytest.raises(ProcessLookupError):
            os.kill(survivor, 0)


@pytest.mark.parametrize("value", ["0", "65", "many"])
def test_bad_worker_counts_are_usage_errors(value: str) -> None:
    result = run_cli("serve", "--port", "0", "--workers", value)
    assert result.returncode == 2
    if value != "many":
        assert "from 1 to 64" in result.stderr


def test_workers_from_the_environment_are_checked_too() -> None:
    result = run_cli("serve", "--port", "0", env=clean_env(SLUICEGATE_WORKERS="zero"))
    assert result.returncode == 2
    assert "SLUICEGATE_WORKERS" in result.stderr


def test_workers_die_with_a_killed_supervisor(simulator: Simulator) -> None:
    with start_workers(simulator, 2) as supervisor:
        _, pids = listening_pids(supervisor, 2)
        supervisor.proc.kill()
        supervisor.proc.wait(timeout=10)
        for pid in pids:
            assert wait_until(lambda p=pid: not _alive(p), timeout=20), f"worker {pid} orphaned"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is gone for our purposes (init, its parent now, reaps it soon)
        return "State:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
