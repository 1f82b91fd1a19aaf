"""DeepInfra's native inference API: ``POST {base}/v1/inference/{model}`` (PROTOCOLS.md §1).

The native API takes one raw prompt, so the conversation is rendered through the model's chat
template here, and the template's end-of-turn strings join the ``stop`` list. Every native knob
the OpenAI request can express is mapped (and range-checked, so a bad value is the client's 400
naming the field rather than the upstream's 422). The answer is DeepInfra's token-event stream
or its JSON body, read by the ``deepinfra`` transcoder dialect; embeddings use the same URL with
``{"inputs": [...]}``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

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
)
from sluicegate.providers.failures import classify_body
from sluicegate.providers.openai import auth_headers, json_headers
from sluicegate.providers.prompt import (
    invalid,
    plan_tools,
    prompt_answer_options,
    render_prompt,
    stop_list,
)
from sluicegate.sampling import knob_problem

DIALECT = "deepinfra"
MAX_RESPONSES = 2  # DeepInfra's num_responses limit; not with streaming
# The OpenAI request fields that go upstream under the same name.
_KNOBS = (
    "temperature",
    "top_p",
    "top_k",
    "min_p",
    "repetition_penalty",
    "presence_penalty",
    "frequency_penalty",
    "seed",
)


def inference_url(provider: ProviderConfig, model: str) -> str:
    return f"{provider.base_url}/v1/inference/{quote(model, safe='/:@-._~')}"


def native_parameters(body: dict[str, Any], profile: ModelProfile, stream: bool) -> dict[str, Any]:
    """The native knobs: the model's configured defaults, then what the request says."""
    params: dict[str, Any] = dict(profile.settings.params)
    for name in _KNOBS:
        value = body.get(name)
        if value is None:
            continue
        problem = knob_problem(name, value)
        if problem:
            raise invalid(f"'{name}' {problem}.", name)
        params[name] = value
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
    if max_tokens is not None:
        params["max_new_tokens"] = max_tokens
    n = body.get("n") or 1
    if n > 1 and stream:
        raise invalid(
            "'n' greater than 1 cannot be streamed by the native DeepInfra API; set stream to "
            "false or n to 1.",
            "n",
        )
    if n > MAX_RESPONSES:
        raise invalid(f"'n' is {n}; the native DeepInfra API returns at most 2 answers.", "n")
    if n > 1:
        params["num_responses"] = n
    response_format = body.get("response_format")
    if response_format is not None:
        kind = response_format.get("type") if isinstance(response_format, dict) else None
        if kind == "json_object":
            params["response_format"] = {"type": "json_object"}
        elif kind != "text":
            raise invalid(
                '\'response_format\' must be {"type": "json_object"} or {"type": "text"} '
                "for the native DeepInfra API (json_schema is not available there).",
                "response_format",
            )
    top = body.get("top_logprobs")
    if top is not None:
        if isinstance(top, bool) or not isinstance(top, int) or not 0 <= top <= 20:
            raise invalid("'top_logprobs' must be a whole number from 0 to 20.", "top_logprobs")
        if top and body.get("logprobs"):
            params["top_n_tokens"] = top  # TGI's name, which DeepInfra's native API inherits
    return params


def build_chat(
    provider: ProviderConfig, profile: ModelProfile, request: ChatRequest, api_key: str | None
) -> UpstreamRequest:
    body = request.body
    plan = plan_tools(provider, profile, body, "native DeepInfra API")
    prompt = render_prompt(profile, body, plan)
    stop = stop_list(body, profile)
    native: dict[str, Any] = {"input": prompt, "stream": request.stream}
    native.update(native_parameters(body, profile, request.stream))
    if stop:
        native["stop"] = stop
    headers = json_headers(provider, api_key, stream=request.stream)
    return UpstreamRequest(
        method="POST",
        url=inference_url(provider, profile.upstream_model),
        headers=headers,
        body=orjson.dumps(native),
        stream=request.stream,
        dialect=DIALECT,
        transcoder=prompt_answer_options(body, prompt, plan, stop, native.get("max_new_tokens")),
    )


def models_url(provider: ProviderConfig) -> str | None:
    # The OpenAI-style list carries context length and pricing only with this filter.
    return f"{provider.base_url}/v1/openai/models?filter=with_meta"


def model_entry(item: dict[str, Any]) -> dict[str, Any]:
    """A catalog item with its metadata lifted to the top: ``context_length``, ``max_tokens``,
    ``pricing`` (USD per 1M tokens, as DeepInfra states it) and ``tags``."""
    entry = {k: v for k, v in item.items() if k != "metadata"}
    metadata = item.get("metadata")
    if isinstance(metadata, dict):
        for key in ("context_length", "max_tokens", "pricing", "tags", "description"):
            if metadata.get(key) is not None:
                entry[key] = metadata[key]
    return entry


def build_embeddings(
    provider: ProviderConfig, profile: ModelProfile, request: EmbeddingsRequest, api_key: str | None
) -> UpstreamRequest:
    if request.dimensions is not None:
        raise invalid(
            "'dimensions' is not available through the native DeepInfra API; leave it out.",
            "dimensions",
        )
    headers = json_headers(provider, api_key, stream=False)
    return UpstreamRequest(
        method="POST",
        url=inference_url(provider, profile.upstream_model),
        headers=headers,
        body=orjson.dumps({"inputs": request.inputs}),
        stream=False,
        dialect=DIALECT,
    )


def read_embeddings(request: EmbeddingsRequest, body: bytes) -> bytes:
    """``{"embeddings": [[...]], "input_tokens", "inference_status": {"cost"}}`` → OpenAI."""
    parsed, vectors = read_native_vectors(
        request,
        body,
        "DeepInfra answered the embeddings request with something that is not its "
        "embeddings format. Retry, or check the model is an embedding model.",
    )
    status = parsed.get("inference_status") or {}
    usage = reported_usage(parsed.get("input_tokens", status.get("tokens_input")))
    if status.get("cost") is not None:
        usage["estimated_cost"] = status["cost"]
    return embeddings_body(request, vectors, usage)


ADAPTER = ProviderAdapter(
    kind="deepinfra",
    dialect=DIALECT,
    build_chat=build_chat,
    classify_error=classify_body,
    models_url=models_url,
    auth_headers=auth_headers,
    build_embeddings=build_embeddings,
    read_embeddings=read_embeddings,
    model_entry=model_entry,
    templated=True,
    case_insensitive_ids=True,
)
