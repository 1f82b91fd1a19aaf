"""Core microbenchmark: upstream events per second through the transcoder.

Compares the Rust ``StreamTranscoder`` with the pure-Python reference in this folder, for each
dialect in ``DIALECTS`` (adding a dialect = one entry: a corpus builder and a reference class),
at several upstream read sizes. Pinned to one CPU core. Run:

    .venv/bin/python bench/core_bench.py            # Markdown table
    .venv/bin/python bench/core_bench.py --json     # machine-readable
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).parent))
from reference_openai import ReferenceTranscoder
from sluicegate._core import StreamTranscoder

WORDS = [" The", " quick", " brown", " fox", " jumps", " over", " the", " lazy", " dog", "."]


def openai_corpus(events: int) -> bytes:
    """A stream shaped like the recorded gpt-4o one (PROTOCOLS.md §5.3): one token per chunk."""
    head = {
        "id": "chatcmpl-ABfw031mOJeYCSHe4yI2ZjOA6kMJL",
        "object": "chat.completion.chunk",
        "created": 1727346168,
        "model": "gpt-4o-2024-08-06",
        "system_fingerprint": "fp_5050236cbd",
    }
    frames = [
        {
            **head,
            "choices": [
                {
                    "index": 0,
                    "delta": {"role": "assistant", "content": "", "refusal": None},
                    "logprobs": None,
                    "finish_reason": None,
                }
            ],
        }
    ]
    for i in range(events - 3):
        delta = {"content": WORDS[i % len(WORDS)]}
        frames.append(
            {
                **head,
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}],
            }
        )
    frames.append(
        {**head, "choices": [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}]}
    )
    usage = {"prompt_tokens": 14, "completion_tokens": events, "total_tokens": events + 14}
    frames.append({**head, "choices": [], "usage": usage})
    body = b"".join(b"data: " + orjson.dumps(f) + b"\n\n" for f in frames)
    return body + b"data: [DONE]\n\n"


@dataclass(frozen=True)
class Dialect:
    name: str
    corpus: Callable[[int], bytes]
    reference: Callable[..., object]


DIALECTS = [Dialect("openai", openai_corpus, ReferenceTranscoder)]
# DeepInfra native joins here when its dialect lands (issue 4): Dialect("deepinfra", ..., ...).


def split(body: bytes, read_size: int) -> list[bytes]:
    if read_size == 0:  # one event per read
        return [frame + b"\n\n" for frame in body.split(b"\n\n") if frame]
    return [body[i : i + read_size] for i in range(0, len(body), read_size)]


def run_core(dialect: str, reads: list[bytes]) -> bytes:
    t = StreamTranscoder(
        dialect, "bench/model", response_id="chatcmpl-bench", created=1, include_usage=True
    )
    out = [t.feed(r) for r in reads]
    out.append(t.finish())
    return b"".join(out)


def run_reference(factory: Callable[..., object], reads: list[bytes]) -> bytes:
    t = factory("bench/model", response_id="chatcmpl-bench", created=1, include_usage=True)
    out = [t.feed(r) for r in reads]  # type: ignore[attr-defined]
    out.append(t.finish())  # type: ignore[attr-defined]
    return b"".join(out)


def measure(fn: Callable[[], bytes], events: int, seconds: float) -> float:
    """Median events/s over repeated runs lasting about ``seconds`` in total."""
    rates = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(rates) < 3:
        started = time.perf_counter()
        fn()
        rates.append(events / (time.perf_counter() - started))
    return statistics.median(rates)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=2.0, help="per measurement")
    parser.add_argument(
        "--read-sizes",
        default="0,1024,4096,16384",
        help="bytes per upstream read; 0 = one event per read",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})

    rows = []
    for dialect in DIALECTS:
        body = dialect.corpus(args.events)
        for size in (int(s) for s in args.read_sizes.split(",")):
            reads = split(body, size)
            core_out = run_core(dialect.name, reads)
            ref_out = run_reference(dialect.reference, reads)
            if core_out != ref_out:
                print(f"{dialect.name}: reference output differs from the core's", file=sys.stderr)
                return 1
            name, factory = dialect.name, dialect.reference
            core = measure(lambda r=reads, n=name: run_core(n, r), args.events, args.seconds)
            ref = measure(lambda r=reads, f=factory: run_reference(f, r), args.events, args.seconds)
            rows.append(
                {
                    "dialect": dialect.name,
                    "read_size": size or "1 event",
                    "core_events_per_s": core,
                    "reference_events_per_s": ref,
                    "ratio": core / ref,
                    "reads": len(reads),
                }
            )
    if args.json:
        print(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode())
        return 0
    print("| dialect | read size | reads | core events/s | reference events/s | core / reference |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['dialect']} | {r['read_size']} | {r['reads']} | "
            f"{r['core_events_per_s'] / 1e6:.2f} M | {r['reference_events_per_s'] / 1e6:.3f} M | "
            f"{r['ratio']:.1f}x |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
