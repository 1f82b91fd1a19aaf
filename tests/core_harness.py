"""Drive the Rust transcoder over a recorded fixture and read its OpenAI output back.

The transcoder is sans-IO: any split of the input bytes, down to one byte at a time, must give
the same result (DESIGN.md). Every ``test_core_*`` file proves that with ``Transcoding``: it runs
a fixture whole, split in two at every byte position, and one byte at a time, and demands that
all runs agree, either byte for byte (``transcode``: dialects that write one chunk per upstream
event) or in what a client makes of the stream (``transcode_meaning``: dialects whose chunks
follow the reads, so only the meaning is independent of the split).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from openai.types.chat import ChatCompletion, ChatCompletionChunk

from sluicegate._core import StreamTranscoder

# What the gateway reads off a transcoder once the stream is over; it must not depend on splits.
OUTCOME = ("usage", "finish_reason", "content_emitted", "error", "done")
DONE = b"data: [DONE]\n\n"


def outcome(transcoder: StreamTranscoder) -> tuple[Any, ...]:
    return tuple(getattr(transcoder, name) for name in OUTCOME)


def splits(data: bytes) -> Iterator[tuple[str, list[bytes]]]:
    """Every two-way split of ``data``, then one byte at a time; each named for the messages."""
    for cut in range(len(data) + 1):
        yield f"split at byte {cut}", [data[:cut], data[cut:]]
    yield "one byte at a time", [data[i : i + 1] for i in range(len(data))]


def events(stream: bytes) -> list[bytes]:
    """An SSE stream's events, each with its closing blank line."""
    return [event + b"\n\n" for event in stream.split(b"\n\n") if event]


def frames(out: bytes) -> list[bytes]:
    """The payloads of the ``data:`` frames the transcoder wrote (``[DONE]`` included)."""
    assert out.endswith(b"\n\n"), out[-40:]
    parts = out[:-2].split(b"\n\n")
    assert all(part.startswith(b"data: ") for part in parts), parts
    return [part[len(b"data: ") :] for part in parts]


def completion(out: bytes) -> dict[str, Any]:
    """A non-streaming answer, checked against the OpenAI SDK's completion model."""
    ChatCompletion.model_validate_json(out)
    return json.loads(out)


@dataclass(frozen=True)
class Transcoding:
    """The transcoder a test file exercises: its default dialect and the identity (model,
    response id, created) every chunk it writes must carry."""

    dialect: str
    model: str
    response_id: str
    created: int = 1700000000

    @property
    def head(self) -> bytes:
        """The bytes every chunk of this identity starts with, up to the ``choices``."""
        return (
            f'data: {{"id":"{self.response_id}","object":"chat.completion.chunk",'
            f'"created":{self.created},"model":"{self.model}"'
        ).encode()

    def new(self, dialect: str | None = None, **options: Any) -> StreamTranscoder:
        return StreamTranscoder(
            dialect or self.dialect,
            self.model,
            response_id=self.response_id,
            created=self.created,
            **options,
        )

    def run(
        self, pieces: list[bytes], dialect: str | None = None, **options: Any
    ) -> tuple[bytes, StreamTranscoder]:
        """Feed ``pieces`` as successive reads, then finish: all the bytes, and the transcoder."""
        transcoder = self.new(dialect, **options)
        out = b"".join(transcoder.feed(piece) for piece in pieces) + transcoder.finish()
        return out, transcoder

    def _every_split(
        self,
        data: bytes,
        dialect: str | None,
        options: dict[str, Any],
        view: Callable[[bytes], object],
    ) -> tuple[bytes, StreamTranscoder]:
        whole, reference = self.run([data], dialect, **options)
        expected = view(whole)
        for how, pieces in splits(data):
            out, transcoder = self.run(pieces, dialect, **options)
            assert view(out) == expected, f"{how} changed the output"
            assert outcome(transcoder) == outcome(reference), how
        return whole, reference

    def transcode(
        self, data: bytes, dialect: str | None = None, **options: Any
    ) -> tuple[bytes, StreamTranscoder]:
        """Whole, split in two at every position, one byte at a time: all must agree byte for
        byte, and in the outcome. Returns the whole run's bytes and its transcoder."""
        return self._every_split(data, dialect, options, lambda out: out)

    def transcode_meaning(
        self, data: bytes, dialect: str | None = None, **options: Any
    ) -> tuple[bytes, dict[str, Any], StreamTranscoder]:
        """Whole, split in two at every position, one byte at a time: a stream's meaning (how
        many chunks aside) and the outcome must agree; a body (``stream=False``) must agree byte
        for byte. Returns the whole run's bytes, its meaning ({} for a body) and its transcoder."""
        streaming = options.get("stream", True)

        def view(out: bytes) -> object:
            return dict(self.meaning(out), chunks=None) if streaming else out

        whole, reference = self._every_split(data, dialect, options, view)
        return whole, self.meaning(whole) if streaming else {}, reference

    def chunks(self, out: bytes) -> list[dict[str, Any]]:
        """The JSON chunks of a stream (not the ``[DONE]``), each checked against the OpenAI
        SDK's chunk model and this identity (error events excepted)."""
        body = frames(out)
        assert body[-1] == b"[DONE]" and body.count(b"[DONE]") == 1
        parsed = []
        for frame in body[:-1]:
            value = json.loads(frame)
            if "error" not in value:
                ChatCompletionChunk.model_validate_json(frame)
                assert (value["id"], value["created"], value["model"]) == (
                    self.response_id,
                    self.created,
                    self.model,
                )
                assert value["object"] == "chat.completion.chunk"
            parsed.append(value)
        return parsed

    def deltas(self, out: bytes) -> list[dict[str, Any]]:
        """The deltas of the content chunks (not the finish, usage or error chunks)."""
        return [
            c["choices"][0]["delta"]
            for c in self.chunks(out)
            if c.get("choices") and c["choices"][0]["finish_reason"] is None
        ]

    def meaning(self, out: bytes) -> dict[str, Any]:
        """What a client makes of a stream, whatever its chunking: the concatenated content and
        reasoning, each tool call (id, type, name, concatenated arguments), the logprob entries,
        the finish reason, usage and error, and how many content chunks carried them. Checks on
        the way that a call's id, type and name come only in its first piece."""
        seen: dict[str, Any] = {
            "content": "",
            "reasoning": "",
            "calls": [],
            "logprobs": [],
            "finish_reason": None,
            "usage": None,
            "error": None,
            "chunks": 0,
        }
        for value in self.chunks(out):
            if "error" in value:
                seen["error"] = value["error"]
                continue
            if not value["choices"]:
                seen["usage"] = value["usage"]
                continue
            (choice,) = value["choices"]
            assert choice["index"] == 0
            delta = choice["delta"]
            seen["content"] += delta.get("content") or ""
            seen["reasoning"] += delta.get("reasoning_content") or ""
            for piece in delta.get("tool_calls") or []:
                add_call_piece(seen["calls"], piece)
            if choice["logprobs"] is not None:
                seen["logprobs"] += choice["logprobs"]["content"]
            if choice["finish_reason"] is not None:
                assert seen["finish_reason"] is None
                seen["finish_reason"] = choice["finish_reason"]
            else:
                seen["chunks"] += 1
        return seen

    def finish_chunk(self, reason: str) -> bytes:
        return (
            self.head
            + b',"choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"'
            + reason.encode()
            + b'"}]}\n\n'
        )

    def usage_chunk(self, usage: bytes) -> bytes:
        return self.head + b',"choices":[],"usage":' + usage + b"}\n\n"

    def delta_chunk(self, delta: bytes) -> bytes:
        return (
            self.head
            + b',"choices":[{"index":0,"delta":{'
            + delta
            + b'},"logprobs":null,"finish_reason":null}]}\n\n'
        )


def add_call_piece(calls: list[dict[str, Any]], piece: dict[str, Any]) -> None:
    """Concatenate one streamed tool-call piece into ``calls`` as an OpenAI client does: the
    first piece of a call opens it (id, type, name), later ones only add argument text."""
    if piece["index"] == len(calls):
        assert set(piece) == {"index", "id", "type", "function"}, piece
        calls.append(
            {
                "id": piece["id"],
                "type": piece["type"],
                "name": piece["function"]["name"],
                "arguments": piece["function"]["arguments"],
            }
        )
    else:
        assert piece["index"] == len(calls) - 1, "pieces of the open call only"
        assert set(piece) == {"index", "function"}, piece
        assert set(piece["function"]) == {"arguments"}, piece
        calls[-1]["arguments"] += piece["function"]["arguments"]
