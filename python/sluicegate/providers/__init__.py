"""Provider adapters, one module per upstream dialect.

``ADAPTERS`` maps a config ``kind`` to its adapter.
"""

from sluicegate.providers import openai
from sluicegate.providers.base import ProviderAdapter, UpstreamFailure, UpstreamRequest

ADAPTERS: dict[str, ProviderAdapter] = {openai.ADAPTER.kind: openai.ADAPTER}

__all__ = ["ADAPTERS", "ProviderAdapter", "UpstreamFailure", "UpstreamRequest"]
