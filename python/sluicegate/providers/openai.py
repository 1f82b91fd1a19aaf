"""OpenAI-compatible upstreams (OpenAI, vLLM, NVIDIA NIM, DeepSeek, OpenRouter, LiteLLM, …).

The client's body goes upstream as sent, with two changes: ``model`` becomes the upstream's own
id, and a streaming request always asks for usage (``stream_options.include_usage``) so the
gateway can account for it; whether the client sees that usage chunk is the transcoder's call.
Servers that report no usage anyway (or streams cut off before it) get the transcoder's
estimate, for which the adapter passes a rough size of the prompt (``chat_prompt_token_estimate``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import orjson

from sluicegate.chat import ChatRequest
from sluicegate.config import ProviderConfig
from sluicegate.embeddings import EmbeddingsRequest
from sluicegate.errors import GatewayError
from sluicegate.providers.base import (
    ModelProfile,
    ProviderAdapter,
    UpstreamRequest,
)
from sluicegate.providers.failures import classify_body
from sluicegate.providers.prompt import CHARS_PER_TOKEN

DIALECT = "openai"


def auth_headers(api_key: str | None) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {api_key}"),) if api_key else ()


def json_headers(
    provider: ProviderConfig,
    api_key: str | None,
    *,
    stream: bool,
    auth: Callable[[str | None], tuple[tuple[str, str], ...]] = auth_headers,
) -> tuple[tuple[str, str], ...]:
    """The headers of a JSON POST to an upstream: Bearer auth unless the dialect has its own
    (``auth``), then the provider's configured headers."""
    return (
        ("content-type", "application/json"),
        ("accept", "text/event-stream" if stream else "application/json"),
        *auth(api_key),
        *provider.headers,
    )


def chat_prompt_token_estimate(body: Mapping[str, Any]) -> int:
    """Roughly how many tokens the prompt of a chat request is (characters / 4), for the usage
    the transcoder estimates when the upstream reports none.

    Counts what the model reads as text: message text, tool calls, tool definitions. Images,
    audio and files are left out: the length of their base64 says nothing about what they cost
    in tokens. One pass over the messages (a parsed request's are a list of objects); the text
    is measured, not serialised.
    """
    chars = 0
    for message in body["messages"]:
        content = message.get("content")
        if isinstance(content, str):
            chars += len(content)
        elif isinstance(content, list):
            for part in content:
                if isinstance(part, dict) and isinstance(text := part.get("text"), str):
                    chars += len(text)
        if calls := message.get("tool_calls"):
            chars += len(orjson.dumps(calls))
    if tools := body.get("tools"):
        chars += len(orjson.dumps(tools))
    return max(1, chars // CHARS_PER_TOKEN)


def build_chat(
    provider: ProviderConfig, profile: ModelProfile, request: ChatRequest, api_key: str | None
) -> UpstreamRequest:
    body: dict[str, Any] = dict(request.body)
    body["model"] = profile.upstream_model
    body.pop("models", None)  # the gateway's own fallback list, already applied
    if request.stream:
        options = dict(body.get("stream_options") or {})
        options["include_usage"] = True
        body["stream_options"] = options
    else:
        body.pop("stream_options", None)
    headers = json_headers(provider, api_key, stream=request.stream)
    return UpstreamRequest(
        method="POST",
        url=f"{provider.base_url}/chat/completions",
        headers=headers,
        body=orjson.dumps(body),
        stream=request.stream,
        dialect=DIALECT,
        transcoder={"prompt_tokens": chat_prompt_token_estimate(body)},
    )


def models_url(provider: ProviderConfig) -> str | None:
    return f"{provider.base_url}/models"


def build_embeddings(
    provider: ProviderConfig, profile: ModelProfile, request: EmbeddingsRequest, api_key: str | None
) -> UpstreamRequest:
    body = dict(request.body)
    body["model"] = profile.upstream_model
    headers = json_headers(provider, api_key, stream=False)
    return UpstreamRequest(
        method="POST",
        url=f"{provider.base_url}/embeddings",
        headers=headers,
        body=orjson.dumps(body),
        stream=False,
        dialect=DIALECT,
    )


def read_embeddings(request: EmbeddingsRequest, body: bytes) -> bytes:
    """The upstream's OpenAI answer, under the model name the client used."""
    try:
        parsed = orjson.loads(body)
        if not isinstance(parsed, dict) or not isinstance(parsed.get("data"), list):
            raise ValueError
    except (orjson.JSONDecodeError, ValueError):
        raise GatewayError(
            502,
            "The upstream answered the embeddings request with something that is not an "
            "OpenAI embeddings list. Retry, or check the model is an embedding model.",
            "upstream_error",
            "upstream_bad_response",
        ) from None
    parsed["model"] = request.model
    return orjson.dumps(parsed)


ADAPTER = ProviderAdapter(
    kind="openai",
    dialect=DIALECT,
    build_chat=build_chat,
    classify_error=classify_body,
    models_url=models_url,
    auth_headers=auth_headers,
    build_embeddings=build_embeddings,
    read_embeddings=read_embeddings,
)
