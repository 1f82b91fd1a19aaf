"""Which chat template renders a model's prompt, for providers of a native text-generation kind.

``TemplateResolver.resolve(model_id, override)`` answers with a compiled ``ChatTemplate``, trying
in order:

1. **The config** — ``chat_template`` in ``[providers.model_settings."<model id>"]``
   (``TemplateOverride.chat_template``). A value containing ``{%`` or ``{{`` is the Jinja source
   itself; any other value is the path of a file holding it (``~`` expanded; a relative path
   starts at ``base_dir``, the config file's directory, or at the working directory when there is
   no file). A path that does not name a readable UTF-8 file is an error naming the path — never
   silently a one-line template. The file is read once, when the model is first resolved:
   restart the gateway after editing it.
2. **A built-in family** chosen by the model id (``ChatTemplate.for_model``: Llama 3, ChatML,
   Qwen 3, DeepSeek, Mistral, Gemma 2, Gemma 3, GLM-4).
3. **The Hugging Face lookup** (``HubSource``), only when it is switched on (``HF_TOKEN`` or
   ``HF_ENDPOINT`` set): the model's ``tokenizer_config.json``, cached on disk.
4. Otherwise a 400 ``chat_template_missing`` that names the model and both fixes.

Special tokens and stop strings. ``bos_token``/``eos_token`` from the config win; otherwise they
come from the built-in family the model id matches (also for a configured template: a tweaked
copy of a family's template keeps its tokens), or from the hub's ``tokenizer_config.json``, or
are empty. The stop list is the template's end-of-turn strings (the family's, or else its
``eos_token``), then a configured ``eos_token``, then the configured extra ``stop`` strings,
without duplicates; the caller adds it to the native ``stop`` list.

Compiled templates are cached per ``(model_id, override)``: one compile per model, not per
request. Errors are not cached, except the hub's "no such model" (see ``HubSource``): a gated
model whose licence has just been accepted works on the next request.

Statuses. No template at all is the client's 400 (``param: "model"``): the model id is what they
can change. A configured template that is missing or does not compile is a 500
(``server_error``, ``chat_template_invalid``): the request is fine and the gateway's own
configuration is broken, which only its operator can fix — the message says what to change.
``TemplateResolver.configured`` runs the config and built-in steps without I/O beyond reading the
template file, so start-up code can surface those mistakes before any client sees them.
Hub failures (gated model, hub error, network, a published template that does not compile)
are 502 (``upstream_error``): the lookup is an upstream the gateway depends on. A hub that has
no such model, or a model that publishes no template, ends in the 400 above, with the hub's
answer in the message.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import orjson
import trio

from sluicegate import __version__
from sluicegate._core import ChatTemplate
from sluicegate.config import ConfigError
from sluicegate.errors import GatewayError

log = logging.getLogger("sluicegate.templates")

DEFAULT_HF_ENDPOINT = "https://huggingface.co"
# Bounds on what client-chosen model ids can make the gateway hold in memory.
_MAX_CACHED = 1024
# tokenizer_config.json lists every added token; some run to a few MiB, none to this.
_MAX_HUB_FILE_BYTES = 16 * 1024 * 1024
# Hugging Face repository ids: "name" or "owner/name", no "..", no other separators.
_HUB_REPO_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?")


@dataclass(frozen=True, slots=True)
class TemplateOverride:
    """What the config may set for one model; every field is optional.

    ``chat_template`` is the Jinja source (any value containing ``{%`` or ``{{``) or the path of
    a file holding it, relative to ``base_dir`` (the config file's directory). ``bos_token`` and
    ``eos_token`` replace the template's; ``stop`` strings are added to its end-of-turn strings.
    Frozen and hashable: it is part of the compiled-template cache key.
    """

    chat_template: str | None = None
    bos_token: str | None = None
    eos_token: str | None = None
    stop: tuple[str, ...] = ()
    base_dir: str | None = None


_NO_OVERRIDE = TemplateOverride()


def is_inline_template(value: str) -> bool:
    """A ``chat_template`` value is Jinja source when it contains ``{%`` or ``{{``; else a path."""
    return "{%" in value or "{{" in value


def settings_table(model_id: str) -> str:
    """The config table that holds ``model_id``'s settings, as the user writes it."""
    return f'[providers.model_settings."{model_id}"]'


def _config_problem(model_id: str, problem: str) -> GatewayError:
    return GatewayError(
        500,
        f"The chat_template configured for model '{model_id}' {problem}",
        "server_error",
        "chat_template_invalid",
    )


def _missing(model_id: str, hub: HubSource | None, hub_says: str | None) -> GatewayError:
    fix = (
        f"Set chat_template for it in the config, under {settings_table(model_id)}: "
        'chat_template = "templates/model.jinja" (a file path, relative to the config file) or '
        "the Jinja source inline, plus bos_token/eos_token if the template uses them"
    )
    if hub is None:
        where = (
            "; or turn on the Hugging Face lookup by setting HF_TOKEN (and HF_ENDPOINT for a "
            "mirror), so sluicegate fetches the model's tokenizer_config.json."
        )
    else:
        where = f". The Hugging Face lookup could not help: {hub_says}"
    return GatewayError(
        400,
        f"No chat template for model '{model_id}': sluicegate renders the prompt for this "
        f"provider itself and has no built-in template for this model. {fix}{where}",
        "invalid_request_error",
        "chat_template_missing",
        "model",
    )


class TemplateResolver:
    """Finds and compiles the chat template of each model (see the module docstring for the
    rules). One instance serves the whole gateway; it is safe to share between trio tasks."""

    def __init__(self, *, hub: HubSource | None = None) -> None:
        self.hub = hub
        self._compiled: dict[tuple[str, TemplateOverride], ChatTemplate] = {}

    async def resolve(
        self, model_id: str, override: TemplateOverride | None = None
    ) -> ChatTemplate:
        """The template for ``model_id``; raises ``GatewayError`` (400 when there is none)."""
        override = override or _NO_OVERRIDE
        template = self._compiled.get((model_id, override))
        if template is not None:
            return template
        template = self.configured(model_id, override)
        if template is not None:
            return template
        if self.hub is None:
            raise _missing(model_id, None, None)
        found = await self.hub.fetch(model_id)
        if found.template is None:
            raise _missing(model_id, self.hub, found.why_none)
        template = self._compile_from_hub(model_id, found.template, override)
        self._remember(model_id, override, template)
        return template

    def configured(
        self, model_id: str, override: TemplateOverride | None = None
    ) -> ChatTemplate | None:
        """Steps 1 and 2 alone: the configured template or the built-in family, else ``None``.

        No network. Raises ``GatewayError`` (500, ``chat_template_invalid``) for a configured
        template that is missing or does not compile, so start-up code can check every
        configured model before serving.
        """
        override = override or _NO_OVERRIDE
        key = (model_id, override)
        template = self._compiled.get(key)
        if template is not None:
            return template
        family = ChatTemplate.for_model(model_id)
        if override.chat_template is not None:
            template = self._compile_configured(model_id, override, family)
        elif family is not None:
            try:
                template = ChatTemplate.builtin(
                    family.name,
                    bos_token=override.bos_token,
                    eos_token=override.eos_token,
                    stop=_configured_stop(override),
                )
            except ValueError as exc:  # an empty stop string
                raise _config_problem(model_id, f"cannot be used: {exc}.") from None
        else:
            return None
        self._remember(model_id, override, template)
        return template

    def _remember(self, model_id: str, override: TemplateOverride, template: ChatTemplate) -> None:
        if len(self._compiled) >= _MAX_CACHED:
            self._compiled.clear()
        self._compiled[(model_id, override)] = template

    def _compile_configured(
        self, model_id: str, override: TemplateOverride, family: ChatTemplate | None
    ) -> ChatTemplate:
        value = override.chat_template
        assert value is not None
        if is_inline_template(value):
            source, name = value, "inline"
        else:
            source, name = _read_template_file(model_id, value, override.base_dir), value
        bos = _first(override.bos_token, family.bos_token if family else None)
        eos = _first(override.eos_token, family.eos_token if family else None)
        # The family's end-of-turn strings, or for a template of no family its eos_token.
        base_stop = family.stop if family is not None else ([eos] if eos else [])
        try:
            return ChatTemplate(
                source,
                bos_token=bos,
                eos_token=eos,
                stop=[*base_stop, *_configured_stop(override)],
                name=name,
            )
        except ValueError as exc:
            raise _config_problem(
                model_id, f"cannot be used: {exc}. Fix it under {settings_table(model_id)}."
            ) from None

    def _compile_from_hub(
        self, model_id: str, found: HubTemplate, override: TemplateOverride
    ) -> ChatTemplate:
        eos = _first(override.eos_token, found.eos_token)
        try:
            return ChatTemplate(
                found.chat_template,
                bos_token=_first(override.bos_token, found.bos_token),
                eos_token=eos,
                stop=[*([found.eos_token] if found.eos_token else []), *_configured_stop(override)],
                name="huggingface",
            )
        except ValueError as exc:
            raise GatewayError(
                502,
                f"The chat template published for model '{model_id}' at {found.source} cannot be "
                f"used: {exc}. Set a working chat_template for it in the config, under "
                f"{settings_table(model_id)}.",
                "upstream_error",
                "chat_template_invalid",
            ) from None


def _first(*values: str | None) -> str:
    """The first value that is set (``""`` is a deliberate setting), else ``""``."""
    for value in values:
        if value is not None:
            return value
    return ""


def _configured_stop(override: TemplateOverride) -> list[str]:
    eos = [override.eos_token] if override.eos_token else []
    return [*eos, *override.stop]


def _read_template_file(model_id: str, value: str, base_dir: str | None) -> str:
    path = Path(value).expanduser()
    if not path.is_absolute():
        path = Path(base_dir or os.getcwd()) / path
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        problem = f"names the file {path}, which does not exist."
    except IsADirectoryError:
        problem = f"names {path}, which is a directory, not a template file."
    except UnicodeDecodeError:
        problem = f"names the file {path}, which is not UTF-8 text."
    except OSError as exc:
        problem = f"names the file {path}, which cannot be read ({exc.strerror or exc})."
    raise _config_problem(
        model_id,
        f"{problem} Fix the path under {settings_table(model_id)} (a relative path starts at the "
        "config file's directory) or write the template source inline.",
    )


# --- the Hugging Face lookup -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HubTemplate:
    """A model's chat template and special tokens as its repository publishes them."""

    chat_template: str
    bos_token: str
    eos_token: str
    source: str  # the URL it came from (no credentials)


@dataclass(frozen=True, slots=True)
class HubAnswer:
    """What the lookup found: a template, or ``None`` and why (for the 400 message)."""

    template: HubTemplate | None
    why_none: str = ""


class HubSource:
    """Chat templates from a Hugging Face-compatible hub, cached on disk and in memory.

    For ``owner/name`` it reads ``{endpoint}/owner/name/resolve/main/tokenizer_config.json``
    (``Authorization: Bearer <token>`` when a token is given) and takes its ``chat_template``: a
    string, or a list of ``{"name", "template"}`` of which the one named ``"default"`` is used.
    Without one there, it reads ``.../resolve/main/chat_template.jinja``. ``bos_token`` and
    ``eos_token`` may be strings or ``{"content": ...}`` objects; the ``eos_token`` becomes the
    template's stop string.

    What it finds is written to ``cache_dir`` (one JSON file per model, named after the id, e.g.
    ``meta-llama--Llama-3.3-70B-Instruct-1a2b3c4d5e.json``) and used from there afterwards
    without the network, across restarts. To refresh a model's template, delete its file (or
    the whole directory); a file that cannot be parsed is fetched again. A model the hub does not
    have (404) is remembered in memory until restart; gated models (401/403) and network
    failures are not remembered, so fixing them needs no restart. Concurrent lookups of one
    model share one fetch. ``timeout`` bounds each lookup as a whole.

    ``transport`` is the seam for tests and special set-ups (an ``httpx.AsyncBaseTransport``).
    Proxy variables are ignored (as for every upstream); point ``HF_ENDPOINT`` at a mirror
    instead.
    """

    def __init__(
        self,
        endpoint: str,
        token: str | None,
        cache_dir: Path,
        *,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.cache_dir = Path(cache_dir)
        self.timeout = timeout
        self._token = token or None
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self._found: dict[str, HubAnswer] = {}
        self._pending: dict[str, _PendingFetch] = {}

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> HubSource | None:
        """A source when ``HF_TOKEN`` or ``HF_ENDPOINT`` is set (non-empty), else ``None``.

        ``HF_ENDPOINT`` defaults to ``https://huggingface.co``. The disk cache is
        ``$SLUICEGATE_CACHE_DIR/templates``, else ``$XDG_CACHE_HOME/sluicegate/templates``, else
        ``~/.cache/sluicegate/templates``. Raises ``ConfigError`` for an ``HF_ENDPOINT`` that is
        not an http(s) URL.
        """
        token = environ.get("HF_TOKEN", "").strip()
        endpoint = environ.get("HF_ENDPOINT", "").strip()
        if not token and not endpoint:
            return None
        endpoint = endpoint or DEFAULT_HF_ENDPOINT
        try:
            parsed = httpx.URL(endpoint)
        except httpx.InvalidURL:
            parsed = None
        if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
            raise ConfigError(
                f"HF_ENDPOINT must be an http(s) URL such as {DEFAULT_HF_ENDPOINT}; "
                f"it is {endpoint!r}. Fix it, or unset it to use {DEFAULT_HF_ENDPOINT}."
            )
        if environ.get("SLUICEGATE_CACHE_DIR"):
            cache_dir = Path(environ["SLUICEGATE_CACHE_DIR"]) / "templates"
        elif environ.get("XDG_CACHE_HOME"):
            cache_dir = Path(environ["XDG_CACHE_HOME"]) / "sluicegate" / "templates"
        else:
            home = Path(environ["HOME"]) if environ.get("HOME") else Path.home()
            cache_dir = home / ".cache" / "sluicegate" / "templates"
        return cls(endpoint, token or None, cache_dir.expanduser())

    def cache_file(self, model_id: str) -> Path:
        """Where ``model_id``'s template is cached: a readable name, plus a short hash of the id
        because the readable part is not unique ("a/b" and "a--b")."""
        readable = re.sub(r"[^A-Za-z0-9._-]", "_", model_id.replace("/", "--"))[:120]
        digest = hashlib.sha256(model_id.encode("utf-8")).hexdigest()[:10]
        return self.cache_dir / f"{readable}-{digest}.json"

    async def fetch(self, model_id: str) -> HubAnswer:
        """The model's published template (from memory, disk or the hub), or ``None`` and why.

        Raises ``GatewayError`` (502) when the hub refuses (gated or private model), fails or
        cannot be reached.
        """
        while True:
            answer = self._found.get(model_id)
            if answer is not None:
                return answer
            pending = self._pending.get(model_id)
            if pending is None:
                break
            await pending.done.wait()
            if pending.error is not None:
                raise replace(pending.error)  # a copy: each task gets its own traceback
            # Done without an answer: the fetching task was cancelled; try again ourselves.
        pending = self._pending[model_id] = _PendingFetch()
        try:
            answer = await self._fetch_uncached(model_id)
        except GatewayError as error:
            pending.error = error
            raise
        finally:
            del self._pending[model_id]
            pending.done.set()
        if len(self._found) >= _MAX_CACHED:
            self._found.clear()
        self._found[model_id] = answer
        return answer

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _fetch_uncached(self, model_id: str) -> HubAnswer:
        if not _HUB_REPO_ID.fullmatch(model_id) or ".." in model_id:
            return HubAnswer(None, f"'{model_id}' is not a Hugging Face repository id.")
        cache_file = self.cache_file(model_id)
        cached = await trio.to_thread.run_sync(_read_cache_file, cache_file)
        if cached is not None:
            return HubAnswer(cached)
        try:
            with trio.fail_after(self.timeout):
                answer = await self._download(model_id)
        except trio.TooSlowError:
            raise self._unavailable(
                model_id, f"no answer within {self.timeout:g} s", "chat_template_hub_timeout"
            ) from None
        except httpx.HTTPError as exc:
            raise self._unavailable(
                model_id, f"{type(exc).__name__}: {exc}", "chat_template_hub_unreachable"
            ) from None
        if answer.template is not None:
            await trio.to_thread.run_sync(_write_cache_file, cache_file, answer.template)
        return answer

    async def _download(self, model_id: str) -> HubAnswer:
        base = f"{self.endpoint}/{model_id}/resolve/main"
        config_url = f"{base}/tokenizer_config.json"
        status, body, error_code = await self._get(model_id, config_url)
        if status == 404 and error_code != "EntryNotFound":
            return HubAnswer(
                None,
                f"{self.endpoint} has no model '{model_id}' (HTTP 404); check the model id.",
            )
        if status == 404:  # the repository exists without the file; chat_template.jinja may
            config: Any = {}
        else:
            self._check_status(model_id, config_url, status)
            try:
                config = orjson.loads(body)
            except orjson.JSONDecodeError:
                config = None
            if not isinstance(config, dict):
                raise self._unavailable(
                    model_id, f"{config_url} is not a JSON object", "chat_template_hub_invalid"
                )
        bos, eos = _token_text(config.get("bos_token")), _token_text(config.get("eos_token"))
        source = _default_template(config.get("chat_template"))
        if source is not None:
            return HubAnswer(HubTemplate(source, bos, eos, config_url))
        jinja_url = f"{base}/chat_template.jinja"
        status, body, _ = await self._get(model_id, jinja_url)
        if status == 404:
            return HubAnswer(
                None,
                f"model '{model_id}' on {self.endpoint} publishes no chat template (no "
                "chat_template in tokenizer_config.json, no chat_template.jinja): a base model, "
                "not a chat model?",
            )
        self._check_status(model_id, jinja_url, status)
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise self._unavailable(
                model_id, f"{jinja_url} is not UTF-8 text", "chat_template_hub_invalid"
            ) from None
        return HubAnswer(HubTemplate(text, bos, eos, jinja_url))

    async def _get(self, model_id: str, url: str) -> tuple[int, bytes, str | None]:
        """Status, body (empty unless 2xx) and Hugging Face's ``X-Error-Code`` of a GET."""
        if self._client is None:
            self._client = httpx.AsyncClient(
                transport=self._transport,
                timeout=httpx.Timeout(self.timeout),
                follow_redirects=True,  # resolve/ URLs redirect to a CDN or a renamed repo
                trust_env=False,
                headers={"user-agent": f"sluicegate/{__version__}"},
            )
        # httpx drops this header on a redirect to another host, so the CDN never sees it.
        headers = {"authorization": f"Bearer {self._token}"} if self._token else {}
        async with self._client.stream("GET", url, headers=headers) as response:
            if not response.is_success:
                return response.status_code, b"", response.headers.get("x-error-code")
            parts: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > _MAX_HUB_FILE_BYTES:
                    raise self._unavailable(
                        model_id,
                        f"{url} is larger than {_MAX_HUB_FILE_BYTES} bytes",
                        "chat_template_hub_invalid",
                    )
                parts.append(chunk)
            return response.status_code, b"".join(parts), None

    def _check_status(self, model_id: str, url: str, status: int) -> None:
        if status in (401, 403):
            hint = (
                "HF_TOKEN is set: make sure its account has accepted the model's licence"
                if self._token
                else "set HF_TOKEN to a token of an account that has accepted it"
            )
            raise GatewayError(
                502,
                f"Hugging Face refused {url} (HTTP {status}): model '{model_id}' is gated or "
                f"private, or does not exist. Accept the model's licence on its Hugging Face "
                f"page and {hint}; or set chat_template for it in the config, under "
                f"{settings_table(model_id)}.",
                "upstream_error",
                "chat_template_hub_denied",
            )
        if not 200 <= status < 300:
            raise self._unavailable(model_id, f"HTTP {status} for {url}", "chat_template_hub_error")

    def _unavailable(self, model_id: str, what: str, code: str) -> GatewayError:
        return GatewayError(
            502,
            f"Could not fetch the chat template of model '{model_id}' from {self.endpoint} "
            f"({what}). Retry; if it persists, check HF_ENDPOINT and the network, or set "
            f"chat_template for the model in the config, under {settings_table(model_id)}.",
            "upstream_error",
            code,
        )


class _PendingFetch:
    """One fetch in flight; later callers for the same model wait for it."""

    __slots__ = ("done", "error")

    def __init__(self) -> None:
        self.done = trio.Event()
        self.error: GatewayError | None = None


def _token_text(value: Any) -> str:
    """A special token as tokenizer_config.json writes it: a string, or an AddedToken object."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("content"), str):
        return value["content"]
    return ""


def _default_template(value: Any) -> str | None:
    """``chat_template`` as a string, or the one named "default" of a list of named templates
    (transformers' rule when no template name is asked for)."""
    if isinstance(value, str) and value.strip():
        return value
    if isinstance(value, list):
        for item in value:
            if isinstance(item, dict) and item.get("name") == "default":
                template = item.get("template")
                if isinstance(template, str) and template.strip():
                    return template
    return None


def _read_cache_file(path: Path) -> HubTemplate | None:
    try:
        data = orjson.loads(path.read_bytes())
        return HubTemplate(
            data["chat_template"], data["bos_token"], data["eos_token"], data["source"]
        )
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("ignoring the template cache file %s (%s); fetching it again", path, exc)
        return None


def _write_cache_file(path: Path, template: HubTemplate) -> None:
    """Written to a temporary name and renamed, so a reader never sees half a file."""
    data = {
        "chat_template": template.chat_template,
        "bos_token": template.bos_token,
        "eos_token": template.eos_token,
        "source": template.source,
    }
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        partial.write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2))
        os.replace(partial, path)
    except OSError as exc:
        # The template is still used from memory; only the next restart pays for a fetch.
        log.warning("could not cache the chat template in %s: %s", path, exc)
