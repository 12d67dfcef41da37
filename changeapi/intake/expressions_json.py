"""Conditions and expressions of the operations form: JSON read into Django `Q`s and expressions.

A condition is an object of Django lookups (`{"status": "open", "total__gte": 0}`); an expression
is a JSON value (a `Value`) or an object with one key naming what it is: `{"F": "column"}`,
`{"Value": ...}`, `{"Case": ...}`, `{"Cast": ...}`, an arithmetic operator or a database function
from an explicit table (`{"Coalesce": [...]}`, `{"Lower": [...]}`). Every name is looked up in a
table, never imported, and every refusal carries the JSON pointer of what is wrong.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from django.db.models import F, Q, Value, functions
from django.db.models.expressions import Case, Combinable, Expression, When

from changeapi.intake.json_reader import elements, member, refusal, typed

IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

# The database functions an expression may call: pure functions of their arguments (and `Now`),
# with positional arguments only. Aggregates and window functions have no place in an UPDATE.
FUNCTIONS: dict[str, type[Expression]] = {
    cls.__name__: cls
    for cls in (
        functions.Coalesce,
        functions.Greatest,
        functions.Least,
        functions.NullIf,
        functions.Lower,
        functions.Upper,
        functions.Trim,
        functions.LTrim,
        functions.RTrim,
        functions.Length,
        functions.Concat,
        functions.Left,
        functions.Right,
        functions.Substr,
        functions.Replace,
        functions.Reverse,
        functions.LPad,
        functions.RPad,
        functions.Repeat,
        functions.StrIndex,
        functions.MD5,
        functions.SHA256,
        functions.Abs,
        functions.Ceil,
        functions.Floor,
        functions.Round,
        functions.Mod,
        functions.Power,
        functions.Sign,
        functions.Sqrt,
        functions.Now,
        functions.TruncDate,
        functions.TruncTime,
        functions.ExtractYear,
        functions.ExtractMonth,
        functions.ExtractDay,
        functions.ExtractHour,
    )
}

OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "+": lambda lhs, rhs: lhs + rhs,
    "-": lambda lhs, rhs: lhs - rhs,
    "*": lambda lhs, rhs: lhs * rhs,
    "/": lambda lhs, rhs: lhs / rhs,
}

EXPRESSION_KINDS = ("F", "Value", "Case", "Cast", *OPERATORS, *FUNCTIONS)

# Nesting of one expression; the JSON depth limit bounds the body, this bounds what is built.
MAX_EXPRESSION_DEPTH = 16


def lookup_path(value: Any, pointer: str) -> str:
    """A lookup or column path: identifiers joined by `__`."""
    if not isinstance(value, str) or not all(IDENTIFIER.match(part) for part in value.split("__")):
        raise refusal(f"invalid lookup {value!r:.60}", pointer)
    return value


def lookup_value(value: Any, pointer: str) -> Any:
    """A lookup's value: JSON as it is, except `{"F": "column"}`, which refers to a column."""
    if isinstance(value, dict) and set(value) == {"F"}:
        return F(lookup_path(value["F"], f"{pointer}/F"))
    return value


def build_condition(spec: Any, pointer: str) -> Q:
    """`{"price__gte": 0, "status__in": ["a", "b"]}` -> Q(price__gte=0, status__in=[...]);
    a value `{"F": "other"}` refers to another column."""
    if not isinstance(spec, dict) or not spec:
        raise refusal('a condition is an object of Django lookups, e.g. {"price__gte": 0}', pointer)
    lookups = {lookup_path(key, f"{pointer}/{key}"): lookup_value(value, f"{pointer}/{key}") for key, value in spec.items()}
    return Q(**lookups)


def condition_text(condition: Q) -> str:
    """A condition as its lookups read, `cents__isnull=True AND total__gte=0`, for reports."""
    parts = []
    for child in condition.children:
        if isinstance(child, Q):
            parts.append(f"({condition_text(child)})")
        else:
            lookup, value = child  # type: ignore[misc]  # a Q's leaves are (lookup, value) pairs
            parts.append(f"{lookup}={value!r}")
    text = f" {condition.connector} ".join(parts)
    return f"NOT ({text})" if condition.negated else text


def build_expression(spec: Any, pointer: str, *, field_reader: Callable[[Any, str], Any], depth: int = 0) -> Any:
    """A Django expression from its JSON form; a JSON value that is not an object is a `Value`.

    `field_reader` reads a field spec (for `Cast`'s output field), as the operations form does.
    """
    if depth > MAX_EXPRESSION_DEPTH:
        raise refusal(f"expression nested deeper than {MAX_EXPRESSION_DEPTH}", pointer)
    if not isinstance(spec, dict):
        return Value(spec)
    if len(spec) != 1:
        raise refusal(
            'an expression object has one key naming it, e.g. {"F": "total"} or {"Coalesce": [...]}; '
            'write a JSON object value as {"Value": {...}}',
            pointer,
        )
    (kind, argument), here = next(iter(spec.items())), f"{pointer}/{next(iter(spec))}"

    def inner(value: Any, at: str) -> Any:
        return build_expression(value, at, field_reader=field_reader, depth=depth + 1)

    if kind == "F":
        return F(lookup_path(argument, here))
    if kind == "Value":
        return Value(argument)
    if kind == "Case":
        return _case(argument, here, inner)
    if kind == "Cast":
        expression = inner(member(argument, "expression", here), f"{here}/expression")
        return functions.Cast(
            expression, output_field=field_reader(member(argument, "output_field", here), f"{here}/output_field")
        )
    operands = [inner(item, at) for at, item in elements(argument, here)]
    if kind in OPERATORS:
        if len(operands) != 2:
            raise refusal(f"'{kind}' takes two operands, got {len(operands)}", here)
        lhs, rhs = (op if isinstance(op, Combinable) else Value(op) for op in operands)
        return OPERATORS[kind](lhs, rhs)
    function = FUNCTIONS.get(kind)
    if function is None:
        raise refusal(f"unknown expression {kind!r:.60}; known: {', '.join(EXPRESSION_KINDS)}", f"{pointer}/{kind[:60]}")
    try:
        return function(*operands)
    except (TypeError, ValueError) as exc:
        raise refusal(f"invalid {kind}: {exc}", here) from None


def _case(argument: Any, pointer: str, inner: Callable[[Any, str], Any]) -> Case:
    """`{"when": [{"condition": {...}, "then": ...}, ...], "default": ...}` -> Case(When(...), ...)."""
    typed(argument, dict, pointer)
    unknown = sorted(set(argument) - {"when", "default"})
    if unknown:
        raise refusal(f"unknown Case member {unknown[0]!r:.60}; a Case has 'when' and 'default'", f"{pointer}/{unknown[0]}")
    whens = []
    for here, item in elements(member(argument, "when", pointer), f"{pointer}/when", non_empty=True, what="when"):
        condition = build_condition(member(item, "condition", here), f"{here}/condition")
        if "then" not in item:
            raise refusal("'then' is required", f"{here}/then")
        whens.append(When(condition, then=inner(item["then"], f"{here}/then")))
    default = inner(argument["default"], f"{pointer}/default") if "default" in argument else None
    return Case(*whens, default=default)
