"""Timing for a script: the only simulator code that sleeps.

``stream`` turns a script into the bytes of a streamed answer through a dialect's renderer;
``collect`` plays a script for a non-streamed answer and returns what it amounted to.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import trio

from sluicegate.server import AbortConnection
from sluicegate.simulator.script import (
    Delay,
    Finish,
    Garbage,
    Reset,
    Script,
    Stall,
    Step,
    StreamError,
    Text,
    ToolArguments,
    ToolCallStart,
    Truncate,
)

Render = Callable[[Step], bytes]


async def stream(script: Script, render: Render) -> AsyncIterator[bytes]:
    """Yield the rendered script, one write per stretch of steps between delays.

    Steps with no delay between them go out together: what a real server flushes per token is
    what ``gap_ms`` simulates, and a zero-gap answer should not cost the benchmarks a write
    per token.
    """
    pending = bytearray()
    for step in script:
        if isinstance(step, Delay | Stall | Truncate | Reset):
            if pending:
                yield bytes(pending)
                pending.clear()
            if isinstance(step, Delay | Stall):
                await trio.sleep(step.seconds)
            elif isinstance(step, Truncate):
                return
            else:
                raise AbortConnection
        else:
            pending += render(step)
    if pending:
        yield bytes(pending)


@dataclass(slots=True)
class Outcome:
    """A played script, as a non-streaming answer sees it."""

    text: str = ""
    tool_calls: list[dict[str, str]] = field(default_factory=list)
    finish: Finish | None = None
    error: StreamError | None = None
    garbage: bool = False
    truncated: bool = False


async def collect(script: Script) -> Outcome:
    """Play ``script`` in real time and sum it up; a ``Reset`` drops the connection."""
    outcome = Outcome()
    for step in script:
        if isinstance(step, Delay | Stall):
            await trio.sleep(step.seconds)
        elif isinstance(step, Truncate):
            outcome.truncated = True
            break
        elif isinstance(step, Reset):
            raise AbortConnection
        elif isinstance(step, Text):
            outcome.text += step.text
        elif isinstance(step, ToolCallStart):
            outcome.tool_calls.append({"id": step.id, "name": step.name, "arguments": ""})
        elif isinstance(step, ToolArguments):
            outcome.tool_calls[step.index]["arguments"] += step.fragment
        elif isinstance(step, StreamError):
            outcome.error = step
        elif isinstance(step, Garbage):
            outcome.garbage = True
        elif isinstance(step, Finish):
            outcome.finish = step
    return outcome
