"""The benchmark's Python reference transcoder must say exactly what the Rust core says.

bench/core_bench.py reports "core ÷ reference"; that ratio only means something while both
produce the same bytes, so this keeps them from drifting apart.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from sluicegate._core import StreamTranscoder

BENCH = Path(__file__).parent.parent / "bench"
sys.path.insert(0, str(BENCH))
from core_bench import openai_corpus, split  # noqa: E402
from reference_openai import ReferenceTranscoder  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures" / "openai"
# Fixtures whose upstream JSON is compact, so the reference's re-serialisation is byte-exact
# (the core copies upstream bytes; the reference re-encodes with orjson).
COMPACT = ["text_stream.sse", "tool_call_stream.sse", "refusal_stream.sse", "tgi_error_stream.sse"]


def both(pieces: list[bytes], include_usage: bool = True) -> tuple[bytes, bytes]:
    options = {"response_id": "chatcmpl-x", "created": 7, "include_usage": include_usage}
    core = StreamTranscoder("openai", "m", **options)
    ref = ReferenceTranscoder("m", **options)
    core_out = b"".join(core.feed(p) for p in pieces) + core.finish()
    ref_out = b"".join(ref.feed(p) for p in pieces) + ref.finish()
    assert (ref.usage, ref.finish_reason, ref.error) == (core.usage, core.finish_reason, core.error)
    return core_out, ref_out


@pytest.mark.parametrize("read_size", [0, 1, 7, 1024, 4096])
def test_benchmark_corpus_is_byte_identical(read_size: int) -> None:
    body = openai_corpus(300)
    core_out, ref_out = both(split(body, read_size))
    assert core_out == ref_out
    assert core_out.endswith(b"data: [DONE]\n\n")


@pytest.mark.parametrize("name", COMPACT)
@pytest.mark.parametrize("include_usage", [False, True])
def test_fixtures_are_byte_identical_at_every_split(name: str, include_usage: bool) -> None:
    data = (FIXTURES / name).read_bytes()
    for cut in range(len(data) + 1):
        core_out, ref_out = both([data[:cut], data[cut:]], include_usage)
        assert core_out == ref_out, f"{name} split at {cut}"


@pytest.mark.parametrize(
    "data",
    [
        b'data: {"choices":[{"index":0,"delta":{"content":"a"}}]}\r\n\r\n',  # cut: no finish
        b"data: not json\n\n",
        b': ping\r\ndata: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\r\r',
        # Non-ASCII text and escapes: the core's scanner takes its slower string path here.
        'data: {"choices":[{"index":0,"delta":{"content":"h\u00e9 \U0001f600 \\"q\\" \\\\ \\n"},'
        '"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n'.encode(),
    ],
)
def test_edge_cases_are_byte_identical(data: bytes) -> None:
    core_out, ref_out = both([bytes([b]) for b in data])
    assert core_out == ref_out
