"""Ollama's native chat API: ``POST {base}/api/chat`` (NDJSON), PROTOCOLS.md §3.

Messages keep their structure (Ollama renders its own templates): images from ``image_url``
data URLs go to ``images``, assistant tool calls carry their arguments as JSON objects, tool
results name their tool. Sampling knobs go into ``options``; ``stream`` is always sent (Ollama
streams when it is left out). The answer is read by the ``ollama`` transcoder dialect.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import orjson

from sluicegate.chat import ChatRequest
from sluicegate.config import ProviderConfig
from sluicegate.embeddings import (
    EmbeddingsRequest,
    embeddings_body,
    read_native_vectors,
    reported_usage,
)
from sluicegate.providers.base import (
    ModelProfile,
    ProviderAdapter,
    UpstreamRequest,
    listed_models,
    model_item,
)
from sluicegate.providers.failures import classify_body
from sluicegate.providers.openai import auth_headers, chat_prompt_token_estimate, json_headers
from sluicegate.providers.prompt import invalid
from sluicegate.sampling import knob_problem

DIALECT = "ollama"
DEFAULT_BASE_URL = "http://127.0.0.1:11434"
# OpenAI request field (or configured param) -> Ollama option.
_OPTIONS = {
    "temperature": "temperature",
    "top_p": "top_p",
    "top_k": "top_k",
    "min_p": "min_p",
    "repetition_penalty": "repeat_penalty",
    "presence_penalty": "presence_penalty",
    "frequency_penalty": "frequency_penalty",
    "seed": "seed",
    "max_new_tokens": "num_predict",
}
# reasoning_effort -> Ollama's think (a level, or false)
_THINK = {"none": False, "minimal": "low", "low": "low", "medium": "medium", "high": "high"}


def _image(url: Any, where: str) -> str:
    """The base64 payload of a ``data:`` URL (Ollama takes images inline only)."""
    if not isinstance(url, str) or not url.startswith("data:") or ";base64," not in url:
        raise invalid(
            f"'{where}' must be a data: URL (data:image/png;base64,...); Ollama takes images "
            "inline, not by link.",
            where,
            "unsupported_content",
        )
    payload = url.partition(";base64,")[2]
    try:
        base64.b64decode(payload, validate=True)
    except binascii.Error:
        raise invalid(f"'{where}' is not valid base64.", where) from None
    return payload


def _content(content: Any, where: str) -> tuple[str, list[str]]:
    """Text and images of a message's content."""
    if content is None or isinstance(content, str):
        return content or "", []
    texts: list[str] = []
    images: list[str] = []
    for i, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif kind == "image_url":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, dict) else image
            images.append(_image(url, f"{where}.content[{i}].image_url.url"))
        else:
            raise invalid(
                f"'{where}.content[{i}]' is a {kind or 'non-text'} part; Ollama takes text and "
                "image_url parts.",
                f"{where}.content",
                "unsupported_content",
            )
    return "\n".join(texts), images


def _arguments(raw: Any, where: str) -> dict[str, Any]:
    """OpenAI's arguments string as the JSON object Ollama wants."""
    if isinstance(raw, dict):
        return raw
    if raw in (None, ""):
        return {}
    try:
        parsed = orjson.loads(raw) if isinstance(raw, str) else None
    except orjson.JSONDecodeError:
        parsed = None
    if not isinstance(parsed, dict):
        raise invalid(f"'{where}' must be a JSON object in a string, e.g. \"{{}}\".", where)
    return parsed


def native_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    tool_names: dict[str, str] = {}  # tool_call_id -> function name, for tool results
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        role = "system" if message["role"] == "developer" else message["role"]
        text, images = _content(message.get("content"), where)
        item: dict[str, Any] = {"role": role, "content": text}
        if images:
            item["images"] = images
        if role == "assistant":
            if isinstance(message.get("reasoning_content"), str):
                item["thinking"] = message["reasoning_content"]
            calls = []
            for j, call in enumerate(message.get("tool_calls") or []):
                function = call.get("function") or {}
                name = function.get("name")
                args = _arguments(function.get("arguments"), f"{where}.tool_calls[{j}].arguments")
                native: dict[str, Any] = {"function": {"name": name, "arguments": args}}
                if isinstance(call.get("id"), str):
                    native["id"] = call["id"]
                    tool_names[call["id"]] = name
                calls.append(native)
            if calls:
                item["tool_calls"] = calls
        elif role == "tool":
            call_id = message.get("tool_call_id")
            if isinstance(call_id, str):
                item["tool_call_id"] = call_id
                if call_id in tool_names:
                    item["tool_name"] = tool_names[call_id]
            if isinstance(message.get("name"), str):
                item["tool_name"] = message["name"]
        out.append(item)
    return out


def _options(body: dict[str, Any], profile: ModelProfile) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for name, value in profile.settings.params:
        options[_OPTIONS[name]] = value
    for name, option in _OPTIONS.items():
        value = body.get(name)
        if value is None or name == "max_new_tokens":
            continue
        problem = knob_problem(name, value)
        if problem:
            raise invalid(f"'{name}' {problem}.", name)
        options[option] = value
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
    if max_tokens is not None:
        options["num_predict"] = max_tokens
    stop = body.get("stop")
    if stop:
        options["stop"] = [stop] if isinstance(stop, str) else list(stop)
    if profile.settings.num_ctx is not None:
        options["num_ctx"] = profile.settings.num_ctx
    return options


def build_chat(
    provider: ProviderConfig, profile: ModelProfile, request: ChatRequest, api_key: str | None
) -> UpstreamRequest:
    body = request.body
    if (body.get("n") or 1) > 1:
        raise invalid("'n' greater than 1 is not available through Ollama.", "n")
    native: dict[str, Any] = {
        "model": profile.upstream_model,
        "messages": native_messages(body["messages"]),
        "stream": request.stream,
    }
    tools = body.get("tools")
    if tools and body.get("tool_choice") != "none":
        native["tools"] = tools
    options = _options(body, profile)
    if options:
        native["options"] = options
    response_format = body.get("response_format")
    kind = response_format.get("type") if isinstance(response_format, dict) else None
    if kind == "json_object":
        native["format"] = "json"
    elif kind == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema")
        if not isinstance(schema, dict):
            raise invalid(
                "'response_format.json_schema.schema' must be a JSON schema object.",
                "response_format",
            )
        native["format"] = schema
    effort = body.get("reasoning_effort")
    if effort is not None:
        if effort not in _THINK:
            raise invalid(
                f"'reasoning_effort' must be one of {', '.join(_THINK)}.", "reasoning_effort"
            )
        native["think"] = _THINK[effort]
    if body.get("logprobs"):
        native["logprobs"] = True
        if body.get("top_logprobs"):
            native["top_logprobs"] = body["top_logprobs"]
    if profile.settings.keep_alive is not None:
        native["keep_alive"] = profile.settings.keep_alive
    return UpstreamRequest(
        method="POST",
        url=f"{provider.base_url}/api/chat",
        headers=json_headers(provider, api_key, stream=request.stream),
        body=orjson.dumps(native),
        stream=request.stream,
        dialect=DIALECT,
        transcoder={
            "logprobs": bool(body.get("logprobs")),
            "prompt_tokens": chat_prompt_token_estimate(body),
        },
    )


def models_url(provider: ProviderConfig) -> str | None:
    return f"{provider.base_url}/api/tags"


def read_models(body: bytes) -> list[dict[str, Any]] | None:
    """``/api/tags`` → one item per local model, by its name (``llama3.2:latest``)."""
    models = listed_models(body, "models", "name")
    if models is None:
        return None
    return [model_item(m["name"], "ollama", details=m.get("details")) for m in models]


def model_details(provider: ProviderConfig, model_id: str) -> tuple[str, str, bytes | None]:
    return "POST", f"{provider.base_url}/api/show", orjson.dumps({"model": model_id})


def read_model_details(body: bytes) -> dict[str, Any]:
    """``/api/show`` → ``context_length`` (from ``model_info``) and ``capabilities``."""
    try:
        shown = orjson.loads(body)
    except orjson.JSONDecodeError:
        return {}
    if not isinstance(shown, dict):
        return {}
    found: dict[str, Any] = {}
    info = shown.get("model_info")
    if isinstance(info, dict):
        architecture = info.get("general.architecture")
        length = info.get(f"{architecture}.context_length")
        if isinstance(length, int) and length > 0:
            found["context_length"] = length
    if isinstance(shown.get("capabilities"), list):
        found["capabilities"] = shown["capabilities"]
    return found


def build_embeddings(
    provider: ProviderConfig, profile: ModelProfile, request: EmbeddingsRequest, api_key: str | None
) -> UpstreamRequest:
    native: dict[str, Any] = {"model": profile.upstream_model, "input": request.inputs}
    if request.dimensions is not None:
        native["dimensions"] = request.dimensions
    return UpstreamRequest(
        method="POST",
        url=f"{provider.base_url}/api/embed",
        headers=json_headers(provider, api_key, stream=False),
        body=orjson.dumps(native),
        stream=False,
        dialect=DIALECT,
    )


def read_embeddings(request: EmbeddingsRequest, body: bytes) -> bytes:
    """``/api/embed``'s ``{"embeddings": [[...]], "prompt_eval_count"}`` → OpenAI."""
    parsed, vectors = read_native_vectors(
        request,
        body,
        "Ollama answered the embeddings request with something that is not its /api/embed "
        "format. Retry, or check the model is an embedding model.",
    )
    return embeddings_body(request, vectors, reported_usage(parsed.get("prompt_eval_count")))


ADAPTER = ProviderAdapter(
    kind="ollama",
    dialect=DIALECT,
    build_chat=build_chat,
    classify_error=classify_body,
    models_url=models_url,
    auth_headers=auth_headers,
    build_embeddings=build_embeddings,
    read_embeddings=read_embeddings,
    read_models=read_models,
    model_details=model_details,
    read_model_details=read_model_details,
)
