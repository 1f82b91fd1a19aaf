"""What every provider adapter is: data plus two pure functions (no I/O here).

An adapter builds the native upstream request from the client's OpenAI request and classifies
the upstream's error answers. The transcoder dialect it names turns the native answer back into
OpenAI bytes. Adding a provider of an existing dialect is a config entry, not code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sluicegate.chat import ChatRequest
from sluicegate.config import ProviderConfig
from sluicegate.errors import GatewayError


@dataclass(frozen=True, slots=True)
class UpstreamRequest:
    """A fully built native request: where to send it, what to send, how to read the answer."""

    method: str
    url: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    stream: bool
    dialect: str  # the StreamTranscoder dialect that reads the answer


@dataclass(frozen=True, slots=True)
class UpstreamFailure:
    """An upstream error answer, mapped for the client.

    ``retryable`` says whether another route (or a later attempt) could succeed; the router's
    fallback logic uses it. ``error`` is what the client sees if nothing else is tried.
    """

    error: GatewayError
    retryable: bool


@dataclass(frozen=True, slots=True)
class ProviderAdapter:
    kind: str
    dialect: str
    build_chat: Callable[[ProviderConfig, str, ChatRequest, str | None], UpstreamRequest]
    classify_error: Callable[[ProviderConfig, int, bytes, str | None], UpstreamFailure]
    models_url: Callable[[ProviderConfig], str | None]
    auth_headers: Callable[[str | None], tuple[tuple[str, str], ...]]
