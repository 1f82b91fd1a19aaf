"""Find the source line of a key in a TOML document.

tomllib returns plain dicts without positions, so error messages would have no line numbers.
This scanner walks the text once, following table headers (``[a.b]``, ``[[a]]``), dotted keys
and multi-line values (strings, arrays), and records the line where each key path first
appears. It only has to be right for documents tomllib already accepted; if it meets anything
it does not understand it stops, keeping what it recorded so far, because no line number is
better than a wrong one.

Paths are tuples of keys and array indices: ``("providers", 1, "timeouts", "connect")``; keys
inside inline tables and elements of arrays have lines of their own. A path with no line (a
key that is missing) takes the line of its nearest recorded ancestor: a missing key is
reported at the header of the table that lacks it.
"""

from __future__ import annotations

import bisect
import contextlib
import re
import tomllib

Path = tuple[str | int, ...]

_BARE_KEY_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
# Characters that end a bare value (number, boolean, date-time) inside arrays and inline tables.
_VALUE_END = frozenset(" \t\r\n,]}#")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


class _Unsure(Exception):
    """The scanner met text it does not understand; stop recording."""


class SourceLines:
    """Line numbers (1-based) of key paths in one TOML document."""

    def __init__(self, text: str) -> None:
        self._text = text
        self._line_starts = [0] + [i + 1 for i, c in enumerate(text) if c == "\n"]
        self._lines: dict[Path, int] = {}
        self._aot_last: dict[Path, int] = {}  # array-of-tables path -> index of its last element
        with contextlib.suppress(_Unsure, IndexError, tomllib.TOMLDecodeError):
            self._scan()

    def line_of(self, path: Path) -> int | None:
        """The line of ``path``, or of its nearest ancestor that has one; None if none does."""
        for end in range(len(path), 0, -1):
            line = self._lines.get(path[:end])
            if line is not None:
                return line
        return None

    # --- the scanner ------------------------------------------------------------------------

    def _line_at(self, pos: int) -> int:
        return bisect.bisect_right(self._line_starts, pos)

    def _record(self, path: Path, pos: int) -> None:
        # Also record the prefixes a dotted key or header creates, unless seen before.
        line = self._line_at(pos)
        for end in range(1, len(path) + 1):
            self._lines.setdefault(path[:end], line)

    def _scan(self) -> None:
        text = self._text
        pos = 0
        table: Path = ()
        while True:
            pos = self._skip_blank(pos, newlines=True)
            if pos >= len(text):
                return
            start = pos
            if text[pos] == "[":
                is_array = text.startswith("[[", pos)
                parts, pos = self._key(pos + (2 if is_array else 1))
                pos = self._skip_blank(pos)
                closing = "]]" if is_array else "]"
                if not text.startswith(closing, pos):
                    raise _Unsure
                pos += len(closing)
                table = self._resolve_header(parts, is_array)
                self._record(table, start)
            else:
                parts, pos = self._key(pos)
                pos = self._skip_blank(pos)
                if not text.startswith("=", pos):
                    raise _Unsure
                key_path = table + tuple(parts)
                self._record(key_path, start)
                pos = self._skip_value(self._skip_blank(pos + 1), key_path)
            pos = self._skip_blank(pos)
            if pos < len(text) and text[pos] not in "\r\n":
                raise _Unsure

    def _resolve_header(self, parts: list[str], is_array: bool) -> Path:
        resolved: Path = ()
        for i, part in enumerate(parts):
            resolved += (part,)
            if is_array and i == len(parts) - 1:
                index = self._aot_last.get(resolved, -1) + 1
                self._aot_last[resolved] = index
                resolved += (index,)
            elif resolved in self._aot_last:
                resolved += (self._aot_last[resolved],)
        return resolved

    def _skip_blank(self, pos: int, newlines: bool = False) -> int:
        """Skip spaces, tabs and a comment; with ``newlines``, blank lines as well."""
        text = self._text
        while pos < len(text):
            c = text[pos]
            if c in " \t" or (newlines and c in "\r\n"):
                pos += 1
            elif c == "#":
                end = text.find("\n", pos)
                pos = len(text) if end < 0 else end
            else:
                break
        return pos

    def _key(self, pos: int) -> tuple[list[str], int]:
        """A dotted key: bare, "basic" or 'literal' parts separated by dots."""
        text = self._text
        parts: list[str] = []
        while True:
            pos = self._skip_blank(pos)
            if pos >= len(text):
                raise _Unsure
            if text[pos] in "\"'":
                end = self._skip_string(pos)
                raw = text[pos:end]
                # Let tomllib decode escapes rather than re-implementing them.
                parts.append(tomllib.loads(f"k = {raw}")["k"])
                pos = end
            else:
                end = pos
                while end < len(text) and text[end] in _BARE_KEY_CHARS:
                    end += 1
                if end == pos:
                    raise _Unsure
                parts.append(text[pos:end])
                pos = end
            pos = self._skip_blank(pos)
            if not text.startswith(".", pos):
                return parts, pos
            pos += 1

    def _skip_string(self, pos: int) -> int:
        text = self._text
        quote = text[pos]
        if text.startswith(quote * 3, pos):
            end = self._find_closing(pos + 3, quote * 3, escapes=quote == '"')
            # A multi-line string may end with one or two quotes right before its delimiter.
            extra = 0
            while extra < 2 and end + 3 + extra < len(text) and text[end + 3 + extra] == quote:
                extra += 1
            return end + 3 + extra
        end = self._find_closing(pos + 1, quote, escapes=quote == '"')
        if "\n" in text[pos:end]:
            raise _Unsure
        return end + 1

    def _find_closing(self, pos: int, delimiter: str, escapes: bool) -> int:
        text = self._text
        while True:
            end = text.find(delimiter, pos)
            if end < 0:
                raise _Unsure
            if escapes:
                backslashes = 0
                while text[end - 1 - backslashes] == "\\":
                    backslashes += 1
                if backslashes % 2:
                    pos = end + 1
                    continue
            return end

    def _skip_value(self, pos: int, path: Path) -> int:
        """Skip the value of ``path``, recording the lines of what it contains."""
        text = self._text
        if pos >= len(text):
            raise _Unsure
        c = text[pos]
        if c in "\"'":
            return self._skip_string(pos)
        if c == "[":
            return self._skip_array(pos + 1, path)
        if c == "{":
            return self._skip_inline_table(pos + 1, path)
        end = pos
        while end < len(text) and text[end] not in _VALUE_END:
            end += 1
        # A date-time may have a space instead of the "T" ("1979-05-27 07:32:00").
        is_date = _DATE.fullmatch(text, pos, end) is not None
        if is_date and end < len(text) - 1 and text[end] == " " and text[end + 1].isdigit():
            end += 1
            while end < len(text) and text[end] not in _VALUE_END:
                end += 1
        if end == pos:
            raise _Unsure
        return end

    def _skip_array(self, pos: int, path: Path) -> int:
        """Skip the rest of an array (it may span lines), recording each element's line."""
        text = self._text
        index = 0
        while True:
            pos = self._skip_blank(pos, newlines=True)
            if pos >= len(text):
                raise _Unsure
            if text[pos] == "]":
                return pos + 1
            if text[pos] == ",":
                pos += 1
                continue
            self._record((*path, index), pos)
            pos = self._skip_value(pos, (*path, index))
            index += 1

    def _skip_inline_table(self, pos: int, path: Path) -> int:
        """Skip the rest of an inline table, recording each key's line."""
        text = self._text
        while True:
            pos = self._skip_blank(pos, newlines=True)
            if pos >= len(text):
                raise _Unsure
            if text[pos] == "}":
                return pos + 1
            if text[pos] == ",":
                pos += 1
                continue
            start = pos
            parts, pos = self._key(pos)
            pos = self._skip_blank(pos)
            if not text.startswith("=", pos):
                raise _Unsure
            key_path = path + tuple(parts)
            self._record(key_path, start)
            pos = self._skip_value(self._skip_blank(pos + 1), key_path)
