"""Providers and server settings that come from environment variables.

With no config file at all, a provider whose key variable is set is on (DESIGN.md). The table
below is data: a later provider is one more row.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace

from sluicegate.config.model import ConfigError, ProviderConfig, ServerConfig
from sluicegate.config.values import base_url_notice, check_base_url, split_keys, unique


@dataclass(frozen=True, slots=True)
class EnvProvider:
    """One provider that registers itself from the environment."""

    name: str
    kind: str
    key_var: str  # may hold several comma-separated keys
    default_base_url: str | None = None  # None: on only when <NAME>_BASE_URL is set
    key_required: bool = True  # False: the key is optional (local servers)
    other_key_vars: tuple[str, ...] = ()  # read, in order, when key_var is unset
    host_var: str | None = None  # a "host[:port]" variable read when <NAME>_BASE_URL is unset

    @property
    def base_url_var(self) -> str:
        return f"{self.name.upper().replace('-', '_')}_BASE_URL"


ENV_PROVIDERS: tuple[EnvProvider, ...] = (
    EnvProvider("openai", "openai", "OPENAI_API_KEY", "https://api.openai.com/v1"),
    EnvProvider("deepseek", "openai", "DEEPSEEK_API_KEY", "https://api.deepseek.com/v1"),
    EnvProvider("nvidia", "openai", "NVIDIA_API_KEY", "https://integrate.api.nvidia.com/v1"),
    EnvProvider("openrouter", "openai", "OPENROUTER_API_KEY", "https://openrouter.ai/api/v1"),
    EnvProvider("vllm", "openai", "VLLM_API_KEY", None, key_required=False),
    # DeepInfra's own SDKs and docs call the key DEEPINFRA_TOKEN; both names work.
    EnvProvider(
        "deepinfra",
        "deepinfra",
        "DEEPINFRA_API_KEY",
        "https://api.deepinfra.com",
        other_key_vars=("DEEPINFRA_TOKEN",),
    ),
    EnvProvider("tgi", "tgi", "TGI_API_KEY", None, key_required=False),
    # Ollama's own OLLAMA_HOST works too; OLLAMA_API_KEY is for Ollama's cloud. With neither
    # variable, the CLI looks for a local Ollama at start-up (sluicegate.discovery).
    EnvProvider(
        "ollama", "ollama", "OLLAMA_API_KEY", None, key_required=False, host_var="OLLAMA_HOST"
    ),
    EnvProvider("anthropic", "anthropic", "ANTHROPIC_API_KEY", "https://api.anthropic.com"),
)


def env_providers(
    env: Mapping[str, str], declared: Collection[str]
) -> tuple[tuple[ProviderConfig, ...], tuple[str, ...]]:
    """The environment's providers that are on, and one notice per provider left off.

    Providers named in ``declared`` (the config file's) are skipped: the file wins.
    """
    providers: list[ProviderConfig] = []
    notices: list[str] = []
    for row in ENV_PROVIDERS:
        if row.name in declared:
            continue
        key_var = next(
            (var for var in (row.key_var, *row.other_key_vars) if env.get(var, "").strip()),
            row.key_var,
        )
        keys = unique(split_keys(env.get(key_var, "")))
        override = env.get(row.base_url_var, "")
        base_url_var = row.base_url_var
        if not override.strip() and row.host_var and env.get(row.host_var, "").strip():
            override, base_url_var = host_url(env[row.host_var]), row.host_var
        if row.key_required and not keys:
            named = " or ".join((row.key_var, *row.other_key_vars))
            notices.append(f"{row.name}: off ({named} is not set)")
            continue
        if not override and row.default_base_url is None:
            named = " or ".join(v for v in (row.base_url_var, row.host_var) if v)
            notices.append(f"{row.name}: off ({named} is not set)")
            continue
        if override:
            try:
                base_url = check_base_url(override)
            except ValueError as exc:
                raise ConfigError(f"{base_url_var} {exc}, or unset it") from None
            notice = base_url_notice(row.name, row.kind, base_url, base_url_var)
            if notice:
                notices.append(notice)
        else:
            assert row.default_base_url is not None
            base_url = row.default_base_url
        source_var = key_var if row.key_required else base_url_var
        providers.append(
            ProviderConfig(
                name=row.name,
                kind=row.kind,
                base_url=base_url,
                api_keys=keys,
                source=f"env:{source_var}",
            )
        )
    return tuple(providers), tuple(notices)


def host_url(value: str, default_port: int = 11434) -> str:
    """Ollama's ``OLLAMA_HOST`` as a URL, read the way Ollama reads it: the scheme defaults to
    http, the port to 11434 (``0.0.0.0`` → ``http://0.0.0.0:11434``, ``https://box`` →
    ``https://box:11434``); a path is kept."""
    value = value.strip()
    scheme, sep, rest = value.partition("://")
    if not sep:
        scheme, rest = "http", value
    authority, slash, path = rest.partition("/")
    host, colon, port = authority.rpartition(":")
    if not colon or not port.isdigit():  # no port (an IPv6 "[::1]" ends in "1]", not digits)
        host, port = authority, str(default_port)
    host = host or "127.0.0.1"
    return f"{scheme}://{host}:{port}{slash}{path}".rstrip("/")


def apply_server_env(server: ServerConfig, env: Mapping[str, str]) -> ServerConfig:
    """SLUICEGATE_API_KEYS adds client keys; SLUICEGATE_HOST and SLUICEGATE_PORT override."""
    keys = unique([*server.api_keys, *split_keys(env.get("SLUICEGATE_API_KEYS", ""))])
    host = env.get("SLUICEGATE_HOST", "").strip() or server.host
    port = server.port
    raw_port = env.get("SLUICEGATE_PORT", "").strip()
    if raw_port:
        try:
            port = int(raw_port)
        except ValueError:
            port = -1
        if not 0 <= port <= 65535:
            raise ConfigError(
                f'SLUICEGATE_PORT is "{raw_port}", which is not a port number; set it to '
                "0-65535 (0 picks a free port) or unset it"
            )
    return replace(server, host=host, port=port, api_keys=keys)
