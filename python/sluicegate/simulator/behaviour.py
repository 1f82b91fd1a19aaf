"""`#sim key=value ...` directives: what a simulated provider should do for one request.

The directive rides in the last user message (so it survives any dialect the gateway rebuilds
the request into) or in the ``x-sim`` header, which wins key by key.
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
    }
)
_FLAG_KEYS = frozenset({"garbage", "tool", "usage_on_finish", "ping", "crlf"})
KNOWN_KEYS = _INT_KEYS | _FLAG_KEYS | {"retry_after"}


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


def parse_behaviour(directive: str, header: str | None = None) -> Behaviour:
    """Build the behaviour from a message directive and an ``x-sim`` header (header wins).

    Raises ``GatewayError`` (400) naming the offending key, as a provider rejects bad input.
    """
    pairs = _parse_pairs(directive, "#sim directive")
    if header:
        pairs |= _parse_pairs(header, "x-sim header")
    values = {key: _convert(key, value, "#sim") for key, value in pairs.items()}
    return replace(Behaviour(), **values)  # type: ignore[arg-type]
