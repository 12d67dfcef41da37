"""Django's own backwards SQL for a plan, to hold the dry-run's reversal against.

On a scratch clone of the same template, the plan is applied and then reversed by Django's
`Migration.apply` and `Migration.unapply` from rendered states, as `MigrationExecutor` runs them
for `migrate` and `migrate app <previous>`, last migration first, each statement recorded as
`sqlmigrate --backwards` shows it. Nothing of
the engine's apply path is used, so a difference is the engine's.
"""

from __future__ import annotations

from typing import Any

from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.migrations import Migration
from django.db.migrations.state import ProjectState

from changeapi.intake.plan import Plan


def django_state(plan: Plan) -> ProjectState:
    """The project state after `plan`, by Django's own `state_forwards`."""
    state = ProjectState()
    for planned in plan.migrations:
        for operation in planned.operations:
            operation.state_forwards(planned.app_label, state)
    return state


def _recording_editor(connection: BaseDatabaseWrapper, sink: list[str]) -> type:
    class RecordingSchemaEditor(connection.SchemaEditorClass):  # type: ignore[name-defined, misc]
        def execute(self, sql: Any, params: Any = ()) -> None:
            sink.append(str(sql) % tuple(map(self.quote_value, params)) if params else str(sql))
            super().execute(sql, params)

    return RecordingSchemaEditor


def django_backwards_sql(connection: BaseDatabaseWrapper, baseline: Plan, change: Plan) -> list[list[str]]:
    """Per migration of `change`, in plan order, the SQL Django runs to reverse it on `connection`
    (a clone of `baseline`'s template), after applying `change` there."""
    migrations = []
    for planned in change.migrations:
        migration = Migration(planned.name, planned.app_label)
        migration.operations = list(planned.operations)
        migration.atomic = planned.atomic
        migrations.append(migration)
    state = django_state(baseline)
    before: list[ProjectState] = []
    for migration in migrations:
        state.apps  # noqa: B018 - rendered first, as MigrationExecutor._migrate_all_forwards has it
        before.append(state.clone())
        with connection.schema_editor(atomic=migration.atomic) as editor:
            state = migration.apply(state, editor)
    backwards: list[list[str]] = [[] for _ in migrations]
    for position in range(len(migrations) - 1, -1, -1):
        before[position].apps  # noqa: B018 - as _migrate_all_backwards renders the state before each migration
        editor_class = _recording_editor(connection, backwards[position])
        with editor_class(connection, atomic=migrations[position].atomic) as editor:
            migrations[position].unapply(before[position], editor)
    return backwards
