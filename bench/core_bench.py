"""Core microbenchmark: upstream events per second through the transcoder.

Compares the Rust ``StreamTranscoder`` with the pure-Python reference in this folder, for each
dialect in ``DIALECTS`` (adding a dialect = one entry: a corpus builder, a reference class and
the generation options both get), at several upstream read sizes. Pinned to one CPU core. An
"event" is one upstream chunk (openai) or one token event (deepinfra). Run:

    .venv/bin/python bench/core_bench.py                      # Markdown table
    .venv/bin/python bench/core_bench.py --json               # machine-readable
    .venv/bin/python bench/core_bench.py --dialects deepinfra # one dialect

Each run feeds the whole stream to a fresh transcoder and joins its output. Core and reference
runs alternate (three core runs per reference run) for the whole measurement, so whatever else
the machine is doing lands on both; the table gives the median and the best run of each, and
the ratio of the medians. The garbage collector is off while timing (collected before each
measurement), which helps the reference, not the core: the ratio errs low.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).parent))
from reference_deepinfra import DeepInfraReference
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


def deepinfra_corpus(events: int) -> bytes:
    """DeepInfra's native stream as the simulator renders it (PROTOCOLS.md §1.4): ``events``
    token events in Python ``json.dumps`` spacing, then the final event: the special end-of-turn
    token with ``generated_text``, ``details``, the counts and ``inference_status``."""
    frames = []
    for i in range(events):
        token = {
            "id": 1000 + i % 5000,
            "text": WORDS[i % len(WORDS)],
            "logprob": -round(0.05 * (i % 7 + 1), 4),  # the simulator's
            "special": False,
        }
        frames.append({"token": token, "generated_text": None, "details": None})
    generated, prompt = events + 1, 14  # the end-of-turn token counts
    final = {
        "token": {"id": 128009, "text": "<|eot_id|>", "logprob": -0.0001, "special": True},
        "generated_text": "".join(WORDS[i % len(WORDS)] for i in range(events)),
        "details": {
            "finish_reason": "eos_token",
            "generated_tokens": generated,
            "input_tokens": prompt,
            "seed": None,
        },
        "num_output_tokens": generated,
        "num_input_tokens": prompt,
        "inference_status": {
            "status": "succeeded",
            "runtime_ms": 243,
            "cost": round((prompt * 0.03 + generated * 0.05) / 1e6, 12),
            "tokens_input": prompt,
            "tokens_generated": generated,
        },
    }
    frames.append(final)
    return b"".join(
        b"data: " + json.dumps(f, ensure_ascii=False).encode() + b"\n\n" for f in frames
    )


@dataclass(frozen=True)
class Dialect:
    name: str
    corpus: Callable[[int], bytes]
    reference: Callable[..., object]
    # Generation options for both transcoders, and how the table names them.
    options: Mapping[str, object] = field(default_factory=dict)
    label: str = ""


# The gateway always sends the chat template's end-of-turn strings as stop strings and reads
# the answer with think="auto" (python/sluicegate/providers/deepinfra.py): that is the realistic
# configuration. "think=off, no stop" is the bare token path.
LLAMA3_STOP = ("<|eot_id|>", "<|eom_id|>")
DIALECTS = [
    Dialect("openai", openai_corpus, ReferenceTranscoder),
    Dialect("deepinfra", deepinfra_corpus, DeepInfraReference, {"think": "off"}, "no stop"),
    Dialect(
        "deepinfra",
        deepinfra_corpus,
        DeepInfraReference,
        {"stop": LLAMA3_STOP, "think": "auto"},
        "stop+think",
    ),
    Dialect(
        "deepinfra",
        deepinfra_corpus,
        DeepInfraReference,
        {"stop": LLAMA3_STOP, "think": "auto", "logprobs": True},
        "stop+think+logprobs",
    ),
]


def split(body: bytes, read_size: int) -> list[bytes]:
    if read_size == 0:  # one event per read
        return [frame + b"\n\n" for frame in body.split(b"\n\n") if frame]
    return [body[i : i + read_size] for i in range(0, len(body), read_size)]


def run_core(dialect: str, reads: list[bytes], options: Mapping[str, object] = {}) -> bytes:
    t = StreamTranscoder(
        dialect,
        "bench/model",
        response_id="chatcmpl-bench",
        created=1,
        include_usage=True,
        **options,  # type: ignore[arg-type]
    )
    out = [t.feed(r) for r in reads]
    out.append(t.finish())
    return b"".join(out)


def run_reference(
    factory: Callable[..., object], reads: list[bytes], options: Mapping[str, object] = {}
) -> bytes:
    t = factory(
        "bench/model", response_id="chatcmpl-bench", created=1, include_usage=True, **options
    )
    out = [t.feed(r) for r in reads]  # type: ignore[attr-defined]
    out.append(t.finish())  # type: ignore[attr-defined]
    return b"".join(out)


def rate(fn: Callable[[], bytes], events: int) -> float:
    started = time.perf_counter()
    fn()
    return events / (time.perf_counter() - started)


def measure(
    core: Callable[[], bytes], reference: Callable[[], bytes], events: int, seconds: float
) -> tuple[list[float], list[float]]:
    """Events/s of every core and reference run, alternating for about ``seconds``."""
    core_rates: list[float] = []
    reference_rates: list[float] = []
    gc.collect()
    gc.disable()
    try:
        core()  # warm-up: first-call costs are not the steady state
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline or len(reference_rates) < 3:
            core_rates += [rate(core, events) for _ in range(3)]
            reference_rates.append(rate(reference, events))
    finally:
        gc.enable()
    return core_rates, reference_rates


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=2.0, help="per measurement")
    parser.add_argument(
        "--read-sizes",
        default="0,1024,4096,16384",
        help="bytes per upstream read; 0 = one event per read",
    )
    parser.add_argument(
        "--cpu", type=int, default=None, help="the core to pin to (default: the last one allowed)"
    )
    parser.add_argument(
        "--dialects",
        default=",".join(dict.fromkeys(d.name for d in DIALECTS)),
        help="comma-separated dialects to measure",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    cpu = None
    if hasattr(os, "sched_setaffinity"):
        cpu = max(os.sched_getaffinity(0)) if args.cpu is None else args.cpu
        os.sched_setaffinity(0, {cpu})

    rows = []
    wanted = args.dialects.split(",")
    unknown = set(wanted) - {d.name for d in DIALECTS}
    if unknown:
        known = ", ".join(dict.fromkeys(d.name for d in DIALECTS))
        parser.error(f"unknown dialect(s) {', '.join(sorted(unknown))}; use some of: {known}")
    for dialect in (d for d in DIALECTS if d.name in wanted):
        body = dialect.corpus(args.events)
        name = f"{dialect.name} ({dialect.label})" if dialect.label else dialect.name
        for size in (int(s) for s in args.read_sizes.split(",")):
            reads = split(body, size)
            core_out = run_core(dialect.name, reads, dialect.options)
            ref_out = run_reference(dialect.reference, reads, dialect.options)
            if core_out != ref_out:
                print(f"{name}: reference output differs from the core's", file=sys.stderr)
                return 1
            core, ref = measure(
                lambda r=reads, d=dialect: run_core(d.name, r, d.options),
                lambda r=reads, d=dialect: run_reference(d.reference, r, d.options),
                args.events,
                args.seconds,
            )
            rows.append(
                {
                    "dialect": dialect.name,
                    "options": dialect.label,
                    "read_size": size or "1 event",
                    "reads": len(reads),
                    "core_events_per_s": statistics.median(core),
                    "core_best_events_per_s": max(core),
                    "reference_events_per_s": statistics.median(ref),
                    "reference_best_events_per_s": max(ref),
                    "ratio": statistics.median(core) / statistics.median(ref),
                    "core_runs": len(core),
                    "reference_runs": len(ref),
                }
            )
    if args.json:
        print(orjson.dumps({"cpu": cpu, "rows": rows}, option=orjson.OPT_INDENT_2).decode())
        return 0
    print(
        "| dialect | read size | reads | core events/s (median / best) "
        "| reference events/s (median / best) | core / reference |"
    )
    print("|---|---|---|---|---|---|")
    for r in rows:
        name = f"{r['dialect']} ({r['options']})" if r["options"] else r["dialect"]
        print(
            f"| {name} | {r['read_size']} | {r['reads']} "
            f"| {r['core_events_per_s'] / 1e6:.2f} M / {r['core_best_events_per_s'] / 1e6:.2f} M "
            f"| {r['reference_events_per_s'] / 1e6:.3f} M / "
            f"{r['reference_best_events_per_s'] / 1e6:.3f} M | {r['ratio']:.1f}x |"
        )
    print()
    print(
        f"One core (CPU {cpu}), {args.events} events per run, about {args.seconds:g} s per row "
        f"({rows[0]['core_runs']} core and {rows[0]['reference_runs']} reference runs in the "
        "first); ratio of medians."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
