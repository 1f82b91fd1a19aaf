"""sluicegate's configuration: one TOML file with ``${ENV}`` interpolation, or none at all.

``load_config`` is the one entry point. Providers come from the file's ``[[providers]]`` and,
for names the file does not declare, from the environment (a provider whose key variable is
set is on). See docs/config.md for the reference.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from sluicegate.config.environment import (
    ENV_PROVIDERS,
    EnvProvider,
    apply_server_env,
    env_providers,
)
from sluicegate.config.file import read_config_file
from sluicegate.config.model import (
    KNOWN_KINDS,
    Config,
    ConfigError,
    ModelSettings,
    ProviderConfig,
    ServerConfig,
    Timeouts,
)

__all__ = [
    "ENV_PROVIDERS",
    "KNOWN_KINDS",
    "Config",
    "ConfigError",
    "EnvProvider",
    "ModelSettings",
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
    if path is not None:
        from_file = read_config_file(path, env)
        server, providers, declared = from_file.server, from_file.providers, from_file.declared
        notices = from_file.notices
    from_env, env_notices = env_providers(env, declared)
    return Config(
        server=apply_server_env(server, env),
        providers=providers + from_env,
        notices=notices + env_notices,
        path=None if path is None else os.fsdecode(path),
    )
