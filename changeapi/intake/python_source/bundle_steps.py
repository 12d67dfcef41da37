"""Steps a release bundle's migration files name through the helper modules the bundle ships.

A bundle with a Backfill writes `schemagate_backfill.Backfill(...)` into its migration files
(`approvals/bundles/shipped/schemagate_backfill.py`). That module is never imported here: the
call is read from its arguments, which the interpreter built from the allow-list, into the
service's own `Backfill`, every argument checked as the operations form checks it.
"""

from __future__ import annotations

import ast
import datetime
import decimal
import uuid
from typing import TYPE_CHECKING, Any

from django.db.models import Q, Value
from django.db.models.expressions import Combinable

from changeapi.intake.backfill import DEFAULT_BATCH_SIZE, MAX_BATCH_SIZE, MAX_PAUSE_MS, Backfill
from changeapi.intake.expressions_json import IDENTIFIER

if TYPE_CHECKING:
    from .interpreter import Interpreter

BACKFILL_PATH = "schemagate_backfill.Backfill"
_PARAMETERS = ("model", "assignments", "filter", "batch_size", "order_by", "pause_ms", "parity")
# What an assignment may be besides an expression: a literal Django wraps in Value.
_LITERALS = (type(None), bool, int, float, str, decimal.Decimal, datetime.date, datetime.time, datetime.timedelta, uuid.UUID)


def _bound(interpreter: Interpreter, args: list[Any], kwargs: dict[str, Any], node: ast.AST) -> dict[str, Any]:
    if len(args) > len(_PARAMETERS):
        interpreter.fail(f"{BACKFILL_PATH}() takes at most {len(_PARAMETERS)} arguments.", node)
    bound = dict(zip(_PARAMETERS, args, strict=False))
    for name, value in kwargs.items():
        if name not in _PARAMETERS:
            interpreter.fail(f"{BACKFILL_PATH}() has no argument {name!r}; it takes {', '.join(_PARAMETERS)}.", node)
        if name in bound:
            interpreter.fail(f"{BACKFILL_PATH}() got {name!r} twice.", node)
        bound[name] = value
    for name in ("model", "assignments"):
        if name not in bound:
            interpreter.fail(f"{BACKFILL_PATH}() needs {name}.", node)
    return bound


def _number(interpreter: Interpreter, name: str, value: Any, least: int, most: int, node: ast.AST) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not least <= value <= most:
        interpreter.fail(f"Backfill {name} must be a whole number from {least} to {most:,}, got {value!r:.60}.", node)
    return value


def _condition(interpreter: Interpreter, name: str, value: Any, node: ast.AST) -> Q | None:
    if value is not None and not isinstance(value, Q):
        interpreter.fail(f"Backfill {name} must be a models.Q of lookups or None, got {type(value).__name__}.", node)
    return value


def _assignment(interpreter: Interpreter, name: Any, value: Any, node: ast.AST) -> Any:
    if not isinstance(name, str) or not IDENTIFIER.match(name):
        interpreter.fail(f"Backfill assignments are keyed by field name, got {name!r:.60}.", node)
    if isinstance(value, _LITERALS):
        return Value(value)
    if not isinstance(value, Combinable):
        interpreter.fail(f"Backfill assignment {name} is not a Django expression or a literal value.", node)
    if getattr(value, "contains_aggregate", False) or getattr(value, "contains_over_clause", False):
        interpreter.fail(f"Backfill assignment {name} uses an aggregate or window function, which an UPDATE cannot.", node)
    return value


def read_backfill_call(interpreter: Interpreter, args: list[Any], kwargs: dict[str, Any], node: ast.AST) -> Backfill:
    """`schemagate_backfill.Backfill(model=..., assignments={...}, ...)` as the service's step.

    What the models say (fields, the ordering key, every lookup) is checked later against the
    state, by `check_backfill`, as for the operations form.
    """
    bound = _bound(interpreter, args, kwargs, node)
    model = bound["model"]
    parts = model.split(".") if isinstance(model, str) else []
    if len(parts) != 2 or not all(IDENTIFIER.match(part) for part in parts):
        interpreter.fail(f"Backfill model must be 'app_label.ModelName', got {model!r:.60}.", node)
    assignments = bound["assignments"]
    if not isinstance(assignments, dict) or not assignments:
        interpreter.fail("Backfill assignments must be a dict of field name -> expression, setting at least one field.", node)
    order_by = bound.get("order_by")
    if order_by is not None and not (isinstance(order_by, str) and IDENTIFIER.match(order_by)):
        interpreter.fail(f"Backfill order_by must be a field name or None, got {order_by!r:.60}.", node)
    return Backfill(
        model=model,
        assignments={name: _assignment(interpreter, name, value, node) for name, value in assignments.items()},
        filter=_condition(interpreter, "filter", bound.get("filter"), node),
        batch_size=_number(interpreter, "batch_size", bound.get("batch_size", DEFAULT_BATCH_SIZE), 1, MAX_BATCH_SIZE, node),
        order_by=order_by,
        pause_ms=_number(interpreter, "pause_ms", bound.get("pause_ms", 0), 0, MAX_PAUSE_MS, node),
        parity=_condition(interpreter, "parity", bound.get("parity"), node),
    )
