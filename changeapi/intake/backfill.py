"""The declarative backfill step: which rows of one model get which values, in keyset batches.

A `Backfill` is a Django operation with no state change and no schema change of its own: applying
its migration (as `migrate` does in production) does nothing for it, because a backfill runs off
the deploy path, batch by batch, after its migration committed. The dry-run times a sample of its
batches on the seeded clone at that point (`changeapi.dryrun.backfill`). Everything it holds is
data: a model label, field names, Django expressions and `Q`s built from explicit tables, numbers.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import FieldDoesNotExist, FieldError, ValidationError
from django.db import models
from django.db.migrations.operations.base import Operation
from django.db.migrations.state import ProjectState
from django.db.models.sql import UpdateQuery

from changeapi.intake.expressions_json import IDENTIFIER, build_condition, build_expression
from changeapi.intake.json_reader import Reader, member, optional, refusal, typed
from changeapi.intake.state_closure import closure, partial_state

DEFAULT_BATCH_SIZE = 1000
MAX_BATCH_SIZE = 100_000  # one UPDATE of more rows is no longer a batch
MAX_PAUSE_MS = 600_000
MEMBERS = ("op", "model", "assignments", "filter", "batch_size", "order_by", "pause_ms", "parity")


class Backfill(Operation):
    """Set `assignments` on the rows of `model` matching `filter`, `batch_size` rows at a time in
    the order of `order_by` (a unique, non-null column; the primary key when None), pausing
    `pause_ms` between batches, until `parity` (rows still to do) counts zero.

    `model` is `app_label.ModelName`. No code: assignments are Django expressions and the
    filters `Q`s, so a reviewer reads exactly the UPDATE that will run.
    """

    reduces_to_sql = False
    reversible = True
    changes_no_schema = True  # read by state_closure: applying it renders no model

    def __init__(
        self,
        model: str,
        assignments: dict[str, Any],
        filter: models.Q | None = None,  # noqa: A002 - the name the operations form uses
        batch_size: int = DEFAULT_BATCH_SIZE,
        order_by: str | None = None,
        pause_ms: int = 0,
        parity: models.Q | None = None,
    ) -> None:
        self.model = model
        self.assignments = dict(assignments)
        self.filter = filter
        self.batch_size = batch_size
        self.order_by = order_by
        self.pause_ms = pause_ms
        self.parity = parity
        super().__init__()

    @property
    def model_key(self) -> tuple[str, str]:
        app_label, _, name = self.model.partition(".")
        return (app_label, name.lower())

    def state_forwards(self, app_label: str, state: ProjectState) -> None:
        return None  # rows change, the models do not

    def database_forwards(self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any) -> None:
        # Never part of a migration's run: the batches run after it commits, off the deploy path.
        return None

    def database_backwards(self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any) -> None:
        return None  # reversing the schema change (dropping the column) is what undoes a backfill

    def references_model(self, name: str, app_label: str) -> bool:
        return (app_label, name.lower()) == self.model_key

    def describe(self) -> str:
        key = self.order_by or "primary key"
        return f"Backfill {self.model}: set {', '.join(self.assignments)} in batches of {self.batch_size} by {key}"

    @property
    def migration_name_fragment(self) -> str:
        return f"backfill_{self.model_key[1]}"


def _model_label(value: Any, pointer: str, app_label: str) -> str:
    """`app.Model`, or `Model` in the migration's own app."""
    parts = typed(value, str, pointer).split(".")
    if len(parts) == 1:
        parts = [app_label, parts[0]]
    if len(parts) != 2 or not all(IDENTIFIER.match(part) for part in parts):
        raise refusal(f"model must be 'app_label.ModelName', got {value!r:.60}", pointer)
    return ".".join(parts)


def _bounded(least: int, most: int) -> Reader:
    def read(value: Any, pointer: str) -> int:
        number = typed(value, int, pointer)
        if not least <= number <= most:
            raise refusal(f"must be from {least} to {most:,}, got {number}", pointer)
        return number

    return read


def read_backfill(doc: dict[str, Any], pointer: str, app_label: str, *, field_reader: Reader) -> Backfill:
    """A `Backfill` from its operations-form document (`{"op": "Backfill", "model": ..., ...}`).

    What the JSON alone says is checked here; what the models say (fields, the ordering key,
    every lookup) is checked against the state by `check_backfill`.
    """
    unknown = sorted(set(doc) - set(MEMBERS))
    if unknown:
        raise refusal(f"unknown Backfill member {unknown[0]!r:.60}; known: {', '.join(MEMBERS[1:])}", f"{pointer}/{unknown[0]}")
    here = f"{pointer}/assignments"
    spec = typed(member(doc, "assignments", pointer), dict, here)
    if not spec:
        raise refusal("assignments must set at least one field", here)
    assignments = {}
    for name, value in spec.items():
        if not IDENTIFIER.match(name):
            raise refusal(f"field name must be a Python identifier, got {name!r:.60}", f"{here}/{name[:60]}")
        assignments[name] = build_expression(value, f"{here}/{name}", field_reader=field_reader)
    order_by = optional(doc, "order_by", _field_name, pointer)
    return Backfill(
        model=_model_label(member(doc, "model", pointer), f"{pointer}/model", app_label),
        assignments=assignments,
        filter=optional(doc, "filter", build_condition, pointer),
        batch_size=optional(doc, "batch_size", _bounded(1, MAX_BATCH_SIZE), pointer, default=DEFAULT_BATCH_SIZE),
        order_by=order_by,
        pause_ms=optional(doc, "pause_ms", _bounded(0, MAX_PAUSE_MS), pointer, default=0),
        parity=optional(doc, "parity", build_condition, pointer),
    )


def _field_name(value: Any, pointer: str) -> str:
    if not isinstance(value, str) or not IDENTIFIER.match(value):
        raise refusal(f"expected a field name, got {value!r:.60}", pointer)
    return value


def backfill_model(operation: Backfill, state: ProjectState) -> type[models.Model]:
    """The model class the backfill works on, rendered from `state` with only its closure.

    Raises LookupError when the state has no such model.
    """
    key = operation.model_key
    if key not in state.models:
        raise LookupError(operation.model)
    return partial_state(state, closure(state, [key])).apps.get_model(*key)


def ordering_field(operation: Backfill, model: type[models.Model]) -> models.Field:
    """The column batches are cut on: `order_by`, or the primary key."""
    if operation.order_by is None:
        return model._meta.pk  # type: ignore[return-value]
    return model._meta.get_field(operation.order_by)  # type: ignore[return-value]


# What Django raises building a query from lookups and expressions it cannot resolve, or from a
# lookup value its field cannot take (a date field's ValidationError).
_UNRESOLVABLE = (FieldError, FieldDoesNotExist, ValidationError, ValueError, TypeError, LookupError)


def _reason(exc: Exception) -> str:
    return "; ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)


def check_backfill(operation: Backfill, state: ProjectState, pointer: str) -> None:
    """Refuse, located, what the models say cannot run: an unknown model or field, a key that
    is not unique and non-null (batches would skip or repeat rows), a lookup or expression
    Django cannot resolve on the model."""
    try:
        model = backfill_model(operation, state)
    except LookupError:
        raise refusal(f"no model {operation.model} in the baseline and the change before this step", f"{pointer}/model") from None
    try:
        key = ordering_field(operation, model)
    except FieldDoesNotExist:
        raise refusal(f"{operation.model} has no field {operation.order_by!r}", f"{pointer}/order_by") from None
    if not (key.primary_key or key.unique) or key.null or not key.concrete:
        raise refusal(
            f"order_by must be a unique, non-null column (batches are cut on it); {key.name} is not", f"{pointer}/order_by"
        )
    query = UpdateQuery(model)
    for name, expression in operation.assignments.items():
        here = f"{pointer}/assignments/{name}"
        try:
            field = model._meta.get_field(name)
        except FieldDoesNotExist:
            raise refusal(f"{operation.model} has no field {name!r}", here) from None
        if not isinstance(field, models.Field) or not field.concrete or field.many_to_many or field.primary_key:
            raise refusal(
                f"{name} is not a column a backfill can set (a primary key, a relation's other side or many-to-many)", here
            )
        if field.name == key.name:
            raise refusal(f"{name} is the ordering key: batches cut on a column they change would skip or repeat rows", here)
        try:
            resolved = expression.resolve_expression(query, allow_joins=False, for_save=True)
            getattr(resolved, "_output_field_or_none", None)
        except _UNRESOLVABLE as exc:
            raise refusal(f"cannot set {name}: {_reason(exc)}", here) from None
    for member_name, condition in (("filter", operation.filter), ("parity", operation.parity)):
        if condition is None:
            continue
        try:
            model._base_manager.filter(condition)
        except _UNRESOLVABLE as exc:
            raise refusal(f"{member_name}: {_reason(exc)}", f"{pointer}/{member_name}") from None
