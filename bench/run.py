"""``make bench``: sluicegate (1 and 2 workers), LiteLLM and direct-to-simulator, in one run.

Starts the simulator and every target on 127.0.0.1, drives them with the closed-loop load
generator in load.py, and writes bench/RESULTS.md (with the core microbenchmark's table),
bench/latency.png and bench/out/results.json. Two routes to the same simulator: the
OpenAI-compatible one (every scenario) and Ollama native, ``/api/chat`` (c=1 latency and TTFT).
Every process is stopped at the end, and every scenario is bounded in count and time. See
bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import datetime
import json
import math
import os
import platform
import resource
import signal
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from load import Result, closed_loop

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
OUT = BENCH / "out"
GATEWAY_PYTHON = ROOT / ".venv" / "bin" / "python"
LITELLM = BENCH / ".venv" / "bin" / "litellm"
PY_SPY = BENCH / ".venv" / "bin" / "py-spy"
ZIPAPP = ROOT / "dist" / "sluicegate.pyz"
PATH = "/v1/chat/completions"
OLLAMA_PATH = "/api/chat"  # the simulator's Ollama native chat, NDJSON when streaming
# What clients ask each gateway for on the Ollama route; LiteLLM's name maps to ollama_chat/.
SLUICEGATE_OLLAMA_MODEL = "ollama/sim-small"
LITELLM_OLLAMA_MODEL = "ollama-sim-small"
GIT_DESCRIBE = ["describe", "--always", "--dirty"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Target:
    name: str
    port: int
    model: str
    health: str = "/healthz"
    path: str = PATH  # where requests go: OpenAI's chat completions, or Ollama's /api/chat
    proc: subprocess.Popen[bytes] | None = None
    results: dict[str, object] = field(default_factory=dict)
    unavailable: str = ""  # why the target could not be measured ("" = it was)
    c1_only: bool = False  # measured in the c=1 rounds only (the floor relay)

    def body(self, directive: str, *, stream: bool) -> bytes:
        # The same document serves both routes: Ollama's /api/chat reads model, messages and an
        # explicit stream flag (it streams when the flag is left out) just as OpenAI's does.
        return json.dumps(
            {
                "model": self.model,
                "stream": stream,
                "messages": [{"role": "user", "content": f"Benchmark. #sim {directive}"}],
            }
        ).encode()


class BudgetExceeded(Exception):
    """The whole run went over --budget-seconds."""


def wait_healthy(
    port: int, path: str, deadline: float, proc: subprocess.Popen[bytes] | None = None
) -> float:
    """Seconds until ``GET path`` answers 200 (polled every 5 ms); fails early if ``proc`` exits."""
    started = time.perf_counter()
    while time.perf_counter() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"exited with code {proc.returncode} before it was healthy")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(f"GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n".encode())
                if s.recv(64).startswith(b"HTTP/1.1 200"):
                    return time.perf_counter() - started
        except OSError:
            pass
        time.sleep(0.005)
    raise TimeoutError(f"nothing healthy on port {port}{path}")


def rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` and all its descendants, in MB."""
    total = 0
    pending = [pid]
    while pending:
        current = pending.pop()
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
            for task in Path(f"/proc/{current}/task").iterdir():
                children = (task / "children").read_text().split()
                pending.extend(int(c) for c in children)
    return total / 1024


class Processes:
    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, argv: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        log = open(OUT / f"{Path(argv[0]).name}-{len(self.procs)}.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen(
            argv, env={**os.environ, **(env or {})}, stdout=log, stderr=subprocess.STDOUT
        )
        self.procs.append(proc)
        return proc

    def stop_all(self) -> None:
        """Idempotent: called from the ``finally`` of the run and again at exit."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def scenario_latency(
    t: Target, count: int, seconds: float, warmup: int
) -> tuple[list[float], int]:
    """Seconds per non-stream request at c=1, and how many requests failed."""
    body = t.body("tokens=16", stream=False)
    await closed_loop(t.port, t.path, body, concurrency=1, stream=False, count=warmup)
    results = await closed_loop(
        t.port, t.path, body, concurrency=1, stream=False, count=count, seconds=seconds
    )
    latencies = [r.latency for r in results if r.ok]
    return latencies, len(results) - len(latencies)


async def scenario_ttft(
    t: Target, count: int, seconds: float, warmup: int
) -> tuple[list[float], int]:
    """Seconds to the first content at c=1, and how many streams failed or had no content."""
    body = t.body("tokens=16", stream=True)
    await closed_loop(t.port, t.path, body, concurrency=1, stream=True, count=warmup)
    results = await closed_loop(
        t.port, t.path, body, concurrency=1, stream=True, count=count, seconds=seconds
    )
    ttfts = [r.first_content for r in results if r.ok and r.first_content is not None]
    return ttfts, len(results) - len(ttfts)


async def scenario_gaps(t: Target) -> list[float]:
    body = t.body("tokens=100 gap_ms=10", stream=True)
    runs = await closed_loop(t.port, t.path, body, concurrency=1, stream=True, count=10)
    return [g for r in runs for g in r.gaps]


async def scenario_throughput(t: Target, seconds: float) -> tuple[float, int]:
    body = t.body("tokens=16 headers_ms=20", stream=False)
    started = time.perf_counter()
    results = await closed_loop(t.port, t.path, body, concurrency=64, stream=False, seconds=seconds)
    elapsed = time.perf_counter() - started
    return sum(r.ok for r in results) / elapsed, sum(not r.ok for r in results)


async def scenario_streams(t: Target, levels: list[int]) -> tuple[int, list[dict]]:
    """The most concurrent slow streams held with no gap over 1 s and no error, and per level
    tried: errors, stalled streams and the longest gap seen (to tell a near miss from a rout)."""
    held = 0
    detail = []
    for level in levels:
        body = t.body("tokens=20 gap_ms=100", stream=True)
        results: list[Result] = await closed_loop(
            t.port, t.path, body, concurrency=level, stream=True, count=level, seconds=30
        )
        stalled = [r for r in results if not r.ok or any(g > 1.0 for g in r.gaps)]
        detail.append(
            {
                "level": level,
                "completed": len(results),
                "errors": sum(not r.ok for r in results),
                "stalled": len(stalled),
                "max_gap_ms": max((g for r in results for g in r.gaps), default=0.0) * 1e3,
            }
        )
        if stalled or len(results) < level:
            break
        held = level
    return held, detail


def cold_start(argv: list[str], port: int, path: str, env: dict[str, str], runs: int) -> float:
    times = []
    for _ in range(runs):
        proc = subprocess.Popen(
            argv, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            times.append(wait_healthy(port, path, time.perf_counter() + 120, proc))
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    return statistics.median(times)


def versions() -> dict[str, str]:
    def out(argv: list[str]) -> str:
        try:
            return subprocess.run(argv, capture_output=True, text=True, timeout=60).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            return "unavailable"

    probe = "import sluicegate,trio,h11,httpx;print(sluicegate.__version__,trio.__version__,h11.__version__,httpx.__version__)"  # noqa: E501
    sg, trio_v, h11_v, httpx_v = (out([str(GATEWAY_PYTHON), "-c", probe]).split() + ["?"] * 4)[:4]
    litellm_v = out(
        [
            str(BENCH / ".venv/bin/python"),
            "-c",
            "import importlib.metadata as m;print(m.version('litellm'))",
        ]
    )
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        "?",
    )
    mem = next(
        (
            line.split()[1]
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        ),
        "0",
    )
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{cpu}, {os.cpu_count()} cores, {int(mem) // 1024 // 1024} GiB, "
        f"Linux {platform.release()}",
        "python": platform.python_version(),
        # "-dirty": uncommitted changes in the tree, so the sha alone does not say what ran.
        "sluicegate": f"{sg} (git {out(['git', '-C', str(ROOT), *GIT_DESCRIBE])})",
        "trio/h11/httpx": f"{trio_v} / {h11_v} / {httpx_v}",
        "litellm": litellm_v,
    }


def litellm_files() -> tuple[Path, Path]:
    """LiteLLM's proxy config (the simulator through its OpenAI route) and a logging config
    that silences uvicorn's access log, which sluicegate does not write either."""
    config = OUT / "litellm.yaml"
    log_config = OUT / "litellm-logging.json"
    log_config.write_text(
        json.dumps(
            {
                "version": 1,
                "disable_existing_loggers": False,
                "handlers": {"stderr": {"class": "logging.StreamHandler"}},
                "loggers": {
                    name: {"handlers": ["stderr"], "level": "WARNING", "propagate": False}
                    for name in ("uvicorn", "uvicorn.error", "uvicorn.access")
                },
            }
        )
    )
    return config, log_config


def litellm_argv(port: int) -> list[str]:
    config, log_config = OUT / "litellm.yaml", OUT / "litellm-logging.json"
    return [
        str(LITELLM),
        "--config",
        str(config),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--telemetry",
        "False",
        "--log_config",
        str(log_config),
    ]


# No DATABASE_URL: LiteLLM runs without its database; these switch off what is left of its
# telemetry, spend/error logging and message logging, so it does only the proxying.
LITELLM_ENV = {
    "LITELLM_LOG": "ERROR",
    "LITELLM_TELEMETRY": "False",
    "LITELLM_DONT_SHOW_FEEDBACK_BOX": "True",
}


def write_litellm_config(sim_root: str, *, ollama: bool) -> None:
    """The simulator through its OpenAI route (``{sim_root}/v1``) and, with ``ollama``, through
    Ollama's native one: LiteLLM's ``ollama_chat/`` provider posts to ``{sim_root}/api/chat``."""
    config, _ = litellm_files()
    ollama_entry = (
        f"  - model_name: {LITELLM_OLLAMA_MODEL}\n"
        "    litellm_params:\n"
        "      model: ollama_chat/sim-small\n"
        f"      api_base: {sim_root}\n"
    )
    config.write_text(
        "model_list:\n"
        "  - model_name: sim-small\n"
        "    litellm_params:\n"
        "      model: openai/sim-small\n"
        f"      api_base: {sim_root}/v1\n"
        "      api_key: dummy\n"
        f"{ollama_entry if ollama else ''}"
        "litellm_settings:\n"
        "  telemetry: false\n"
        "  drop_params: true\n"
        "  turn_off_message_logging: true\n"
        "  callbacks: []\n"
        "general_settings:\n"
        "  disable_spend_logs: true\n"
        "  disable_error_logs: true\n"
    )


def gateway_argv(port: int, workers: int) -> list[str]:
    argv = [str(GATEWAY_PYTHON), "-m", "sluicegate", "serve", "--port", str(port)]
    return [*argv, "--workers", str(workers)] if workers > 1 else argv


ROUNDS = 5


@dataclass(frozen=True)
class C1Plan:
    """The c=1 measurements of one route: requests over all ROUNDS, each round's time limit,
    and the warm-up before the first round (20 requests before each later one)."""

    latency: int
    ttft: int
    latency_seconds: float
    ttft_seconds: float
    first_warmup: int

    def quick(self) -> C1Plan:
        """A tenth of the samples: enough to check the harness, not to read p99s."""
        return C1Plan(self.latency // 10, self.ttft // 10, 4, 4, self.first_warmup)


# bench/floor_proxy.py: h11 both ways over trio sockets and nothing else, the least any gateway
# on the project's fixed stack does per request.
FLOOR = "trio+h11 floor"

OPENAI_C1 = C1Plan(3000, 1000, 20, 15, 200)
# Fewer samples on the Ollama route: LiteLLM's ollama_chat/ takes ~20-25 ms a request here (its
# OpenAI route ~14), and the whole `make bench` has to stay within ~8 minutes. 1000 requests
# and 500 streams still leave ten and five samples above the p99.
OLLAMA_C1 = C1Plan(1000, 500, 8, 6, 50)


def measure_c1(routes: list[tuple[str, list[Target], C1Plan]], quick: bool) -> None:
    """Latency and TTFT at concurrency 1, in ROUNDS rounds that take every route's targets in
    turn.

    On a small shared machine a burst of outside activity lasts seconds; interleaving spreads
    it over every target instead of charging it to whichever one was running, so the "added"
    differences stay fair, within a route and between the routes.
    """
    for _, targets, _ in routes:
        for t in targets:
            t.results.update(latency=[], ttft=[], c1_errors=0)
    for round_ in range(ROUNDS):
        print(f"[bench] c=1 latency and TTFT, round {round_ + 1}/{ROUNDS}", file=sys.stderr)
        for route, targets, plan in routes:
            started = time.perf_counter()
            p = plan.quick() if quick else plan
            warmup = p.first_warmup if round_ == 0 else 20
            for t in targets:
                latencies, failed = asyncio.run(
                    scenario_latency(t, p.latency // ROUNDS, p.latency_seconds, warmup)
                )
                ttfts, failed_streams = asyncio.run(
                    scenario_ttft(t, p.ttft // ROUNDS, p.ttft_seconds, warmup)
                )
                t.results["latency"] += latencies
                t.results["ttft"] += ttfts
                t.results["c1_errors"] += failed + failed_streams
            # What each route costs the run's budget, to size its counts.
            elapsed = time.perf_counter() - started
            print(f"[bench]   {route} route: {elapsed:.1f} s", file=sys.stderr)


def measure(t: Target, quick: bool) -> None:
    """The remaining load scenarios against one target; results land in ``t.results``."""
    print(f"[bench] {t.name}: gap per token", file=sys.stderr)
    t.results["gaps"] = asyncio.run(scenario_gaps(t))
    print(f"[bench] {t.name}: throughput", file=sys.stderr)
    t.results["throughput"], t.results["errors"] = asyncio.run(
        scenario_throughput(t, 3 if quick else 15)
    )
    levels = [64, 128] if quick else [64, 128, 256, 512, 1024]
    print(f"[bench] {t.name}: concurrent streams", file=sys.stderr)
    t.results["streams"], t.results["streams_detail"] = asyncio.run(scenario_streams(t, levels))
    if t.proc:
        t.results["rss_loaded_mb"] = rss_mb(t.proc.pid)


def profile(t: Target, seconds: int) -> None:
    """py-spy flame graphs of the single-worker gateway under c=1 and c=64 load, into bench/out.

    Taken after the measured runs, so the sampler's overhead never shows in the figures.
    """
    if not PY_SPY.exists() or t.proc is None:
        print("[bench] py-spy missing or no gateway: no profile", file=sys.stderr)
        return
    for label, directive, concurrency in (
        ("c1", "tokens=16", 1),
        ("c64", "tokens=16 headers_ms=20", 64),
    ):
        svg = OUT / f"profile-{label}.svg"
        print(f"[bench] {t.name}: py-spy {label} -> {svg}", file=sys.stderr)
        spy = subprocess.Popen(
            [
                *(str(PY_SPY), "record", "--pid", str(t.proc.pid), "--rate", "1000"),
                *("--duration", str(seconds), "--output", str(svg)),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        body = t.body(directive, stream=False)
        asyncio.run(
            closed_loop(
                t.port, t.path, body, concurrency=concurrency, stream=False, seconds=seconds + 1
            )
        )
        try:
            spy.wait(timeout=60)
        except subprocess.TimeoutExpired:
            spy.kill()


def ollama_route(targets: list[Target]) -> list[Target]:
    """The Ollama native route's targets, one per target of the OpenAI route, on the same
    processes: the load generator posting to the simulator's /api/chat, and each gateway
    asked for its Ollama model (clients still speak OpenAI to the gateways)."""
    direct, *gateways = targets
    route = [Target(direct.name, direct.port, direct.model, path=OLLAMA_PATH)]
    for t in gateways:
        if t.c1_only:
            continue
        model = LITELLM_OLLAMA_MODEL if t.name == "LiteLLM" else SLUICEGATE_OLLAMA_MODEL
        route.append(Target(t.name, t.port, model, health=t.health, unavailable=t.unavailable))
    return route


def on_alarm(_signum: int, _frame: object) -> None:
    raise BudgetExceeded("the run exceeded --budget-seconds; every process is being stopped")


def on_term(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds through the finally that stops the processes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs, to check the harness")
    parser.add_argument("--skip-litellm", action="store_true", help="measure without LiteLLM")
    parser.add_argument(
        "--skip-ollama", action="store_true", help="measure without the Ollama native route"
    )
    parser.add_argument(
        "--profile", action="store_true", help="py-spy SVGs of the gateway in bench/out"
    )
    parser.add_argument(
        "--render-only",
        action="store_true",
        help="rewrite RESULTS.md from bench/out/results.json (after editing NOTES.md)",
    )
    parser.add_argument(
        "--budget-seconds",
        type=int,
        default=None,
        help="stop everything after this long (default 900; 300 with --quick)",
    )
    args = parser.parse_args()
    if args.render_only:
        render(json.loads((OUT / "results.json").read_text()))
        return 0
    q = args.quick
    # Anything else busy on the machine shows in the p99s: say so, and record it.
    loadavg_before = " / ".join(Path("/proc/loadavg").read_text().split()[:3])
    if float(loadavg_before.split()[0]) > 0.5:
        print(f"[bench] warning: load average {loadavg_before} before the run", file=sys.stderr)
    OUT.mkdir(parents=True, exist_ok=True)
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # 1024 streams need 2k+ sockets

    procs = Processes()
    atexit.register(procs.stop_all)  # also when main() dies in a way the finally misses
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(args.budget_seconds or (300 if q else 900))
    litellm_wanted = not args.skip_litellm and LITELLM.exists()
    if not args.skip_litellm and not litellm_wanted:
        print(f"[bench] {LITELLM} missing: LiteLLM not measured", file=sys.stderr)

    sim_port = free_port()
    sim_root = f"http://127.0.0.1:{sim_port}"
    quiet = {"SLUICEGATE_LOG_LEVEL": "warning"}
    # Each gateway process serves both routes: the simulator as an OpenAI-compatible provider
    # (vllm) and as an Ollama one, so the Ollama route costs no extra start-up or memory.
    gateway_env = {**quiet, "VLLM_BASE_URL": f"{sim_root}/v1"}
    if not args.skip_ollama:
        gateway_env["OLLAMA_BASE_URL"] = sim_root
    targets = [Target("direct", sim_port, "sim-small")]
    ollama_targets: list[Target] = []
    cold: dict[str, float] = {}
    try:
        sim = procs.start(
            [str(GATEWAY_PYTHON), "-m", "sluicegate", "simulate", "--port", str(sim_port)], quiet
        )
        wait_healthy(sim_port, "/healthz", time.perf_counter() + 60, sim)
        for name, workers in (("sluicegate 1w", 1), ("sluicegate 2w", 2)):
            port = free_port()
            t = Target(name, port, "vllm/sim-small")
            t.proc = procs.start(gateway_argv(port, workers), gateway_env)
            targets.append(t)
        if litellm_wanted:
            write_litellm_config(sim_root, ollama=not args.skip_ollama)
            port = free_port()
            t = Target("LiteLLM", port, "sim-small", health="/health/liveliness")
            t.proc = procs.start(litellm_argv(port), LITELLM_ENV)
            targets.append(t)
        port = free_port()
        floor = Target(FLOOR, port, "sim-small", c1_only=True)
        floor.proc = procs.start(
            [str(GATEWAY_PYTHON), str(BENCH / "floor_proxy.py"), str(port), str(sim_port)], quiet
        )
        targets.append(floor)
        for t in targets[1:]:
            try:
                wait_healthy(t.port, t.health, time.perf_counter() + 180, t.proc)
            except (RuntimeError, TimeoutError) as exc:
                t.unavailable = f"not available ({exc}; see the logs in bench/out)"
                print(f"[bench] {t.name}: {t.unavailable}", file=sys.stderr)
        live = [t for t in targets if not t.unavailable]
        for t in live:
            if t.proc:
                t.results["rss_idle_mb"] = rss_mb(t.proc.pid)
        routes = [("OpenAI-compatible", live, OPENAI_C1)]
        if not args.skip_ollama:
            ollama_targets = ollama_route(targets)
            live_ollama = [t for t in ollama_targets if not t.unavailable]
            routes.append(("Ollama native", live_ollama, OLLAMA_C1))
        measure_c1(routes, q)
        for t in live:
            if not t.c1_only:
                measure(t, q)
        if args.profile and not targets[1].unavailable:
            profile(targets[1], 5 if q else 10)
        procs.stop_all()

        port = free_port()
        runs = 3 if q else 7
        print("[bench] cold starts", file=sys.stderr)
        cold["sluicegate (venv)"] = cold_start(gateway_argv(port, 1), port, "/healthz", quiet, runs)
        if ZIPAPP.exists():
            env = {**quiet, "SHIV_ROOT": str(OUT / "shiv")}
            python = getattr(sys, "_base_executable", sys.executable)
            argv = [python, str(ZIPAPP), "serve", "--port", str(port)]
            cold_start(argv, port, "/healthz", env, 1)  # the first run unpacks
            cold["sluicegate (zipapp)"] = cold_start(argv, port, "/healthz", env, runs)
        if litellm_wanted:
            cold["LiteLLM"] = cold_start(
                litellm_argv(port), port, "/health/liveliness", LITELLM_ENV, 1 if q else 3
            )

        print("[bench] core microbenchmark", file=sys.stderr)
        core = subprocess.run(
            [str(GATEWAY_PYTHON), str(BENCH / "core_bench.py"), "--seconds", "1" if q else "3"],
            capture_output=True,
            text=True,
            check=True,
            timeout=300,
        ).stdout
    except BudgetExceeded as exc:
        print(f"[bench] {exc}", file=sys.stderr)
        return 2
    finally:
        signal.alarm(0)
        procs.stop_all()
    meta = {**versions(), "loadavg_before": loadavg_before}
    command = "make bench-quick" if q else "make bench"
    write_results(targets, ollama_targets, cold, core, meta, command)
    plot(targets, ollama_targets)
    print(f"[bench] wrote {BENCH / 'RESULTS.md'} and {BENCH / 'latency.png'}", file=sys.stderr)
    return 0


NAN = float("nan")


def summarise(targets: list[Target]) -> dict[str, dict[str, float]]:
    """Per target: the figures of the tables; NaN where a target was not measured."""
    direct = targets[0].results
    direct_lat, direct_ttft = direct.get("latency", []), direct.get("ttft", [])
    direct_gaps = direct.get("gaps", [])
    rows: dict[str, dict[str, float]] = {}
    for t in targets:
        r = t.results
        lat, ttft, gaps = r.get("latency", []), r.get("ttft", []), r.get("gaps", [])
        rows[t.name] = {
            "p50_ms": pct(lat, 0.5) * 1e3,
            "p99_ms": pct(lat, 0.99) * 1e3,
            "added_p50_ms": (pct(lat, 0.5) - pct(direct_lat, 0.5)) * 1e3,
            "added_p99_ms": (pct(lat, 0.99) - pct(direct_lat, 0.99)) * 1e3,
            "ttft_p50_ms": pct(ttft, 0.5) * 1e3,
            "ttft_p99_ms": pct(ttft, 0.99) * 1e3,
            "added_ttft_p50_ms": (pct(ttft, 0.5) - pct(direct_ttft, 0.5)) * 1e3,
            "added_ttft_p99_ms": (pct(ttft, 0.99) - pct(direct_ttft, 0.99)) * 1e3,
            # Medians: one scheduler hiccup in a 10 ms gap would swing a mean of ~1000 gaps.
            "gap_p50_ms": pct(gaps, 0.5) * 1e3,
            "added_gap_ms": (pct(gaps, 0.5) - pct(direct_gaps, 0.5)) * 1e3,
            "throughput_rps": r.get("throughput", NAN),
            "errors": r.get("errors", NAN),
            "streams": r.get("streams", NAN),
            "streams_detail": r.get("streams_detail", []),
            "rss_idle_mb": r.get("rss_idle_mb", NAN),
            "rss_loaded_mb": r.get("rss_loaded_mb", NAN),
            "c1_errors": r.get("c1_errors", NAN),
            "latency_n": len(lat),
            "ttft_n": len(ttft),
        }
    return rows


def write_results(
    targets: list[Target],
    ollama_targets: list[Target],
    cold: dict[str, float],
    core: str,
    meta: dict[str, str],
    command: str,
) -> None:
    """bench/out/results.json (every figure, unrounded), then RESULTS.md rendered from it.

    ``ollama_targets`` is empty when the Ollama native route was not measured."""
    doc = {
        "meta": meta,
        "command": command,
        "rows": summarise(targets),
        "unavailable": {t.name: t.unavailable for t in targets if t.unavailable},
        "cold": cold,
        "core": core,
    }
    if ollama_targets:
        doc["ollama"] = {
            "rows": summarise(ollama_targets),
            "unavailable": {t.name: t.unavailable for t in ollama_targets if t.unavailable},
        }
    (OUT / "results.json").write_text(json.dumps(doc, indent=2))
    render(doc)


def cell(value: float, fmt: str) -> str:
    return "n/a" if math.isnan(value) else format(value, fmt)


def metric_table(rows: dict[str, dict], metrics: list[tuple[str, str, str]]) -> list[str]:
    """A Markdown table with a column per target and a row per (label, key in rows, format)."""
    names = list(rows)
    lines = ["| metric | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for label, key, fmt in metrics:
        lines.append(f"| {label} | " + " | ".join(cell(rows[n][key], fmt) for n in names) + " |")
    return lines


GATEWAY_METRICS = [
    ("latency p50, c=1, non-stream (ms)", "p50_ms", ".3f"),
    ("latency p99 (ms)", "p99_ms", ".3f"),
    ("**added p50 (ms)**", "added_p50_ms", ".3f"),
    ("**added p99 (ms)**", "added_p99_ms", ".3f"),
    ("TTFT p50, c=1, stream (ms)", "ttft_p50_ms", ".3f"),
    ("TTFT p99 (ms)", "ttft_p99_ms", ".3f"),
    ("**added TTFT p99 (ms)**", "added_ttft_p99_ms", ".3f"),
    ("gap per token p50, `gap_ms=10` (ms)", "gap_p50_ms", ".3f"),
    ("added gap per token p50 (ms)", "added_gap_ms", ".3f"),
    ("throughput, c=64, 20 ms upstream (req/s)", "throughput_rps", ".0f"),
    ("errors during throughput run", "errors", ".0f"),
    ("concurrent slow streams held without stalls", "streams", ".0f"),
    ("RSS idle (MB, all processes)", "rss_idle_mb", ".1f"),
    ("RSS after load (MB)", "rss_loaded_mb", ".1f"),
]
OLLAMA_METRICS = [
    ("latency p50, c=1, non-stream (ms)", "p50_ms", ".3f"),
    ("latency p99 (ms)", "p99_ms", ".3f"),
    ("**added p50 (ms)**", "added_p50_ms", ".3f"),
    ("**added p99 (ms)**", "added_p99_ms", ".3f"),
    ("TTFT p50, c=1, stream (ms)", "ttft_p50_ms", ".3f"),
    ("TTFT p99 (ms)", "ttft_p99_ms", ".3f"),
    ("**added TTFT p50 (ms)**", "added_ttft_p50_ms", ".3f"),
    ("**added TTFT p99 (ms)**", "added_ttft_p99_ms", ".3f"),
]


def c1_failure_notes(rows: dict[str, dict]) -> list[str]:
    """A note per target whose c=1 requests failed (they are left out of its percentiles)."""
    return [
        f"- {name}: {r['c1_errors']:.0f} requests failed at c=1 (left out of its percentiles)"
        for name, r in rows.items()
        if r.get("c1_errors", 0) > 0
    ]


def ollama_section(ollama: dict) -> list[str]:
    """RESULTS.md's table for the Ollama native route (c=1 latency and TTFT only)."""
    rows = ollama["rows"]
    direct = next(iter(rows.values()))
    lines = [
        "## Gateway, Ollama native route",
        "",
        "The same processes, load generator and interleaved c=1 rounds as above, through Ollama's "
        "native chat API. direct = the load generator posting to the simulator's `/api/chat` "
        '(`"stream": false`, or an NDJSON stream whose first line with content is the first '
        "token); sluicegate = clients speaking OpenAI to it, model `ollama/sim-small`, its "
        "`ollama` provider at the simulator; LiteLLM = `ollama_chat/sim-small` with `api_base` "
        'the simulator. "Added" = target minus this direct. '
        f"{direct.get('latency_n', NAN):.0f} non-stream requests and "
        f"{direct.get('ttft_n', NAN):.0f} streams per target.",
        "",
        *metric_table(rows, OLLAMA_METRICS),
    ]
    notes = [f"- {name}: {why}" for name, why in ollama["unavailable"].items()]
    notes += c1_failure_notes(rows)
    return [*lines, "", *notes, ""] if notes else [*lines, ""]


def render(doc: dict) -> None:
    """Write bench/RESULTS.md from a results.json document (and bench/NOTES.md, appended)."""
    meta, command, rows, cold, core = (
        doc["meta"],
        doc["command"],
        doc["rows"],
        doc["cold"],
        doc["core"],
    )
    lines = [
        "# Benchmark results",
        "",
        f"Command: `{command}` (in the repository root; see bench/README.md). "
        f"Date: {meta['date']}.",
        "",
        f"Machine: {meta['machine']}. Python {meta['python']}; sluicegate {meta['sluicegate']};"
        f" trio/h11/httpx {meta['trio/h11/httpx']}; LiteLLM {meta['litellm']}."
        f" Load average (1/5/15 min) before the run: {meta.get('loadavg_before', '?')}.",
        "",
        "## Gateway, OpenAI-compatible route",
        "",
        "Closed loop over keep-alive connections on 127.0.0.1, the simulator upstream through "
        "its OpenAI-compatible API (sluicegate: model `vllm/sim-small`; LiteLLM: "
        '`openai/sim-small`). "Added" = target minus direct-to-simulator.',
        "",
        *metric_table(rows, GATEWAY_METRICS),
    ]
    notes = [f"- {name}: {why}" for name, why in doc["unavailable"].items()]
    notes += c1_failure_notes(rows)
    for name, r in rows.items():
        failed = [d for d in r.get("streams_detail", []) if d["stalled"] or d["errors"]]
        notes += [
            f"- {name} at {d['level']} streams: {d['stalled']} stalled, {d['errors']} errors, "
            f"longest gap {d['max_gap_ms']:.0f} ms"
            for d in failed
        ]
    lines += ["", "RSS is VmRSS summed over the process and its children (the workers); direct has"]
    lines += ["no gateway process, so n/a. Slow streams: `#sim tokens=20 gap_ms=100`, levels"]
    lines += ["64…1024 (the cap); a level fails on any error or a gap > 1 s."]
    lines += ["", *notes] if notes else []
    lines += ["", "Cold start to the first 200 on the health endpoint (median):", ""]
    lines += [f"- {name}: {seconds:.3f} s" for name, seconds in cold.items()]
    if "ollama" in doc:  # absent from runs with --skip-ollama and from older results.json
        lines += ["", *ollama_section(doc["ollama"])]
    else:
        lines.append("")
    lines += ["## Targets", "", "| target | figure | verdict |", "|---|---|---|"]
    nan_row = dict.fromkeys(next(iter(rows.values())), NAN)
    sg = rows.get("sluicegate 1w", nan_row)
    sg2 = rows.get("sluicegate 2w", nan_row)
    lite = rows.get("LiteLLM", nan_row)

    def target(label: str, value: float, shown: str, ok: bool) -> None:
        verdict = "n/a" if math.isnan(value) else ("PASS" if ok else "FAIL")
        lines.append(f"| {label} | {'n/a' if math.isnan(value) else shown} | {verdict} |")

    added = sg["added_p99_ms"]
    target("added p99 at c=1 ≤ 0.4 ms", added, f"{added:.3f} ms", added <= 0.4)
    ratio = lite["added_p99_ms"] / added if added > 0 else NAN
    target(
        "added p99 ≤ 1/15 of LiteLLM's", ratio, f"LiteLLM / sluicegate = {ratio:.1f}", ratio >= 15
    )
    best = max(sg["throughput_rps"], sg2["throughput_rps"] if sg2 is not nan_row else 0)
    tput = best / lite["throughput_rps"]
    target("throughput ≥ 5x LiteLLM's (best of 1w/2w)", tput, f"{tput:.1f}x", tput >= 5)
    ttft = sg["added_ttft_p99_ms"]
    target("added TTFT p99 ≤ 0.4 ms", ttft, f"{ttft:.3f} ms", ttft <= 0.4)
    rss = sg["rss_idle_mb"]
    target("idle RSS ≤ 60 MB per worker (1w)", rss, f"{rss:.1f} MB", rss <= 60)
    zipapp = cold.get("sluicegate (zipapp)", NAN)
    target("zipapp cold start ≤ 0.5 s", zipapp, f"{zipapp:.3f} s", zipapp <= 0.5)
    lines.append("")
    floor = rows.get(FLOOR)
    if floor is not None:  # absent from older results.json
        lines += [
            f"The floor of the stack, in the same run: `{FLOOR}` (bench/floor_proxy.py — h11 "
            "both ways over trio sockets, no JSON, routing, transcoding, timeouts or logging) "
            f"adds {floor['added_p50_ms']:.3f} ms p50 / {floor['added_p99_ms']:.3f} ms p99, "
            f"and {floor['added_ttft_p99_ms']:.3f} ms to the TTFT p99. That much of "
            "sluicegate's added latency no work inside sluicegate can remove; sluicegate adds "
            f"{sg['added_p50_ms'] - floor['added_p50_ms']:.3f} ms p50 on top of it.",
            "",
        ]
    lines.append("Core targets (≥ 2 M events/s, ≥ 10x the reference): see the core table below.")
    lines += [
        "",
        "![latency distributions](latency.png)",
        "",
        "## Core microbenchmark",
        "",
        "`bench/core_bench.py`: upstream events per second through `StreamTranscoder`, one "
        "core, against the pure-Python reference (`bench/reference_openai.py`, byte-identical "
        "output, checked by tests/test_bench_reference.py). Targets: ≥ 2 M events/s and "
        "≥ 10x the reference.",
        "",
        core.strip(),
        "",
    ]
    notes = BENCH / "NOTES.md"
    if notes.exists():
        lines += [notes.read_text().strip(), ""]
    (BENCH / "RESULTS.md").write_text("\n".join(lines))


def plot(targets: list[Target], ollama_targets: list[Target]) -> None:
    """bench/latency.png: c=1 latency and TTFT CDFs, a row of two plots per route measured."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("[bench] matplotlib missing: no plot", file=sys.stderr)
        return
    routes = [("OpenAI-compatible route", targets)]
    if ollama_targets:
        routes.append(("Ollama native route", ollama_targets))
    fig, grid = plt.subplots(len(routes), 2, figsize=(12, 4.5 * len(routes)), squeeze=False)
    for axes, (route, route_targets) in zip(grid, routes, strict=True):
        for t in route_targets:
            for ax, key in zip(axes, ("latency", "ttft"), strict=True):
                values = sorted(v * 1e3 for v in t.results.get(key, []))
                if values:
                    ys = [i / len(values) for i in range(len(values))]
                    ax.plot(values, ys, label=t.name)
        axes[0].set_title(f"{route}: c=1 non-stream latency (CDF)")
        axes[1].set_title(f"{route}: c=1 streaming time to first token (CDF)")
        for ax in axes:
            ax.set_xscale("log")
            ax.set_xlabel("ms (log)")
            ax.grid(True, alpha=0.3)
            ax.legend()
    fig.tight_layout()
    fig.savefig(BENCH / "latency.png", dpi=110)


if __name__ == "__main__":
    sys.exit(main())
