"""``make bench``: sluicegate (1 and 2 workers), LiteLLM and direct-to-simulator, in one run.

Starts the simulator and every target on 127.0.0.1, drives them with the closed-loop load
generator in load.py, and writes bench/RESULTS.md (with the core microbenchmark's table),
bench/latency.png and bench/out/results.json. Every process is stopped at the end, and every
scenario is bounded in count and time. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import json
import os
import platform
import resource
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from load import Result, closed_loop

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
OUT = BENCH / "out"
GATEWAY_PYTHON = ROOT / ".venv" / "bin" / "python"
LITELLM = BENCH / ".venv" / "bin" / "litellm"
ZIPAPP = ROOT / "dist" / "sluicegate.pyz"
PATH = "/v1/chat/completions"


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
    proc: subprocess.Popen[bytes] | None = None
    results: dict[str, object] = field(default_factory=dict)

    def body(self, directive: str, *, stream: bool) -> bytes:
        return json.dumps(
            {
                "model": self.model,
                "stream": stream,
                "messages": [{"role": "user", "content": f"Benchmark. #sim {directive}"}],
            }
        ).encode()


def wait_healthy(port: int, path: str, deadline: float) -> float:
    """Seconds until ``GET path`` answers 200 (polled every 5 ms)."""
    started = time.perf_counter()
    while time.perf_counter() < deadline:
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


async def scenario_latency(t: Target, count: int, seconds: float) -> list[float]:
    body = t.body("tokens=16", stream=False)
    await closed_loop(t.port, PATH, body, concurrency=1, stream=False, count=200)  # warm-up
    results = await closed_loop(
        t.port, PATH, body, concurrency=1, stream=False, count=count, seconds=seconds
    )
    return [r.latency for r in results if r.ok]


async def scenario_ttft(t: Target, count: int, seconds: float) -> tuple[list[float], list[float]]:
    body = t.body("tokens=16", stream=True)
    await closed_loop(t.port, PATH, body, concurrency=1, stream=True, count=100)
    results = await closed_loop(
        t.port, PATH, body, concurrency=1, stream=True, count=count, seconds=seconds
    )
    gap_body = t.body("tokens=100 gap_ms=10", stream=True)
    gap_runs = await closed_loop(t.port, PATH, gap_body, concurrency=1, stream=True, count=10)
    gaps = [g for r in gap_runs for g in r.gaps]
    return [r.first_content for r in results if r.ok and r.first_content is not None], gaps


async def scenario_throughput(t: Target, seconds: float) -> tuple[float, int]:
    body = t.body("tokens=16 headers_ms=20", stream=False)
    started = time.perf_counter()
    results = await closed_loop(t.port, PATH, body, concurrency=64, stream=False, seconds=seconds)
    elapsed = time.perf_counter() - started
    return sum(r.ok for r in results) / elapsed, sum(not r.ok for r in results)


async def scenario_streams(t: Target, levels: list[int]) -> int:
    """The most concurrent slow streams held with no gap over 1 s and no error."""
    held = 0
    for level in levels:
        body = t.body("tokens=20 gap_ms=100", stream=True)
        results: list[Result] = await closed_loop(
            t.port, PATH, body, concurrency=level, stream=True, count=level, seconds=30
        )
        stalled = [r for r in results if not r.ok or any(g > 1.0 for g in r.gaps)]
        if stalled or len(results) < level:
            break
        held = level
    return held


def cold_start(argv: list[str], port: int, path: str, env: dict[str, str], runs: int) -> float:
    times = []
    for _ in range(runs):
        proc = subprocess.Popen(
            argv, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            times.append(wait_healthy(port, path, time.perf_counter() + 120))
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
        "sluicegate": f"{sg} (git {out(['git', '-C', str(ROOT), 'rev-parse', '--short', 'HEAD'])})",
        "trio/h11/httpx": f"{trio_v} / {h11_v} / {httpx_v}",
        "litellm": litellm_v,
    }


@contextlib.contextmanager
def running(procs: Processes) -> Iterator[Processes]:
    try:
        yield procs
    finally:
        procs.stop_all()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs, to check the harness")
    parser.add_argument("--skip-litellm", action="store_true")
    args = parser.parse_args()
    q = args.quick
    OUT.mkdir(parents=True, exist_ok=True)
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    sim_port = free_port()
    sim_base = f"http://127.0.0.1:{sim_port}/v1"
    quiet = {"SLUICEGATE_LOG_LEVEL": "warning"}
    targets = [Target("direct", sim_port, "sim-small")]
    with running(Processes()) as procs:
        procs.start(
            [str(GATEWAY_PYTHON), "-m", "sluicegate", "simulate", "--port", str(sim_port)], quiet
        )
        wait_healthy(sim_port, "/healthz", time.perf_counter() + 60)
        for name, workers in (("sluicegate 1w", 1), ("sluicegate 2w", 2)):
            port = free_port()
            argv = [
                str(GATEWAY_PYTHON),
                "-m",
                "sluicegate",
                "serve",
                "--port",
                str(port),
                "--workers",
                str(workers),
            ]
            t = Target(name, port, "vllm/sim-small")
            t.proc = procs.start(argv, {**quiet, "VLLM_BASE_URL": sim_base})
            targets.append(t)
        if not args.skip_litellm and LITELLM.exists():
            port = free_port()
            config = OUT / "litellm.yaml"
            config.write_text(
                "model_list:\n  - model_name: sim-small\n    litellm_params:\n"
                f"      model: openai/sim-small\n      api_base: {sim_base}\n"
                "      api_key: dummy\nlitellm_settings:\n  telemetry: false\n"
                "  drop_params: true\n"
            )
            t = Target("LiteLLM", port, "sim-small", health="/health/liveliness")
            t.proc = procs.start(
                [str(LITELLM), "--config", str(config), "--host", "127.0.0.1", "--port", str(port)],
                {"LITELLM_LOG": "ERROR", "LITELLM_TELEMETRY": "False"},
            )
            targets.append(t)
        for t in targets[1:]:
            wait_healthy(t.port, t.health, time.perf_counter() + 180)
        for t in targets:
            if t.proc:
                t.results["rss_idle_mb"] = rss_mb(t.proc.pid)
            print(f"[bench] {t.name}: latency", file=sys.stderr)
            t.results["latency"] = asyncio.run(
                scenario_latency(t, 300 if q else 3000, 5 if q else 20)
            )
            print(f"[bench] {t.name}: ttft", file=sys.stderr)
            t.results["ttft"], t.results["gaps"] = asyncio.run(
                scenario_ttft(t, 100 if q else 1000, 5 if q else 15)
            )
            print(f"[bench] {t.name}: throughput", file=sys.stderr)
            t.results["throughput"], t.results["errors"] = asyncio.run(
                scenario_throughput(t, 3 if q else 15)
            )
            levels = [64, 128] if q else [64, 128, 256, 512, 1024]
            print(f"[bench] {t.name}: concurrent streams", file=sys.stderr)
            t.results["streams"] = asyncio.run(scenario_streams(t, levels))
            if t.proc:
                t.results["rss_loaded_mb"] = rss_mb(t.proc.pid)

    cold: dict[str, float] = {}
    port = free_port()
    runs = 3 if q else 7
    cold["sluicegate (venv)"] = cold_start(
        [str(GATEWAY_PYTHON), "-m", "sluicegate", "serve", "--port", str(port)],
        port,
        "/healthz",
        quiet,
        runs,
    )
    if ZIPAPP.exists():
        env = {**quiet, "SHIV_ROOT": str(OUT / "shiv")}
        argv = [
            getattr(sys, "_base_executable", sys.executable),
            str(ZIPAPP),
            "serve",
            "--port",
            str(port),
        ]
        cold_start(argv, port, "/healthz", env, 1)  # the first run unpacks
        cold["sluicegate (zipapp)"] = cold_start(argv, port, "/healthz", env, runs)
    if not args.skip_litellm and LITELLM.exists():
        config = OUT / "litellm.yaml"
        cold["LiteLLM"] = cold_start(
            [str(LITELLM), "--config", str(config), "--host", "127.0.0.1", "--port", str(port)],
            port,
            "/health/liveliness",
            {"LITELLM_LOG": "ERROR"},
            1 if q else 3,
        )

    core = subprocess.run(
        [str(GATEWAY_PYTHON), str(BENCH / "core_bench.py"), "--seconds", "1" if q else "3"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    meta = versions()
    command = "make bench-quick" if q else "make bench"
    write_results(targets, cold, core, meta, command)
    plot(targets)
    return 0


def summarise(targets: list[Target]) -> dict[str, dict[str, float]]:
    direct = targets[0].results
    rows: dict[str, dict[str, float]] = {}
    for t in targets:
        r = t.results
        lat, ttft, gaps = r["latency"], r["ttft"], r["gaps"]
        rows[t.name] = {
            "p50_ms": pct(lat, 0.5) * 1e3,
            "p99_ms": pct(lat, 0.99) * 1e3,
            "added_p50_ms": (pct(lat, 0.5) - pct(direct["latency"], 0.5)) * 1e3,
            "added_p99_ms": (pct(lat, 0.99) - pct(direct["latency"], 0.99)) * 1e3,
            "ttft_p50_ms": pct(ttft, 0.5) * 1e3,
            "ttft_p99_ms": pct(ttft, 0.99) * 1e3,
            "added_ttft_p50_ms": (pct(ttft, 0.5) - pct(direct["ttft"], 0.5)) * 1e3,
            "added_ttft_p99_ms": (pct(ttft, 0.99) - pct(direct["ttft"], 0.99)) * 1e3,
            "added_gap_ms": (statistics.mean(gaps) - statistics.mean(direct["gaps"])) * 1e3
            if gaps and direct["gaps"]
            else float("nan"),
            "throughput_rps": r["throughput"],
            "errors": r["errors"],
            "streams": r["streams"],
            "rss_idle_mb": r.get("rss_idle_mb", float("nan")),
            "rss_loaded_mb": r.get("rss_loaded_mb", float("nan")),
        }
    return rows


def write_results(targets, cold, core, meta, command) -> None:
    rows = summarise(targets)
    (OUT / "results.json").write_text(
        json.dumps({"meta": meta, "rows": rows, "cold": cold}, indent=2)
    )
    names = list(rows)
    lines = [
        "# Benchmark results",
        "",
        f"Command: `{command}` (see bench/README.md). Date: {meta['date']}.",
        "",
        f"Machine: {meta['machine']}. Python {meta['python']}; sluicegate {meta['sluicegate']};"
        f" trio/h11/httpx {meta['trio/h11/httpx']}; LiteLLM {meta['litellm']}.",
        "",
        "## Gateway",
        "",
        "Closed loop over keep-alive connections on 127.0.0.1, the simulator upstream. "
        '"Added" = target minus direct-to-simulator.',
        "",
        "| metric | " + " | ".join(names) + " |",
        "|---|" + "---|" * len(names),
    ]

    def row(label: str, key: str, fmt: str) -> None:
        lines.append(f"| {label} | " + " | ".join(format(rows[n][key], fmt) for n in names) + " |")

    row("latency p50, c=1, non-stream (ms)", "p50_ms", ".3f")
    row("latency p99 (ms)", "p99_ms", ".3f")
    row("**added p50 (ms)**", "added_p50_ms", ".3f")
    row("**added p99 (ms)**", "added_p99_ms", ".3f")
    row("TTFT p50, c=1, stream (ms)", "ttft_p50_ms", ".3f")
    row("TTFT p99 (ms)", "ttft_p99_ms", ".3f")
    row("**added TTFT p99 (ms)**", "added_ttft_p99_ms", ".3f")
    row("added gap per token (ms)", "added_gap_ms", ".3f")
    row("throughput, c=64, 20 ms upstream (req/s)", "throughput_rps", ".0f")
    row("errors during throughput run", "errors", ".0f")
    row("concurrent slow streams held without stalls", "streams", ".0f")
    row("RSS idle (MB, all processes)", "rss_idle_mb", ".1f")
    row("RSS after load (MB)", "rss_loaded_mb", ".1f")
    lines += ["", "Cold start to the first 200 on the health endpoint (median):", ""]
    lines += [f"- {name}: {seconds:.3f} s" for name, seconds in cold.items()]
    lines += ["", "## Targets", "", "| target | figure | verdict |", "|---|---|---|"]
    sg, lite = rows.get("sluicegate 1w"), rows.get("LiteLLM")

    def verdict(ok: bool) -> str:
        return "PASS" if ok else "FAIL"

    if sg:
        lines.append(
            f"| added p99 at c=1 ≤ 0.4 ms | {sg['added_p99_ms']:.3f} ms | "
            f"{verdict(sg['added_p99_ms'] <= 0.4)} |"
        )
        if lite:
            ratio = lite["added_p99_ms"] / sg["added_p99_ms"] if sg["added_p99_ms"] > 0 else 0
            lines.append(
                f"| added p99 ≤ 1/15 of LiteLLM's | LiteLLM/sluicegate = {ratio:.1f} | "
                f"{verdict(ratio >= 15)} |"
            )
            tput = (
                max(
                    rows["sluicegate 1w"]["throughput_rps"],
                    rows.get("sluicegate 2w", sg)["throughput_rps"],
                )
                / lite["throughput_rps"]
            )
            lines.append(f"| throughput ≥ 5x LiteLLM's | {tput:.1f}x | {verdict(tput >= 5)} |")
        lines.append(
            f"| added TTFT p99 ≤ 0.4 ms | {sg['added_ttft_p99_ms']:.3f} ms | "
            f"{verdict(sg['added_ttft_p99_ms'] <= 0.4)} |"
        )
        lines.append(
            f"| idle RSS ≤ 60 MB per worker | {sg['rss_idle_mb']:.1f} MB | "
            f"{verdict(sg['rss_idle_mb'] <= 60)} |"
        )
    if "sluicegate (zipapp)" in cold:
        z = cold["sluicegate (zipapp)"]
        lines.append(f"| zipapp cold start ≤ 0.5 s | {z:.3f} s | {verdict(z <= 0.5)} |")
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


def plot(targets: list[Target]) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("[bench] matplotlib missing: no plot", file=sys.stderr)
        return
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for t in targets:
        for ax, key in zip(axes, ("latency", "ttft"), strict=True):
            values = sorted(v * 1e3 for v in t.results[key])
            if values:
                ys = [i / len(values) for i in range(len(values))]
                ax.plot(values, ys, label=t.name)
    axes[0].set_title("c=1 non-stream latency (CDF)")
    axes[1].set_title("c=1 streaming time to first token (CDF)")
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xlabel("ms (log)")
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(BENCH / "latency.png", dpi=110)


if __name__ == "__main__":
    sys.exit(main())
