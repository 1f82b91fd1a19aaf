"""Read a streamed chat completion the way an OpenAI client does, for the end-to-end tests.

The chunks come from the ``openai`` package (``ChatCompletionChunk``), so these helpers also
prove that what the gateway streams parses as the SDK expects.
"""

from __future__ import annotations

from typing import Any

import openai
from openai.types.chat import ChatCompletionChunk


def stream_parts(
    client: openai.OpenAI, **kwargs: Any
) -> tuple[str, str, list[ChatCompletionChunk]]:
    """Stream a chat completion (``kwargs`` as for ``create``): its content, its reasoning
    and every chunk."""
    chunks = list(client.chat.completions.create(stream=True, **kwargs))
    content, reasoning = parts(chunks)
    return content, reasoning, chunks


def parts(chunks: list[ChatCompletionChunk]) -> tuple[str, str]:
    """The concatenated content and ``reasoning_content`` (a field the SDK keeps as extra)."""
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    reasoning = "".join(
        (c.choices[0].delta.model_extra or {}).get("reasoning_content") or ""
        for c in chunks
        if c.choices
    )
    return content, reasoning


def tool_calls(chunks: list[ChatCompletionChunk]) -> list[dict[str, str]]:
    """Each call's id, name and arguments, its pieces concatenated by index as clients do."""
    calls: dict[int, dict[str, str]] = {}
    for chunk in chunks:
        for call in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            entry = calls.setdefault(call.index, {"id": "", "name": "", "arguments": ""})
            entry["id"] += call.id or ""
            if call.function:
                entry["name"] += call.function.name or ""
                entry["arguments"] += call.function.arguments or ""
    return [calls[i] for i in sorted(calls)]


def last_finish_reason(chunks: list[ChatCompletionChunk]) -> str | None:
    """The finish reason of the last chunk with a choice (the usage chunk has none)."""
    return [c.choices[0].finish_reason for c in chunks if c.choices][-1]


def streamed_calls(
    client: openai.OpenAI, **kwargs: Any
) -> tuple[str, list[dict[str, str]], str | None]:
    """Stream a chat completion that may call tools: its content, its calls, how it finished."""
    content, _, chunks = stream_parts(client, **kwargs)
    return content, tool_calls(chunks), last_finish_reason(chunks)
