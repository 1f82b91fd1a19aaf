"""Turn the model name a client sent into routes: provider + upstream model id (+ a key).

An alias from the config (``[[models]]``, matched ignoring case) stands for its ordered routes.
Any other name is ``provider/model``: ``"nvidia/glm-5.2"`` goes to provider ``nvidia`` with
upstream model ``glm-5.2``; the provider is the text before the first slash, the upstream id is
everything after it (slashes kept, as Hugging Face ids need). Aliases win over provider/model.
Knows nothing about wire formats.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from sluicegate.config import ModelAlias, ProviderConfig
from sluicegate.errors import GatewayError
from sluicegate.providers import ADAPTERS, ProviderAdapter
from sluicegate.resilience import AllKeysCooling, KeyRing

# OpenClaw puts its own provider id in front of ours ("sluicegate/openai/gpt-4o"); it is
# stripped once, never twice, so a provider really named "sluicegate" still works after it.
CLIENT_PREFIX = "sluicegate/"


@dataclass(frozen=True, slots=True)
class Route:
    provider: ProviderConfig
    adapter: ProviderAdapter
    upstream_model: str
    alias: ModelAlias | None = None  # the alias this route came from, if any


class RouteTable:
    def __init__(self, providers: Iterable[ProviderConfig], aliases: Iterable[ModelAlias] = ()):
        self._providers: dict[str, ProviderConfig] = {p.name.lower(): p for p in providers}
        self._aliases: dict[str, ModelAlias] = {a.id.lower(): a for a in aliases}
        self._keys: dict[str, KeyRing] = {
            name: KeyRing(p.api_keys) for name, p in self._providers.items()
        }

    @property
    def providers(self) -> tuple[ProviderConfig, ...]:
        return tuple(self._providers.values())

    @property
    def aliases(self) -> tuple[ModelAlias, ...]:
        return tuple(self._aliases.values())

    def resolve(self, model: str) -> Route:
        """The first route of ``model`` (see ``routes``)."""
        return self.routes(model)[0]

    def routes(self, model: str) -> list[Route]:
        """``model``'s routes: an alias's, in order, or the one ``provider/model`` route."""
        name = model[len(CLIENT_PREFIX) :] if model.lower().startswith(CLIENT_PREFIX) else model
        alias = self._aliases.get(name.lower())
        if alias is not None:
            return [self._direct(route, model, alias) for route in alias.routes]
        return [self._direct(name, model)]

    def _direct(self, name: str, asked: str, alias: ModelAlias | None = None) -> Route:
        provider_name, slash, upstream_model = name.partition("/")
        provider = self._providers.get(provider_name.lower())
        if provider is None or not slash or not upstream_model:
            raise self._not_found(asked)
        return Route(provider, ADAPTERS[provider.kind], upstream_model, alias)

    def candidates(self, model: str, fallbacks: tuple[str, ...] = ()) -> list[Route]:
        """The routes to try, in order: ``model``'s, then each fallback's, each once.

        Every name is checked up front, so a typo in a fallback is a 404 now rather than a
        surprise when the first route fails."""
        routes: list[Route] = []
        for name in (model, *fallbacks):
            for route in self.routes(name):
                if route not in routes:
                    routes.append(route)
        return routes

    def next_key(self, provider: ProviderConfig) -> str | None:
        """The key for the next request to ``provider``: round-robin over its keys, skipping
        keys that are cooling down. Raises a 429 ``GatewayError`` when every key is resting."""
        ring = self._keys.get(provider.name.lower())
        if ring is None:
            return None
        try:
            return ring.take()
        except AllKeysCooling as cooling:
            wait = str(max(1, math.ceil(cooling.retry_after)))
            if cooling.reason == "refused":
                raise GatewayError(
                    502,
                    f"Provider '{provider.name}' refused every API key sluicegate has for it. "
                    f"The gateway operator must check the keys; they are retried in {wait} s.",
                    "upstream_auth_error",
                    "upstream_auth_failed",
                ) from None
            raise GatewayError(
                429,
                f"Every API key of provider '{provider.name}' is resting after rate limits or "
                f"refusals. Retry after {wait} s, or add keys (api_keys) to the provider.",
                "rate_limit_error",
                "rate_limit_exceeded",
                headers=(("retry-after", wait),),
            ) from None

    def rest_key(self, provider: ProviderConfig, key: str, seconds: float, reason: str) -> bool:
        """Leave ``key`` out of ``provider``'s rotation for ``seconds``; whether it was.

        Only a provider with several keys rests one: with a single key there is nothing to
        rotate to, so each request asks the upstream again."""
        ring = self._keys.get(provider.name.lower())
        if ring is None or len(provider.api_keys) < 2:
            return False
        ring.rest(key, seconds, reason)
        return True

    def _not_found(self, model: str) -> GatewayError:
        if self._providers:
            known = ", ".join(sorted(self._providers))
            aliases = ", ".join(a.id for a in self._aliases.values())
            also = f", or one of the aliases {aliases}" if aliases else ""
            hint = (
                f"Use 'provider/model' with one of these providers: {known}{also} "
                "(see GET /v1/models)."
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
