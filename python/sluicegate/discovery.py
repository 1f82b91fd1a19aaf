"""Finding a local Ollama at start-up, so a host with Ollama next to it needs no configuration.

When no provider named ``ollama`` is configured (no ``OLLAMA_BASE_URL``/``OLLAMA_HOST``, none in
the file), the CLI asks ``http://127.0.0.1:11434/api/version`` once, briefly; if it answers, an
``ollama`` provider pointing there is on. Either way it says so in the log.
``SLUICEGATE_LOCAL_OLLAMA`` names another address to ask, or ``off`` to skip the probe.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace

import httpx

from sluicegate.config import Config, ProviderConfig

log = logging.getLogger("sluicegate.discovery")

LOCAL_OLLAMA = "http://127.0.0.1:11434"
PROBE_TIMEOUT = 0.5  # seconds; a local server answers in well under that
LOCAL_SOURCE = "local Ollama"


def ollama_answers(base_url: str, timeout: float = PROBE_TIMEOUT) -> bool:
    """Whether an Ollama answers ``GET {base_url}/api/version``."""
    try:
        response = httpx.get(f"{base_url}/api/version", timeout=timeout, trust_env=False)
    except httpx.HTTPError:
        return False
    return response.is_success and b"version" in response.content


def with_local_ollama(config: Config, env: Mapping[str, str]) -> Config:
    """``config`` plus a local Ollama provider when one answers and none is configured."""
    if any(p.name == "ollama" for p in config.providers) or "ollama" in config.declared:
        return config
    where = env.get("SLUICEGATE_LOCAL_OLLAMA", "").strip() or LOCAL_OLLAMA
    if where.lower() == "off":
        return config
    where = where.rstrip("/")
    if not ollama_answers(where):
        log.info(
            "ollama: off (OLLAMA_BASE_URL and OLLAMA_HOST are not set, and no Ollama "
            "answered at %s)",
            where,
        )
        return config
    log.info("ollama: on (found a local Ollama at %s)", where)
    provider = ProviderConfig("ollama", "ollama", where, (), source=LOCAL_SOURCE)
    return replace(config, providers=(*config.providers, provider))


def local_ollama_env(config: Config) -> dict[str, str]:
    """What the supervisor tells its workers about the probe it already made, so that each
    worker neither asks again nor can come to another answer."""
    for provider in config.providers:
        if provider.source == LOCAL_SOURCE:
            return {"OLLAMA_BASE_URL": provider.base_url}
    return {"SLUICEGATE_LOCAL_OLLAMA": "off"}
