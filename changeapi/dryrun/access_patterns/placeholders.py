"""An access pattern's SQL with its placeholders (`%(name)s`, `%s` or `$1`) bound to sample values.

The text is scanned as PostgreSQL's lexer sees it: quoted strings, quoted names, dollar quotes
and comments are skipped, so a `%s` or a `;` inside a string literal is neither a placeholder
nor the end of the statement. Every character of the converted text remembers where it came
from, so a position PostgreSQL reports is mapped back to the line and column the author wrote.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

_DOLLAR_TAG = re.compile(r"\$([A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*)?\$")
_NUMBERED = re.compile(r"\$(\d+)")
_PYFORMAT = re.compile(r"%\(([^()]+)\)s|%s|%%")


class PatternError(Exception):
    """A pattern that cannot be prepared: what is wrong and where (a JSON pointer, and a line and
    column of the SQL when the problem is in the SQL)."""

    def __init__(
        self,
        message: str,
        *,
        pointer: str = "/sql",
        line: int | None = None,
        column: int | None = None,
        sqlstate: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.pointer = pointer
        self.line = line
        self.column = column
        self.sqlstate = sqlstate

    def as_dict(self) -> dict[str, Any]:
        entry = {"detail": self.message, "pointer": self.pointer, "line": self.line, "column": self.column}
        entry["sqlstate"] = self.sqlstate
        return {key: value for key, value in entry.items() if value is not None}


def line_column(source: str, index: int) -> tuple[int, int]:
    """1-based line and column of the character at `index` (0-based) of `source`."""
    index = max(0, min(index, len(source)))
    line = source.count("\n", 0, index) + 1
    column = index - (source.rfind("\n", 0, index) + 1) + 1
    return line, column


def _error_at(message: str, source: str, index: int, pointer: str = "/sql") -> PatternError:
    line, column = line_column(source, index)
    return PatternError(message, pointer=pointer, line=line, column=column)


def _is_identifier_char(char: str) -> bool:
    return char.isalnum() or char in "_$" or ord(char) >= 0x80


def _quoted_end(source: str, start: int) -> int | None:
    """End (exclusive) of the string, quoted name, dollar quote or comment at `start`, if one starts there."""
    char = source[start]
    before = source[start - 1] if start > 0 else ""
    if char in "'\"":
        escapes = char == "'" and before in "eE" and (start < 2 or not _is_identifier_char(source[start - 2]))
        i = start + 1
        while i < len(source):
            if escapes and source[i] == "\\":
                i += 2
                continue
            if source[i] == char:
                if source.startswith(char, i + 1):
                    i += 2
                    continue
                return i + 1
            i += 1
        kind = "string" if char == "'" else "quoted name"
        raise _error_at(f"unterminated {kind}", source, start)
    if source.startswith("--", start):
        newline = source.find("\n", start)
        return len(source) if newline < 0 else newline
    if source.startswith("/*", start):
        depth, i = 0, start
        while i < len(source):
            if source.startswith("/*", i):
                depth, i = depth + 1, i + 2
            elif source.startswith("*/", i):
                depth, i = depth - 1, i + 2
                if depth == 0:
                    return i
            else:
                i += 1
        raise _error_at("unterminated /* comment", source, start)
    if char == "$" and not (before and _is_identifier_char(before)):
        tag = _DOLLAR_TAG.match(source, start)
        if tag is None:
            return None
        close = source.find(tag.group(0), tag.end())
        if close < 0:
            raise _error_at("unterminated dollar-quoted string", source, start)
        return close + len(tag.group(0))
    return None


def code_spans(source: str) -> list[tuple[int, int, bool]]:
    """`source` as consecutive (start, end, is_code) runs; strings, names and comments are not code."""
    spans: list[tuple[int, int, bool]] = []
    start = i = 0
    while i < len(source):
        end = _quoted_end(source, i)
        if end is None:
            i += 1
            continue
        if i > start:
            spans.append((start, i, True))
        spans.append((i, end, False))
        start = i = end
    if start < len(source):
        spans.append((start, len(source), True))
    return spans


@dataclass(frozen=True)
class BoundPattern:
    """The SQL as PostgreSQL prepares it (`$n` placeholders) and the sample value of each `$n`."""

    source: str
    text: str
    names: list[str]
    values: list[Any]
    origins: list[int] = field(repr=False)

    def location(self, position: int) -> tuple[int, int]:
        """Line and column in the submitted SQL of a 1-based character position in `text`."""
        index = max(0, min(position - 1, len(self.origins) - 1))
        return line_column(self.source, self.origins[index]) if self.origins else (1, 1)


@dataclass
class _Builder:
    source: str
    parts: list[str] = field(default_factory=list)
    origins: list[int] = field(default_factory=list)

    def copy(self, start: int, end: int) -> None:
        self.parts.append(self.source[start:end])
        self.origins.extend(range(start, end))

    def put(self, text: str, origin: int) -> None:
        self.parts.append(text)
        self.origins.extend([origin] * len(text))


def _statement_end(source: str, spans: list[tuple[int, int, bool]]) -> int:
    """Where the one statement ends: before a trailing `;` (only blanks and comments may follow)."""
    for number, (start, end, is_code) in enumerate(spans):
        if not is_code:
            continue
        semicolon = source.find(";", start, end)
        if semicolon < 0:
            continue
        rest_is_blank = source[semicolon + 1 : end].strip() == "" and all(
            not code or source[s:e].strip() == "" for s, e, code in spans[number + 1 :]
        )
        if not rest_is_blank:
            raise _error_at("an access pattern is one statement: remove the text after ';'", source, semicolon)
        return semicolon
    return len(source)


def _placeholders(source: str, spans: list[tuple[int, int, bool]], end: int) -> tuple[str, list[tuple[int, re.Match[str]]]]:
    """The placeholder style ("numbered", "pyformat" or "none") and every placeholder in the code."""
    numbered: list[tuple[int, re.Match[str]]] = []
    pyformat: list[tuple[int, re.Match[str]]] = []
    for start, stop, is_code in spans:
        if not is_code or start >= end:
            continue
        chunk = source[start : min(stop, end)]
        for match in _NUMBERED.finditer(chunk):
            before = chunk[match.start() - 1] if match.start() else (source[start - 1] if start else "")
            if not (before and _is_identifier_char(before)):
                numbered.append((start, match))
        pyformat.extend((start, match) for match in _PYFORMAT.finditer(chunk))
    real_pyformat = [(s, m) for s, m in pyformat if m.group(0) != "%%"]
    if numbered and real_pyformat:
        offset, match = real_pyformat[0]
        raise _error_at("use one placeholder style: $1 or %s / %(name)s, not both", source, offset + match.start())
    if numbered:
        return "numbered", numbered
    if real_pyformat:
        return "pyformat", pyformat
    return "none", []


def bind_placeholders(source: str, params: dict[str, Any]) -> BoundPattern:
    """Convert the placeholders to `$n` and pick each one's sample value from `params`.

    `params` maps a placeholder to its value: by name for `%(name)s`, by position ("1", "2",
    ...) for `$1` and `%s`. Raises PatternError, located, for a missing or unused value.
    """
    spans = code_spans(source)
    end = _statement_end(source, spans)
    style, found = _placeholders(source, spans, end)
    builder = _Builder(source)
    names: list[str] = []
    where: dict[str, int] = {}
    if style == "numbered":
        builder.copy(0, end)
        for offset, match in found:
            where.setdefault(match.group(1).lstrip("0") or "0", offset + match.start())
        highest = max(int(n) for n in where)
        names = [str(n) for n in range(1, highest + 1)]
        if "0" in where:
            raise _error_at("placeholders are numbered from $1", source, where["0"])
    else:
        cursor = 0
        for offset, match in found:
            at = offset + match.start()
            builder.copy(cursor, at)
            if match.group(0) == "%%":
                builder.put("%", at)
            else:
                name = match.group(1) if match.group(1) is not None else str(len([n for n in names if n.isdigit()]) + 1)
                if match.group(1) is None or name not in names:
                    names.append(name)
                    where[name] = at
                builder.put(f"${names.index(name) + 1}", at)
            cursor = offset + match.end()
        builder.copy(cursor, end)
        if style == "pyformat":
            _unescape_percent_in_literals(builder, spans, end)
    if any(n.isdigit() for n in names) and any(not n.isdigit() for n in names):
        raise _error_at("use %s or %(name)s placeholders, not both", source, min(where.values()))
    values = []
    for name in names:
        if name not in params:
            label = f"${name}" if style == "numbered" else ("%s number " + name if name.isdigit() else f"%({name})s")
            raise PatternError(
                f"no sample value for {label}: add it to params",
                pointer="/params",
                line=line_column(source, where.get(name, 0))[0],
                column=line_column(source, where.get(name, 0))[1],
            )
        values.append(params[name])
    for unused in sorted(set(params) - set(names)):
        raise PatternError(f"the SQL has no placeholder for {unused!r}", pointer=f"/params/{unused}")
    return BoundPattern(source=source, text="".join(builder.parts), names=names, values=values, origins=builder.origins)


def _unescape_percent_in_literals(builder: _Builder, spans: list[tuple[int, int, bool]], end: int) -> None:
    """With %-style placeholders a literal `%` is written `%%` everywhere, strings included."""
    text = "".join(builder.parts)
    literal_ranges = [(s, e) for s, e, code in spans if not code and s < end]
    if "%%" not in text or not literal_ranges:
        return
    out: list[str] = []
    origins: list[int] = []
    i = 0
    while i < len(text):
        origin = builder.origins[i]
        in_literal = any(s <= origin < e for s, e in literal_ranges)
        if in_literal and text.startswith("%%", i):
            out.append("%")
            origins.append(origin)
            i += 2
            continue
        out.append(text[i])
        origins.append(origin)
        i += 1
    builder.parts[:] = ["".join(out)]
    builder.origins[:] = origins


def argument_text(value: Any) -> str | None:
    """A sample value as the text PostgreSQL casts to the parameter's type (None is NULL).

    Every value goes as an untyped literal, as a driver's text parameter does: PostgreSQL
    types it from the query, so `'42'` is a bigint for a bigint column and never a numeric
    that would keep the column's index out of the plan.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, str)):
        return str(value)
    if isinstance(value, list):
        return "{" + ",".join(_array_element(item) for item in value) + "}"
    return json.dumps(value, sort_keys=True)


def _array_element(value: Any) -> str:
    text = argument_text(value)
    if text is None:
        return "NULL"
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
