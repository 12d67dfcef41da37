"""Operators of submitted expressions: arithmetic, sequences and Django expressions, within limits.

Each result is bounded before it is computed (integer bits, sequence lengths), so `9 ** 9 ** 9`
or `'x' * 10 ** 9` is refused at once instead of exhausting the worker.
"""

from __future__ import annotations

import ast
import math
import operator
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from django.db import models
from django.db.models.expressions import BaseExpression, Combinable

if TYPE_CHECKING:
    from .interpreter import Interpreter

_NUMBERS = (int, float)
_SEQUENCES = (str, bytes, list, tuple)
_EXPRESSIONS = (models.Q, Combinable, BaseExpression)


def _describe(node: ast.AST) -> str:
    return f"The operator {type(getattr(node, 'op', node)).__name__}"


def binary_operation(interpreter: Interpreter, node: ast.BinOp, left: Any, right: Any) -> Any:
    """`left op right` for numbers, sequences and Django expressions, within the size limits."""
    op = node.op
    limits = interpreter.settings.limits
    if isinstance(left, bool) or isinstance(right, bool):
        interpreter.fail("Arithmetic on True/False is not supported.", node)
    if isinstance(left, _EXPRESSIONS) or isinstance(right, _EXPRESSIONS):
        if isinstance(op, (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Mod, ast.Pow, ast.BitAnd, ast.BitOr, ast.BitXor)):
            return _apply(op, left, right)
        interpreter.fail(f"{_describe(node)} is not supported on Django expressions.", node)
    if isinstance(left, _NUMBERS) and isinstance(right, _NUMBERS):
        _check_number_size(interpreter, node, op, left, right)
        result = _apply(op, left, right)
        if isinstance(result, int) and result.bit_length() > limits.max_int_bits:
            interpreter.fail_bound("The number is too large.", node)
        return result
    if isinstance(op, ast.Add) and type(left) is type(right) and isinstance(left, _SEQUENCES):
        _check_length(interpreter, node, len(left) + len(right))
        return left + right
    if isinstance(op, ast.Mult) and isinstance(left, _SEQUENCES) and isinstance(right, int):
        _check_length(interpreter, node, len(left) * max(right, 0))
        return left * right
    if isinstance(op, ast.Mult) and isinstance(right, _SEQUENCES) and isinstance(left, int):
        _check_length(interpreter, node, len(right) * max(left, 0))
        return left * right
    if isinstance(op, ast.Mod) and isinstance(left, str):
        return _printf(interpreter, node, left, right)
    if isinstance(left, (set, frozenset)) and isinstance(right, (set, frozenset)):
        if isinstance(op, (ast.BitOr, ast.BitAnd, ast.Sub, ast.BitXor)):
            return _apply(op, left, right)
    interpreter.fail(f"{_describe(node)} is not supported between {type(left).__name__} and {type(right).__name__}.", node)


# printf-style conversions without width or precision: the result is bounded by its inputs.
_PRINTF = re.compile(r"%(?:\([A-Za-z_][A-Za-z0-9_]*\))?([sdirf%])")
_PRINTF_ANY = re.compile(r"%")


def _printf(interpreter: Interpreter, node: ast.AST, template: str, values: Any) -> str:
    """`"%s.%s" % (a, b)` on plain values, with plain conversions only."""
    if len(_PRINTF.findall(template)) != len(_PRINTF_ANY.findall(template)) - template.count("%%"):
        interpreter.fail("Only plain %s, %d, %i, %r and %f conversions are supported.", node)
    parts = values if isinstance(values, tuple) else (values,)
    plain = (str, int, float, bool, type(None))
    if isinstance(values, dict):
        parts = tuple(values.values())
    if not all(isinstance(part, plain) for part in parts):
        interpreter.fail("Only plain values can be formatted with %.", node)
    _check_length(interpreter, node, len(template) + sum(len(str(part)) for part in parts))
    return template % values


def _apply(op: ast.operator, left: Any, right: Any) -> Any:
    if isinstance(op, ast.Add):
        return left + right
    if isinstance(op, ast.Sub):
        return left - right
    if isinstance(op, ast.Mult):
        return left * right
    if isinstance(op, ast.Div):
        return left / right
    if isinstance(op, ast.FloorDiv):
        return left // right
    if isinstance(op, ast.Mod):
        return left % right
    if isinstance(op, ast.Pow):
        return left**right
    if isinstance(op, ast.LShift):
        return left << right
    if isinstance(op, ast.RShift):
        return left >> right
    if isinstance(op, ast.BitOr):
        return left | right
    if isinstance(op, ast.BitAnd):
        return left & right
    if isinstance(op, ast.BitXor):
        return left ^ right
    raise TypeError(f"unsupported operator {type(op).__name__}")


def _check_number_size(interpreter: Interpreter, node: ast.AST, op: ast.operator, left: Any, right: Any) -> None:
    bits = interpreter.settings.limits.max_int_bits
    if isinstance(op, ast.Pow) and isinstance(left, int) and isinstance(right, int):
        if right > 0 and abs(left) > 1 and right * math.log2(abs(left)) > bits:
            interpreter.fail_bound("The number is too large.", node)
    if isinstance(op, ast.LShift) and isinstance(right, int) and right > bits:
        interpreter.fail_bound("The number is too large.", node)
    if isinstance(op, ast.Mult) and isinstance(left, int) and isinstance(right, int):
        if left.bit_length() + right.bit_length() > bits:
            interpreter.fail_bound("The number is too large.", node)
    if isinstance(op, ast.MatMult):
        interpreter.fail("`@` is not supported.", node)


def _check_length(interpreter: Interpreter, node: ast.AST, length: int) -> None:
    limit = max(interpreter.settings.limits.max_items, interpreter.settings.limits.max_bytes)
    if length > limit:
        interpreter.fail_bound(f"The value is too large (over {limit} items).", node)


_ORDERINGS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}


def compare(interpreter: Interpreter, node: ast.AST, op: ast.cmpop, left: Any, right: Any) -> bool:
    """Comparisons of plain values; identity and equality of anything."""
    if isinstance(op, ast.Is):
        return left is right
    if isinstance(op, ast.IsNot):
        return left is not right
    if isinstance(op, ast.Eq):
        return bool(left == right)
    if isinstance(op, ast.NotEq):
        return bool(left != right)
    if isinstance(op, (ast.In, ast.NotIn)):
        if not isinstance(right, (*_SEQUENCES, dict, set, frozenset)):
            interpreter.fail(f"`in` is not supported on {type(right).__name__}.", node)
        found = left in right
        return found if isinstance(op, ast.In) else not found
    plain = (int, float, str, bytes, tuple)
    if not (isinstance(left, plain) and isinstance(right, plain)):
        interpreter.fail("Ordering comparisons are supported only between numbers or strings.", node)
    return bool(_ORDERINGS[type(op)](left, right))
