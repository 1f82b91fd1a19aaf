"""`#sim key=value ...` directives: what a simulated provider should do for one request.

The directive rides in the last user message (so it survives any dialect the gateway rebuilds
the request into) or in the ``x-sim`` header, which wins key by key. Native text-generation
dialects receive the whole conversation as one rendered prompt; for them the last directive in
the prompt counts (``find_last_directive``).

Keys beyond the common ones (tokens, timing, status, early endings, garbage, ping, crlf):
``think=N`` opens the answer with a ``<think>`` block of N reasoning tokens, ``stop_at=N`` ends
it with the request's first stop string after N answer tokens, ``multibyte=1`` uses answer
words with multi-byte UTF-8. Native dialects only: ``native_usage=0`` leaves token counts and
cost out of the answer, ``done=1`` appends ``data: [DONE]``, ``error_style=tgi`` reports an
in-stream error the way TGI does instead of DeepInfra's way. TGI only: ``overloaded=1``
answers "Model is overloaded", and ``overflow=1`` without a status is its context-length
validation error.

Native text generation (DeepInfra ``/v1/inference``, TGI ``/generate``), where ``tool=1``
answers with a tool call in the markup of the prompt's template family (hermes, llama3,
deepseek, mistral) and ``parallel=1`` makes it two calls: ``text_before=1`` puts ``tokens`` answer
words before the call (with llama3 only together with ``python_tag=1``), ``python_tag=1`` opens
a llama3 call with ``<|python_tag|>``, ``malformed=1`` starts a call and breaks it off with
invalid JSON before the end-of-turn token.

Ollama only (``/api/chat``), where ``think=N`` means N ``message.thinking`` lines and only
applies when the request asks to think: ``mixed=1`` puts the last thinking and the first answer
on one line, ``parallel=1`` makes ``tool=1`` two calls on one line, ``done_text=1`` sends the
last token on the done line instead of an empty trailer, ``no_reason=1`` leaves ``done_reason``
out, ``no_counts=1`` leaves ``prompt_eval_count`` and ``eval_count`` out.

Anthropic only (``/v1/messages``), where ``think=N`` is a thinking block that only comes when the
request enables thinking and ``parallel=1`` makes ``tool=1`` two tool_use blocks:
``cache=N`` reports N more input tokens read from the prompt cache (and puts the cache fields in
the stream's usage), ``refusal=1`` ends the answer with ``stop_reason: "refusal"``,
``noinput=1`` sends tool_use blocks without any ``input_json_delta``, ``preamble=1`` opens a
tool answer with a text block of ``tokens`` words, as Claude often says what it is about to do.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from sluicegate.errors import GatewayError

_DIRECTIVE = re.compile(r"#sim\b([^\r\n]*)")
_INT_KEYS = frozenset(
    {
        "tokens",
        "ttft_ms",
        "gap_ms",
        "headers_ms",
        "status",
        "error_after",
        "truncate_after",
        "reset_after",
        "stall_after",
        "think",
        "stop_at",
        "cache",
    }
)
_FLAG_KEYS = frozenset(
    {
        "garbage",
        "tool",
        "usage_on_finish",
        "ping",
        "crlf",
        "native_usage",
        "done",
        "multibyte",
        "overflow",
        "overloaded",
        "mixed",
        "parallel",
        "done_text",
        "no_reason",
        "no_counts",
        "refusal",
        "noinput",
        "preamble",
        "text_before",
        "python_tag",
        "malformed",
    }
)
# Keys whose value is one word out of a fixed set; the first is the default.
_CHOICE_KEYS: dict[str, tuple[str, ...]] = {"error_style": ("deepinfra", "tgi")}
KNOWN_KEYS = _INT_KEYS | _FLAG_KEYS | set(_CHOICE_KEYS) | {"retry_after"}


@dataclass(frozen=True, slots=True)
class Behaviour:
    tokens: int = 8
    ttft_ms: int = 0
    gap_ms: int = 0
    headers_ms: int = 0
    status: int | None = None
    retry_after: str = "1"
    error_after: int | None = None
    truncate_after: int | None = None
    reset_after: int | None = None
    stall_after: int | None = None
    garbage: bool = False
    tool: bool = False
    usage_on_finish: bool = False
    ping: bool = False
    crlf: bool = False
    think: int = 0
    stop_at: int | None = None
    native_usage: bool = True
    done: bool = False
    multibyte: bool = False
    overflow: bool = False  # with status=400: the answer is a context-length error
    overloaded: bool = False  # TGI: "Model is overloaded" (429, or in-stream when streaming)
    error_style: str = _CHOICE_KEYS["error_style"][0]
    mixed: bool = False
    parallel: bool = False
    done_text: bool = False
    no_reason: bool = False
    no_counts: bool = False
    cache: int | None = None
    refusal: bool = False
    noinput: bool = False
    preamble: bool = False
    text_before: bool = False
    python_tag: bool = False
    malformed: bool = False


def _bad(message: str, key: str | None = None) -> GatewayError:
    return GatewayError(400, message, "invalid_request_error", "invalid_sim_directive", key)


def _parse_pairs(text: str, source: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for item in text.split():
        key, sep, value = item.partition("=")
        if not sep or not value:
            raise _bad(f"{source}: '{item}' is not key=value; write e.g. '#sim tokens=5'")
        if key not in KNOWN_KEYS:
            known = ", ".join(sorted(KNOWN_KEYS))
            raise _bad(f"{source}: unknown key '{key}'; known keys: {known}", key)
        pairs[key] = value
    return pairs


def _convert(key: str, value: str, source: str) -> int | bool | str:
    if key == "retry_after":
        try:
            if float(value) < 0:
                raise ValueError
        except ValueError:
            raise _bad(f"{source}: retry_after={value} must be a number of seconds", key) from None
        return value
    if key in _CHOICE_KEYS:
        if value not in _CHOICE_KEYS[key]:
            allowed = " or ".join(_CHOICE_KEYS[key])
            raise _bad(f"{source}: {key}={value} must be {allowed}", key)
        return value
    if not value.isdigit():
        raise _bad(f"{source}: {key}={value} must be a whole number >= 0", key)
    number = int(value)
    if key in _FLAG_KEYS:
        if number not in (0, 1):
            raise _bad(f"{source}: {key}={value} must be 0 or 1", key)
        return bool(number)
    if key == "status" and not 400 <= number <= 599:
        raise _bad(f"{source}: status={value} must be an HTTP error status (400-599)", key)
    return number


def find_directive(text: str) -> str:
    """The text after ``#sim`` up to the end of its line ("" when there is none)."""
    match = _DIRECTIVE.search(text)
    return match.group(1) if match else ""


def find_last_directive(prompt: str) -> str:
    """The last directive of a rendered prompt, without the template markup that follows it.

    A chat template puts its end-of-turn markup right after the user's text, on the same line
    (``#sim tokens=3<|eot_id|>``, ``#sim tokens=3 [/INST]``, ``#sim tokens=3<end_of_turn>``).
    Directive values never contain ``<`` or ``[``, so the directive ends at the first of them.
    """
    found = _DIRECTIVE.findall(prompt)
    return re.split(r"[<\[]", found[-1], maxsplit=1)[0] if found else ""


def parse_behaviour(directive: str, header: str | None = None) -> Behaviour:
    """Build the behaviour from a message directive and an ``x-sim`` header (header wins).

    Raises ``GatewayError`` (400) naming the offending key, as a provider rejects bad input.
    """
    pairs = _parse_pairs(directive, "#sim directive")
    if header:
        pairs |= _parse_pairs(header, "x-sim header")
    values = {key: _convert(key, value, "#sim") for key, value in pairs.items()}
    return replace(Behaviour(), **values)  # type: ignore[arg-type]
