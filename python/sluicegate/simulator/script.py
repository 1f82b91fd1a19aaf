"""A dialect-neutral plan for one simulated answer: a sequence of steps.

``build_script`` turns a ``Behaviour`` and what was asked into steps; each dialect module renders
the steps into its own bytes, and ``playback`` supplies the timing. Adding a dialect means adding
a renderer, never touching this file.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import orjson

from sluicegate.simulator.behaviour import Behaviour

# Token i of every answer is WORDS[i % len(WORDS)], so any answer is predictable from its length.
WORDS = (" The", " quick", " brown", " fox", " jumps", " over", " the", " lazy", " dog", ".")
# The same idea with multi-byte UTF-8 (2-, 3- and 4-byte characters) for `multibyte=1`.
MULTIBYTE_WORDS = (" Café", " 🦊", " au", " lait", " in", " 東京", " is", " naïve", " fun", ".")
# Reasoning token i of a `think=N` block; the newline makes longer blocks read as sentences.
REASONING_WORDS = ("Let", " me", " think", " this", " through", ".", "\n")
# A `<think>` block's tags, split across tokens in awkward places as real tokenizers do.
THINK_OPEN = ("<th", "ink>\n")
THINK_CLOSE = ("</", "think>\n\n")
ARGUMENT_FRAGMENT_CHARS = 6
STALL_SECONDS = 600.0


@dataclass(frozen=True, slots=True)
class Delay:
    seconds: float


@dataclass(frozen=True, slots=True)
class Start:
    """The answer begins; ``tool`` says whether it will be a tool call rather than text."""

    tool: bool = False


@dataclass(frozen=True, slots=True)
class Text:
    text: str


@dataclass(frozen=True, slots=True)
class ToolCallStart:
    index: int
    id: str
    name: str


@dataclass(frozen=True, slots=True)
class ToolArguments:
    index: int
    fragment: str


@dataclass(frozen=True, slots=True)
class Thinking:
    """Reasoning the dialect carries apart from the answer (Ollama's ``message.thinking``).

    Dialects without such a field get reasoning as a ``<think>`` block of ``Text`` instead.
    """

    text: str


@dataclass(frozen=True, slots=True)
class WholeToolCall:
    id: str
    name: str
    arguments: str  # a JSON object, complete


@dataclass(frozen=True, slots=True)
class WholeToolCalls:
    """Complete tool calls in one piece, for dialects that never split arguments (Ollama)."""

    calls: tuple[WholeToolCall, ...]


@dataclass(frozen=True, slots=True)
class StreamError:
    """An error reported inside an answer that already started (HTTP status is 200)."""

    message: str
    type: str = "server_error"
    code: str = "simulated_error"


@dataclass(frozen=True, slots=True)
class Garbage:
    """A frame that is not valid for the dialect (e.g. a ``data:`` line that is not JSON)."""


@dataclass(frozen=True, slots=True)
class Truncate:
    """The answer stops here: no finish, no terminator, yet the HTTP message ends properly.

    What a provider that crashed behind a proxy looks like.
    """


@dataclass(frozen=True, slots=True)
class Reset:
    """Drop the connection abruptly, mid-body: the HTTP message itself is incomplete."""


@dataclass(frozen=True, slots=True)
class Stall:
    """Send nothing more but keep the connection open for ``seconds`` (then drop it)."""

    seconds: float = STALL_SECONDS


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True, slots=True)
class Finish:
    reason: str  # "stop" | "length" | "tool_calls" | "stop_sequence"
    usage: Usage


@dataclass(frozen=True, slots=True)
class End:
    """The dialect's end-of-stream marker (OpenAI: ``data: [DONE]``)."""


Step = (
    Delay
    | Start
    | Text
    | Thinking
    | ToolCallStart
    | ToolArguments
    | WholeToolCalls
    | StreamError
    | Garbage
    | Truncate
    | Reset
    | Stall
    | Finish
    | End
)
Script = tuple[Step, ...]


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """The tool to call: its name and the JSON-schema property names and types it takes."""

    name: str
    properties: tuple[tuple[str, str], ...] = ()


def tool_spec(name: str, parameters: object) -> ToolSpec:
    """The tool ``name`` with the properties of its JSON-schema ``parameters`` (an untyped
    property counts as a string)."""
    properties = parameters.get("properties") if isinstance(parameters, dict) else None
    pairs: tuple[tuple[str, str], ...] = ()
    if isinstance(properties, dict):
        pairs = tuple(
            (str(prop), str(schema.get("type")) if isinstance(schema, dict) else "string")
            for prop, schema in properties.items()
        )
    return ToolSpec(name, pairs)


@dataclass(frozen=True, slots=True)
class Ask:
    """What the request asked for, extracted by the dialect module."""

    prompt_tokens: int
    max_tokens: int | None = None
    tool: ToolSpec | None = None  # set when the answer must be a tool call
    # The stop string `stop_at=N` writes; only dialects that echo stop strings (TGI heritage)
    # set it, so elsewhere `stop_at` has no effect.
    stop_sequence: str | None = None
    # The prompt already opened the `<think>` block (e.g. DeepSeek-R1's template ends with
    # "<think>\n"), so a `think=N` answer starts inside it.
    think_opened: bool = False


def token_text(count: int) -> str:
    """The text of an answer of ``count`` tokens."""
    return "".join(WORDS[i % len(WORDS)] for i in range(count))


def answer_tokens(behaviour: Behaviour, ask: Ask) -> tuple[list[str], str]:
    """The token texts of a complete text answer and its finish reason.

    Reasoning first (``think``), then the answer words, then the stop string when ``stop_at``
    applies; ``max_tokens`` counts them all, as a model's generation limit does.
    """
    texts: list[str] = []
    if behaviour.think:
        texts += [] if ask.think_opened else list(THINK_OPEN)
        texts += [REASONING_WORDS[i % len(REASONING_WORDS)] for i in range(behaviour.think)]
        texts += THINK_CLOSE
    words = MULTIBYTE_WORDS if behaviour.multibyte else WORDS
    reason = "stop"
    count = behaviour.tokens
    if behaviour.stop_at is not None and ask.stop_sequence:
        count, reason = behaviour.stop_at, "stop_sequence"
    texts += [words[i % len(words)] for i in range(count)]
    if reason == "stop_sequence":
        stop = ask.stop_sequence or ""
        texts += [stop[:1], stop[1:]] if len(stop) > 1 else [stop]
    if ask.max_tokens is not None and ask.max_tokens < len(texts):
        texts, reason = texts[: ask.max_tokens], "length"
    return texts, reason


def tool_arguments(tool: ToolSpec) -> str:
    """Deterministic arguments that match the tool's declared property types."""
    samples = {"string": "Paris", "integer": 3, "number": 2.5, "boolean": True}
    arguments = {name: samples.get(kind) for name, kind in tool.properties}
    return orjson.dumps(arguments or {"query": "the quick brown fox"}).decode()


def _units(behaviour: Behaviour, ask: Ask, call_id: str) -> tuple[list[Step], str]:
    """The content steps of a complete answer and its finish reason."""
    if ask.tool is not None:
        arguments = tool_arguments(ask.tool)
        units: list[Step] = [ToolCallStart(0, call_id, ask.tool.name)]
        units += [
            ToolArguments(0, arguments[i : i + ARGUMENT_FRAGMENT_CHARS])
            for i in range(0, len(arguments), ARGUMENT_FRAGMENT_CHARS)
        ]
        return units, "tool_calls"
    texts, reason = answer_tokens(behaviour, ask)
    return [Text(text) for text in texts], reason


def _cut(behaviour: Behaviour, sent: int) -> list[Step] | None:
    """The steps that end the answer early after ``sent`` units, if a directive says so."""
    if behaviour.error_after == sent:
        return [StreamError(f"simulated upstream error after {sent} tokens (#sim error_after)")]
    if behaviour.truncate_after == sent:
        return [Truncate()]
    if behaviour.reset_after == sent:
        return [Reset()]
    if behaviour.stall_after == sent:
        return [Stall(), Reset()]
    return None


def build_script(behaviour: Behaviour, ask: Ask, call_id: str = "call_sim0") -> Script:
    """The steps of one answer; early endings apply after N units (tokens or tool fragments)."""
    units, reason = _units(behaviour, ask, call_id)
    return assemble(behaviour, ask, units, reason)


def assemble(behaviour: Behaviour, ask: Ask, units: Sequence[Step], reason: str) -> Script:
    """Wrap an answer's content units in the timing, early endings and finish of ``behaviour``.

    ``build_script`` makes the units for text and OpenAI-style tool calls; a dialect whose
    answers are made of other units (Ollama's thinking lines and whole tool calls) makes its
    own and shares the rest. Each unit counts as one token for the cut points and the usage.
    """
    # A directive beyond the end still fires, just before the finish.
    behaviour_cut = {
        name: min(value, len(units))
        for name in ("error_after", "truncate_after", "reset_after", "stall_after")
        if (value := getattr(behaviour, name)) is not None
    }
    clamped = Behaviour(**behaviour_cut)  # only the cut points matter to _cut
    steps: list[Step] = []
    if behaviour.ttft_ms:
        steps.append(Delay(behaviour.ttft_ms / 1000))
    steps.append(Start(tool=ask.tool is not None))
    if behaviour.garbage and not units:
        steps.append(Garbage())
    for sent, unit in enumerate(units):
        if (ending := _cut(clamped, sent)) is not None:
            return (*steps, *ending)
        if sent and behaviour.gap_ms:
            steps.append(Delay(behaviour.gap_ms / 1000))
        steps.append(unit)
        if behaviour.garbage and sent == 0:
            steps.append(Garbage())
    if (ending := _cut(clamped, len(units))) is not None:
        return (*steps, *ending)
    steps.append(Finish(reason, Usage(ask.prompt_tokens, len(units))))
    steps.append(End())
    return tuple(steps)
