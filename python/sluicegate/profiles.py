"""What the gateway must know about an upstream model before it can build a request.

For most providers that is just the id and the configured settings (cheap, no I/O). Providers
of a native text-generation kind also need the model's chat template, and providers whose ids
have a canonical casing need the catalog's spelling; both are cached after the first request.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from sluicegate.models import ModelCatalog
from sluicegate.providers import ModelProfile
from sluicegate.routing import Route

if TYPE_CHECKING:
    from sluicegate.templates import TemplateResolver


class ModelProfiles:
    def __init__(self, catalog: ModelCatalog, templates: TemplateResolver | None = None):
        self._catalog = catalog
        self._templates = templates  # made on first use: only templated providers need one

    def _resolver(self) -> TemplateResolver:
        if self._templates is None:
            from sluicegate.templates import HubSource, TemplateResolver

            self._templates = TemplateResolver(hub=HubSource.from_env(os.environ))
        return self._templates

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
        from sluicegate.templates import TemplateOverride

        override = TemplateOverride(
            chat_template=settings.chat_template,
            bos_token=settings.bos_token,
            eos_token=settings.eos_token,
            stop=settings.stop,
            base_dir=settings.base_dir,
        )
        template = await self._resolver().resolve(model, override)
        return ModelProfile(model, settings, template)
