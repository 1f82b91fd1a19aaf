"""``serve --workers N``: several processes on one port (SO_REUSEPORT), stopped together."""

from __future__ import annotations

import os
import signal
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
        for _ in range(20):  # fresh connections, spread by the kernel over both workers
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
