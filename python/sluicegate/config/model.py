"""What a loaded configuration is: frozen dataclasses, with the defaults users get.

Everything else in the package produces these; the rest of sluicegate only reads them.
"""

from __future__ import annotations

from dataclasses import dataclass

# The tool-call markups the native text-generation dialects can parse.
TOOL_FORMAT_NAMES: tuple[str, ...] = ("hermes", "llama3", "deepseek", "mistral")
# The provider kinds the config accepts. Adding a dialect is one more name here (plus its adapter).
KNOWN_KINDS: tuple[str, ...] = ("openai", "deepinfra", "tgi", "ollama", "anthropic")


class ConfigError(Exception):
    """A configuration the gateway cannot start with.

    ``str(e)`` is the complete user-facing message: the file, the line when known, the key, and
    what to change. It never contains a secret.
    """


@dataclass(frozen=True, slots=True)
class Timeouts:
    connect: float = 10.0  # TCP+TLS connect
    first_byte: float = 120.0  # request sent -> response headers (LLMs may queue / prefill)
    idle: float = 120.0  # max gap between two upstream reads
    total: float = 900.0  # whole request


@dataclass(frozen=True, slots=True)
class ModelSettings:
    """What the config says about one upstream model (``[providers.model_settings."<id>"]``).

    Every field is optional; ``merged_over`` lets a model's own entry refine the provider-wide
    ``"*"`` entry.
    """

    chat_template: str | None = None  # inline Jinja source, or a path to a .jinja file
    bos_token: str | None = None
    eos_token: str | None = None
    stop: tuple[str, ...] = ()  # extra stop strings, added to the template's
    params: tuple[tuple[str, object], ...] = ()  # default native parameters; requests override
    base_dir: str | None = None  # the config file's directory: relative template paths start here
    context_window: int | None = None  # tokens; decides where a context-length error may go
    num_ctx: int | None = None  # Ollama: the context size to load the model with
    keep_alive: str | None = None  # Ollama: how long the model stays loaded ("5m", "0", "-1")
    tool_format: str | None = None  # native text generation: the tool-call markup the model writes

    def merged_over(self, base: ModelSettings) -> ModelSettings:
        params = dict(base.params) | dict(self.params)
        return ModelSettings(
            chat_template=self.chat_template or base.chat_template,
            bos_token=self.bos_token if self.bos_token is not None else base.bos_token,
            eos_token=self.eos_token if self.eos_token is not None else base.eos_token,
            stop=tuple(dict.fromkeys(base.stop + self.stop)),
            params=tuple(params.items()),
            base_dir=self.base_dir or base.base_dir,
            context_window=self.context_window or base.context_window,
            num_ctx=self.num_ctx or base.num_ctx,
            keep_alive=self.keep_alive if self.keep_alive is not None else base.keep_alive,
            tool_format=self.tool_format or base.tool_format,
        )


@dataclass(frozen=True, slots=True)
class BreakerSettings:
    """The circuit breaker of each route (provider + model) of a provider."""

    failures: int = 5  # consecutive failures that open the circuit
    open_seconds: float = 30.0  # how long it stays open before one probe is let through


@dataclass(frozen=True, slots=True)
class ProviderConfig:
    name: str  # lower-case [a-z0-9][a-z0-9_-]*; clients ask for "<name>/<model>"
    kind: str  # one of KNOWN_KINDS
    base_url: str  # no trailing slash; for kind "openai" it includes /v1
    api_keys: tuple[str, ...]  # empty = send no Authorization header
    models: tuple[str, ...] = ()  # static model ids, listed in /v1/models beside the upstream's
    headers: tuple[tuple[str, str], ...] = ()  # extra static headers sent upstream
    timeouts: Timeouts = Timeouts()  # frozen, so one shared default instance is safe
    source: str = "config"  # "config" or "env:<VAR>", for start-up logs
    # (lower-cased model id or "*", settings), from [providers.model_settings."<id>"]
    model_settings: tuple[tuple[str, ModelSettings], ...] = ()
    breaker: BreakerSettings = BreakerSettings()

    def settings_for(self, model_id: str) -> ModelSettings:
        """The configured settings of ``model_id`` (ids ignore case), over the ``"*"`` entry."""
        if not self.model_settings:
            return _NO_SETTINGS
        found = dict(self.model_settings)
        base = found.get("*", ModelSettings())
        own = found.get(model_id.lower())
        return own.merged_over(base) if own is not None else base


_NO_SETTINGS = ModelSettings()


@dataclass(frozen=True, slots=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 4000  # 0 picks a free port
    api_keys: tuple[str, ...] = ()  # client keys for the gateway itself; empty = no auth
    max_body_bytes: int = 16 * 1024 * 1024
    max_header_bytes: int = 64 * 1024
    header_timeout: float = 10.0
    keepalive_timeout: float = 75.0
    shutdown_grace: float = 30.0
    models_cache_ttl: float = 300.0  # how long /v1/models keeps each provider's list


@dataclass(frozen=True, slots=True)
class Pricing:
    """USD per 1M tokens, as OpenClaw's ``cost`` and DeepInfra's catalog state it."""

    input: float = 0.0
    output: float = 0.0
    cache_read: float = 0.0
    cache_write: float = 0.0


@dataclass(frozen=True, slots=True)
class ModelAlias:
    """A name of the gateway's own (``[[models]]``): an ordered list of ``provider/model``
    routes, tried in turn, with what clients should know about it."""

    id: str  # what clients send; matched ignoring case
    routes: tuple[str, ...]  # "provider/model", in the order they are tried
    name: str | None = None  # a display name (openclaw-config)
    params: tuple[tuple[str, object], ...] = ()  # request defaults; the request's own win
    context_window: int | None = None
    max_tokens: int | None = None
    input: tuple[str, ...] = ("text",)  # "text", "image"
    reasoning: bool = False
    pricing: Pricing | None = None


@dataclass(frozen=True, slots=True)
class Config:
    server: ServerConfig
    providers: tuple[ProviderConfig, ...]
    notices: tuple[str, ...]  # one line each: providers left off, suspicious values
    path: str | None  # the file read, if any
    models: tuple[ModelAlias, ...] = ()  # the aliases, in file order
    declared: frozenset[str] = frozenset()  # every provider name the file declares, on or off
