"""The one apply path: Django's `Migration.apply` and `Migration.unapply` loops, step for step.

The traced dry-run, the untraced template build, the reversal on the clone and a bundle's
rollback trace all run a migration's operations through these functions, as every migration
Django runs goes through its executor: one place decides the per-operation atomic block and
that a data step (RunPython) is never executed.
"""

from __future__ import annotations

from collections.abc import Callable

from django.db import transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.operations.base import Operation
from django.db.migrations.operations.special import RunPython
from django.db.migrations.state import ProjectState

from changeapi.intake.plan import PlannedMigration
from changeapi.intake.state_closure import Step, step_forwards
from changeapi.intake.unrendered_state import UnrenderedState

OperationHook = Callable[[int | None], None]
"""Told the index of the operation about to run, then None before the deferred SQL runs."""


def is_data_step(operation: Operation) -> bool:
    """RunPython is reviewed, never run: the service does not execute submitted code."""
    return isinstance(operation, RunPython)


def is_noop_data_step(operation: Operation) -> bool:
    """`RunPython(RunPython.noop)`: a data step in name only, kept so the migration reverses."""
    return isinstance(operation, RunPython) and operation.code is RunPython.noop


OperationStates = Step
"""The project states before and after one operation, cut to what its schema change reads."""


def operation_states(migration: PlannedMigration, state_before: ProjectState) -> list[OperationStates]:
    """The states around each operation, as `Migration.unapply` computes them (its phase 1);
    `state_before` is left as it was."""
    state = UnrenderedState.copy_of(state_before)
    steps: list[OperationStates] = []
    for operation in migration.operations:
        steps.append(step_forwards(operation, migration.app_label, state, steps[-1] if steps else None))
    return steps


def _render_in_executor_order(step: OperationStates) -> None:
    """Render the state before the operation, then the state after it, as Django's executor has
    them: its state before was rendered earlier, and `state_forwards` re-renders what changed.

    Fields are ordered by when they were made, and SQLite's table remake builds one model of
    the fields before and the fields after (`_remake_table`): a state after rendered first, as
    an operation reading it first would have it, puts an altered column first in the new table.
    """
    step.before.apps  # noqa: B018 - rendering, in this order, is the point
    step.after.apps  # noqa: B018


def _database_step(
    schema_editor: BaseDatabaseSchemaEditor,
    migration: PlannedMigration,
    step: OperationStates,
    *,
    backwards: bool,
) -> None:
    """One operation's schema change, in an atomic block of its own when the migration is not
    atomic but the operation is."""
    operation = step.operation
    if schema_editor.connection.vendor == "sqlite":
        _render_in_executor_order(step)
    if backwards:

        def run() -> None:
            operation.database_backwards(migration.app_label, schema_editor, step.after, step.before)

    else:

        def run() -> None:
            operation.database_forwards(migration.app_label, schema_editor, step.before, step.after)

    atomic_operation = operation.atomic or (migration.atomic and operation.atomic is not False)
    if not schema_editor.atomic_migration and atomic_operation:
        with transaction.atomic(using=schema_editor.connection.alias):
            run()
    else:
        run()


def apply_migration(
    connection: BaseDatabaseWrapper,
    migration: PlannedMigration,
    state: ProjectState,
    *,
    editor_class: type | None = None,
    at_operation: OperationHook | None = None,
    after_operation: Callable[[], None] | None = None,
    steps: list[OperationStates] | None = None,
) -> ProjectState:
    """Django 5.2's `MigrationExecutor.apply_migration` + `Migration.apply`: state_forwards, then
    database_forwards, operation by operation; `state` is changed in place and returned.

    `state` itself is never rendered: each schema change gets states holding only the models
    it reads (`state_closure.step_forwards`), rendered when it reads them. With `steps`,
    those states are kept for the reversal, which then needs no state_forwards of its own.
    """
    editor_class = editor_class or connection.SchemaEditorClass
    previous: OperationStates | None = None
    with editor_class(connection, atomic=migration.atomic) as schema_editor:
        for index, operation in enumerate(migration.operations):
            if at_operation is not None:
                at_operation(index)
            step = previous = step_forwards(operation, migration.app_label, state, previous)
            if not is_data_step(operation):
                _database_step(schema_editor, migration, step, backwards=False)
            if steps is not None:
                steps.append(step)
            if after_operation is not None:
                after_operation()
        if at_operation is not None:
            at_operation(None)
    return state


def unapply_migration(
    connection: BaseDatabaseWrapper,
    migration: PlannedMigration,
    steps: list[OperationStates],
    *,
    editor_class: type | None = None,
    at_operation: OperationHook | None = None,
) -> None:
    """Django 5.2's `Migration.unapply` (phase 2): database_backwards, last operation first, from
    the states around each operation; data steps are skipped."""
    editor_class = editor_class or connection.SchemaEditorClass
    with editor_class(connection, atomic=migration.atomic) as schema_editor:
        for index in range(len(steps) - 1, -1, -1):
            if at_operation is not None:
                at_operation(index)
            if not is_data_step(steps[index].operation):
                _database_step(schema_editor, migration, steps[index], backwards=True)
        if at_operation is not None:
            at_operation(None)
