"""The benchmark's Python reference transcoder must say exactly what the Rust core says.

bench/core_bench.py reports "core ÷ reference"; that ratio only means something while both
produce the same bytes, so this keeps them from drifting apart.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from sluicegate._core import StreamTranscoder

BENCH = Path(__file__).parent.parent / "bench"
sys.path.insert(0, str(BENCH))
from core_bench import DIALECTS, deepinfra_corpus, openai_corpus, split  # noqa: E402
from reference_deepinfra import DeepInfraReference  # noqa: E402
from reference_openai import ReferenceTranscoder  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures" / "openai"
# Fixtures whose upstream JSON is compact, so the reference's re-serialisation is byte-exact
# (the core copies upstream bytes; the reference re-encodes with orjson).
COMPACT = ["text_stream.sse", "tool_call_stream.sse", "refusal_stream.sse", "tgi_error_stream.sse"]


def both(
    pieces: list[bytes], include_usage: bool = True, prompt_tokens: int | None = None
) -> tuple[bytes, bytes]:
    options = {
        "response_id": "chatcmpl-x",
        "created": 7,
        "include_usage": include_usage,
        "prompt_tokens": prompt_tokens,
    }
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


def without_usage(data: bytes) -> bytes:
    """A recorded stream as a server that reports no usage would send it."""
    events = data.split(b"\n\n")
    return b"".join(e + b"\n\n" for e in events[:-1] if b'"usage"' not in e) + events[-1]


@pytest.mark.parametrize("name", COMPACT)
def test_usage_estimates_are_byte_identical_at_every_split(name: str) -> None:
    data = without_usage((FIXTURES / name).read_bytes())
    for cut in range(len(data) + 1):
        core_out, ref_out = both([data[:cut], data[cut:]], prompt_tokens=7)
        assert core_out == ref_out, f"{name} split at {cut}"
    # Cut off after each event: the partial usage is estimated alike.
    for end in range(len(data) + 1):
        if data[:end].endswith(b"\n\n"):
            both([data[:end]])


@pytest.mark.parametrize(
    "data",
    [
        # Mid-answer the core counts chunks without parsing them: an empty delta counts, a
        # finish without output does not, a finish with output does.
        b'data: {"choices":[{"index":0,"delta":{"content":"a"}}]}\n\n'
        b'data: {"choices":[{"index":0,"delta":{}}]}\n\n'
        b'data: {"choices":[],"x":1}\n\n'
        b'data: {"choices":[{"index":0,"delta":{"content":"b"},"finish_reason":"length"}]}\n\n'
        b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"length"}]}\n\ndata: [DONE]\n\n',
        # Only the role chunk: answered, nothing generated.
        b'data: {"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}\n\n'
        b"data: [DONE]\n\n",
        # Reasoning and tool calls are output; an empty tool_calls list is not.
        b'data: {"choices":[{"index":0,"delta":{"tool_calls":[]}}]}\n\n'
        b'data: {"choices":[{"index":0,"delta":{"reasoning":"hm"}}]}\n\n'
        b'data: {"choices":[{"index":0,"delta":{"tool_calls":[{"index":0}]}}]}\n\n'
        b'data: {"error":{"message":"Overloaded","code":529}}\n\n',
    ],
)
def test_usage_estimate_edge_cases_are_byte_identical(data: bytes) -> None:
    core_out, ref_out = both([bytes([b]) for b in data], prompt_tokens=3)
    assert core_out == ref_out


# --- deepinfra: every configuration the benchmark measures, plus edge cases -----------------

DEEPINFRA = [d for d in DIALECTS if d.name == "deepinfra"]
DEEPINFRA_CONFIGS = [dict(d.options) for d in DEEPINFRA]
TOKEN_FIXTURES = Path(__file__).parent / "fixtures" / "tokens"
OUTCOME = ("usage", "finish_reason", "error", "content_emitted", "done")
_DONE = b"data: [DONE]\n\n"


def both_deepinfra(pieces: list[bytes], **options: Any) -> tuple[bytes, bytes]:
    options = {"response_id": "chatcmpl-x", "created": 7, **options}
    core = StreamTranscoder("deepinfra", "m", **options)
    ref = DeepInfraReference("m", **options)
    core_out = b"".join(core.feed(p) for p in pieces) + core.finish()
    ref_out = b"".join(ref.feed(p) for p in pieces) + ref.finish()
    assert [getattr(ref, n) for n in OUTCOME] == [getattr(core, n) for n in OUTCOME]
    return core_out, ref_out


def test_the_benchmark_measures_the_gateways_configuration() -> None:
    assert {"stop": ("<|eot_id|>", "<|eom_id|>"), "think": "auto"} in DEEPINFRA_CONFIGS
    assert any(config.get("logprobs") for config in DEEPINFRA_CONFIGS)


@pytest.mark.parametrize("read_size", [0, 1, 7, 1024, 4096])
@pytest.mark.parametrize("config", DEEPINFRA_CONFIGS, ids=[d.label for d in DEEPINFRA])
@pytest.mark.parametrize("include_usage", [False, True])
def test_deepinfra_corpus_is_byte_identical(
    read_size: int, config: dict[str, Any], include_usage: bool
) -> None:
    body = deepinfra_corpus(300)
    core_out, ref_out = both_deepinfra(
        split(body, read_size), include_usage=include_usage, **config
    )
    assert core_out == ref_out
    reads_with_text = len(split(body, read_size)) - (read_size == 0)  # the final event has none
    assert core_out.count(b'"finish_reason":null') <= reads_with_text, "one chunk per read"
    assert core_out.endswith(b'"finish_reason":"stop"}]}\n\n' * (not include_usage) + _DONE)
    if include_usage:
        assert (
            b'"usage":{"prompt_tokens":14,"completion_tokens":301,"total_tokens":315,' in core_out
        )


@pytest.mark.parametrize("name", sorted(p.name for p in TOKEN_FIXTURES.glob("*.sse")))
@pytest.mark.parametrize(
    "config",
    [
        {"include_usage": True, "think": "off"},
        {"include_usage": True, "logprobs": True, "stop": ["<|eot_id|>", "<|eom_id|>"]},
        {"think": "open", "logprobs": True, "stop": ["ink>", " ti", "\n\n"], "prompt_tokens": 3},
    ],
    ids=["plain", "gateway-logprobs", "open-odd-stops"],
)
def test_token_fixtures_are_byte_identical_at_every_split(
    name: str, config: dict[str, Any]
) -> None:
    data = (TOKEN_FIXTURES / name).read_bytes()
    for cut in range(len(data) + 1):
        core_out, ref_out = both_deepinfra([data[:cut], data[cut:]], **config)
        assert core_out == ref_out, f"{name} split at {cut}"
    core_out, ref_out = both_deepinfra([bytes([b]) for b in data], **config)
    assert core_out == ref_out, f"{name} one byte at a time"


@pytest.mark.parametrize(
    "data",
    [
        # Cut short inside the final event; CR line endings; [DONE] before a final event.
        b'data: {"token": {"id": 1, "text": "a<|e", "logprob": -1e-07, "special": false}, "gen',
        b'data: {"token": {"id": 1, "text": "x\\ty", "logprob": -0.5, "special": false}}\r\r'
        b"data: [DONE]\r\r",
        b"data: not json\n\n",
        b'event: error\ndata: {"error": {"message": "Overloaded", "code": 529}}\n\n',
        # Reasoning split across tokens, a stop string inside the answer, non-ASCII text.
        'data: {"token": {"id": 1, "text": " <thi", "logprob": -0.1, "special": false}}\n\n'
        'data: {"token": {"id": 2, "text": "nk>h\u00e9 </th", "logprob": -0.2}}\n\n'
        'data: {"token": {"id": 3, "text": "ink>\\n\\n \U0001f600<|eo", "special": false}}\n\n'
        'data: {"token": {"id": 4, "text": "m_id|> junk", "logprob": 0, "special": false}}\n\n'
        'data: {"token": null, "generated_text": "...", "details": {"finish_reason": "length"}}'
        "\n\n".encode(),
    ],
)
@pytest.mark.parametrize("logprobs", [False, True])
def test_deepinfra_edge_cases_are_byte_identical(data: bytes, logprobs: bool) -> None:
    options = {"include_usage": True, "logprobs": logprobs, "stop": ["<|eot_id|>", "<|eom_id|>"]}
    whole = both_deepinfra([data], **options)
    assert whole[0] == whole[1]
    core_out, ref_out = both_deepinfra([bytes([b]) for b in data], **options)
    assert core_out == ref_out
