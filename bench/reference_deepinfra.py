"""A pure-Python + orjson transcoder for the ``deepinfra`` dialect (DeepInfra's native token
stream, PROTOCOLS.md §1.4): the baseline core_bench measures the Rust core against.

It follows the Rust ``StreamTranscoder("deepinfra", ..., stream=True)`` rule for rule, so its
output is byte-identical (tests/test_bench_reference.py checks that at several read sizes):

- SSE framing (LF, CRLF, CR, a UTF-8 BOM, comments, multi-line data), one ``orjson.loads`` per
  event;
- everything one ``feed`` released goes out as ONE chunk (content and reasoning side by side,
  the first chunk with ``role``), a read that released nothing sends nothing;
- the text stage: stop strings (the text is cut where the earliest one starts; only a tail that
  could still become one is held back), then ``<think>`` tags (``think`` = off, auto, open);
- ``logprobs`` entries ``{"token", "logprob", "bytes", "top_logprobs"}`` that wait for their
  text and are dropped after a stop string;
- the final event (``generated_text`` or ``details``): finish reason (``length`` stays, the rest
  is ``stop``), usage (first reported count wins, else counted / ``prompt_tokens`` and marked
  ``estimated``), ``inference_status.cost`` as ``estimated_cost`` written as the upstream wrote
  it; ``[DONE]`` before it; in-stream error objects; malformed data; a stream cut short.

Not covered (the benchmark never sees them): ``stream=False`` bodies, the core's 16 MiB event
limit, garbled events that are JSON objects with members of the wrong type (the core refuses
the whole event), and the text of exotic values (an error type with control characters, a
float error code). Logprobs are written by orjson, except tiny ones
(|x| < 1e-4) which orjson prints without an exponent: those are written as Python's
``repr``, which is what DeepInfra's ``json.dumps`` sent — the core copies the upstream's text.

Written the way a Python developer would write it for speed (``bytes.find`` framing, one
orjson round trip per event, ``str.find`` for stop strings), so the "N times faster" figure
is honest.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import orjson

_DONE = b"data: [DONE]\n\n"
_BOM = b"\xef\xbb\xbf"
# Rust's `char::is_whitespace` (Unicode White_Space), which `str.strip()` does not match
# exactly (Python also strips \x1c-\x1f).
_WHITESPACE = "\t\n\x0b\x0c\r \x85\xa0\u1680" + "".join(map(chr, range(0x2000, 0x200B)))
_WHITESPACE += "\u2028\u2029\u202f\u205f\u3000"
_OPEN, _CLOSE = "<think>", "</think>"
_COST = re.compile(rb'"cost"\s*:\s*(-?[0-9][0-9.eE+-]*)')
_U64 = 2**64

_BAD_RESPONSE = {
    "message": "The upstream sent malformed data that is not a valid answer. Retry the request, "
    "or use another model or provider if it keeps happening.",
    "type": "upstream_error",
    "param": None,
    "code": "upstream_bad_response",
}
_TRUNCATED = {
    "message": "The upstream closed the stream before it finished, so the answer is "
    "incomplete. Retry the request.",
    "type": "upstream_error",
    "param": None,
    "code": "upstream_stream_truncated",
}


class _StopFilter:
    """Cuts the text where the earliest stop string starts; holds back only a tail that more
    text could turn into one. Positions are in characters (the core counts bytes; both order
    the same character boundaries, which is all they are compared for)."""

    def __init__(self, stops: Sequence[str]) -> None:
        self.stops = tuple(stops)
        self.held = ""
        self.pushed = 0
        self.released = 0
        self.matched = False

    @property
    def cut(self) -> int | None:
        return self.released if self.matched else None

    def push(self, text: str) -> str:
        self.pushed += len(text)
        if self.matched or not text:
            return ""
        if not self.stops:
            self.released += len(text)
            return text
        work = self.held + text if self.held else text
        self.held = ""
        match = self._earliest_match(work)
        open_at = self._earliest_open(work)
        if match is not None and (open_at is None or open_at >= match):
            return self._cut(work, match)
        keep = len(work) if open_at is None else open_at
        self.held = work[keep:]
        self.released += keep
        return work[:keep]

    def finish(self) -> str:
        if self.matched or not self.held:
            return ""
        work, self.held = self.held, ""
        match = self._earliest_match(work)
        if match is not None:
            return self._cut(work, match)
        self.released += len(work)
        return work

    def _cut(self, work: str, at: int) -> str:
        self.matched = True
        self.released += at
        return work[:at]

    def _earliest_match(self, work: str) -> int | None:
        found = [at for stop in self.stops if (at := work.find(stop)) >= 0]
        return min(found) if found else None

    def _earliest_open(self, work: str) -> int | None:
        """The earliest position from which the rest of ``work`` is a proper prefix of a stop."""
        best = None
        for stop in self.stops:
            at = work.find(stop[0], max(0, len(work) - len(stop) + 1))
            while at >= 0:
                if stop.startswith(work[at:]):
                    best = at if best is None else min(best, at)
                    break
                at = work.find(stop[0], at + 1)
        return best


class _ThinkSplitter:
    """``<think>…</think>`` → reasoning; only what could still be part of a tag is held."""

    def __init__(self, mode: str) -> None:
        if mode not in ("off", "auto", "open"):
            raise ValueError(f"unknown think mode {mode!r}; use one of: off, auto, open")
        self.state = {"off": "content", "auto": "start", "open": "reasoning"}[mode]
        self.held = ""

    def push(self, rest: str, content: list[str], reasoning: list[str]) -> None:
        if self.held:
            rest, self.held = self.held + rest, ""
        while rest:
            state = self.state
            if state == "content":
                content.append(rest)
                return
            if state == "start":
                trimmed = rest.lstrip(_WHITESPACE)
                if trimmed.startswith(_OPEN):
                    self.state, rest = "reasoning", trimmed[len(_OPEN) :]
                elif _OPEN.startswith(trimmed):
                    self.held = rest  # whitespace, perhaps a partial <think>
                    return
                else:
                    self.state = "content"
            elif state == "reasoning":
                at = rest.find(_CLOSE)
                if at >= 0:
                    if at:
                        reasoning.append(rest[:at])
                    self.state, rest = "after", rest[at + len(_CLOSE) :]
                else:
                    keep = _partial_close(rest)
                    if len(rest) > keep:
                        reasoning.append(rest[: len(rest) - keep])
                    self.held = rest[len(rest) - keep :]
                    return
            else:  # after </think>: the whitespace before the answer is dropped
                rest = rest.lstrip(_WHITESPACE)
                if rest:
                    self.state = "content"

    def finish(self, content: list[str], reasoning: list[str]) -> None:
        if self.held:
            (reasoning if self.state == "reasoning" else content).append(self.held)
            self.held = ""


def _partial_close(text: str) -> int:
    """The length of the longest end of ``text`` that is a proper start of ``</think>``."""
    for n in range(min(len(_CLOSE) - 1, len(text)), 0, -1):
        if text.endswith(_CLOSE[:n]):
            return n
    return 0


def _logprob(value: Any) -> Any:
    # DeepInfra writes floats with Python's json.dumps (repr); orjson agrees except below 1e-4,
    # where repr uses an exponent and orjson does not.
    if type(value) is float and value and -1e-4 < value < 1e-4:
        return orjson.Fragment(repr(value))
    return value


def _entry(token: dict[str, Any], top: Any) -> dict[str, Any]:
    text = token["text"]
    alternatives = [  # TGI's top_tokens; DeepInfra sends none
        {
            "token": t["text"],
            "logprob": _logprob(t.get("logprob")),
            "bytes": list(t["text"].encode()),
        }
        for t in (top or ())
    ]
    return {
        "token": text,
        "logprob": _logprob(token.get("logprob")),
        "bytes": list(text.encode()),
        "top_logprobs": alternatives,
    }


def _count(value: Any) -> int | None:
    """A token count: a non-negative JSON integer."""
    if type(value) is int and 0 <= value < _U64:
        return value
    return None


def _first(*values: Any) -> int | None:
    return next((c for v in values if (c := _count(v)) is not None), None)


def _upstream_error(event: dict[str, Any]) -> dict[str, Any]:
    """The error an event's ``error``/``error_message``/``error_type`` members describe."""
    error, message, kind = event.get("error"), event.get("error_message"), event.get("error_type")
    obj = error if isinstance(error, dict) else {}

    def member(name: str) -> str | None:
        value = obj.get(name)
        return value if isinstance(value, str) and value else None

    text = error if isinstance(error, str) else message if isinstance(message, str) else None
    text = (text if text is not None else member("message")) or None
    kind = (kind if isinstance(kind, str) else member("type")) or None
    if kind is not None and "overloaded" in kind:
        code = "upstream_overloaded"
        advice = "The model is busy: retry later, or use another model or provider."
    elif kind is not None and "validation" in kind:
        code = "upstream_stream_error"
        advice = (
            "If the request is at fault (for example max_tokens beyond the model's context "
            "length), fix it; otherwise retry the request."
        )
    else:
        code = "upstream_stream_error"
        advice = "Retry the request, or use another model or provider if it keeps happening."
    said = "The upstream reported an error"
    if kind is not None:
        said += ' of type "' + kind.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if text is not None:
        said += ": " + text.rstrip(".")
    return {
        "message": said + ". " + advice,
        "type": "upstream_error",
        "param": None,
        "code": code,
    }


def _error_object(obj: dict[str, Any]) -> dict[str, Any]:
    def string(name: str) -> str | None:
        value = obj.get(name)
        return value if isinstance(value, str) and value else None

    code = obj.get("code")
    return {
        "message": string("message") or "The upstream reported an error",
        "type": string("type") or "upstream_error",
        "param": string("param"),
        "code": code if isinstance(code, str) else str(code) if type(code) is int else None,
    }


def _error_event(data: bytes) -> dict[str, Any]:
    """The data of an SSE ``event: error``: an envelope with a truthy ``error``, a bare error
    object, anything else a generic error (never echoed)."""
    generic = {
        "message": "The upstream reported an error",
        "type": "upstream_error",
        "param": None,
        "code": None,
    }
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError:
        return generic
    if not isinstance(obj, dict):
        return generic
    error = obj.get("error")
    if error:
        if isinstance(error, dict):
            return _error_object(error)
        if isinstance(error, str):
            kind = obj.get("error_type")
            kind = kind if isinstance(kind, str) else "upstream_error"
            return {"message": error, "type": kind, "param": None, "code": None}
        return generic
    return _error_object(obj)


class DeepInfraReference:
    def __init__(
        self,
        model: str,
        *,
        response_id: str,
        created: int,
        include_usage: bool = False,
        logprobs: bool = False,
        stop: Sequence[str] = (),
        think: str = "auto",
        prompt_tokens: int | None = None,
    ) -> None:
        if any(not s for s in stop):
            raise ValueError("stop strings must not be empty; remove the empty string from 'stop'")
        self._head = {
            "id": response_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
        }
        self._include_usage = include_usage
        self._logprobs = logprobs
        self._prompt_tokens = prompt_tokens
        self._stop = _StopFilter(stop)
        self._think = _ThinkSplitter(think)
        # The plain case (no stop strings, no tags) skips the text stage.
        self._plain = not stop and think == "off"
        self._content: list[str] = []
        self._reasoning: list[str] = []
        self._waiting: list[tuple[int, bool, dict[str, Any]]] = []  # (start, empty, entry)
        self._entries: list[dict[str, Any]] = []  # released for the next chunk
        self._role_sent = False
        self._token_events = 0
        self._buffer = b""
        self._started = False
        self._after_cr = False
        self._data: list[bytes] = []
        self._name = b""  # the event's `event:` field
        self._raw_cost: bytes | None = None
        self._closed = False
        self.usage: dict[str, Any] | None = None
        self.finish_reason: str | None = None
        self.error: dict[str, Any] | None = None
        self.content_emitted = False
        self.done = False

    # --- framing ---------------------------------------------------------------------------

    def feed(self, chunk: bytes) -> bytes:
        if self._closed:
            return b""
        if not self._started:
            if len(self._buffer) + len(chunk) < 3 and _BOM.startswith(self._buffer + chunk):
                self._buffer += chunk
                return b""
            chunk, self._buffer, self._started = self._buffer + chunk, b"", True
            if chunk.startswith(_BOM):
                chunk = chunk[3:]
        if self._after_cr and chunk:
            self._after_cr = False
            if chunk[:1] == b"\n":
                chunk = chunk[1:]
        buffer = self._buffer + chunk if self._buffer else chunk
        out: list[bytes] = []
        start, size = 0, len(buffer)
        while start < size and not self._closed:
            lf = buffer.find(b"\n", start)
            cr = buffer.find(b"\r", start, lf if lf >= 0 else size)
            if cr >= 0:
                end = cr
                if cr + 1 == size:
                    after, self._after_cr = size, True  # an LF next read belongs to this CR
                else:
                    after = cr + 2 if buffer[cr + 1] == 10 else cr + 1
            elif lf >= 0:
                end, after = lf, lf + 1
            else:
                break
            self._line(buffer[start:end], out, False)
            start = after
        self._buffer = b"" if self._closed else buffer[start:]
        if not self._closed:
            self._flush(out, closing=False)
        return b"".join(out)

    def _line(self, line: bytes, out: list[bytes], unterminated: bool) -> None:
        if not line:
            if self._data:
                data = self._data[0] if len(self._data) == 1 else b"\n".join(self._data)
                self._data = []
                name, self._name = self._name, b""
                if name in (b"", b"message"):
                    self._event(data, out, unterminated)
                elif name == b"error":
                    self._fail(out, _error_event(data))
            return
        if line[0] == 58:  # ":" comment
            return
        name, _, value = line.partition(b":")
        if value[:1] == b" ":
            value = value[1:]
        if name == b"data":
            self._data.append(value)
        elif name == b"event":
            self._name = value

    # --- events ----------------------------------------------------------------------------

    def _event(self, data: bytes, out: list[bytes], unterminated: bool) -> None:
        data = data.strip(b" \t\n\r\x0c")
        if not data:
            return
        if data.startswith(b"[DONE]"):
            self._end_without_final(out)
            self._close(out)
            return
        try:
            event = orjson.loads(data)
            if type(event) is not dict:
                raise ValueError("not an object")
            if (
                event.get("error") is not None
                or event.get("error_message") is not None
                or event.get("error_type") is not None
            ):
                self._fail(out, _upstream_error(event))
                return
            token = event.get("token")
            if token is not None:
                self._token_events += 1
                if not token.get("special", False):
                    self._take(token, event.get("top_tokens"))
            if event.get("generated_text") is not None or event.get("details") is not None:
                self._final(event, data, out)
        except (ValueError, TypeError, KeyError, AttributeError):
            self._fail(out, _TRUNCATED if unterminated else _BAD_RESPONSE)

    def _take(self, token: dict[str, Any], top: Any) -> None:
        text = token["text"]
        if type(text) is not str:
            raise TypeError("token.text is not a string")
        if self._logprobs:
            self._waiting.append((self._stop.pushed, not text, _entry(token, top)))
        if self._plain:
            self._stop.pushed += len(text)
            self._stop.released += len(text)
            if text:
                self._content.append(text)
            return
        released = self._stop.push(text)
        if released:
            self._think.push(released, self._content, self._reasoning)

    def _final(self, event: dict[str, Any], data: bytes, out: list[bytes]) -> None:
        details = event.get("details") or {}
        status = event.get("inference_status") or {}
        reason = "length" if details.get("finish_reason") == "length" else "stop"
        completion = _first(
            status.get("tokens_generated"),
            event.get("num_output_tokens"),
            event.get("num_tokens"),
            details.get("generated_tokens"),
        )
        prompt = _first(
            status.get("tokens_input"),
            event.get("num_input_tokens"),
            details.get("input_tokens"),
            details.get("input_length"),
        )
        cost = status.get("cost")
        raw_cost = None
        if type(cost) in (int, float):
            # The cost goes out as the upstream wrote the number: find its text.
            found = _COST.search(data, data.rfind(b'"inference_status"'))
            raw_cost = found.group(1) if found else None
        self._release_all(out)
        self._finish_chunk(out, reason)
        self.finish_reason = reason
        self._set_usage(completion, prompt, cost, raw_cost)
        self._close(out)

    def _set_usage(
        self, completion: int | None, prompt: int | None, cost: Any = None, raw: bytes | None = None
    ) -> None:
        used_completion = self._token_events if completion is None else completion
        used_prompt = prompt if prompt is not None else self._prompt_tokens or 0
        usage: dict[str, Any] = {
            "prompt_tokens": used_prompt,
            "completion_tokens": used_completion,
            "total_tokens": min(used_prompt + used_completion, _U64 - 1),
        }
        if raw is not None:
            usage["estimated_cost"] = cost
        if completion is None or prompt is None:
            usage["estimated"] = True
        self.usage = usage
        self._raw_cost = raw

    # --- output ----------------------------------------------------------------------------

    def _release(self) -> None:
        """Moves the logprob entries whose text passed the stop strings to the next chunk."""
        released, cut = self._stop.released, self._stop.cut
        taken = 0
        for start, empty, entry in self._waiting:
            if cut is not None and start >= cut:
                self._waiting = []
                return
            if not (start < released or (empty and start <= released)):
                break
            self._entries.append(entry)
            taken += 1
        if taken:
            del self._waiting[:taken]

    def _flush(self, out: list[bytes], closing: bool) -> None:
        """What was released since the last chunk goes out as one chunk."""
        if self._logprobs:
            self._release()
        if not self._content and not self._reasoning and not (closing and self._entries):
            return
        delta: dict[str, Any] = {}
        if not self._role_sent:
            delta["role"] = "assistant"
            self._role_sent = True
        if self._content:
            delta["content"] = "".join(self._content)
            self._content = []
        if self._reasoning:
            delta["reasoning_content"] = "".join(self._reasoning)
            self._reasoning = []
        if len(delta) > 1 or "role" not in delta:
            self.content_emitted = True
        logprobs = None
        if self._logprobs:
            logprobs = {"content": self._entries, "refusal": None}
            self._entries = []
        choice = {"index": 0, "delta": delta, "logprobs": logprobs, "finish_reason": None}
        out.append(b"data: " + orjson.dumps({**self._head, "choices": [choice]}) + b"\n\n")

    def _release_all(self, out: list[bytes]) -> None:
        if not self._plain:
            held = self._stop.finish()
            if held:
                self._think.push(held, self._content, self._reasoning)
            self._think.finish(self._content, self._reasoning)
        self._flush(out, closing=True)

    def _finish_chunk(self, out: list[bytes], reason: str) -> None:
        choice = {"index": 0, "delta": {}, "logprobs": None, "finish_reason": reason}
        out.append(b"data: " + orjson.dumps({**self._head, "choices": [choice]}) + b"\n\n")

    def _end_without_final(self, out: list[bytes]) -> None:
        """No final event (``[DONE]``, an error, a cut): release everything, count the usage."""
        self._release_all(out)
        self._set_usage(None, None)

    def _close(self, out: list[bytes]) -> None:
        self._closed = self.done = True
        if self.finish_reason is None:
            self._finish_chunk(out, "stop")
        if self._include_usage and self.usage is not None:
            usage = self.usage
            if self._raw_cost is not None:
                usage = {**usage, "estimated_cost": orjson.Fragment(self._raw_cost)}
            out.append(b"data: " + orjson.dumps({**self._head, "choices": [], "usage": usage}))
            out.append(b"\n\n")
        out.append(_DONE)

    def _fail(self, out: list[bytes], error: dict[str, Any]) -> None:
        self._end_without_final(out)
        self._closed = self.done = True
        self.error = dict(error)  # not the shared constants
        out.append(b"data: " + orjson.dumps({"error": error}) + b"\n\n" + _DONE)

    def finish(self) -> bytes:
        if self.done:
            return b""
        out: list[bytes] = []
        if self._buffer:
            self._line(self._buffer, out, False)
            self._buffer = b""
        if not self._closed:
            self._line(b"", out, True)
        if not self._closed:
            self._fail(out, _TRUNCATED)
        return b"".join(out)
