"""The ``sluicegate`` command as users run it: real subprocesses, real signals, real ports."""

from __future__ import annotations

import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import orjson
import pytest

from sluicegate import __version__
from tests.conftest import Simulator

PROVIDER_VARS = re.compile(
    r"^(OPENAI|DEEPSEEK|NVIDIA|OPENROUTER|VLLM|DEEPINFRA|TGI|OLLAMA|ANTHROPIC|HF|SLUICEGATE)_"
)


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without any provider configuration, and without the local-Ollama probe
    (a developer's own Ollama must not change what the tests see)."""
    env = {k: v for k, v in os.environ.items() if not PROVIDER_VARS.match(k)}
    env["SLUICEGATE_LOCAL_OLLAMA"] = "off"
    env.update(extra)
    return env


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sluicegate", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env or clean_env(),
    )


class Running:
    """A sluicegate subprocess whose stderr is read line by line in a thread."""

    def __init__(self, argv: list[str], env: dict[str, str], cwd: str | None = None):
        self.proc = subprocess.Popen(
            argv,
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.stdout: queue.Queue[str] = queue.Queue()
        for stream, sink in ((self.proc.stderr, self.lines), (self.proc.stdout, self.stdout)):
            threading.Thread(target=self._pump, args=(stream, sink), daemon=True).start()

    @staticmethod
    def _pump(stream, sink: queue.Queue[str]) -> None:
        for line in stream:
            sink.put(line)

    def wait_for(
        self, pattern: str, sink: queue.Queue[str] | None = None, timeout: float = 30
    ) -> re.Match:
        seen = []
        while True:
            try:
                line = (sink or self.lines).get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"no line matching {pattern!r}; saw {seen}") from None
            seen.append(line)
            if m := re.search(pattern, line):
                return m


@contextmanager
def running(*args: str, env: dict[str, str] | None = None) -> Iterator[Running]:
    r = Running([sys.executable, "-m", "sluicegate", *args], env or clean_env())
    try:
        yield r
    finally:
        if r.proc.poll() is None:
            r.proc.kill()
        r.proc.wait(timeout=10)


def test_version() -> None:
    result = run_cli("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"sluicegate {__version__}"


@pytest.mark.parametrize("verb", ["serve", "simulate", "demo", "run"])
def test_help_on_every_verb(verb: str) -> None:
    result = run_cli(verb, "--help")
    assert result.returncode == 0
    assert "--port" in result.stdout and "--host" in result.stdout


def test_bad_config_names_key_and_line(tmp_path) -> None:
    config = tmp_path / "gw.toml"
    config.write_text(
        '[server]\nport = 4000\n\n[[providers]]\nname = "x"\nkind = "nope"\nbase_url = "http://h/v1"\n'
    )
    result = run_cli("serve", "--config", str(config))
    assert result.returncode == 2
    assert "kind" in result.stderr
    assert "line 6" in result.stderr
    assert str(config) in result.stderr


def test_a_configured_chat_template_that_cannot_be_used_stops_start_up(tmp_path) -> None:
    config = tmp_path / "gw.toml"
    config.write_text(
        '[[providers]]\nname = "di"\nkind = "deepinfra"\nbase_url = "http://127.0.0.1:9"\n'
        '[providers.model_settings."acme/m"]\nchat_template = "missing.jinja"\n'
    )
    result = run_cli("serve", "--config", str(config))
    assert result.returncode == 2
    assert "acme/m" in result.stderr and str(tmp_path / "missing.jinja") in result.stderr
    (tmp_path / "broken.jinja").write_text("{% if %}")
    config.write_text(config.read_text().replace("missing.jinja", "broken.jinja"))
    result = run_cli("serve", "--config", str(config))
    assert result.returncode == 2
    assert 'chat template "broken.jinja" has a syntax error on line 1' in result.stderr
    bad_hub = clean_env(HF_ENDPOINT="ftp://mirror")
    result = run_cli("serve", "--config", str(config), env=bad_hub)
    assert result.returncode == 2 and "HF_ENDPOINT" in result.stderr


def test_missing_config_file() -> None:
    result = run_cli("serve", "--config", "/nonexistent/sluicegate.toml")
    assert result.returncode == 2
    assert "not found" in result.stderr


def test_refuses_public_address_without_keys() -> None:
    result = run_cli("serve", "--host", "0.0.0.0", "--port", "0")
    assert result.returncode == 2
    assert "--insecure" in result.stderr and "SLUICEGATE_API_KEYS" in result.stderr


def test_port_in_use_is_a_clear_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        result = run_cli("serve", "--port", str(port))
    assert result.returncode == 1
    assert "already in use" in result.stderr


def test_serve_from_env_and_graceful_sigterm(simulator: Simulator) -> None:
    env = clean_env(VLLM_BASE_URL=f"{simulator.base_url}/v1", SLUICEGATE_API_KEYS="k1")
    with running("serve", "--port", "0", env=env) as gw:
        port = int(gw.wait_for(r"listening on http://127\.0\.0\.1:(\d+)").group(1))
        base = f"http://127.0.0.1:{port}"
        headers = {"authorization": "Bearer k1"}
        body = {
            "model": "vllm/sim-small",
            "stream": True,
            "messages": [{"role": "user", "content": "x #sim tokens=20 gap_ms=25"}],
        }
        with (
            httpx.Client(timeout=30) as c,
            c.stream("POST", f"{base}/v1/chat/completions", json=body, headers=headers) as response,
        ):
            chunks = response.iter_bytes()
            received = next(chunks)
            gw.proc.send_signal(signal.SIGTERM)  # mid-stream: the stream must still finish
            gw.wait_for(r"SIGTERM: stopping")
            for chunk in chunks:
                received += chunk
        assert received.rstrip().endswith(b"data: [DONE]")
        assert b'"finish_reason":"stop"' in received
        assert gw.proc.wait(timeout=20) == 0
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{base}/healthz", timeout=2)


def test_demo_prints_a_working_curl_line() -> None:
    with running("demo", "--port", "0") as demo:
        line = demo.wait_for(r"^curl .*", sink=demo.stdout).group(0)
        url = re.search(r"(http://\S+/v1/chat/completions)", line).group(1)
        body = re.search(r"-d '(.*)'$", line.strip()).group(1)
        answer = httpx.post(
            url, content=body, headers={"content-type": "application/json"}, timeout=30
        )
        assert answer.status_code == 200
        frames = [f for f in answer.content.split(b"\n\n") if f]
        assert frames[-1] == b"data: [DONE]"
        first = orjson.loads(frames[0].removeprefix(b"data: "))
        assert first["model"] == "sim/sim-small"
        # The simulator is also wired as a DeepInfra-native provider.
        native = "sim-native/meta-llama/Meta-Llama-3.1-8B-Instruct"
        listed = httpx.get(url.replace("chat/completions", "models"), timeout=30).json()
        assert native in {m["id"] for m in listed["data"]}
        body = {"model": native, "messages": [{"role": "user", "content": "Hi #sim tokens=2"}]}
        answer = httpx.post(url, json=body, timeout=30).json()
        assert answer["choices"][0]["message"]["content"] == " The quick"
        demo.proc.send_signal(signal.SIGINT)
        assert demo.proc.wait(timeout=20) == 0


def test_run_without_providers_starts_the_demo() -> None:
    with running("run", "--port", "0") as r:
        r.wait_for(r"starting the demo")
        r.wait_for(r"^curl ", sink=r.stdout)
        r.proc.send_signal(signal.SIGTERM)
        assert r.proc.wait(timeout=20) == 0
