"""``GET /v1/models``: every name a client can use, as ``provider/id``.

Each provider's own ``/models`` list is fetched (in parallel, briefly bounded) and cached for
``ttl`` seconds; the provider's static ``models`` from the config are always listed. A provider
that cannot be listed is logged and contributes only its static models — one dead provider must
not break the catalog.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx
import orjson
import trio

from sluicegate.config import ModelAlias, ProviderConfig
from sluicegate.errors import GatewayError
from sluicegate.providers import ADAPTERS
from sluicegate.routing import RouteTable
from sluicegate.upstream import UpstreamPool, describe_url

log = logging.getLogger("sluicegate.models")

LIST_TIMEOUT = 5.0
DETAIL_CONCURRENCY = 4  # model-detail requests in flight per provider
MAX_DETAILED_MODELS = 200  # a catalog this long is listed without details beyond these
RETRY_AFTER_FAILURE = 30.0  # seconds before the request path asks a failed catalog again
MAX_LIST_BYTES = 8 * 1024 * 1024


def alias_entry(alias: ModelAlias) -> dict[str, Any]:
    """How ``/v1/models`` shows an alias: its id, what it routes to, and what the config says
    about it (context length, output cap, pricing in USD per 1M tokens)."""
    entry: dict[str, Any] = {
        "id": alias.id,
        "object": "model",
        "created": 0,
        "owned_by": "sluicegate",
        "routes": list(alias.routes),
    }
    if alias.name:
        entry["name"] = alias.name
    if alias.context_window:
        entry["context_length"] = alias.context_window
    if alias.max_tokens:
        entry["max_tokens"] = alias.max_tokens
    if alias.pricing is not None:
        entry["pricing"] = {
            "input_tokens": alias.pricing.input,
            "output_tokens": alias.pricing.output,
            "cache_read_tokens": alias.pricing.cache_read,
            "cache_write_tokens": alias.pricing.cache_write,
        }
    return entry


class ModelCatalog:
    def __init__(self, routes: RouteTable, pool: UpstreamPool, ttl: float):
        self._routes = routes
        self._pool = pool
        self._ttl = ttl
        self._cache: dict[str, tuple[float, list[dict[str, Any]]]] = {}
        # provider name -> lower-cased upstream id -> the id as the upstream spells it
        self._spellings: dict[str, dict[str, str]] = {}
        # A provider whose list could not be fetched is not asked again on the request path for
        # a while: a dead catalog must not add its timeout to every request.
        self._failed_at: dict[str, float] = {}
        self._locks: dict[str, trio.Lock] = {}

    async def upstream_id(self, provider: ProviderConfig, model_id: str) -> str:
        """``model_id`` as the upstream spells it (``qwen/qwen3-max`` → ``Qwen/Qwen3-Max``).

        Looks the id up in the provider's cached list (fetching it when stale); an id the list
        does not have is used as typed, so a model missing from the catalog still works.
        """
        spellings = self._spellings.get(provider.name)
        failed = self._failed_at.get(provider.name)
        recently_failed = failed is not None and trio.current_time() - failed < RETRY_AFTER_FAILURE
        if (spellings is None or model_id.lower() not in spellings) and not recently_failed:
            await self._provider_models(provider)
            spellings = self._spellings.get(provider.name)
        return (spellings or {}).get(model_id.lower(), model_id)

    def known_context_length(self, provider: ProviderConfig, model_id: str) -> int | None:
        """The context length the provider's cached list states for ``model_id``, if any
        (no fetch: this is asked on the request path when a route failed)."""
        cached = self._cache.get(provider.name)
        wanted = f"{provider.name}/{model_id}".lower()
        for entry in cached[1] if cached else ():
            if entry["id"].lower() == wanted:
                length = entry.get("context_length")
                return length if isinstance(length, int) and length > 0 else None
        return None

    async def listing(self) -> bytes:
        """The OpenAI ``list`` object, serialised: the config's aliases first, then every
        provider's models as ``provider/id``."""
        found: dict[str, list[dict[str, Any]]] = {}

        async def one(provider: ProviderConfig) -> None:
            found[provider.name] = await self._provider_models(provider)

        async with trio.open_nursery() as nursery:
            for provider in self._routes.providers:
                nursery.start_soon(one, provider)
        data = [alias_entry(alias) for alias in self._routes.aliases]
        data += [entry for p in self._routes.providers for entry in found.get(p.name, [])]
        return orjson.dumps({"object": "list", "data": data})

    async def _provider_models(self, provider: ProviderConfig) -> list[dict[str, Any]]:
        # One fetch per provider at a time; whoever waited finds the fresh cache.
        async with self._locks.setdefault(provider.name, trio.Lock()):
            return await self._provider_models_locked(provider)

    async def _provider_models_locked(self, provider: ProviderConfig) -> list[dict[str, Any]]:
        cached = self._cache.get(provider.name)
        if cached and trio.current_time() - cached[0] < self._ttl:
            return cached[1]
        upstream = await self._fetch(provider)
        if upstream is None:
            self._failed_at[provider.name] = trio.current_time()
        entries: dict[str, dict[str, Any]] = {}
        for model_id in provider.models:
            entries[model_id] = {"id": model_id, "object": "model", "owned_by": provider.name}
        adapter = ADAPTERS[provider.kind]
        for item in upstream or []:
            entries.setdefault(item["id"], {}).update(adapter.model_entry(item))
        listed = [
            {
                **item,
                "id": f"{provider.name}/{model_id}",
                "object": "model",
                "owned_by": item.get("owned_by") or provider.name,
            }
            for model_id, item in entries.items()
        ]
        if upstream is not None:  # only a successful fetch is cached; failures retry next time
            self._cache[provider.name] = (trio.current_time(), listed)
            self._spellings[provider.name] = {model_id.lower(): model_id for model_id in entries}
        return listed

    async def _fetch(self, provider: ProviderConfig) -> list[dict[str, Any]] | None:
        adapter = ADAPTERS[provider.kind]
        url = adapter.models_url(provider)
        if url is None:
            return None
        body = await self._get(provider, "GET", url)
        if body is None:
            return None
        items = adapter.read_models(body)
        if items is None:
            log.warning(
                "provider %s: %s did not return a model list", provider.name, describe_url(url)
            )
            return None
        if adapter.model_details is not None and adapter.read_model_details is not None:
            await self._add_details(provider, items)
        return items

    async def _add_details(self, provider: ProviderConfig, items: list[dict[str, Any]]) -> None:
        """Ask the provider about each model (Ollama's /api/show: context length,
        capabilities), a few at a time; a model that cannot be asked keeps what it has."""
        adapter = ADAPTERS[provider.kind]
        assert adapter.model_details is not None and adapter.read_model_details is not None
        limit = trio.Semaphore(DETAIL_CONCURRENCY)

        async def one(item: dict[str, Any]) -> None:
            method, url, payload = adapter.model_details(provider, item["id"])
            async with limit:
                body = await self._get(provider, method, url, payload)
            if body is not None:
                item.update(adapter.read_model_details(body))

        async with trio.open_nursery() as nursery:
            for item in items[:MAX_DETAILED_MODELS]:
                nursery.start_soon(one, item)

    async def _get(
        self, provider: ProviderConfig, method: str, url: str, payload: bytes | None = None
    ) -> bytes | None:
        """The body of a successful answer, or None (logged) for any failure."""
        adapter = ADAPTERS[provider.kind]
        try:
            key = self._routes.next_key(provider)
        except GatewayError:  # every key is resting: ask again later
            return None
        headers = [*adapter.auth_headers(key), *provider.headers]
        if payload is not None:
            headers.append(("content-type", "application/json"))
        try:
            async with self._pool.lease(provider) as client:
                with trio.fail_after(LIST_TIMEOUT):
                    response = await client.request(method, url, headers=headers, content=payload)
        except (httpx.HTTPError, trio.TooSlowError) as exc:
            log.warning(
                "provider %s: could not list models at %s (%s)",
                provider.name,
                describe_url(url),
                type(exc).__name__,
            )
            return None
        if not response.is_success or len(response.content) > MAX_LIST_BYTES:
            log.warning(
                "provider %s: listing models at %s gave HTTP %d",
                provider.name,
                describe_url(url),
                response.status_code,
            )
            return None
        return response.content
