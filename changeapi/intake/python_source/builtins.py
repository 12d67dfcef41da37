"""The builtins and plain-value methods submitted source may call, each bounded before it builds.

Only functions of plain values (strings, numbers, lists, tuples, dicts, sets) are here. Sizes
are checked before a result is made (`range(10**9)`, `'x'.ljust(10**9)`, `int(Decimal('1e999999'))`),
so a hostile file is refused at once instead of costing the worker its memory or minutes of CPU.
"""

from __future__ import annotations

import ast
import decimal
import string
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .interpreter import Interpreter

PLAIN_TYPES = (str, list, tuple, dict, set, frozenset)
_PLAIN_VALUES = (str, int, float, bool, type(None), bytes)
# A Decimal whose exponent or digits exceed this is refused: int() of one would take minutes.
_MAX_DECIMAL_DIGITS = 1000


def checked_number(interpreter: Interpreter, value: Any, node: ast.AST) -> Any:
    """Refuse numbers past the limits: integers by bits, decimals by exponent and digits."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value.bit_length() > interpreter.settings.limits.max_int_bits:
        interpreter.fail_bound("The number is too large.", node)
    if isinstance(value, decimal.Decimal) and value.is_finite():
        if abs(value.adjusted()) > _MAX_DECIMAL_DIGITS or len(value.as_tuple().digits) > _MAX_DECIMAL_DIGITS:
            interpreter.fail_bound("The decimal number is too large.", node)
    return value


@dataclass(frozen=True)
class Builtin:
    """A builtin the file may call, with the interpreter's bounds applied around it."""

    name: str
    function: Callable[[Interpreter, list[Any], dict[str, Any], ast.AST], Any]

    def call(self, interpreter: Interpreter, args: list[Any], kwargs: dict[str, Any], node: ast.AST) -> Any:
        return self.function(interpreter, args, kwargs, node)


def _plain(constructor: Callable[..., Any]) -> Callable[[Interpreter, list[Any], dict[str, Any], ast.AST], Any]:
    def call(interpreter: Interpreter, args: list[Any], kwargs: dict[str, Any], node: ast.AST) -> Any:
        for arg in args:
            checked_number(interpreter, arg, node)
        if args and isinstance(args[0], (list, tuple, set, frozenset, dict, str, range)):
            interpreter.iterable(args[0], node)
        return checked_number(interpreter, constructor(*args, **kwargs), node)

    return call


def _range(interpreter: Interpreter, args: list[Any], kwargs: dict[str, Any], node: ast.AST) -> range:
    if kwargs or not all(isinstance(a, int) and not isinstance(a, bool) for a in args):
        interpreter.fail("range() takes integers.", node)
    result = range(*args)
    if len(result) > interpreter.settings.limits.max_items:
        interpreter.fail_bound(f"The range has more than {interpreter.settings.limits.max_items} items.", node)
    return result


def _items(interpreter: Interpreter, args: list[Any], node: ast.AST, name: str, count: int | None = 1) -> list[list[Any]]:
    if count is not None and len(args) != count:
        interpreter.fail(f"{name}() takes {count} argument{'s' if count != 1 else ''} here.", node)
    return [interpreter.iterable(arg, node) for arg in args]


def _len(interpreter: Interpreter, args: list[Any], kwargs: dict[str, Any], node: ast.AST) -> int:
    if kwargs or len(args) != 1 or not isinstance(args[0], (*PLAIN_TYPES, bytes, range)):
        interpreter.fail("len() takes one string, list, tuple, dict or set.", node)
    return len(args[0])


def _keyed(interpreter: Interpreter, items: list[Any], key: Any, node: ast.AST) -> list[Any]:
    if key is None:
        return items
    return [interpreter.call(key, [item], {}, node) for item in items]


def _sorted(interpreter: Interpreter, args: list[Any], kwargs: dict[str, Any], node: ast.AST) -> list[Any]:
    (items,) = _items(interpreter, args, node, "sorted")
    if set(kwargs) - {"key", "reverse"}:
        interpreter.fail("sorted() takes key= and reverse= only.", node)
    keys = _keyed(interpreter, items, kwargs.get("key"), node)
    order = sorted(range(len(items)), key=lambda i: keys[i], reverse=bool(kwargs.get("reverse", False)))
    return [items[i] for i in order]


def _extreme(pick: Callable[..., Any]) -> Callable[[Interpreter, list[Any], dict[str, Any], ast.AST], Any]:
    def call(interpreter: Interpreter, args: list[Any], kwargs: dict[str, Any], node: ast.AST) -> Any:
        items = interpreter.iterable(args[0], node) if len(args) == 1 else list(args)
        if set(kwargs) - {"key", "default"}:
            interpreter.fail("min() and max() take key= and default= only.", node)
        if not items and "default" in kwargs:
            return kwargs["default"]
        keys = _keyed(interpreter, items, kwargs.get("key"), node)
        return items[pick(range(len(items)), key=lambda i: keys[i])]

    return call


def _enumerate(interpreter: Interpreter, args: list[Any], kwargs: dict[str, Any], node: ast.AST) -> list[tuple[int, Any]]:
    items = interpreter.iterable(args[0], node) if args else []
    start = kwargs.get("start", args[1] if len(args) > 1 else 0)
    return list(enumerate(items, start))


def _zip(interpreter: Interpreter, args: list[Any], kwargs: dict[str, Any], node: ast.AST) -> list[tuple[Any, ...]]:
    if set(kwargs) - {"strict"}:
        interpreter.fail("zip() takes strict= only.", node)
    return list(zip(*_items(interpreter, args, node, "zip", None), strict=bool(kwargs.get("strict", False))))


def _reversed(interpreter: Interpreter, args: list[Any], kwargs: dict[str, Any], node: ast.AST) -> list[Any]:
    (items,) = _items(interpreter, args, node, "reversed")
    return list(reversed(items))


def _over(function: Callable[[list[Any]], Any]) -> Callable[[Interpreter, list[Any], dict[str, Any], ast.AST], Any]:
    def call(interpreter: Interpreter, args: list[Any], kwargs: dict[str, Any], node: ast.AST) -> Any:
        (items,) = _items(interpreter, args[:1], node, "The function")
        return checked_number(interpreter, function(items, *args[1:]), node)

    return call


_TYPES: dict[str, type] = {"str": str, "int": int, "float": float, "bool": bool, "list": list, "tuple": tuple, "dict": dict}


def _isinstance(interpreter: Interpreter, args: list[Any], kwargs: dict[str, Any], node: ast.AST) -> bool:
    if kwargs or len(args) != 2:
        interpreter.fail("isinstance() takes a value and a type.", node)
    types = args[1] if isinstance(args[1], tuple) else (args[1],)
    if not all(isinstance(t, type) and t in _TYPES.values() for t in types):
        interpreter.fail("isinstance() is supported only with plain types (str, int, list, ...).", node)
    return isinstance(args[0], types)


def _str(interpreter: Interpreter, args: list[Any], kwargs: dict[str, Any], node: ast.AST) -> str:
    if kwargs or len(args) > 1:
        interpreter.fail("str() takes one value here.", node)
    if args and not isinstance(args[0], (*_PLAIN_VALUES, decimal.Decimal)):
        interpreter.fail(f"str() of a {type(args[0]).__name__} is not supported.", node)
    return str(*args)


BUILTINS: dict[str, Builtin] = {
    name: Builtin(name, function)
    for name, function in {
        "set": _plain(set),
        "frozenset": _plain(frozenset),
        "tuple": _plain(tuple),
        "list": _plain(list),
        "dict": _plain(dict),
        "int": _plain(int),
        "float": _plain(float),
        "bool": _plain(bool),
        "abs": _plain(abs),
        "round": _plain(round),
        "str": _str,
        "range": _range,
        "len": _len,
        "sorted": _sorted,
        "min": _extreme(min),
        "max": _extreme(max),
        "enumerate": _enumerate,
        "zip": _zip,
        "reversed": _reversed,
        "any": _over(any),
        "all": _over(all),
        "sum": _over(sum),
        "isinstance": _isinstance,
    }.items()
}

# Builtins that are also values: `default=dict`, `isinstance(x, str)`.
_AS_VALUES: dict[str, type] = {
    "set": set,
    "frozenset": frozenset,
    "tuple": tuple,
    "list": list,
    "dict": dict,
    "str": str,
    "int": int,
    "float": float,
    "bool": bool,
}
# The builtin each of those types is called as, by the type's identity.
_BY_VALUE: dict[int, Builtin] = {id(builtin_type): BUILTINS[name] for name, builtin_type in _AS_VALUES.items()}


def builtin_value(builtin: Builtin) -> type | None:
    """The real type a builtin name stands for when used as a value, or None if it is only callable."""
    return _AS_VALUES.get(builtin.name)


def builtin_of_value(value: Any) -> Builtin | None:
    """The builtin a real type stands for when a file calls it as a value (`kind = dict; kind()`)."""
    builtin = _BY_VALUE.get(id(value))
    return builtin if builtin is not None and builtin_value(builtin) is value else None


# Plain-value methods a file may call; each returns a new value or changes only its own object.
_METHODS: dict[type, frozenset[str]] = {
    str: frozenset(
        {
            "lower",
            "upper",
            "title",
            "capitalize",
            "strip",
            "lstrip",
            "rstrip",
            "split",
            "rsplit",
            "splitlines",
            "partition",
            "rpartition",
            "replace",
            "startswith",
            "endswith",
            "join",
            "format",
            "count",
            "find",
            "rfind",
            "index",
            "removeprefix",
            "removesuffix",
            "isidentifier",
            "isdigit",
            "isalpha",
            "isalnum",
            "islower",
            "isupper",
        }
    ),
    list: frozenset({"append", "extend", "insert", "index", "count", "copy", "pop", "remove", "reverse"}),
    tuple: frozenset({"index", "count"}),
    dict: frozenset({"get", "keys", "values", "items", "update", "setdefault", "copy", "pop"}),
    set: frozenset({"add", "update", "union", "intersection", "difference", "copy", "discard"}),
    frozenset: frozenset({"union", "intersection", "difference", "copy"}),
}
_GROWING = frozenset({"append", "extend", "insert", "update", "setdefault", "add"})


@dataclass(eq=False)
class PlainMethod:
    """A method of a plain value, bound to it, called only through `call`."""

    owner: Any
    name: str

    def call(self, interpreter: Interpreter, args: list[Any], kwargs: dict[str, Any], node: ast.AST) -> Any:
        owner, name = self.owner, self.name
        if isinstance(owner, str):
            _check_string_call(interpreter, owner, name, args, kwargs, node)
        result = getattr(owner, name)(*args, **kwargs)
        if name in _GROWING:
            added: list[Any] = []
            for arg in [*args, *kwargs.values()]:
                added.extend(arg.items() if isinstance(arg, dict) else (arg if isinstance(arg, (list, tuple, set)) else [arg]))
            interpreter.grow(owner, added, node)
        if name in ("keys", "values", "items"):
            return list(result)
        return result


def plain_method(interpreter: Interpreter, owner: Any, name: str, node: ast.AST) -> PlainMethod:
    allowed = _METHODS.get(type(owner), frozenset())
    if name not in allowed:
        interpreter.fail(f"The method {type(owner).__name__}.{name} is not supported in submitted source.", node)
    return PlainMethod(owner, name)


def _check_string_call(
    interpreter: Interpreter, owner: str, name: str, args: list[Any], kwargs: dict[str, Any], node: ast.AST
) -> None:
    """Bound a string method's result before it is made, and keep `format` away from attributes."""
    limit = interpreter.settings.limits.max_bytes
    if name == "replace" and len(args) >= 2 and isinstance(args[0], str) and isinstance(args[1], str):
        growth = max(len(args[1]) - len(args[0]), 0) * (owner.count(args[0]) if args[0] else len(owner) + 1)
        if len(owner) + growth > limit:
            interpreter.fail_bound("The string would be too long.", node)
    if name == "join" and args:
        parts = interpreter.iterable(args[0], node)
        if not all(isinstance(part, str) for part in parts):
            interpreter.fail("join() takes strings only.", node)
        if sum(len(part) for part in parts) + len(owner) * len(parts) > limit:
            interpreter.fail_bound("The string would be too long.", node)
    if name == "format":
        for _, field_name, spec, conversion in string.Formatter().parse(owner):
            if field_name is not None and any(mark in field_name for mark in ".["):
                interpreter.fail("format() fields may not read attributes or items.", node)
            if spec or conversion not in (None, "s"):
                interpreter.fail("format() supports plain {} fields only.", node)
        values = [*args, *kwargs.values()]
        if not all(isinstance(value, _PLAIN_VALUES) for value in values):
            interpreter.fail("format() takes plain values only.", node)
        if len(owner) + sum(len(str(value)) for value in values) * max(owner.count("{"), 1) > limit:
            interpreter.fail_bound("The string would be too long.", node)
