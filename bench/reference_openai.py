"""A pure-Python + orjson transcoder for the ``openai`` dialect: the baseline for core_bench.

It follows the same rules as the Rust ``StreamTranscoder`` on the stream path (SSE framing with
LF/CRLF/CR, comments, multi-line data, ``[DONE]``; id/object/created/model rewritten and put
first; usage captured and sent once at the end when asked, or estimated from the chunks that
carried output when the upstream reported none; in-stream errors; truncation), and
produces byte-identical output for compact upstream JSON such as the benchmark corpus
(tests/test_bench_reference.py checks that). It is written to be fast for Python — bytes.find,
one orjson round trip per event — so that the "N times faster" figure is honest.
"""

from __future__ import annotations

from typing import Any

import orjson

_DONE = b"data: [DONE]\n\n"


def _frame(payload: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


def _error(message: str, type_: str, code: str | None) -> dict[str, Any]:
    return {"message": message, "type": type_, "param": None, "code": code}


_OUTPUT_FIELDS = (
    "content",
    "reasoning_content",
    "reasoning",
    "refusal",
    "tool_calls",
    "function_call",
)


def _carries_output(delta: Any) -> bool:
    """Whether a delta holds anything but null, "" or [] in an output field (the core's test)."""
    if not isinstance(delta, dict):
        return False
    return any((v := delta.get(f)) is not None and v != "" and v != [] for f in _OUTPUT_FIELDS)


class ReferenceTranscoder:
    def __init__(
        self,
        model: str,
        *,
        response_id: str,
        created: int,
        include_usage: bool = False,
        prompt_tokens: int | None = None,
    ):
        self._head = {
            "id": response_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
        }
        self._include_usage = include_usage
        self._buffer = b""
        self._data: list[bytes] = []
        self._event = b""
        self._started = False
        self._prompt_tokens = prompt_tokens or 0
        self._answered = False  # a chunk with a choice went out
        self._output_seen = False
        self._output_chunks = 0  # one token each, the completion count when none is reported
        self.usage: dict[str, Any] | None = None
        self.finish_reason: str | None = None
        self.error: dict[str, Any] | None = None
        self.done = False

    def feed(self, chunk: bytes) -> bytes:
        if self.done:
            return b""
        if not self._started:
            if len(self._buffer) + len(chunk) < 3 and b"\xef\xbb\xbf".startswith(
                self._buffer + chunk
            ):
                self._buffer += chunk
                return b""
            chunk = self._buffer + chunk
            self._buffer = b""
            self._started = True
            if chunk.startswith(b"\xef\xbb\xbf"):
                chunk = chunk[3:]
        buffer = self._buffer + chunk if self._buffer else chunk
        out: list[bytes] = []
        start = 0
        size = len(buffer)
        while start < size and not self.done:
            lf = buffer.find(b"\n", start)
            cr = buffer.find(b"\r", start, lf if lf >= 0 else size)
            if cr >= 0:
                if cr + 1 == size:
                    break  # a CR at the end may be the first half of CRLF
                end, after = cr, cr + 2 if buffer[cr + 1 : cr + 2] == b"\n" else cr + 1
            elif lf >= 0:
                end, after = lf, lf + 1
            else:
                break
            self._line(buffer[start:end], out)
            start = after
        self._buffer = b"" if self.done else buffer[start:]
        return b"".join(out)

    def _line(self, line: bytes, out: list[bytes]) -> None:
        if not line:
            if self._data:
                data = b"\n".join(self._data)
                self._data = []
                event, self._event = self._event, b""
                self._dispatch(event, data, out)
            return
        if line[0] == 58:  # ":" comment
            return
        name, _, value = line.partition(b":")
        if value[:1] == b" ":
            value = value[1:]
        if name == b"data":
            self._data.append(value)
        elif name == b"event":
            self._event = value

    def _dispatch(self, event: bytes, data: bytes, out: list[bytes]) -> None:
        if event not in (b"", b"message", b"error"):
            return
        if data == b"[DONE]":
            out.append(self._close())
            return
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError:
            chunk = None
        if not isinstance(chunk, dict):
            out.append(
                self._fail(
                    _error(
                        "The upstream sent malformed data that is not a valid answer. "
                        "Retry the request, or use another model or provider if it keeps "
                        "happening.",
                        "upstream_error",
                        "upstream_bad_response",
                    )
                )
            )
            return
        error = chunk.get("error")
        if error or event == b"error":
            out.append(self._fail(self._upstream_error(chunk)))
            return
        usage = chunk.pop("usage", None)
        choices = chunk.get("choices")
        if usage is not None:
            self.usage = usage
            if not choices:
                return
        finishes = False
        for choice in choices or ():
            reason = choice.get("finish_reason")
            if reason is not None:
                self.finish_reason = reason
                finishes = True
        if isinstance(choices, list) and choices:
            self._count(choices, usage is None and not finishes)
        for key in ("id", "object", "created", "model"):
            chunk.pop(key, None)
        out.append(_frame({**self._head, **chunk}))

    def _count(self, choices: list[Any], skimmed: bool) -> None:
        """Counts a chunk with choices as the core does: once output went out, a chunk it does
        not parse (``skimmed``: no usage, no finish reason) is one more token."""
        self._answered = True
        if self._output_seen and skimmed:
            self._output_chunks += 1
        elif any(isinstance(c, dict) and _carries_output(c.get("delta")) for c in choices):
            self._output_seen = True
            self._output_chunks += 1

    def _estimate_missing_usage(self) -> None:
        if self.usage is None and self._answered:
            prompt, completion = self._prompt_tokens, self._output_chunks
            self.usage = {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
                "estimated": True,
            }

    @staticmethod
    def _upstream_error(chunk: dict[str, Any]) -> dict[str, Any]:
        error = chunk.get("error")
        if isinstance(error, dict):
            message = error.get("message")
            type_ = error.get("type")
            code = error.get("code")
            return {
                "message": message
                if isinstance(message, str)
                else "The upstream reported an error",
                "type": type_ if isinstance(type_, str) else "upstream_error",
                "param": error.get("param") if isinstance(error.get("param"), str) else None,
                "code": str(code) if isinstance(code, str | int) else None,
            }
        type_ = chunk.get("error_type")
        return _error(str(error), type_ if isinstance(type_, str) else "upstream_error", None)

    def _fail(self, error: dict[str, Any]) -> bytes:
        self._estimate_missing_usage()
        self.error = error
        self.done = True
        return _frame({"error": error}) + _DONE

    def _close(self) -> bytes:
        self._estimate_missing_usage()
        self.done = True
        parts = []
        if self.finish_reason is None:
            choice = {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}
            parts.append(_frame({**self._head, "choices": [choice]}))
        if self._include_usage and self.usage is not None:
            parts.append(_frame({**self._head, "choices": [], "usage": self.usage}))
        parts.append(_DONE)
        return b"".join(parts)

    def finish(self) -> bytes:
        if self.done:
            return b""
        out: list[bytes] = []
        if self._buffer or self._data:
            self._line(self._buffer.rstrip(b"\r"), out)
            self._buffer = b""
            if not self.done:
                self._line(b"", out)
        if self.done:
            return b"".join(out)
        if self.finish_reason is None:
            out.append(
                self._fail(
                    _error(
                        "The upstream closed the stream before it finished, so the answer is "
                        "incomplete. Retry the request.",
                        "upstream_error",
                        "upstream_stream_truncated",
                    )
                )
            )
            return b"".join(out)
        out.append(self._close())
        return b"".join(out)
