"""The OpenClaw registration of this gateway: the ``openclaw.json`` fragment that
``sluicegate openclaw-config`` prints.

OpenClaw (a self-hosted assistant runtime) reaches custom gateways through
``models.providers.<id>`` with ``api: "openai-completions"``; its agents name models as
``<id>/<model id>``. ``build_openclaw_config`` turns a loaded ``Config`` into that fragment and
``agents.defaults.model`` (primary and fallbacks). It is a pure function: no I/O, no environment;
the caller prints the document and the notes.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sluicegate.config import Config, ModelAlias, ProviderConfig, ServerConfig

DEFAULT_PROVIDER_ID = "sluicegate"
DEFAULT_API_KEY_ENV = "SLUICEGATE_API_KEY"

# OpenClaw lower-cases provider ids when it parses "<id>/<model>" and splits on the first "/",
# so an id with capitals or a slash would never match its own entry.
_PROVIDER_ID = re.compile(r"[a-z0-9][a-z0-9._-]*")
# OpenClaw substitutes ${VAR} in config strings only for upper-case names.
_ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]*")
# Hosts OpenClaw treats as local: only there does a custom provider without apiKey get a
# synthetic key ("keyless loopback"); anywhere else OpenClaw refuses to call it without a key.
_LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
_LOCAL_SUFFIXES = (".localhost", ".local", ".internal")
# Addresses the gateway listens on that a client reaches as the loopback address.
_WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", "[::]"})

# OpenClaw asks for usage in streams (stream_options.include_usage) by default only for a
# loopback baseUrl; sluicegate always answers it, and without it OpenClaw's budgets read 0.
_COMPAT: dict[str, Any] = {"supportsUsageInStreaming": True}


class OpenClawConfigError(ValueError):
    """A choice that cannot make a valid OpenClaw document; ``str(e)`` says what to change."""


@dataclass(frozen=True, slots=True)
class OpenClawOptions:
    provider_id: str = DEFAULT_PROVIDER_ID
    base_url: str | None = None  # None: the gateway's own listen address, with /v1
    api_key_env: str = DEFAULT_API_KEY_ENV
    primary: str | None = None  # a listed model id, with or without the "<id>/" prefix
    fallbacks: tuple[str, ...] = ()  # empty: the other aliases, in file order


@dataclass(frozen=True, slots=True)
class OpenClawConfig:
    document: dict[str, Any]  # {"models": {...}, "agents": {...}}: JSON, hence also JSON5
    # For the user, beside the document (stderr), never inside it.
    notes: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()  # the document works, but only once the user acts


def build_openclaw_config(config: Config, options: OpenClawOptions) -> OpenClawConfig:
    """The ``openclaw.json`` fragment registering this gateway as ``options.provider_id``.

    Raises OpenClawConfigError for a bad option, a base URL OpenClaw cannot use, or a
    configuration without any model to list.
    """
    provider_id = _checked_provider_id(options.provider_id)
    key_env = _checked_env_name(options.api_key_env)
    base_url = (
        gateway_base_url(config.server)
        if options.base_url is None
        else _checked_base_url(options.base_url)
    )
    models = _model_entries(config)
    if not models:
        raise OpenClawConfigError(
            "the configuration lists no model for OpenClaw: add [[models]] aliases, or a "
            '`models = ["..."]` list to a [[providers]] entry, to the file given with --config '
            "(see docs/config.md)"
        )
    ids = [m["id"] for m in models]
    if options.primary:
        primary = _listed(options.primary, ids, provider_id, "--primary")
    else:
        primary = config.models[0].id if config.models else ids[0]
    if options.fallbacks:
        wanted = [_listed(f, ids, provider_id, "--fallback") for f in options.fallbacks]
    else:
        wanted = [a.id for a in config.models]
    fallbacks = [f for f in dict.fromkeys(wanted) if f != primary]

    provider: dict[str, Any] = {"baseUrl": base_url, "api": "openai-completions"}
    notes: list[str] = []
    warnings: list[str] = []
    host = urlsplit(base_url).hostname or ""
    if config.server.api_keys:
        provider["apiKey"] = f"${{{key_env}}}"
        notes.append(
            f"OpenClaw reads the gateway key from ${key_env}: set it, in OpenClaw's environment, "
            "to one of the gateway's client keys (SLUICEGATE_API_KEYS / [server] api_keys)"
        )
    elif not is_openclaw_local(host):
        provider["apiKey"] = f"${{{key_env}}}"
        warnings.append(
            f"the gateway has no client keys, but OpenClaw calls a provider without apiKey only "
            f"on a loopback baseUrl ({host} is not one), so the block still names ${key_env}: "
            "set it to any value in OpenClaw's environment, or better, give the gateway keys "
            "(SLUICEGATE_API_KEYS) so that nobody else on the network can spend your credits"
        )
    provider["models"] = models

    document = {
        "models": {"mode": "merge", "providers": {provider_id: provider}},
        "agents": {
            "defaults": {
                "model": {
                    "primary": f"{provider_id}/{primary}",
                    "fallbacks": [f"{provider_id}/{f}" for f in fallbacks],
                }
            }
        },
    }
    return OpenClawConfig(document, tuple(notes), tuple(warnings))


def gateway_base_url(server: ServerConfig) -> str:
    """``http://<host>:<port>/v1`` for the gateway's listen address, as a client on the same
    host reaches it (a wildcard address is reached as 127.0.0.1)."""
    if server.port == 0:
        raise OpenClawConfigError(
            "the gateway's port is 0 (a free port picked at start-up), so its address is not "
            "known in advance: set [server] port, or pass --base-url http://HOST:PORT/v1"
        )
    host = "127.0.0.1" if server.host in _WILDCARD_HOSTS else server.host.strip("[]")
    if ":" in host:  # an IPv6 literal
        host = f"[{host}]"
    return f"http://{host}:{server.port}/v1"


def is_openclaw_local(host: str) -> bool:
    """Whether OpenClaw counts ``host`` (a URL's hostname) as local, where it needs no key."""
    host = host.strip("[]").lower().rstrip(".")
    if host in _LOCAL_HOSTS or host.endswith(_LOCAL_SUFFIXES):
        return True
    try:
        # OpenClaw matches the literal "::1"; other spellings of it are the same address.
        return ipaddress.ip_address(host) == ipaddress.ip_address("::1")
    except ValueError:
        return False


# --- models[] ------------------------------------------------------------------------------


def _model_entries(config: Config) -> list[dict[str, Any]]:
    """One entry per alias, then one per provider's static model; an id listed twice (ids
    ignore case at the gateway) keeps its first entry."""
    entries: list[dict[str, Any]] = []
    seen: set[str] = set()
    providers = {p.name.lower(): p for p in config.providers}
    for alias in config.models:
        if alias.id.lower() not in seen:
            seen.add(alias.id.lower())
            entries.append(_alias_entry(alias, providers))
    for provider in config.providers:
        for model in provider.models:
            model_id = f"{provider.name}/{model}"
            if model_id.lower() not in seen:
                seen.add(model_id.lower())
                entries.append(_static_entry(model_id, provider.settings_for(model).context_window))
    return entries


def _alias_entry(alias: ModelAlias, providers: dict[str, ProviderConfig]) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "id": alias.id,
        "name": (alias.name or "").strip() or alias.id,
        "reasoning": alias.reasoning,
        # OpenClaw wants at least one input kind; every model the gateway serves takes text.
        "input": list(alias.input) or ["text"],
    }
    window = alias.context_window or _smallest_route_window(alias, providers)
    if window:
        entry["contextWindow"] = window
    if alias.max_tokens:
        entry["maxTokens"] = alias.max_tokens
    if alias.pricing is not None:
        entry["cost"] = {
            "input": alias.pricing.input,
            "output": alias.pricing.output,
            "cacheRead": alias.pricing.cache_read,
            "cacheWrite": alias.pricing.cache_write,
        }
    entry["compat"] = dict(_COMPAT)
    return entry


def _smallest_route_window(alias: ModelAlias, providers: dict[str, ProviderConfig]) -> int | None:
    """The window every route of ``alias`` is known to offer, when the config states one for
    each route (any route may answer, so only the smallest is a promise)."""
    windows: list[int] = []
    for route in alias.routes:
        name, _, model = route.partition("/")
        provider = providers.get(name.lower())
        window = provider.settings_for(model).context_window if provider else None
        if not window:
            return None
        windows.append(window)
    return min(windows) if windows else None


def _static_entry(model_id: str, window: int | None) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "id": model_id,
        "name": model_id,
        "reasoning": False,
        "input": ["text"],
    }
    if window:
        entry["contextWindow"] = window
    entry["compat"] = dict(_COMPAT)
    return entry


# --- option checks -------------------------------------------------------------------------


def _listed(model: str, ids: list[str], provider_id: str, flag: str) -> str:
    """The listed id ``model`` names, given as listed, with the ``<id>/`` prefix OpenClaw
    uses, or in other capitals (the gateway ignores case)."""
    by_lower = {i.lower(): i for i in ids}
    wanted = model.strip()
    candidates = [wanted]
    if wanted.lower().startswith(f"{provider_id}/"):
        candidates.append(wanted[len(provider_id) + 1 :])
    for candidate in candidates:
        if candidate in ids:
            return candidate
        if candidate.lower() in by_lower:
            return by_lower[candidate.lower()]
    raise OpenClawConfigError(
        f"{flag} {model!r} is not among the models the configuration lists; choose one of: "
        f"{', '.join(ids)}"
    )


def _checked_provider_id(provider_id: str) -> str:
    if not _PROVIDER_ID.fullmatch(provider_id):
        raise OpenClawConfigError(
            f"--provider-id {provider_id!r} cannot be an OpenClaw provider id: use lower-case "
            'letters, digits, ".", "-" and "_", starting with a letter or digit (for example '
            f'"{DEFAULT_PROVIDER_ID}")'
        )
    return provider_id


def _checked_env_name(name: str) -> str:
    if not _ENV_NAME.fullmatch(name):
        raise OpenClawConfigError(
            f"--api-key-env {name!r} is not a variable name OpenClaw substitutes: use upper-case "
            'letters, digits and "_", not starting with a digit (for example '
            f"{DEFAULT_API_KEY_ENV})"
        )
    return name


def _checked_base_url(url: str) -> str:
    base = url.strip().rstrip("/")
    parts = urlsplit(base)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise OpenClawConfigError(
            f"--base-url {url!r} is not an http:// or https:// URL; give the gateway's address "
            "as OpenClaw will reach it, for example http://127.0.0.1:4000/v1"
        )
    if parts.username or parts.password:
        raise OpenClawConfigError(
            "--base-url must not carry credentials (user:password@); OpenClaw sends the gateway "
            "key from the apiKey environment reference instead"
        )
    if parts.query or parts.fragment or not parts.path.endswith("/v1"):
        raise OpenClawConfigError(
            f"--base-url {url!r} must end in /v1 (OpenClaw appends /chat/completions to it), "
            f"for example {parts.scheme}://{parts.netloc}/v1"
        )
    return base
