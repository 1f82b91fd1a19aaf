"""Hugging Face text-generation-inference, natively: ``POST {base}/generate_stream`` and
``{base}/generate`` (PROTOCOLS.md §2).

Like DeepInfra's native API (a TGI fork) it takes one raw prompt, so the conversation goes
through the model's chat template, and it answers with token events read by the ``tgi``
dialect. TGI validates strictly, so the mapping follows its rules instead of passing values it
would reject: ``temperature: 0`` means greedy (``do_sample: false``, no temperature), ``top_p``
must lie strictly between 0 and 1 (1 is "off" and left out), ``top_k: 0`` is "off", at most
four stop sequences, and ``details: true`` always (the finish reason and the token counts live
there).
"""

from __future__ import annotations

from typing import Any

import orjson

from sluicegate.chat import ChatRequest
from sluicegate.config import ProviderConfig
from sluicegate.providers.base import (
    ModelProfile,
    ProviderAdapter,
    UpstreamFailure,
    UpstreamRequest,
    model_item,
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

DIALECT = "tgi"
API = "TGI native API"
MAX_STOP_SEQUENCES = 4  # TGI's default max_stop_sequences
# OpenAI request fields TGI takes under the same name.
_SAME_NAME = ("repetition_penalty", "frequency_penalty", "seed")
# Fields TGI has no equivalent for: refused rather than silently dropped.
_NOT_IN_TGI = {
    "min_p": "use top_p or top_k",
    "presence_penalty": "use frequency_penalty or repetition_penalty",
}


def _checked(body: dict[str, Any], params: dict[str, Any], name: str) -> Any:
    value = body.get(name, params.get(name))
    if value is None:
        return None
    problem = knob_problem(name, value)
    if problem:
        raise invalid(f"'{name}' {problem}.", name)
    return value


def generate_parameters(
    body: dict[str, Any], profile: ModelProfile, stop: list[str]
) -> dict[str, Any]:
    """TGI's ``parameters``: the model's configured defaults, then the request, in TGI's rules."""
    defaults = dict(profile.settings.params)
    for name, hint in _NOT_IN_TGI.items():
        if body.get(name) is not None:
            raise invalid(f"'{name}' is not available through the {API}; {hint}.", name)
    params: dict[str, Any] = {"details": True}
    temperature = _checked(body, defaults, "temperature")
    if temperature == 0:
        params["do_sample"] = False  # TGI rejects temperature 0; greedy is what it means
    elif temperature is not None:
        params["temperature"] = temperature
        params["do_sample"] = True
    top_p = _checked(body, defaults, "top_p")
    if top_p is not None and 0 < top_p < 1:
        params["top_p"] = top_p
    top_k = _checked(body, defaults, "top_k")
    if top_k:
        params["top_k"] = top_k
    for name in _SAME_NAME:
        value = _checked(body, defaults, name)
        if value is not None:
            params[name] = value
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
    max_tokens = max_tokens or defaults.get("max_new_tokens")
    if max_tokens is not None:
        params["max_new_tokens"] = max_tokens
    if (body.get("n") or 1) > 1:
        raise invalid(f"'n' greater than 1 is not available through the {API}.", "n")
    response_format = body.get("response_format")
    kind = response_format.get("type") if isinstance(response_format, dict) else response_format
    if kind == "json_object":
        params["grammar"] = {"type": "json", "value": {"type": "object"}}
    elif kind == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema")
        if not isinstance(schema, dict):
            raise invalid(
                "'response_format.json_schema.schema' must be a JSON schema object.",
                "response_format",
            )
        params["grammar"] = {"type": "json", "value": schema}
    elif kind not in (None, "text"):
        raise invalid(
            "'response_format' must be text, json_object or json_schema.", "response_format"
        )
    top = body.get("top_logprobs")
    if top is not None:
        if isinstance(top, bool) or not isinstance(top, int) or not 0 <= top <= 20:
            raise invalid("'top_logprobs' must be a whole number from 0 to 20.", "top_logprobs")
        if top and body.get("logprobs"):
            params["top_n_tokens"] = top
    if stop:
        # The client's strings first: TGI stops at the model's EOS token by itself, so the
        # template's end-of-turn strings matter less (and the transcoder trims them anyway).
        params["stop"] = stop[:MAX_STOP_SEQUENCES]
    return params


def build_chat(
    provider: ProviderConfig, profile: ModelProfile, request: ChatRequest, api_key: str | None
) -> UpstreamRequest:
    body = request.body
    plan = plan_tools(provider, profile, body, API)
    prompt = render_prompt(profile, body, plan)
    stop = stop_list(body, profile)
    parameters = generate_parameters(body, profile, stop)
    path = "/generate_stream" if request.stream else "/generate"
    return UpstreamRequest(
        method="POST",
        url=f"{provider.base_url}{path}",
        headers=json_headers(provider, api_key, stream=request.stream),
        body=orjson.dumps({"inputs": prompt, "parameters": parameters}),
        stream=request.stream,
        dialect=DIALECT,
        transcoder=prompt_answer_options(
            body, prompt, plan, stop, parameters.get("max_new_tokens")
        ),
    )


def classify_error(
    provider: ProviderConfig, status: int, body: bytes, retry_after: str | None
) -> UpstreamFailure:
    failure = classify_body(provider, status, body, retry_after)
    if status == 424:  # "Request failed during generation": the server's failure, try elsewhere
        return UpstreamFailure(failure.error, retryable=True)
    return failure


def models_url(provider: ProviderConfig) -> str | None:
    return f"{provider.base_url}/info"


def read_models(body: bytes) -> list[dict[str, Any]] | None:
    """``/info`` → the one model the server serves, with its context length."""
    try:
        info = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(info, dict) or not isinstance(info.get("model_id"), str):
        return None
    entry = model_item(info["model_id"], "tgi")
    for key in ("max_total_tokens", "max_input_tokens", "max_input_length"):
        if isinstance(info.get(key), int):
            entry["context_length"] = info[key]
            break
    return [entry]


ADAPTER = ProviderAdapter(
    kind="tgi",
    dialect=DIALECT,
    build_chat=build_chat,
    classify_error=classify_error,
    models_url=models_url,
    auth_headers=auth_headers,
    read_models=read_models,
    templated=True,
)
