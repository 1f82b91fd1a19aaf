"""Map an upstream's HTTP error answer to what the client sees.

The mapping is written for OpenClaw's failover (../shared/reference/OPENCLAW.md §5): an upstream
401/402/403 must never reach the client as such, or the client disables the gateway's own key.
Context-length errors stay 400 with OpenAI's wording so the client compacts instead of failing.
"""

from __future__ import annotations

import re

import orjson

from sluicegate.config import ProviderConfig
from sluicegate.errors import GatewayError
from sluicegate.providers.base import UpstreamFailure

_CONTEXT_WORDS = re.compile(
    r"context length|context window|maximum context|too many tokens|prompt is too long"
    r"|input is too long|tokens \+ `?max_new_tokens|exceeds maximum input length",
    re.IGNORECASE,
)
_MAX_UPSTREAM_MESSAGE = 500
# Things in an upstream message that look like credentials ("sk-…", long opaque tokens) are
# masked: some providers echo the key they were sent, and errors reach clients and logs.
_KEY_LIKE = re.compile(
    r"\b(?:sk|pk|rk|key|tok|nvapi|hf)[-_][A-Za-z0-9_\-]{6,}|\b[A-Za-z0-9_\-]{32,}\b"
)


def _clean(message: str, provider: ProviderConfig) -> str:
    for key in provider.api_keys:
        message = message.replace(key, "[redacted]")
    message = _KEY_LIKE.sub("[redacted]", " ".join(message.split()))
    if len(message) > _MAX_UPSTREAM_MESSAGE:
        message = message[:_MAX_UPSTREAM_MESSAGE] + "…"
    return message


def classify_status(
    provider: ProviderConfig,
    status: int,
    upstream_message: str | None,
    upstream_code: str | None,
    retry_after: str | None,
) -> UpstreamFailure:
    """The client-facing error for an upstream ``status`` (and whether another route may help)."""
    name = provider.name
    said = f": {_clean(upstream_message, provider)}" if upstream_message else ""

    def fail(
        client_status: int,
        message: str,
        type_: str,
        code: str | None,
        retryable: bool,
        headers: tuple[tuple[str, str], ...] = (),
    ) -> UpstreamFailure:
        return UpstreamFailure(
            GatewayError(client_status, message, type_, code, None, headers), retryable
        )

    # DeepInfra answers an over-long prompt with a 500 ("Requested input length 99009 exceeds
    # maximum input length 8192"); it is still the client's context problem, not an outage.
    context_status = status in (400, 413, 422, 500)
    if context_status and upstream_message and _CONTEXT_WORDS.search(upstream_message):
        return fail(
            400,
            f"This model's maximum context length was exceeded (provider '{name}'{said}). "
            "Shorten the conversation or lower max_tokens.",
            "invalid_request_error",
            "context_length_exceeded",
            False,
        )
    if status in (400, 422):
        return fail(
            400,
            f"Provider '{name}' rejected the request (HTTP {status}){said}. "
            "Fix the request fields it names.",
            "invalid_request_error",
            upstream_code or "upstream_rejected_request",
            False,
        )
    if status in (401, 403):
        return fail(
            502,
            f"Provider '{name}' refused sluicegate's credentials (HTTP {status}){said}. "
            f"The gateway operator must check the API key configured for '{name}'.",
            "upstream_auth_error",
            "upstream_auth_failed",
            True,
        )
    if status == 402:
        return fail(
            503,
            f"Provider '{name}' reports a billing or quota problem (HTTP 402){said}. "
            f"The gateway operator must top up or change the account used for '{name}'.",
            "upstream_billing_error",
            "upstream_insufficient_quota",
            True,
        )
    if status == 404:
        return fail(
            404,
            f"Provider '{name}' does not know this model (HTTP 404){said}. "
            "List the available models with GET /v1/models.",
            "invalid_request_error",
            "model_not_found",
            True,
        )
    if status == 429:
        headers = (("retry-after", retry_after),) if retry_after else ()
        wait = f" Retry after {retry_after} s." if retry_after else " Retry later."
        return fail(
            429,
            f"Provider '{name}' is rate-limiting requests (HTTP 429){said}.{wait}",
            "rate_limit_error",
            "rate_limit_exceeded",
            True,
            headers,
        )
    if status == 413:
        return fail(
            413,
            f"Provider '{name}' says the request is too large (HTTP 413){said}. Send less input.",
            "invalid_request_error",
            "request_too_large",
            False,
        )
    if status in (503, 529):
        return fail(
            503,
            f"Provider '{name}' is overloaded or unavailable (HTTP {status}){said}. Retry shortly.",
            "upstream_error",
            "upstream_overloaded",
            True,
        )
    if status in (408, 504):
        return fail(
            504,
            f"Provider '{name}' timed out (HTTP {status}){said}. Retry, or use a smaller request.",
            "upstream_error",
            "upstream_timeout",
            True,
        )
    return fail(
        502,
        f"Provider '{name}' failed (HTTP {status}){said}. Retry, or use another model.",
        "upstream_error",
        "upstream_error",
        status >= 500 or status in (409, 425),
    )


def error_fields(body: bytes) -> tuple[str | None, str | None]:
    """The message and code of an upstream's error body, whatever its dialect's shape:
    ``{"error": {"message", "code"}}`` (OpenAI, Anthropic, Ollama's OpenAI layer),
    ``{"error": "..."}`` (DeepInfra, TGI, Ollama), ``{"error_message": ...}`` (DeepInfra in a
    stream), FastAPI's ``{"detail": "..." | [{"loc", "msg"}]}``, or a bare ``{"message": ...}``."""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None, None
    if not isinstance(parsed, dict):
        return None, None
    error = parsed.get("error")
    if isinstance(error, str):
        return error, None
    if isinstance(error, dict):
        message = error.get("message") if isinstance(error.get("message"), str) else None
        code = error.get("code")
        return message, str(code) if isinstance(code, str | int) and code != "" else None
    for key in ("error_message", "message"):
        if isinstance(parsed.get(key), str):
            return parsed[key], None
    detail = parsed.get("detail")
    if isinstance(detail, str):
        return detail, None
    if isinstance(detail, list):
        problems = []
        for item in detail:
            if isinstance(item, dict):
                where = ".".join(str(p) for p in item.get("loc", ()) if p != "body")
                problems.append(f"{where}: {item.get('msg')}" if where else str(item.get("msg")))
        return "; ".join(problems) or None, None
    return None, None


def classify_body(
    provider: ProviderConfig, status: int, body: bytes, retry_after: str | None
) -> UpstreamFailure:
    """``classify_status`` for an error answer's raw body (every adapter's ``classify_error``)."""
    message, code = error_fields(body)
    return classify_status(provider, status, message, code, retry_after)
