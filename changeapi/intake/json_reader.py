"""Typed reads of submitted JSON: each reader checks the JSON type it expects.

A value of any other type is refused with its JSON pointer, so a list where a name belongs or a
number where a list belongs is a located 400, never a Python error from deeper down.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from changeapi.intake.errors import IntakeError, Location

T = TypeVar("T")
Reader = Callable[[Any, str], Any]

_TYPE_NAMES: tuple[tuple[type, str], ...] = (
    (bool, "true or false"),
    (int, "an integer"),
    (float, "a number"),
    (str, "a string"),
    (list, "a list"),
    (dict, "an object"),
)


def refusal(message: str, pointer: str) -> IntakeError:
    """The error for a value that cannot be read, located at `pointer`."""
    return IntakeError(message, Location(pointer=pointer))


def json_type_name(value: Any) -> str:
    """How a JSON value's type is named in refusals ("an integer", "a list", "null")."""
    if value is None:
        return "null"
    return next((name for kind, name in _TYPE_NAMES if isinstance(value, kind)), type(value).__name__)


def typed(value: Any, kind: type[T], pointer: str) -> T:
    """`value` when it has the JSON type `kind`. JSON true and false are not integers here,
    although Python's bool is an int."""
    if isinstance(value, kind) and (kind is bool or not isinstance(value, bool)):
        return value
    expected = dict(_TYPE_NAMES)[kind]
    raise refusal(f"expected {expected}, got {json_type_name(value)}", pointer)


def boolean(value: Any, pointer: str) -> bool:
    return typed(value, bool, pointer)


def string(value: Any, pointer: str) -> str:
    return typed(value, str, pointer)


def any_json(value: Any, pointer: str) -> Any:
    """Any JSON value: the parser already refused what JSON cannot hold."""
    return value


def integer(value: Any, pointer: str, *, minimum: int | None = None) -> int:
    number = typed(value, int, pointer)
    if minimum is not None and number < minimum:
        raise refusal(f"must be at least {minimum}, got {number}", pointer)
    return number


def positive_integer(value: Any, pointer: str) -> int:
    return integer(value, pointer, minimum=1)


def natural_number(value: Any, pointer: str) -> int:
    return integer(value, pointer, minimum=0)


def elements(value: Any, pointer: str, *, non_empty: bool = False, what: str = "list") -> list[tuple[str, Any]]:
    """A list's items with the pointer of each, for readers of the items."""
    items = typed(value, list, pointer)
    if non_empty and not items:
        raise refusal(f"{what} must not be empty", pointer)
    return [(f"{pointer}/{index}", item) for index, item in enumerate(items)]


def string_list(value: Any, pointer: str) -> list[str]:
    return [string(item, here) for here, item in elements(value, pointer)]


def choice(value: Any, table: Mapping[str, T], pointer: str, what: str) -> T:
    """The entry of `table` named by `value`, a string; anything else lists the choices."""
    if not isinstance(value, str) or value not in table:
        raise refusal(f"{what} must be one of {', '.join(table)}; got {value!r:.60}", pointer)
    return table[value]


def member(doc: Any, key: str, pointer: str) -> Any:
    """A required, non-null member of the object `doc` (itself located at `pointer`)."""
    if not isinstance(doc, dict):
        raise refusal(f"expected an object, got {json_type_name(doc)}", pointer)
    if doc.get(key) is None:
        raise refusal(f"'{key}' is required", f"{pointer}/{key}")
    return doc[key]


def optional(doc: dict[str, Any], key: str, reader: Reader, pointer: str, default: Any = None) -> Any:
    """An optional member read with `reader`; absent or null gives `default`."""
    value = doc.get(key)
    return default if value is None else reader(value, f"{pointer}/{key}")
