"""Reverse a dry-run's migrations on its clone, last first, and record the backwards SQL.

Running `database_backwards` for real (as `migrate app <previous>` would) is the only way to
get SQL that is right for the schema the forwards run left: Django introspects live
constraints when it reverses `AlterField` or `RemoveField`, and a rollback that fails on
seeded rows (re-adding a NOT NULL column without a default) fails here as it would in
production. The loop is Django 5.2's `Migration.unapply`, with submitted Python skipped.
"""

from __future__ import annotations

import time
from typing import Any

from django.db import DatabaseError, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.migrations.operations import DeleteModel, RemoveField
from django.db.migrations.operations.base import Operation
from django.db.migrations.operations.special import RunPython, RunSQL
from django.db.migrations.state import ProjectState

from changeapi.dryrun.engine import OperationStates, display_sql, is_data_step
from changeapi.intake.plan import Plan, PlannedMigration


def _irreversible_reason(operation: Operation) -> str | None:
    if isinstance(operation, RunSQL) and not operation.reversible:
        return "RunSQL without reverse_sql"
    if isinstance(operation, RunPython) and not operation.reversible:
        return "RunPython without reverse_code"
    if not operation.reversible:
        return f"{type(operation).__name__} is not reversible"
    return None


def _data_loss(operation: Operation) -> str | None:
    """Reversible in schema, but what the forwards step destroyed does not come back."""
    if isinstance(operation, RemoveField):
        return f"reversing {operation.describe()!r} re-creates the column empty (or with its default): its data is gone"
    if isinstance(operation, DeleteModel):
        return f"reversing {operation.describe()!r} re-creates the table empty: its rows are gone"
    return None


def _recording_editor(connection: BaseDatabaseWrapper, sink: list[str]) -> type:
    base = connection.SchemaEditorClass

    class RecordingSchemaEditor(base):  # type: ignore[valid-type, misc]
        def execute(self, sql: Any, params: Any = ()) -> None:
            sink.append(display_sql(connection, str(sql), params))
            super().execute(sql, params)

    return RecordingSchemaEditor


def _operation_states(migration: PlannedMigration, state_before: ProjectState) -> list[OperationStates]:
    """The states around each operation, as `Migration.unapply` computes them (phase 1)."""
    steps: list[OperationStates] = []
    new_state = state_before
    for operation in migration.operations:
        new_state = new_state.clone()
        old_state = new_state.clone()
        operation.state_forwards(migration.app_label, new_state)
        steps.append(OperationStates(operation, old_state, new_state))
    return steps


def _unapply(connection: BaseDatabaseWrapper, migration: PlannedMigration, steps: list[OperationStates], sink: list[str]) -> None:
    to_run: list[tuple[Operation, ProjectState, ProjectState]] = [(s.operation, s.before, s.after) for s in reversed(steps)]
    with _recording_editor(connection, sink)(connection, atomic=migration.atomic) as schema_editor:
        for operation, to_state, from_state in to_run:
            if is_data_step(operation):
                continue
            atomic_operation = operation.atomic or (migration.atomic and operation.atomic is not False)
            if not schema_editor.atomic_migration and atomic_operation:
                with transaction.atomic(using=connection.alias):
                    operation.database_backwards(migration.app_label, schema_editor, from_state, to_state)
            else:
                operation.database_backwards(migration.app_label, schema_editor, from_state, to_state)


def reverse_plan(
    connection: BaseDatabaseWrapper,
    plan: Plan,
    state: ProjectState,
    *,
    forwards_states: list[list[OperationStates]] | None = None,
) -> list[dict[str, Any]]:
    """One entry per migration, in plan order: reversible or not, why, and the backwards SQL.

    `state` is the project state before the plan. Reversal stops at the first migration that
    cannot be reversed; the migrations before it are reported as not checked.
    `forwards_states` (from the forwards run of the same plan, `PlanRun.states`) are the
    states around every operation, already rendered: reusing them spares a second
    state_forwards and re-rendering of every related model per operation.
    """
    states: list[list[OperationStates]] = []
    if forwards_states is not None and len(forwards_states) == len(plan.migrations):
        states = list(forwards_states)
    else:
        for migration in plan.migrations:
            steps = _operation_states(migration, state)
            states.append(steps)
            state = steps[-1].after if steps else state
    entries: dict[int, dict[str, Any]] = {}
    blocked_by: str | None = None
    for position in range(len(plan.migrations) - 1, -1, -1):
        migration = plan.migrations[position]
        label = f"{migration.app_label}.{migration.name}"
        entry: dict[str, Any] = {
            "migration": label,
            "reversible": False,
            "checked": False,
            "reason": "",
            "backwards_sql": [],
            "data_loss": [d for d in (_data_loss(op) for op in migration.operations) if d],
            "backwards_ms": None,
            "data_steps_not_executed": sum(1 for op in migration.operations if is_data_step(op)),
        }
        entries[position] = entry
        if blocked_by is not None:
            entry["reason"] = f"not checked: {blocked_by} cannot be reversed first"
            continue
        reasons = [r for r in (_irreversible_reason(op) for op in migration.operations) if r]
        if reasons:
            entry["checked"] = True
            entry["reason"] = "; ".join(reasons)
            blocked_by = label
            continue
        sink: list[str] = []
        started = time.perf_counter()
        try:
            _unapply(connection, migration, states[position], sink)
        except (DatabaseError, Exception) as exc:  # noqa: BLE001 - a failing rollback is a finding, not a crash
            entry["checked"] = True
            entry["reason"] = (
                f"the backwards SQL fails on the shadow: {str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}"
            )
            entry["backwards_sql"] = sink
            blocked_by = label
            continue
        entry.update(
            checked=True, reversible=True, backwards_sql=sink, backwards_ms=round((time.perf_counter() - started) * 1000, 3)
        )
    return [entries[i] for i in range(len(plan.migrations))]
