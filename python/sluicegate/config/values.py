"""Checks shared by the config file and the environment: names, keys, base URLs.

Each check returns the clean value or raises ValueError whose text completes a sentence that
starts with the value's name (the caller knows whether that is a key path or a variable).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

_PROVIDER_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*", re.ASCII)
# Kinds whose base URL conventionally ends in /v1 (DESIGN.md: OpenAI-compatible ones include
# it; native ones are the server root).
_KINDS_WITH_V1 = frozenset({"openai"})


def split_keys(text: str) -> list[str]:
    """Several keys in one value, comma-separated; blanks and surrounding spaces dropped.

    API keys never contain commas or spaces, so this is safe for a single key as well.
    """
    return [key.strip() for key in text.split(",") if key.strip()]


def unique(items: list[str]) -> tuple[str, ...]:
    """In first-seen order, each once."""
    return tuple(dict.fromkeys(items))


def check_provider_name(name: str) -> str:
    if _PROVIDER_NAME.fullmatch(name):
        return name
    suggestion = re.sub(r"[^a-z0-9_-]+", "-", name.lower()).strip("-_")
    hint = f'; for example "{suggestion}"' if _PROVIDER_NAME.fullmatch(suggestion) else ""
    raise ValueError(
        f'is "{name}", which clients could not use as "<name>/<model>": use lower-case '
        f"letters, digits, '-' and '_', starting with a letter or digit{hint}"
    )


def check_base_url(url: str) -> str:
    """An http(s) URL without credentials, query or fragment; trailing slashes removed."""
    shown = redact_url(url)
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- raises ValueError for a port that is not a number
    except ValueError:
        raise ValueError(
            f'is "{shown}", which is not a valid URL; write it like http://host:8000/v1'
        ) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(
            f'is "{shown}", which is not an http(s) URL; write it like http://host:8000/v1 '
            "(with the scheme)"
        )
    if parts.username is not None or parts.password is not None:
        raise ValueError(
            f'is "{shown}", which holds credentials; base URLs appear in logs, so remove them '
            "and put the key in api_key (or a header in headers)"
        )
    if parts.query or parts.fragment:
        raise ValueError(
            f'is "{shown}", which has a query or fragment; give only scheme, host, port and path'
        )
    return url.rstrip("/")


def redact_url(url: str) -> str:
    """``url`` with any user:password@ replaced, for messages."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    authority, slash, path = rest.partition("/")
    if "@" in authority:
        authority = "***@" + authority.rpartition("@")[2]
    return f"{scheme}://{authority}{slash}{path}"


def base_url_notice(name: str, kind: str, base_url: str, where: str) -> str | None:
    """A notice when an OpenAI-compatible base URL lacks the /v1 most such servers need, or
    a native one has it (native APIs live at the server root)."""
    if kind not in _KINDS_WITH_V1:
        path = urlsplit(base_url).path.rstrip("/")
        if not path.endswith(("/v1", "/v1/openai")):
            return None
        return (
            f"{name}: base_url {base_url} ({where}) ends in {path[path.rfind('/v1') :]}, "
            f"but a {kind} provider speaks the native API from the "
            "server root (e.g. https://api.deepinfra.com); remove the path unless this server "
            "really lives there"
        )
    if base_url.endswith("/v1"):
        return None
    return (
        f"{name}: base_url {base_url} ({where}) does not end in /v1; most OpenAI-compatible "
        "servers serve their API under /v1, so add it unless this server is different"
    )
