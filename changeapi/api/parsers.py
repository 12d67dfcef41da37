"""The API's JSON parser: refuses what JSON can carry but nothing behind the API can hold.

PostgreSQL text and jsonb cannot store NUL, UTF-8 cannot encode a lone surrogate, jsonb has no
infinity (which `1e999` becomes), and nesting past a few dozen levels is never a migration but
can exhaust Python's recursion. Every JSON body (and the JSON inside Slack's form) goes through
`json_document_load`, so each refusal is a 400 with the pointer of the offending value, before
a view or a service sees it.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from itertools import accumulate
from typing import IO, Any

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser
from rest_framework.utils.json import strict_constant

from changeapi.errors import DomainError, LimitExceeded

MAX_REPORTED = 20
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}
_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{},:]', re.DOTALL)
# Escapes that can decode to NUL or to half of a surrogate pair: without one, no string needs a look.
_SUSPECT_ESCAPE = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")
_NUL = "\x00"
_SURROGATE = re.compile("[\ud800-\udfff]")
_UNSHOWABLE = re.compile("[\x00\ud800-\udfff]")


class JsonTooDeep(LimitExceeded):
    """A body nested deeper than SCHEMAGATE_MAX_JSON_DEPTH: a 400 naming the limit."""

    status = 400
    code = "json-too-deep"
    title = "The JSON is nested too deeply"

    def __init__(self, detail: str, *, pointer: str, limit: int) -> None:
        super().__init__(detail, setting="SCHEMAGATE_MAX_JSON_DEPTH", value=limit)
        self.errors = [{"pointer": pointer, "detail": detail}]


class UnstorableValue(DomainError):
    """Strings holding NUL or a lone surrogate, or numbers past a double's range: the database
    cannot store them."""

    code = "unstorable-value"
    title = "The request holds a value that cannot be stored"


def json_pointer(parts: list[str | int]) -> str:
    """RFC 6901: each reference token with '~' and '/' escaped. NUL and lone surrogates, which
    no answer can carry either, are shown as their JSON escapes (`\\u0000`)."""
    pointer = "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in parts) or "/"
    return _UNSHOWABLE.sub(lambda found: f"\\u{ord(found.group()):04x}", pointer)


def _nesting_depth(text: str) -> int:
    """How deep brackets nest outside strings, computed without a Python loop per character."""
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0)


def _pointer_past_depth(text: str, limit: int) -> str:
    """The pointer of the first container nested past `limit`; only walked once a body is refused."""
    positions: list[str | int] = []  # per open container: the current index, or the current key
    last_string = ""
    for match in _TOKEN.finditer(text):
        lexeme = match.group()
        if lexeme[0] == '"':
            last_string = lexeme
        elif lexeme in "[{":
            if len(positions) == limit:
                break
            positions.append(0 if lexeme == "[" else "")
        elif lexeme in "]}" and positions:
            positions.pop()
        elif lexeme == "," and positions and isinstance(positions[-1], int):
            positions[-1] += 1
        elif lexeme == ":" and positions:
            try:
                positions[-1] = json.loads(last_string)
            except ValueError:
                positions[-1] = last_string.strip('"')
    return json_pointer(positions)


def _string_problem(value: str) -> str | None:
    if _NUL in value:
        return "a string may not contain NUL (\\u0000)"
    surrogate = _SURROGATE.search(value)
    if surrogate:
        return f"a string may not contain a lone surrogate (\\u{ord(surrogate.group()):04x})"
    return None


def unstorable_values(document: Any) -> list[dict[str, str]]:
    """Every member name, string and number that cannot be stored, with its pointer (iteratively,
    so no document is too deep to walk)."""
    found: list[dict[str, str]] = []
    stack: list[tuple[Any, list[str | int]]] = [(document, [])]
    while stack and len(found) < MAX_REPORTED:
        value, path = stack.pop()
        if isinstance(value, str):
            problem = _string_problem(value)
            if problem:
                found.append({"pointer": json_pointer(path), "detail": problem})
        elif isinstance(value, float) and not math.isfinite(value):
            found.append({"pointer": json_pointer(path), "detail": "a number past the range of a double"})
        elif isinstance(value, dict):
            for key, item in reversed(value.items()):
                problem = _string_problem(key)
                if problem:
                    found.append({"pointer": json_pointer([*path, key]), "detail": f"member name: {problem}"})
                stack.append((item, [*path, key]))
        elif isinstance(value, list):
            stack.extend((item, [*path, index]) for index, item in reversed(list(enumerate(value))))
    return found


def form_values_check(form: dict[str, str]) -> None:
    """Refuse form fields (a Slack request's) whose text cannot be stored or looked up."""
    found = [
        {"pointer": json_pointer([key]), "detail": problem} for key, value in form.items() if (problem := _string_problem(value))
    ]
    if found:
        raise UnstorableValue(found[0]["detail"], errors=found)


def json_document_load(text: str) -> Any:
    """Parse JSON text; too deep a nesting, NaN, an infinite number, NUL or a lone surrogate is refused.

    The depth is measured before parsing, so no body makes the parser recurse past the limit.
    """
    limit = int(settings.SCHEMAGATE_MAX_JSON_DEPTH)
    if _nesting_depth(text) > limit:
        raise JsonTooDeep(
            f"the JSON is nested deeper than {limit} levels (SCHEMAGATE_MAX_JSON_DEPTH)",
            pointer=_pointer_past_depth(text, limit),
            limit=limit,
        )
    infinite: list[str] = []

    def finite_float(literal: str) -> float:
        number = float(literal)
        if math.isinf(number):
            infinite.append(literal)
        return number

    try:
        document = json.loads(text, parse_constant=strict_constant, parse_float=finite_float)
    except ValueError as exc:
        raise ParseError(f"JSON parse error - {exc}") from exc
    found = unstorable_values(document) if infinite or _SUSPECT_ESCAPE.search(text) else []
    if found:
        detail = "; ".join(f"{e['pointer']}: {e['detail']}" for e in found[:5])
        raise UnstorableValue(detail, errors=found)
    return document


class SafeJSONParser(JSONParser):
    """DRF's JSON parser, with every body checked by `json_document_load`."""

    def parse(self, stream: IO[Any], media_type: str | None = None, parser_context: Mapping[str, Any] | None = None) -> Any:
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            text = stream.read().decode(encoding)
        except (UnicodeDecodeError, LookupError) as exc:
            raise ParseError(f"JSON parse error - the body is not {encoding} text") from exc
        return json_document_load(text)
