"""When a report field is left out of the JSON: the keys a report has only in some cases.

A statement that failed has no locks, rewrites or scans; a plan that failed has only its
error. The dataclasses state those cases here, so `to_json` writes exactly the keys the
report has always had and nothing else.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

JsonValue = str | int | float | bool | None | Sequence["JsonValue"] | Mapping[str, "JsonValue"]
"""A value as JSON decodes it."""

OMIT = "omit"
"""Field metadata: a function of (the owning value, the field's value), true when the key is left out."""

Omit = Callable[[object, object], bool]


def _when_none(_owner: object, value: object) -> bool:
    return value is None


def _when_false(_owner: object, value: object) -> bool:
    return value is False


def _when_empty(_owner: object, value: object) -> bool:
    return value == ()


def _when_not_completed(owner: object, _value: object) -> bool:
    return getattr(owner, "locks", None) is None


ABSENT_WHEN_NONE: Mapping[str, Omit] = {OMIT: _when_none}
"""A key the report has only when there is a value: None means no key."""

ABSENT_WHEN_EMPTY: Mapping[str, Omit] = {OMIT: _when_empty}
"""A list the report has only when it holds something: an empty tuple means no key."""

ABSENT_WHEN_FALSE: Mapping[str, Omit] = {OMIT: _when_false}
"""A flag written only when it is set."""

WHEN_COMPLETED: Mapping[str, Omit] = {OMIT: _when_not_completed}
"""A statement key written once the statement completed (its locks were read)."""
