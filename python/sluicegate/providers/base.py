"""What every provider adapter is: data plus pure functions (no I/O here).

An adapter builds the native upstream request from the client's OpenAI request and classifies
the upstream's error answers. The transcoder dialect it names turns the native answer back into
OpenAI bytes. Adding a provider of an existing dialect is a config entry, not code.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from sluicegate._core import ChatTemplate
from sluicegate.chat import ChatRequest
from sluicegate.config import ModelSettings, ProviderConfig
from sluicegate.embeddings import EmbeddingsRequest
from sluicegate.errors import GatewayError


@dataclass(frozen=True, slots=True)
class ModelProfile:
    """What the gateway knows about the upstream model before it builds a request."""

    upstream_model: str  # spelled as the upstream spells it
    settings: ModelSettings  # from the config ([providers.model_settings."<id>"])
    template: ChatTemplate | None = None  # set for kinds that take a raw prompt


@dataclass(frozen=True, slots=True)
class UpstreamRequest:
    """A fully built native request: where to send it, what to send, how to read the answer."""

    method: str
    url: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    stream: bool
    dialect: str  # the StreamTranscoder dialect that reads the answer
    # Keyword arguments for StreamTranscoder beyond the common ones (stop, think, logprobs...).
    transcoder: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class UpstreamFailure:
    """An upstream error answer, mapped for the client.

    ``retryable`` says whether another route (or a later attempt) could succeed; the router's
    fallback logic uses it. ``error`` is what the client sees if nothing else is tried.
    """

    error: GatewayError
    retryable: bool


def no_embeddings(
    provider: ProviderConfig, profile: ModelProfile, request: EmbeddingsRequest, key: str | None
) -> UpstreamRequest:
    raise GatewayError(
        400,
        f"Provider '{provider.name}' ({provider.kind}) does not serve embeddings through "
        "sluicegate; use an embedding model of a provider that does (see docs/providers.md).",
        "invalid_request_error",
        "embeddings_not_supported",
        "model",
    )


def same_entry(item: dict[str, Any]) -> dict[str, Any]:
    return item


def listed_models(body: bytes, key: str, id_field: str) -> list[dict[str, Any]] | None:
    """The items of a model list answer's ``key`` array that are objects with a string
    ``id_field``, or None when the body is not a JSON object with such an array."""
    try:
        items = orjson.loads(body).get(key)
    except (orjson.JSONDecodeError, AttributeError):
        return None
    if not isinstance(items, list):
        return None
    return [m for m in items if isinstance(m, dict) and isinstance(m.get(id_field), str)]


def openai_model_list(body: bytes) -> list[dict[str, Any]] | None:
    """The ``data`` of an OpenAI ``list`` of models, or None when the body is not one."""
    return listed_models(body, "data", "id")


def model_item(model_id: str, owned_by: str, **fields: Any) -> dict[str, Any]:
    """A model-list item in OpenAI's shape, for an upstream whose list is not OpenAI's."""
    return {"id": model_id, "object": "model", "owned_by": owned_by, **fields}


@dataclass(frozen=True, slots=True)
class ProviderAdapter:
    kind: str
    dialect: str
    build_chat: Callable[[ProviderConfig, ModelProfile, ChatRequest, str | None], UpstreamRequest]
    classify_error: Callable[[ProviderConfig, int, bytes, str | None], UpstreamFailure]
    models_url: Callable[[ProviderConfig], str | None]
    auth_headers: Callable[[str | None], tuple[tuple[str, str], ...]]
    # Embeddings: the native request, and the native answer → the OpenAI body.
    build_embeddings: Callable[
        [ProviderConfig, ModelProfile, EmbeddingsRequest, str | None], UpstreamRequest
    ] = no_embeddings
    read_embeddings: Callable[[EmbeddingsRequest, bytes], bytes] | None = None
    # The body models_url answered → model items (each with an "id"), or None if unreadable.
    read_models: Callable[[bytes], list[dict[str, Any]] | None] = openai_model_list
    # A model's detail request (method, url, JSON body) and its answer → fields to add
    # (Ollama's /api/show: context length, capabilities).
    model_details: Callable[[ProviderConfig, str], tuple[str, str, bytes | None]] | None = None
    read_model_details: Callable[[bytes], dict[str, Any]] | None = None
    # One upstream model-list item → the /v1/models entry (extra fields such as pricing).
    model_entry: Callable[[dict[str, Any]], dict[str, Any]] = same_entry
    # The upstream needs a rendered prompt (a chat template) instead of messages.
    templated: bool = False
    # The upstream's ids have a canonical casing that clients need not type.
    case_insensitive_ids: bool = False
