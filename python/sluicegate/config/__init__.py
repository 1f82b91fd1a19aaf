"""sluicegate's configuration: one TOML file with ``${ENV}`` interpolation, or none at all.

``load_config`` is the one entry point. Providers come from the file's ``[[providers]]`` and,
for names the file does not declare, from the environment (a provider whose key variable is
set is on). See docs/config.md for the reference.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace

from sluicegate.config.environment import (
    ENV_PROVIDERS,
    EnvProvider,
    apply_server_env,
    env_providers,
)
from sluicegate.config.file import read_config_file
from sluicegate.config.model import (
    KNOWN_KINDS,
    BreakerSettings,
    Config,
    ConfigError,
    ModelAlias,
    ModelSettings,
    Pricing,
    ProviderConfig,
    ServerConfig,
    Timeouts,
)

__all__ = [
    "ENV_PROVIDERS",
    "KNOWN_KINDS",
    "BreakerSettings",
    "Config",
    "ConfigError",
    "EnvProvider",
    "ModelAlias",
    "ModelSettings",
    "Pricing",
    "ProviderConfig",
    "ServerConfig",
    "Timeouts",
    "load_config",
]


def load_config(
    path: str | os.PathLike[str] | None, env: Mapping[str, str] | None = None
) -> Config:
    """Read the config file at ``path`` (None: none) and add the environment's providers.

    ``env`` defaults to ``os.environ``. Raises ConfigError with a message for the user.
    """
    if env is None:
        env = os.environ
    server = ServerConfig()
    providers: tuple[ProviderConfig, ...] = ()
    declared: frozenset[str] = frozenset()
    notices: tuple[str, ...] = ()
    aliases: tuple[ModelAlias, ...] = ()
    if path is not None:
        from_file = read_config_file(path, env)
        server, providers, declared = from_file.server, from_file.providers, from_file.declared
        notices, aliases = from_file.notices, from_file.models
    from_env, env_notices = env_providers(env, declared)
    providers += from_env
    aliases, alias_notices = usable_aliases(aliases, providers, declared)
    return Config(
        server=apply_server_env(server, env),
        providers=providers,
        notices=notices + env_notices + alias_notices,
        path=None if path is None else os.fsdecode(path),
        models=aliases,
        declared=declared,
    )


def usable_aliases(
    aliases: tuple[ModelAlias, ...],
    providers: tuple[ProviderConfig, ...],
    declared: frozenset[str],
) -> tuple[tuple[ModelAlias, ...], tuple[str, ...]]:
    """The aliases with the routes whose provider is on; a notice per route left out.

    A route to a provider that exists but is off (its key is not set on this host) is dropped
    quietly enough (one notice); a route to a provider nobody declared is a mistake."""
    on = {p.name for p in providers}
    known = on | declared | {row.name for row in ENV_PROVIDERS}
    usable: list[ModelAlias] = []
    notices: list[str] = []
    for alias in aliases:
        routes = []
        for route in alias.routes:
            provider = route.partition("/")[0].lower()
            if provider in on:
                routes.append(route)
            elif provider in known:
                notices.append(
                    f"model {alias.id}: route {route} is off (provider {provider} is off)"
                )
            else:
                raise ConfigError(
                    f"model {alias.id}: route {route} names provider '{provider}', which is not "
                    f"declared; known providers: {', '.join(sorted(known))}"
                )
        if routes:
            usable.append(replace(alias, routes=tuple(routes)))
        else:
            notices.append(f"model {alias.id}: off (none of its routes' providers is on)")
    return tuple(usable), tuple(notices)
