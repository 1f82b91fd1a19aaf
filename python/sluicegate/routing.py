"""Turn the model name a client sent into a route: provider + upstream model id + key.

``"nvidia/glm-5.2"`` goes to provider ``nvidia`` with upstream model ``glm-5.2``: the provider is
the text before the first slash, the upstream id is everything after it (slashes kept, as
Hugging Face ids need). Knows nothing about wire formats.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from sluicegate.config import ProviderConfig
from sluicegate.errors import GatewayError
from sluicegate.providers import ADAPTERS, ProviderAdapter

# OpenClaw puts its own provider id in front of ours ("sluicegate/openai/gpt-4o"); it is
# stripped once, never twice, so a provider really named "sluicegate" still works after it.
CLIENT_PREFIX = "sluicegate/"


@dataclass(frozen=True, slots=True)
class Route:
    provider: ProviderConfig
    adapter: ProviderAdapter
    upstream_model: str


class RouteTable:
    def __init__(self, providers: Iterable[ProviderConfig]):
        self._providers: dict[str, ProviderConfig] = {p.name.lower(): p for p in providers}
        self._keys: dict[str, Iterator[str]] = {
            name: itertools.cycle(p.api_keys) for name, p in self._providers.items() if p.api_keys
        }

    @property
    def providers(self) -> tuple[ProviderConfig, ...]:
        return tuple(self._providers.values())

    def resolve(self, model: str) -> Route:
        name = model[len(CLIENT_PREFIX) :] if model.lower().startswith(CLIENT_PREFIX) else model
        provider_name, slash, upstream_model = name.partition("/")
        provider = self._providers.get(provider_name.lower())
        if provider is None or not slash or not upstream_model:
            raise self._not_found(model)
        return Route(provider, ADAPTERS[provider.kind], upstream_model)

    def next_key(self, provider: ProviderConfig) -> str | None:
        """The key for the next request to ``provider`` (round-robin over its keys)."""
        keys = self._keys.get(provider.name.lower())
        return next(keys) if keys else None

    def _not_found(self, model: str) -> GatewayError:
        if self._providers:
            known = ", ".join(sorted(self._providers))
            hint = (
                f"Use 'provider/model' with one of these providers: {known} (see GET /v1/models)."
            )
        else:
            hint = (
                "No provider is configured: set a provider key such as OPENAI_API_KEY, "
                "or declare [[providers]] in the config file."
            )
        return GatewayError(
            404,
            f"The model '{model}' does not exist or no configured provider serves it. {hint}",
            "invalid_request_error",
            "model_not_found",
            "model",
        )
