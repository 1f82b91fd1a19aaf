"""What the gateway must know about an upstream model before it can build a request.

For most providers that is just the id and the configured settings (cheap, no I/O). Providers
of a native text-generation kind also need the model's chat template, and providers whose ids
have a canonical casing need the catalog's spelling; both are cached after the first request.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from sluicegate.config import Config, ConfigError, ModelSettings
from sluicegate.errors import GatewayError
from sluicegate.models import ModelCatalog
from sluicegate.providers import ADAPTERS, ModelProfile
from sluicegate.routing import Route

if TYPE_CHECKING:
    from sluicegate.templates import TemplateOverride, TemplateResolver


class ModelProfiles:
    def __init__(self, catalog: ModelCatalog, templates: TemplateResolver | None = None):
        self._catalog = catalog
        self._templates = templates  # made on first use: only templated providers need one

    def _resolver(self) -> TemplateResolver:
        if self._templates is None:
            from sluicegate.templates import HubSource, TemplateResolver

            self._templates = TemplateResolver(hub=HubSource.from_env(os.environ))
        return self._templates

    async def aclose(self) -> None:
        if self._templates is not None and self._templates.hub is not None:
            await self._templates.hub.aclose()

    async def profile(self, route: Route, *, chat: bool = True) -> ModelProfile:
        """The profile for a chat request, or (``chat=False``) for one that needs no template,
        such as embeddings."""
        provider, adapter = route.provider, route.adapter
        model = route.upstream_model
        if adapter.case_insensitive_ids:
            model = await self._catalog.upstream_id(provider, model)
        settings = provider.settings_for(model)
        if not (chat and adapter.templated):
            return ModelProfile(model, settings)
        template = await self._resolver().resolve(model, template_override(settings))
        return ModelProfile(model, settings, template)


def template_override(settings: ModelSettings) -> TemplateOverride:
    from sluicegate.templates import TemplateOverride

    return TemplateOverride(
        chat_template=settings.chat_template,
        bos_token=settings.bos_token,
        eos_token=settings.eos_token,
        stop=settings.stop,
        base_dir=settings.base_dir,
    )


def check_templates(config: Config, environ: Mapping[str, str]) -> None:
    """Fail start-up, not a client's request, on a configured chat template that is missing or
    does not compile, and on a bad ``HF_ENDPOINT``. Raises ``ConfigError``."""
    templated = [p for p in config.providers if ADAPTERS[p.kind].templated]
    if not templated:
        return
    from sluicegate.templates import HubSource, TemplateResolver

    HubSource.from_env(environ)  # raises ConfigError for a bad HF_ENDPOINT
    resolver = TemplateResolver()
    for provider in templated:
        for model_id, _ in provider.model_settings:
            settings = provider.settings_for(model_id)
            if settings.chat_template is None:
                continue
            try:
                resolver.configured(model_id, template_override(settings))
            except GatewayError as exc:
                raise ConfigError(f"provider {provider.name}: {exc.message}") from None
