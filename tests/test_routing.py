"""Model names → routes, and upstream error answers → what the client sees."""

from __future__ import annotations

import pytest

from sluicegate.config import ProviderConfig
from sluicegate.errors import GatewayError
from sluicegate.providers import ADAPTERS
from sluicegate.routing import RouteTable


def provider(name: str, keys: tuple[str, ...] = ()) -> ProviderConfig:
    return ProviderConfig(name=name, kind="openai", base_url=f"http://{name}/v1", api_keys=keys)


TABLE = RouteTable(
    [provider("nvidia", ("k1", "k2")), provider("openrouter"), provider("sluicegate")]
)


@pytest.mark.parametrize(
    ("model", "provider_name", "upstream"),
    [
        ("nvidia/glm-5.2", "nvidia", "glm-5.2"),
        ("openrouter/meta-llama/llama-3.3-70b", "openrouter", "meta-llama/llama-3.3-70b"),
        ("NVIDIA/Glm-5.2", "nvidia", "Glm-5.2"),  # provider matched case-insensitively, id kept
        ("sluicegate/nvidia/glm-5.2", "nvidia", "glm-5.2"),  # OpenClaw's prefix stripped once
        ("sluicegate/sluicegate/m", "sluicegate", "m"),  # ... and never twice
    ],
)
def test_resolve(model: str, provider_name: str, upstream: str) -> None:
    route = TABLE.resolve(model)
    assert route.provider.name == provider_name
    assert route.upstream_model == upstream


@pytest.mark.parametrize("model", ["gpt-4o", "nobody/x", "nvidia/", "sluicegate/nobody/x"])
def test_unknown_models_are_404_model_not_found(model: str) -> None:
    with pytest.raises(GatewayError) as info:
        TABLE.resolve(model)
    assert info.value.status == 404
    assert info.value.code == "model_not_found"
    assert "nvidia" in info.value.message, "the message lists the providers that exist"


def test_no_providers_says_how_to_add_one() -> None:
    with pytest.raises(GatewayError) as info:
        RouteTable([]).resolve("openai/gpt-4o")
    assert "OPENAI_API_KEY" in info.value.message


def test_keys_rotate_round_robin() -> None:
    table = RouteTable([provider("nvidia", ("k1", "k2"))])
    p = table.resolve("nvidia/x").provider
    assert [table.next_key(p) for _ in range(4)] == ["k1", "k2", "k1", "k2"]
    assert RouteTable([provider("open")]).next_key(provider("open")) is None


@pytest.mark.parametrize(
    ("status", "body", "client_status", "code", "retryable"),
    [
        (
            400,
            b'{"error":{"message":"bad temperature","code":"invalid_value"}}',
            400,
            "invalid_value",
            False,
        ),
        (
            400,
            b'{"error":{"message":"This model\'s maximum context length is 8192 tokens"}}',
            400,
            "context_length_exceeded",
            False,
        ),
        (
            401,
            b'{"error":{"message":"Invalid API key sk-live-SECRET"}}',
            502,
            "upstream_auth_failed",
            True,
        ),
        (402, b"payment required", 503, "upstream_insufficient_quota", True),
        (404, b"{}", 404, "model_not_found", True),
        (429, b'{"error":"slow down"}', 429, "rate_limit_exceeded", True),
        (500, b"<html>oops</html>", 502, "upstream_error", True),
        (
            529,
            b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}',
            503,
            "upstream_overloaded",
            True,
        ),
        (504, b"", 504, "upstream_timeout", True),
    ],
)
def test_upstream_errors_are_mapped(
    status: int, body: bytes, client_status: int, code: str, retryable: bool
) -> None:
    failure = ADAPTERS["openai"].classify_error(provider("nvidia"), status, body, "3")
    assert failure.error.status == client_status
    assert failure.error.code == code
    assert failure.retryable is retryable
    assert "nvidia" in failure.error.message
    assert "SECRET" not in failure.error.message
    if status == 429:
        assert ("retry-after", "3") in failure.error.headers


def test_context_overflow_uses_openai_wording() -> None:
    failure = ADAPTERS["openai"].classify_error(
        provider("p"), 400, b'{"error":{"message":"prompt is too long: 300000 tokens"}}', None
    )
    assert "maximum context length" in failure.error.message


def test_keys_in_upstream_messages_are_masked() -> None:
    p = ProviderConfig(name="p", kind="openai", base_url="http://p/v1", api_keys=("plainkey123",))
    failure = ADAPTERS["openai"].classify_error(
        p, 500, b'{"error":{"message":"boom for plainkey123 and sk-abcdef1234567"}}', None
    )
    assert "plainkey123" not in failure.error.message
    assert "sk-abcdef1234567" not in failure.error.message
    assert "[redacted]" in failure.error.message
