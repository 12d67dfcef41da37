"""Rollback SQL of a bundle, traced on a shadow clone that has the bundle applied.

SQL collected without a live schema is wrong (AlterField and RemoveField introspect the
constraints they drop), so the clone first gets the whole bundle applied as Django would,
then each migration is unapplied, last first, by Django's `Migration.unapply` loop (`dryrun/apply.py`),
with every statement executed and recorded. Irreversible steps stop the rollback there, as
`migrate` backwards would. A MySQL/MariaDB bundle is traced the same way on a copy of its
template there, so its rollback SQL is what Django's MySQL schema editor runs, and a SQLite
bundle on a copy of its template file, with Django's SQLite schema editor and its table remakes.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.migrations.operations import DeleteModel, RemoveField, RunPython, RunSQL
from django.db.migrations.operations.base import Operation
from django.db.migrations.state import ProjectState
from django.db.models.fields import NOT_PROVIDED

from approvals.bundles.contents import RollbackStep
from changeapi.dryrun.apply import is_data_step, operation_states, unapply_migration
from changeapi.dryrun.engine import apply_plan_untraced
from changeapi.dryrun.mysql_session import mysql_session
from changeapi.dryrun.session import shadow_session
from changeapi.dryrun.sqlite_session import sqlite_session
from changeapi.intake.plan import Plan, PlannedMigration
from changeapi.intake.python_source import plan_state
from changeapi.shadow.engine_servers import MySqlShadowServer, SqliteShadowServer
from changeapi.shadow.servers import ShadowServer


def irreversible_reason(operation: Operation, app_label: str, state_before: ProjectState) -> str | None:
    """Why undoing `operation` cannot restore the schema, or None when it can."""
    if isinstance(operation, RunSQL) and not operation.reversible:
        return "RunSQL without reverse_sql"
    if isinstance(operation, RunPython) and not operation.reversible:
        return "RunPython without reverse_code"
    if isinstance(operation, RemoveField):
        model = state_before.models.get((app_label, operation.model_name_lower))
        field = model.fields.get(operation.name) if model is not None else None
        if (
            field is not None
            and not field.many_to_many
            and not field.null
            and not field.has_default()
            and field.db_default is NOT_PROVIDED
        ):
            return f"{operation.describe()}: re-adding a NOT NULL column without a default fails on a table with rows"
    if not operation.reversible:
        return f"{operation.describe()} is not reversible"
    return None


def _not_restored(operation: Operation) -> str | None:
    if isinstance(operation, RemoveField | DeleteModel):
        return f"{operation.describe()}: the rollback restores the schema, not the data"
    return None


class _Recorder:
    """Records each statement a schema editor executes, with its transaction as the tracer does."""

    def __init__(self, connection: BaseDatabaseWrapper) -> None:
        self.connection = connection
        self.statements: list[dict[str, Any]] = []
        self.operation_index: int | None = None
        self._open: int | None = None
        self._next = 1

    def at_operation(self, index: int | None) -> None:
        self.operation_index = index

    def _transaction(self) -> int | None:
        if not self.connection.in_atomic_block:
            return None
        if self._open is None:
            self._open = self._next
            self._next += 1

            def closed() -> None:
                self._open = None

            self.connection.on_commit(closed)
        return self._open

    def record(self, sql: Any, params: Any, editor: Any) -> None:
        text = str(sql)
        if params and self.connection.vendor == "postgresql":
            text = str(self.connection.ops.compose_sql(text, params))  # type: ignore[attr-defined]
        elif params:
            # As Django's MySQL and SQLite schema editors collect it: each parameter quoted into the statement.
            text = text % tuple(map(editor.quote_value, params))
        self.statements.append(
            {
                "sql": text,
                "transactional": self.connection.in_atomic_block,
                "transaction": self._transaction(),
                "operation_index": self.operation_index,
            }
        )

    def editor_class(self) -> type:
        base = self.connection.SchemaEditorClass
        recorder = self

        class RecordingSchemaEditor(base):  # type: ignore[valid-type, misc]
            def execute(self, sql: Any, params: Any = ()) -> None:
                recorder.record(sql, params, self)
                super().execute(sql, params)

        return RecordingSchemaEditor


def _unapply(
    connection: BaseDatabaseWrapper, migration: PlannedMigration, state_before: ProjectState
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Django 5.2's `Migration.unapply`, recording the SQL; data steps are skipped and noted."""
    recorder = _Recorder(connection)
    notes: list[dict[str, Any]] = []
    for index, operation in enumerate(migration.operations):
        if is_data_step(operation):
            notes.append(
                {
                    "kind": "data_step",
                    "operation_index": index,
                    "operation": operation.describe(),
                    "reason": "its reverse function is not part of the SQL; run it with Django's migrate or by hand",
                }
            )
            continue
        lost = _not_restored(operation)
        if lost:
            notes.append(
                {"kind": "data_not_restored", "operation_index": index, "operation": operation.describe(), "reason": lost}
            )
    unapply_migration(
        connection,
        migration,
        operation_states(migration, state_before),
        editor_class=recorder.editor_class(),
        at_operation=recorder.at_operation,
    )
    return recorder.statements, notes


AnyServer = ShadowServer | MySqlShadowServer | SqliteShadowServer


def _clone_session(server: AnyServer, *, template: str, name: str) -> AbstractContextManager[Any]:
    """A connected clone of `template` on a server of any engine, dropped when it closes."""
    if isinstance(server, MySqlShadowServer):
        return mysql_session(server, template=template, name=name)
    if isinstance(server, SqliteShadowServer):
        return sqlite_session(server, template=template, name=name)
    return shadow_session(server, template=template, name=name)


def rollback_trace(*, server: AnyServer, template: str, clone_name: str, baseline: Plan, bundle: Plan) -> list[RollbackStep]:
    """The rollback of every migration of `bundle`, last migration first.

    The clone is dropped whatever happens. A reverse that fails on the shadow stops the
    rollback there too, with the database's message as the reason.
    """
    with _clone_session(server, template=template, name=clone_name) as session:
        connection = session.connection
        state = plan_state(baseline)
        states_before = []
        for migration in bundle.migrations:
            states_before.append(state)
            state = apply_plan_untraced(connection, Plan([migration]), state)
        steps: list[RollbackStep] = []
        stopped = False
        for migration, before in reversed(list(zip(bundle.migrations, states_before, strict=True))):
            step = RollbackStep(label=f"{migration.app_label}.{migration.name}", reached=not stopped)
            steps.append(step)
            if stopped:
                continue
            blocking = _irreversible_notes(migration, before)
            if blocking:
                step.notes = blocking
                stopped = True
                continue
            try:
                step.statements, step.notes = _unapply(connection, migration, before)
            except Exception as exc:  # noqa: BLE001 - a reverse that fails is a finding, not a crash
                message = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                step.statements = []
                step.notes = [
                    {
                        "kind": "irreversible",
                        "operation_index": None,
                        "operation": "",
                        "reason": f"the reverse fails on the shadow: {message}",
                    }
                ]
                stopped = True
    return steps


def _irreversible_notes(migration: PlannedMigration, state_before: ProjectState) -> list[dict[str, Any]]:
    notes = []
    state = state_before
    for index, operation in enumerate(migration.operations):
        reason = irreversible_reason(operation, migration.app_label, state)
        if reason:
            notes.append({"kind": "irreversible", "operation_index": index, "operation": operation.describe(), "reason": reason})
        state = state.clone()
        operation.state_forwards(migration.app_label, state)
    return notes
