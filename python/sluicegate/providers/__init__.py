"""Provider adapters, one module per upstream dialect.

``ADAPTERS`` maps a config ``kind`` to its adapter.
"""

from sluicegate.providers import anthropic, deepinfra, ollama, openai, tgi
from sluicegate.providers.base import (
    ModelProfile,
    ProviderAdapter,
    UpstreamFailure,
    UpstreamRequest,
)

ADAPTERS: dict[str, ProviderAdapter] = {
    adapter.kind: adapter
    for adapter in (
        openai.ADAPTER,
        deepinfra.ADAPTER,
        tgi.ADAPTER,
        ollama.ADAPTER,
        anthropic.ADAPTER,
    )
}

__all__ = ["ADAPTERS", "ModelProfile", "ProviderAdapter", "UpstreamFailure", "UpstreamRequest"]
