"""Reverse a dry-run's migrations on its clone, last first, and record the backwards SQL.

Running `database_backwards` for real (as `migrate app <previous>` would) is the only way to
get SQL that is right for the schema the forwards run left: Django introspects live
constraints when it reverses `AlterField` or `RemoveField`, and a rollback that fails on
seeded rows (re-adding a NOT NULL column without a default) fails here as it would in
production. The loop is Django 5.2's `Migration.unapply` (`dryrun/apply.py`), with submitted Python skipped.

It runs on every engine through the same connection as the forwards run, and so under its
limits. Where the engine's DDL is not transactional (MySQL/MariaDB), a rollback that fails
half-way leaves the statements before the failure applied: the entry says so.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from django.db import DatabaseError
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.migrations.operations import DeleteModel, RemoveField
from django.db.migrations.operations.base import Operation
from django.db.migrations.operations.special import RunPython, RunSQL
from django.db.migrations.state import ProjectState

from changeapi.dryrun.apply import OperationStates, is_data_step, operation_states, unapply_migration
from changeapi.dryrun.contract import Reversibility
from changeapi.dryrun.engine import collected_sql
from changeapi.intake.plan import Plan


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


StatementGuard = Callable[[Callable[[], None]], None]
"""Runs one backwards statement inside the engine's own fence (SQLite's watchdog clock and
limit check between statements); by default the statement just runs."""

_FAILS = "the backwards SQL fails on the shadow"


def _unguarded(execute: Callable[[], None]) -> None:
    execute()


@dataclass
class _Recording:
    """The backwards SQL of one migration as it ran, and the position of the statement that failed."""

    sql: list[str] = field(default_factory=list)
    failed_at: int | None = None


def _recording_editor(connection: BaseDatabaseWrapper, recording: _Recording, guard: StatementGuard) -> type:
    base = connection.SchemaEditorClass

    class RecordingSchemaEditor(base):  # type: ignore[valid-type, misc]
        def execute(self, sql: Any, params: Any = ()) -> None:
            recording.sql.append(collected_sql(self, str(sql), params))
            try:
                guard(lambda: super(RecordingSchemaEditor, self).execute(sql, params))
            except Exception:
                recording.failed_at = len(recording.sql) - 1
                raise

    return RecordingSchemaEditor


def _failure_reason(connection: BaseDatabaseWrapper, exc: BaseException, recording: _Recording) -> str:
    """Why the rollback fails, at which of its statements, and, where DDL commits per statement,
    that the statements before it stay applied."""
    text = str(exc).strip()
    first_line = text.splitlines()[0] if text else type(exc).__name__
    if recording.failed_at is None:
        return f"{_FAILS}: {first_line}"
    reason = f"{_FAILS} at its statement {recording.failed_at + 1}: {first_line}"
    if recording.failed_at and not connection.features.can_rollback_ddl:
        reason += (
            f" (the {recording.failed_at} statement(s) before it committed on their own and stay applied: "
            f"{connection.display_name} DDL is not transactional, so the rollback is left half-done)"
        )
    return reason


def plan_reversible(entries: Sequence[Reversibility]) -> bool:
    """The summary's answer: the reversal ran, and every migration of the plan reversed."""
    return bool(entries) and all(entry.reversible for entry in entries)


def limit_stopped(entries: list[Reversibility], breach: str | None) -> list[Reversibility]:
    """The entries, with a failed rollback that a limit of the job stopped saying which limit
    (the watchdog interrupts the statement, whose own error says only that it was interrupted)."""
    if breach is None:
        return entries
    return [
        replace(entry, reason=f"{breach}, and was stopped: {entry.reason}")
        if entry.checked and entry.reason.startswith(_FAILS) and breach not in entry.reason
        else entry
        for entry in entries
    ]


def reverse_plan(
    connection: BaseDatabaseWrapper,
    plan: Plan,
    state: ProjectState,
    *,
    forwards_states: list[list[OperationStates]] | None = None,
    guard: StatementGuard = _unguarded,
) -> list[Reversibility]:
    """One entry per migration, in plan order: reversible or not, why, and the backwards SQL.

    `state` is the project state before the plan. Reversal stops at the first migration that
    cannot be reversed; the migrations before it are reported as not checked.
    `forwards_states` (from the forwards run of the same plan, `PlanRun.states`) are the
    states around every operation, already rendered: reusing them spares a second
    state_forwards and re-rendering of every related model per operation. `connection` is
    the forwards run's own, so its session limits hold; `guard` runs each statement inside
    whatever fence the engine keeps in Python.
    """
    states: list[list[OperationStates]] = []
    if forwards_states is not None and len(forwards_states) == len(plan.migrations):
        states = list(forwards_states)
    else:
        for migration in plan.migrations:
            steps = operation_states(migration, state)
            states.append(steps)
            state = steps[-1].after if steps else state
    entries: dict[int, Reversibility] = {}
    blocked_by: str | None = None
    for position in range(len(plan.migrations) - 1, -1, -1):
        migration = plan.migrations[position]
        label = f"{migration.app_label}.{migration.name}"
        unchecked = Reversibility(
            migration=label,
            reversible=False,
            checked=False,
            reason="",
            backwards_sql=(),
            data_loss=tuple(d for d in (_data_loss(op) for op in migration.operations) if d),
            backwards_ms=None,
            data_steps_not_executed=sum(1 for op in migration.operations if is_data_step(op)),
        )
        if blocked_by is not None:
            entries[position] = replace(unchecked, reason=f"not checked: {blocked_by} cannot be reversed first")
            continue
        reasons = [r for r in (_irreversible_reason(op) for op in migration.operations) if r]
        if reasons:
            entries[position] = replace(unchecked, checked=True, reason="; ".join(reasons))
            blocked_by = label
            continue
        recording = _Recording()
        started = time.perf_counter()
        try:
            unapply_migration(
                connection, migration, states[position], editor_class=_recording_editor(connection, recording, guard)
            )
        except (DatabaseError, Exception) as exc:  # noqa: BLE001 - a failing rollback is a finding, not a crash
            entries[position] = replace(
                unchecked,
                checked=True,
                reason=_failure_reason(connection, exc, recording),
                backwards_sql=tuple(recording.sql),
            )
            blocked_by = label
            continue
        entries[position] = replace(
            unchecked,
            checked=True,
            reversible=True,
            backwards_sql=tuple(recording.sql),
            backwards_ms=round((time.perf_counter() - started) * 1000, 3),
        )
    return [entries[i] for i in range(len(plan.migrations))]
