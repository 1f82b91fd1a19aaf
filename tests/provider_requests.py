"""Build a provider's native chat request from an OpenAI body, for the adapter tests.

Each ``test_provider_*`` file checks one adapter's ``build_chat`` on its own (pure functions, no
sockets): ``ChatBuilds`` parses the body as the server would and returns the native JSON body
with the whole ``UpstreamRequest``, or the 400 the client would get.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest

from sluicegate.chat import ChatRequest, parse_chat_request
from sluicegate.config import ProviderConfig
from sluicegate.errors import GatewayError
from sluicegate.providers import ModelProfile
from sluicegate.providers.base import UpstreamRequest

BuildChat = Callable[[ProviderConfig, ModelProfile, ChatRequest, str | None], UpstreamRequest]


@dataclass(frozen=True)
class ChatBuilds:
    """One adapter's ``build_chat`` bound to a provider, a default profile and key, and the
    fields every test body starts from (at least the client's ``model``)."""

    build_chat: BuildChat
    provider: ProviderConfig
    profile: ModelProfile
    api_key: str | None
    base_body: dict[str, Any] = field(default_factory=dict)

    def build(
        self, body: dict[str, Any], profile: ModelProfile | None = None
    ) -> tuple[dict[str, Any], UpstreamRequest]:
        """The native JSON body and the request, for ``base_body`` updated with ``body``."""
        request = parse_chat_request(orjson.dumps({**self.base_body, **body}))
        built = self.build_chat(self.provider, profile or self.profile, request, self.api_key)
        return orjson.loads(built.body), built

    def error(self, body: dict[str, Any], profile: ModelProfile | None = None) -> GatewayError:
        """The error building ``body`` raises; it must be the client's fault (400)."""
        with pytest.raises(GatewayError) as info:
            self.build(body, profile)
        assert info.value.status == 400
        return info.value
