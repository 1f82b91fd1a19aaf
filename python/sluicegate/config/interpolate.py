"""``${VAR}`` interpolation for config string values.

Syntax (a small, shell-like subset, so it reads the way users expect):

- ``${VAR}``            the variable's value; unset or empty is an error for the caller to report
- ``${VAR:-default}``   the value, or ``default`` when the variable is unset or empty
- ``$${``               a literal ``${``
- any other ``$``       itself

Values substituted in are never interpolated again: a variable holding ``${X}`` stays literal,
so the environment cannot inject references.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*", re.ASCII)


class MissingVariable(Exception):
    """``${NAME}`` with no default names a variable that is unset (or empty)."""

    def __init__(self, name: str, empty: bool) -> None:
        super().__init__(name)
        self.name = name
        self.empty = empty

    def explain(self) -> str:
        """The end of a sentence: "refers to ${X}, which ..." ."""
        state = "is set but empty" if self.empty else "is not set"
        return f"refers to ${{{self.name}}}, which {state}"


class BadReference(Exception):
    """A malformed ``${...}``; ``str(e)`` says what is wrong and how to write it."""


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """Expand the references in ``text``; raises MissingVariable or BadReference."""
    if "$" not in text:
        return text
    out: list[str] = []
    i = 0
    while True:
        dollar = text.find("$", i)
        if dollar < 0:
            out.append(text[i:])
            return "".join(out)
        out.append(text[i:dollar])
        if text.startswith("$${", dollar):
            out.append("${")
            i = dollar + 3
        elif text.startswith("${", dollar):
            close = text.find("}", dollar + 2)
            if close < 0:
                raise BadReference(
                    "has an unclosed ${; close it with } or write $${ for a literal ${"
                )
            out.append(_resolve(text[dollar + 2 : close], env))
            i = close + 1
        else:
            out.append("$")
            i = dollar + 1


def _resolve(reference: str, env: Mapping[str, str]) -> str:
    name, has_default, default = reference.partition(":-")
    if not _NAME.fullmatch(name):
        raise BadReference(
            f"has ${{{reference}}}, which is not a variable reference; write ${{NAME}} or "
            "${NAME:-default} (NAME: letters, digits and _), or $${ for a literal ${"
        )
    value = env.get(name)
    if value:
        return value
    if has_default:
        return default
    raise MissingVariable(name, empty=value == "")
