"""The TOML config file: read, parse, interpolate ``${ENV}``, validate.

Every message names the file, the line when it can be found, the key, and the fix; tomllib
gives no positions for values, so lines come from ``SourceLines`` scanning the text.
"""

from __future__ import annotations

import datetime
import difflib
import math
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any, NoReturn, TypeVar

from sluicegate.config.interpolate import BadReference, MissingVariable, interpolate
from sluicegate.config.locate import Path, SourceLines
from sluicegate.config.model import (
    KNOWN_KINDS,
    TOOL_FORMAT_NAMES,
    BreakerSettings,
    ConfigError,
    ModelAlias,
    ModelSettings,
    Pricing,
    ProviderConfig,
    ServerConfig,
    Timeouts,
)
from sluicegate.config.values import (
    base_url_notice,
    check_base_url,
    check_provider_name,
    split_keys,
    unique,
)
from sluicegate.sampling import KNOBS, knob_problem

_TOP_LEVEL = {"server": "[server]", "providers": "[[providers]]", "models": "[[models]]"}
_SERVER_KEYS = tuple(f.name for f in fields(ServerConfig))
_PROVIDER_KEYS = (
    "name",
    "kind",
    "base_url",
    "api_key",
    "api_keys",
    "models",
    "headers",
    "timeouts",
    "model_settings",
    "breaker",
)
_MODEL_SETTINGS_KEYS = (
    "chat_template",
    "bos_token",
    "eos_token",
    "stop",
    "params",
    "context_window",
    "num_ctx",
    "keep_alive",
    "tool_format",
)
_ALIAS_KEYS = (
    "id",
    "name",
    "routes",
    "params",
    "context_window",
    "max_tokens",
    "input",
    "reasoning",
    "pricing",
)
_PRICING_KEYS = tuple(f.name for f in fields(Pricing))
_INPUT_KINDS = ("text", "image")
_TIMEOUT_KEYS = tuple(f.name for f in fields(Timeouts))
_REQUIRED_PROVIDER_KEYS = {
    "name": 'name = "my-server"',
    "kind": f'kind = "{KNOWN_KINDS[0]}"',
    "base_url": 'base_url = "http://host:8000/v1"',
}
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+", re.ASCII)
# Headers HTTP or sluicegate itself owns; configuring them would break framing or routing.
_RESERVED_HEADERS = frozenset(
    {
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "upgrade",
        "te",
        "trailer",
        "proxy-connection",
    }
)
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+", re.ASCII)
_TOML_POSITION = re.compile(r" \(at line (\d+), column (\d+)\)$")

N = TypeVar("N", int, float)


@dataclass(frozen=True, slots=True)
class FileConfig:
    server: ServerConfig
    providers: tuple[ProviderConfig, ...]  # those that are on
    declared: frozenset[str]  # every provider name in the file, on or off
    notices: tuple[str, ...]
    models: tuple[ModelAlias, ...] = ()


def read_config_file(path: str | os.PathLike[str], env: Mapping[str, str]) -> FileConfig:
    """Read and validate the file at ``path``; raises ConfigError."""
    shown = os.fsdecode(path)
    text = _read_text(shown)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(_syntax_message(shown, exc)) from None
    return _FileReader(shown, text, env).read(data)


def _read_text(shown: str) -> str:
    try:
        with open(shown, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise ConfigError(
            f"config file {shown} not found; check the path, or start without a config file "
            "to use only the providers from the environment"
        ) from None
    except IsADirectoryError:
        raise ConfigError(
            f"config file {shown} is a directory; give the path of the TOML file"
        ) from None
    except PermissionError:
        raise ConfigError(
            f"config file {shown} cannot be read (permission denied); make it readable by the "
            "user running sluicegate"
        ) from None
    except OSError as exc:
        raise ConfigError(f"config file {shown} cannot be read ({exc.strerror}).") from None
    try:
        # utf-8-sig: editors on Windows like to start the file with a byte-order mark.
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(
            f"{shown} line {line}: the file is not UTF-8 text; save it as UTF-8"
        ) from None


def _syntax_message(shown: str, exc: tomllib.TOMLDecodeError) -> str:
    message = str(exc)
    where = shown
    found = _TOML_POSITION.search(message)
    if found:
        message = message[: found.start()]
        where = f"{shown} line {found[1]}, column {found[2]}"
    return (
        f"{where}: TOML syntax error: {message}; fix the syntax there (strings need quotes, "
        "a table header is [name] or [[name]] on its own line)"
    )


def render(path: Path) -> str:
    """("providers", 1, "timeouts", "connect") -> providers[1].timeouts.connect"""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            key = part if _BARE_KEY.fullmatch(part) else f'"{part}"'
            out += f".{key}" if out else key
    return out


def _type_name(value: object) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "table"
    if isinstance(value, datetime.datetime):
        return "date-time"
    if isinstance(value, datetime.date):
        return "date"
    if isinstance(value, datetime.time):
        return "time"
    return type(value).__name__


def _did_you_mean(word: str, options: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(word.lower(), options, n=1, cutoff=0.6)
    return f'; did you mean "{close[0]}"?' if close else ""


class _FileReader:
    def __init__(self, shown: str, text: str, env: Mapping[str, str]) -> None:
        self.shown = shown
        self.lines = SourceLines(text)
        self.env = env
        self.notices: list[str] = []

    # --- messages ---------------------------------------------------------------------------

    def where(self, path: Path) -> str:
        line = self.lines.line_of(path)
        return self.shown if line is None else f"{self.shown} line {line}"

    def line_note(self, path: Path) -> str:
        line = self.lines.line_of(path)
        return "" if line is None else f" (line {line})"

    def fail(self, path: Path, message: str) -> NoReturn:
        raise ConfigError(f"{self.where(path)}: {render(path)} {message}")

    def wrong_type(self, path: Path, expected: str, value: object, example: str) -> NoReturn:
        self.fail(path, f"must be {expected}, got {_type_name(value)}; write it like {example}")

    # --- typed values -----------------------------------------------------------------------

    def expand(self, text: str, path: Path) -> str:
        try:
            return interpolate(text, self.env)
        except MissingVariable as missing:
            self.fail(
                path,
                f"{missing.explain()}; export it or use ${{{missing.name}:-default}}",
            )
        except BadReference as bad:
            self.fail(path, str(bad))

    def string(self, value: object, path: Path, example: str) -> str:
        if not isinstance(value, str):
            self.wrong_type(path, "a string", value, example)
        return self.expand(value, path)

    def string_list(self, value: object, path: Path, example: str) -> list[tuple[Path, str]]:
        """The raw (not yet interpolated) strings of an array, each with its path."""
        if not isinstance(value, list):
            self.wrong_type(path, "an array of strings", value, example)
        items: list[tuple[Path, str]] = []
        for i, item in enumerate(value):
            if not isinstance(item, str):
                self.wrong_type((*path, i), "a string", item, example)
            items.append(((*path, i), item))
        return items

    def number(self, value: object, path: Path, parse: Callable[[str], N], what: str) -> N:
        """A TOML number, or a string that is one after interpolation ("${PORT:-4000}")."""
        key = str(path[-1])
        example = f"{key} = 10"
        if isinstance(value, bool):
            self.wrong_type(path, what, value, example)
        if isinstance(value, int | float):
            if parse is int and isinstance(value, float):
                self.fail(path, f"must be {what}, got {value!r}; write a whole number")
            return parse(value)  # type: ignore[arg-type]
        if isinstance(value, str):
            text = self.expand(value, path).strip()
            try:
                return parse(text)
            except ValueError:
                shown = value if len(value) <= 40 else value[:37] + "..."
                self.fail(path, f'must be {what}, got string "{shown}"; write it like {example}')
        self.wrong_type(path, what, value, example)

    def seconds(self, value: object, path: Path, *, zero_ok: bool = False) -> float:
        seconds = self.number(value, path, float, "a number of seconds")
        least = "0 or more" if zero_ok else "greater than 0"
        if not math.isfinite(seconds) or seconds < 0 or (seconds == 0 and not zero_ok):
            self.fail(path, f"is {seconds:g}; it must be a finite number of seconds, {least}")
        return seconds

    def count(self, value: object, path: Path, what: str) -> int:
        number = self.number(value, path, int, f"a whole number of {what}")
        if number <= 0:
            self.fail(path, f"is {number}; it must be a whole number of {what}, greater than 0")
        return number

    def table(self, value: object, path: Path, allowed: tuple[str, ...], title: str) -> dict:
        if not isinstance(value, dict):
            self.wrong_type(path, "a table", value, f"{title} with its keys below it")
        for key in value:
            if key not in allowed:
                self.fail(
                    (*path, key),
                    f"is not a known key{_did_you_mean(key, allowed)} The keys of {title} "
                    f"are: {', '.join(allowed)}.",
                )
        return value

    # --- sections ---------------------------------------------------------------------------

    def read(self, data: dict[str, Any]) -> FileConfig:
        for key in data:
            if key not in _TOP_LEVEL:
                self.fail(
                    (key,),
                    f"is not a known top-level table{_did_you_mean(key, tuple(_TOP_LEVEL))} "
                    f"The file may have: {', '.join(_TOP_LEVEL.values())}.",
                )
        server = self.server(data.get("server", {}))
        providers, declared = self.providers(data.get("providers", []))
        models = self.aliases(data.get("models", []))
        return FileConfig(server, providers, declared, tuple(self.notices), models)

    def server(self, value: object) -> ServerConfig:
        path: Path = ("server",)
        t = self.table(value, path, _SERVER_KEYS, "[server]")
        settings: dict[str, Any] = {}
        if "host" in t:
            host = self.string(t["host"], (*path, "host"), 'host = "127.0.0.1"').strip()
            if not host:
                self.fail((*path, "host"), 'is empty; write host = "127.0.0.1" or "0.0.0.0"')
            settings["host"] = host
        if "port" in t:
            port = self.number(t["port"], (*path, "port"), int, "a port number")
            if not 0 <= port <= 65535:
                self.fail(
                    (*path, "port"), f"is {port}, out of range; use 1-65535, or 0 for any free port"
                )
            settings["port"] = port
        if "api_keys" in t:
            keys: list[str] = []
            example = 'api_keys = ["${SLUICEGATE_KEY}"]'
            for item_path, raw in self.string_list(t["api_keys"], (*path, "api_keys"), example):
                found = split_keys(self.expand(raw, item_path))
                if not found:
                    self.fail(item_path, "is empty; remove it or give it a value")
                keys += found
            settings["api_keys"] = unique(keys)
        for key in ("max_body_bytes", "max_header_bytes"):
            if key in t:
                settings[key] = self.count(t[key], (*path, key), "bytes")
        for key in ("header_timeout", "keepalive_timeout"):
            if key in t:
                settings[key] = self.seconds(t[key], (*path, key))
        for key in ("shutdown_grace", "models_cache_ttl"):
            if key in t:
                settings[key] = self.seconds(t[key], (*path, key), zero_ok=True)
        return ServerConfig(**settings)

    def providers(self, value: object) -> tuple[tuple[ProviderConfig, ...], frozenset[str]]:
        if isinstance(value, dict):
            self.fail(
                ("providers",),
                "must be an array of tables: write [[providers]] (double brackets) above each "
                "provider",
            )
        if not isinstance(value, list):
            self.wrong_type(("providers",), "an array of tables", value, "[[providers]]")
        on: list[ProviderConfig] = []
        seen: dict[str, int] = {}
        for index, item in enumerate(value):
            provider, is_on = self.provider(item, ("providers", index), seen)
            seen[provider.name] = index
            if is_on:
                on.append(provider)
        return tuple(on), frozenset(seen)

    def provider(
        self, value: object, path: Path, seen: dict[str, int]
    ) -> tuple[ProviderConfig, bool]:
        t = self.table(value, path, _PROVIDER_KEYS, "[[providers]]")
        for key, example in _REQUIRED_PROVIDER_KEYS.items():
            if key not in t:
                self.fail(path, f"has no {key}; add {example} under its [[providers]] header")

        name_path = (*path, "name")
        name = self.string(t["name"], name_path, _REQUIRED_PROVIDER_KEYS["name"])
        try:
            check_provider_name(name)
        except ValueError as exc:
            self.fail(name_path, str(exc))
        if name in seen:
            first: Path = ("providers", seen[name], "name")
            self.fail(
                name_path,
                f'is "{name}", already the name of {render(first[:2])}{self.line_note(first)}; '
                "give each provider its own name",
            )

        kind_path = (*path, "kind")
        kind = self.string(t["kind"], kind_path, _REQUIRED_PROVIDER_KEYS["kind"])
        if kind not in KNOWN_KINDS:
            self.fail(
                kind_path,
                f'is "{kind}", which is not a known kind{_did_you_mean(kind, KNOWN_KINDS)} '
                f"Known kinds: {', '.join(KNOWN_KINDS)}.",
            )

        url_path = (*path, "base_url")
        url = self.string(t["base_url"], url_path, _REQUIRED_PROVIDER_KEYS["base_url"])
        try:
            base_url = check_base_url(url)
        except ValueError as exc:
            self.fail(url_path, str(exc))
        notice = base_url_notice(name, kind, base_url, self.where(url_path))
        if notice:
            self.notices.append(notice)

        api_keys, is_on = self.provider_keys(t, path, name)
        headers = self.headers(t.get("headers", {}), (*path, "headers"))
        if api_keys and any(h.lower() == "authorization" for h, _ in headers):
            self.fail(
                (*path, "headers"),
                "sets Authorization, and so does api_key; keep one of them",
            )
        models = self.models(t.get("models", []), (*path, "models"))
        timeouts = self.timeouts(t.get("timeouts", {}), (*path, "timeouts"))
        settings = self.model_settings(t.get("model_settings", {}), (*path, "model_settings"))
        breaker = self.breaker(t.get("breaker", {}), (*path, "breaker"))
        provider = ProviderConfig(
            name=name,
            kind=kind,
            base_url=base_url,
            api_keys=api_keys,
            models=models,
            headers=headers,
            timeouts=timeouts,
            source="config",
            model_settings=settings,
            breaker=breaker,
        )
        return provider, is_on

    def provider_keys(self, t: dict, path: Path, name: str) -> tuple[tuple[str, ...], bool]:
        """The provider's keys, and whether it is on.

        Unlike other values, a key that refers to an unset variable is not an error: configs
        list providers whose keys exist only on some hosts. Such a key is skipped with a notice,
        and a provider left with none of the keys it asked for is off.
        """
        if "api_key" in t and "api_keys" in t:
            self.fail(
                (*path, "api_keys"),
                'is set together with api_key; keep one: api_key = "..." for one key, '
                'api_keys = ["...", "..."] for several',
            )
        if "api_key" in t:
            raw = t["api_key"]
            if not isinstance(raw, str):
                self.wrong_type((*path, "api_key"), "a string", raw, 'api_key = "${MY_KEY}"')
            entries = [((*path, "api_key"), raw)]
        elif "api_keys" in t:
            example = 'api_keys = ["${KEY_A}", "${KEY_B}"]'
            entries = self.string_list(t["api_keys"], (*path, "api_keys"), example)
        else:
            return (), True
        keys: list[str] = []
        missing: list[tuple[Path, MissingVariable]] = []
        for entry_path, raw in entries:
            try:
                keys += split_keys(interpolate(raw, self.env))
            except MissingVariable as exc:
                missing.append((entry_path, exc))
            except BadReference as exc:
                self.fail(entry_path, str(exc))
        if missing and not keys:
            entry_path, exc = missing[0]
            self.notices.append(
                f"{name}: off ({self.where(entry_path)}: {render(entry_path)} {exc.explain()}; "
                f"export {exc.name} to turn it on)"
            )
            return (), False
        for entry_path, exc in missing:
            self.notices.append(
                f"{name}: {self.where(entry_path)}: {render(entry_path)} {exc.explain()}; "
                "using the provider's other keys without it"
            )
        return unique(keys), True

    def headers(self, value: object, path: Path) -> tuple[tuple[str, str], ...]:
        if not isinstance(value, dict):
            self.wrong_type(path, "a table", value, 'headers = { "X-Team" = "agents" }')
        out: list[tuple[str, str]] = []
        seen: set[str] = set()
        for header, raw in value.items():
            header_path = (*path, header)
            if not _HEADER_NAME.fullmatch(header):
                self.fail(header_path, "is not a valid header name; use letters, digits and -")
            lowered = header.lower()
            if lowered in _RESERVED_HEADERS:
                self.fail(
                    header_path,
                    "is set by the HTTP client itself and cannot be configured; remove it",
                )
            if lowered in seen:
                self.fail(header_path, "is set twice (header names ignore case); keep one")
            seen.add(lowered)
            text = self.string(raw, header_path, f'"{header}" = "value"')
            if any(c in text for c in "\r\n\0"):
                self.fail(header_path, "contains a line break; a header value must be one line")
            out.append((header, text))
        return tuple(out)

    def models(self, value: object, path: Path) -> tuple[str, ...]:
        models: list[str] = []
        example = 'models = ["Qwen/Qwen3-32B"]'
        for item_path, raw in self.string_list(value, path, example):
            model = self.expand(raw, item_path).strip()
            if not model:
                self.fail(item_path, "is empty; remove it or write the model id")
            models.append(model)
        return unique(models)

    def breaker(self, value: object, path: Path) -> BreakerSettings:
        t = self.table(value, path, ("failures", "open_seconds"), "[providers.breaker]")
        settings: dict[str, Any] = {}
        if "failures" in t:
            settings["failures"] = self.count(t["failures"], (*path, "failures"), "failures")
        if "open_seconds" in t:
            settings["open_seconds"] = self.seconds(t["open_seconds"], (*path, "open_seconds"))
        return BreakerSettings(**settings)

    def timeouts(self, value: object, path: Path) -> Timeouts:
        t = self.table(value, path, _TIMEOUT_KEYS, "[providers.timeouts]")
        return Timeouts(**{key: self.seconds(t[key], (*path, key)) for key in t})

    def model_settings(self, value: object, path: Path) -> tuple[tuple[str, ModelSettings], ...]:
        example = '[providers.model_settings."meta-llama/Meta-Llama-3.1-8B-Instruct"]'
        if not isinstance(value, dict):
            self.wrong_type(path, "a table of model ids", value, example)
        found: dict[str, ModelSettings] = {}
        for model_id, entry in value.items():
            entry_path = (*path, model_id)
            lowered = model_id.strip().lower()
            if not lowered:
                self.fail(entry_path, 'has an empty model id; write the id, or "*" for every model')
            if lowered in found:
                self.fail(entry_path, "is listed twice (model ids ignore case); keep one entry")
            found[lowered] = self.one_model(entry, entry_path)
        return tuple(found.items())

    def one_model(self, value: object, path: Path) -> ModelSettings:
        t = self.table(value, path, _MODEL_SETTINGS_KEYS, f"[{render(path)}]")
        strings: dict[str, str] = {}
        for key in ("chat_template", "bos_token", "eos_token"):
            if key in t:
                strings[key] = self.string(t[key], (*path, key), f'{key} = "..."')
        if strings.get("chat_template", "x").strip() == "":
            self.fail((*path, "chat_template"), "is empty; give the template or a file path")
        stop: list[str] = []
        if "stop" in t:
            for item_path, raw in self.string_list(t["stop"], (*path, "stop"), 'stop = ["###"]'):
                text = self.expand(raw, item_path)
                if not text:
                    self.fail(item_path, "is empty; a stop string needs at least one character")
                stop.append(text)
        params: dict[str, object] = {}
        if "params" in t:
            params_path = (*path, "params")
            table = self.table(t["params"], params_path, tuple(KNOBS), "params")
            for name, raw in table.items():
                value = raw
                if isinstance(raw, str):  # "${TEMP:-0.7}"
                    value = self.number(raw, (*params_path, name), float, "a number")
                    if KNOBS[name].integer and float(value).is_integer():
                        value = int(value)
                problem = knob_problem(name, value)
                if problem:
                    self.fail((*params_path, name), problem)
                params[name] = value
        window = num_ctx = keep_alive = None
        if "context_window" in t:
            window = self.count(t["context_window"], (*path, "context_window"), "tokens")
        if "num_ctx" in t:
            num_ctx = self.count(t["num_ctx"], (*path, "num_ctx"), "tokens")
        if "keep_alive" in t:
            raw = t["keep_alive"]
            keep_alive = str(raw) if isinstance(raw, int) and not isinstance(raw, bool) else None
            if keep_alive is None:
                keep_alive = self.string(raw, (*path, "keep_alive"), 'keep_alive = "10m"')
        tool_format = None
        if "tool_format" in t:
            tool_format = self.string(
                t["tool_format"], (*path, "tool_format"), 'tool_format = "hermes"'
            )
            if tool_format not in TOOL_FORMAT_NAMES:
                self.fail(
                    (*path, "tool_format"),
                    f'is "{tool_format}"; use one of: {", ".join(TOOL_FORMAT_NAMES)}',
                )
        directory = os.path.dirname(os.path.abspath(self.shown)) if self.shown else None
        return ModelSettings(
            tool_format=tool_format,
            context_window=window,
            num_ctx=num_ctx,
            keep_alive=keep_alive,
            chat_template=strings.get("chat_template"),
            bos_token=strings.get("bos_token"),
            eos_token=strings.get("eos_token"),
            stop=unique(stop),
            params=tuple(params.items()),
            base_dir=directory,
        )

    def aliases(self, value: object) -> tuple[ModelAlias, ...]:
        if isinstance(value, dict):
            self.fail(("models",), "must be an array of tables: write [[models]] above each alias")
        if not isinstance(value, list):
            self.wrong_type(("models",), "an array of tables", value, "[[models]]")
        found: list[ModelAlias] = []
        seen: dict[str, int] = {}
        for index, item in enumerate(value):
            alias = self.alias(item, ("models", index))
            lowered = alias.id.lower()
            if lowered in seen:
                first: Path = ("models", seen[lowered], "id")
                self.fail(
                    ("models", index, "id"),
                    f'is "{alias.id}", already the id of {render(first[:2])}'
                    f"{self.line_note(first)} (ids ignore case); give each alias its own id",
                )
            seen[lowered] = index
            found.append(alias)
        return tuple(found)

    def alias(self, value: object, path: Path) -> ModelAlias:
        t = self.table(value, path, _ALIAS_KEYS, "[[models]]")
        for key, example in (("id", 'id = "smart"'), ("routes", 'routes = ["openai/gpt-4o"]')):
            if key not in t:
                self.fail(path, f"has no {key}; add {example} under its [[models]] header")
        alias_id = self.string(t["id"], (*path, "id"), 'id = "smart"').strip()
        if not alias_id or any(c.isspace() for c in alias_id):
            self.fail((*path, "id"), 'must be a non-empty name without spaces, like id = "smart"')
        routes: list[str] = []
        example = 'routes = ["deepinfra/meta-llama/Llama-3.3-70B-Instruct", "openai/gpt-4o-mini"]'
        for item_path, raw in self.string_list(t["routes"], (*path, "routes"), example):
            route = self.expand(raw, item_path).strip()
            provider, slash, model = route.partition("/")
            if not slash or not provider or not model:
                self.fail(item_path, f'is "{route}"; a route is "provider/model", {example}')
            routes.append(route)
        if not routes:
            self.fail((*path, "routes"), f"is empty; list at least one route, {example}")
        settings: dict[str, Any] = {"id": alias_id, "routes": unique(routes)}
        if "name" in t:
            settings["name"] = self.string(t["name"], (*path, "name"), 'name = "Smart"')
        if "params" in t:
            params = t["params"]
            for owned in ("model", "models", "messages", "stream"):
                if isinstance(params, dict) and owned in params:
                    self.fail((*path, "params", owned), "cannot be a default; remove it")
            if not isinstance(params, dict):
                self.wrong_type(
                    (*path, "params"), "a table", params, "params = { temperature = 0.6 }"
                )
            settings["params"] = tuple(params.items())
        for key in ("context_window", "max_tokens"):
            if key in t:
                settings[key] = self.count(t[key], (*path, key), "tokens")
        if "input" in t:
            kinds = []
            for item_path, raw in self.string_list(
                t["input"], (*path, "input"), 'input = ["text"]'
            ):
                if raw not in _INPUT_KINDS:
                    self.fail(item_path, f'is "{raw}"; use one of: {", ".join(_INPUT_KINDS)}')
                kinds.append(raw)
            settings["input"] = unique(kinds)
        if "reasoning" in t:
            if not isinstance(t["reasoning"], bool):
                self.wrong_type(
                    (*path, "reasoning"), "true or false", t["reasoning"], "reasoning = true"
                )
            settings["reasoning"] = t["reasoning"]
        if "pricing" in t:
            pricing_path = (*path, "pricing")
            table = self.table(t["pricing"], pricing_path, _PRICING_KEYS, "pricing")
            prices = {}
            for key, raw in table.items():
                price = self.number(
                    raw, (*pricing_path, key), float, "a price in USD per 1M tokens"
                )
                if not math.isfinite(price) or price < 0:
                    self.fail((*pricing_path, key), f"is {price:g}; a price is 0 or more")
                prices[key] = price
            settings["pricing"] = Pricing(**prices)
        return ModelAlias(**settings)
