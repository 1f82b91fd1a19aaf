"""Tool calls as plain text, for APIs without a ``tools`` field (TGI, DeepInfra's fork).

A model calls a tool by writing its template family's markup (hermes, llama3, deepseek, mistral)
as ordinary tokens, which the gateway must find in the token stream; ``tool_call_script`` writes
that markup for ``#sim tool=1``, ``tool_markup`` picks the family from the prompt and
``prompt_tools`` finds the tools the prompt declares.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

from sluicegate.simulator.behaviour import Behaviour
from sluicegate.simulator.script import (
    ARGUMENT_FRAGMENT_CHARS,
    Ask,
    Script,
    Text,
    ToolSpec,
    answer_tokens,
    assemble,
    tool_arguments,
)

# The markup is split into tokens in awkward places, as real tokenizers split it: mid-tag
# ("<tool", "_call>"), mid-key and mid-name ('{"na', 'me": "get_w', 'eather"'), through the
# arguments every ARGUMENT_FRAGMENT_CHARS characters, and DeepSeek's markers at each "▁"
# (the tokens of "tool calls begin" are "<|tool", "▁calls", "▁begin|>", with full-width bars).
# A token is a JSON string, so it cannot hold half a UTF-8 character; the gateway's reads split
# the bytes of the full-width markers anyway.

# DeepSeek's special tokens use a full-width bar and sentencepiece's "▁" (escaped here: ruff
# flags the characters as ambiguous).
_BAR = "\uff5c"
_PIECE = "\u2581"
# What a call looks like when the prompt declares no tool the simulator can find.
FALLBACK_TOOL = ToolSpec("get_weather", (("city", "string"),))
# A call that starts properly and breaks off (``#sim malformed=1``).
BROKEN_CALL = ('{"na', 'me": oops')
PYTHON_TAG = "<|python_tag|>"


def _deepseek(words: str) -> str:
    """A DeepSeek special token from its words: "tool calls begin" → "<|tool▁calls▁begin|>"
    with full-width bars."""
    return f"<{_BAR}{words.replace(' ', _PIECE)}{_BAR}>"


def _marker_tokens(marker: str) -> list[str]:
    """A DeepSeek marker as several tokens, cut before each "▁"."""
    first, *rest = marker.split(_PIECE)
    return [first, *(_PIECE + part for part in rest)]


@dataclass(frozen=True, slots=True)
class Call:
    name: str
    arguments: str  # a JSON object, spaced as the templates show it to the model


def _halves(name: str) -> list[str]:
    """A name cut in the middle, as JSON string content (escaped)."""
    escaped = json.dumps(name, ensure_ascii=False)[1:-1]
    middle = max(1, len(escaped) // 2)
    return [escaped[:middle], escaped[middle:]]


def _fragments(text: str) -> list[str]:
    return [
        text[i : i + ARGUMENT_FRAGMENT_CHARS] for i in range(0, len(text), ARGUMENT_FRAGMENT_CHARS)
    ]


def _json_call(key: str) -> Callable[[Call], list[str]]:
    """``{"name": "NAME", "KEY": {...}}`` in tokens; KEY is "arguments" or Llama's "parameters"."""

    def tokens(call: Call) -> list[str]:
        head, tail = _halves(call.name)
        return [
            '{"na',
            f'me": "{head}',
            f'{tail}"',
            f', "{key}": ',
            *_fragments(call.arguments),
            "}",
        ]

    return tokens


def _deepseek_call(call: Call) -> list[str]:
    """DeepSeek's call body: the name on its own line, then the arguments in a json fence."""
    return [*_halves(call.name), "\n```", "json\n", *_fragments(call.arguments), "\n```"]


@dataclass(frozen=True, slots=True)
class ToolMarkup:
    """How one model family writes tool calls, as the token texts around each call's body.

    An answer is ``opening``, then per call ``call_open`` + ``body`` + ``call_close`` with
    ``between`` between calls, then ``closing``; text before the calls ends with ``after_text``.
    """

    family: str
    body: Callable[[Call], list[str]]
    opening: tuple[str, ...] = ()
    call_open: tuple[str, ...] = ()
    call_close: tuple[str, ...] = ()
    between: tuple[str, ...] = ()
    closing: tuple[str, ...] = ()
    after_text: tuple[str, ...] = ()

    def calls(self, calls: list[Call]) -> list[str]:
        tokens = list(self.opening)
        for number, call in enumerate(calls):
            tokens += self.between if number else ()
            tokens += [*self.call_open, *self.body(call), *self.call_close]
        return tokens + list(self.closing)

    def broken(self) -> list[str]:
        """The start of a call, broken off with invalid JSON."""
        return [*self.opening, *self.call_open, *BROKEN_CALL]


# Qwen's Hermes-style tags, several blocks in a row for parallel calls.
HERMES = ToolMarkup(
    "hermes",
    _json_call("arguments"),
    call_open=("<tool", "_call>", "\n"),
    call_close=("\n</", "tool_call>"),
    between=("\n",),
    after_text=("\n",),
)
# Llama 3.1: the answer is the JSON itself; parallel calls are separated by "; ".
LLAMA3 = ToolMarkup("llama3", _json_call("parameters"), between=("; ",))
DEEPSEEK = ToolMarkup(
    "deepseek",
    _deepseek_call,
    opening=tuple(_marker_tokens(_deepseek("tool calls begin"))),
    call_open=(
        *_marker_tokens(_deepseek("tool call begin")),
        "function",
        *_marker_tokens(_deepseek("tool sep")),
    ),
    call_close=tuple(_marker_tokens(_deepseek("tool call end"))),
    between=("\n",),
    closing=tuple(_marker_tokens(_deepseek("tool calls end"))),
)
MISTRAL = ToolMarkup(
    "mistral",
    _json_call("arguments"),
    opening=("[TOOL", "_CALLS]", " ["),
    between=(", ",),
    closing=("]",),
)
# The family whose markup answers a prompt, by a marker of its chat template; first match wins.
_MARKUP_BY_TEMPLATE = (
    ("<|start_header_id|>", LLAMA3),
    ("<|im_start|>", HERMES),
    (f"<{_BAR}User{_BAR}>", DEEPSEEK),
    (f"<{_BAR}Assistant{_BAR}>", DEEPSEEK),
    ("[INST]", MISTRAL),
)


class CannotCallTools(Exception):
    """``#sim tool=1`` cannot be answered for this prompt; the message says what to change."""


def tool_markup(prompt: str, behaviour: Behaviour) -> ToolMarkup:
    """The markup a tool call answering ``prompt`` is written in, or ``CannotCallTools``."""
    markup = next((markup for marker, markup in _MARKUP_BY_TEMPLATE if marker in prompt), None)
    if markup is None:
        raise CannotCallTools(
            "#sim tool=1 answers in the tool-call markup of the prompt's chat template, but the "
            "prompt has no marker of a known family (<|start_header_id|> llama3, <|im_start|> "
            f"hermes/Qwen, <{_BAR}User{_BAR}> deepseek, [INST] mistral); render the prompt with "
            "one of these templates, or drop tool=1"
        )
    if markup is LLAMA3 and behaviour.text_before and not behaviour.python_tag:
        raise CannotCallTools(
            "#sim text_before=1: a llama3 call without <|python_tag|> is a bare JSON answer, "
            "which text cannot precede; add python_tag=1 or drop text_before"
        )
    return markup


# A JSON object's opening: where a tool definition may start in a prompt.
_OBJECT_START = re.compile(r'\{\s*"')
_DECODER = json.JSONDecoder()


def _definition(value: Any) -> ToolSpec | None:
    """A tool definition as templates render ``tools``: ``{"type": "function", "function":
    {"name", "parameters"}}``, or the bare function with a JSON-schema ``parameters``."""
    if not isinstance(value, dict):
        return None
    function = value
    if value.get("type") == "function" and isinstance(value.get("function"), dict):
        function = value["function"]
    elif not _is_schema(value.get("parameters")):
        return None  # e.g. a past Llama call, whose "parameters" are the arguments
    name = function.get("name")
    if not isinstance(name, str) or not name:
        return None
    parameters = function.get("parameters")
    properties = parameters.get("properties") if isinstance(parameters, dict) else None
    if not isinstance(properties, dict):
        return ToolSpec(name)
    return ToolSpec(
        name, tuple((key, _property_type(schema)) for key, schema in properties.items())
    )


def _property_type(schema: object) -> str:
    """A property's JSON-schema type; one without a single type is taken as a string."""
    kind = schema.get("type") if isinstance(schema, dict) else None
    return kind if isinstance(kind, str) else "string"


def _is_schema(value: object) -> bool:
    return isinstance(value, dict) and ("properties" in value or value.get("type") == "object")


def _definitions(value: Any) -> Iterator[ToolSpec]:
    """Tool definitions in a JSON value, outermost first, in document order."""
    if (tool := _definition(value)) is not None:
        yield tool
    elif isinstance(value, dict):
        for item in value.values():
            yield from _definitions(item)
    elif isinstance(value, list):
        for item in value:
            yield from _definitions(item)


def prompt_tools(prompt: str) -> tuple[ToolSpec, ...]:
    """The tools a rendered prompt declares, in order.

    The native APIs receive no ``tools`` field: templates render the tools as JSON inside the
    prompt (llama3 with ``tojson(indent=4)``, chatml and qwen3 one object per line inside
    ``<tools>``). Every JSON object in the prompt is read; a tool definition is an object with
    ``"type": "function"`` and a ``function`` holding a ``name``, or a bare ``{"name",
    "parameters"}`` whose parameters are a JSON schema. Text that only looks like JSON (the
    templates' format instructions) is skipped.
    """
    tools: list[ToolSpec] = []
    position = 0
    while (match := _OBJECT_START.search(prompt, position)) is not None:
        try:
            value, end = _DECODER.raw_decode(prompt, match.start())
        except ValueError:
            position = match.start() + 1
            continue
        tools += _definitions(value)
        position = end  # objects inside this one were read with it
    return tuple(tools)


def _spaced(arguments: str) -> str:
    """JSON with ``", "`` and ``": "`` separators, as the templates show calls to the model."""
    return json.dumps(json.loads(arguments), ensure_ascii=False)


def planned_calls(prompt: str, parallel: bool) -> list[Call]:
    """The calls of an answer: the first tool the prompt declares, with ``parallel`` also the
    second (or the first again).

    A prompt that declares no tool (deepseek's and Mixtral's templates leave ``tools`` out)
    gets ``FALLBACK_TOOL``: ``get_weather`` with ``{"city": "Paris"}``. The arguments are
    ``tool_arguments``' sample per declared type ("Paris", 3, 2.5, true).
    """
    tools = prompt_tools(prompt) or (FALLBACK_TOOL,)
    chosen = (tools[:2] if len(tools) > 1 else tools * 2) if parallel else tools[:1]
    return [Call(tool.name, _spaced(tool_arguments(tool))) for tool in chosen]


def tool_call_tokens(markup: ToolMarkup, behaviour: Behaviour, ask: Ask, prompt: str) -> list[str]:
    """The token texts of a tool-call answer: a ``<think>`` block (``think=N``), answer words
    (``text_before=1``), then the calls (or a broken one, ``malformed=1``)."""
    words = behaviour.tokens if behaviour.text_before else 0
    lead_behaviour = replace(behaviour, tokens=words, stop_at=None)
    tokens, _ = answer_tokens(lead_behaviour, Ask(ask.prompt_tokens, think_opened=ask.think_opened))
    if words:
        tokens += markup.after_text
    if behaviour.python_tag and markup is LLAMA3:
        tokens.append(PYTHON_TAG)  # a special token in Llama 3.1, sent as text: the call's start
    if behaviour.malformed:
        return tokens + markup.broken()
    return tokens + markup.calls(planned_calls(prompt, behaviour.parallel))


def tool_call_script(markup: ToolMarkup, behaviour: Behaviour, ask: Ask, prompt: str) -> Script:
    """A tool call written as text; the model stops after it (EOS), unless a limit cuts it."""
    texts = tool_call_tokens(markup, behaviour, ask, prompt)
    reason = "stop"
    if ask.max_tokens is not None and ask.max_tokens < len(texts):
        texts, reason = texts[: ask.max_tokens], "length"
    return assemble(behaviour, ask, [Text(text) for text in texts], reason)
