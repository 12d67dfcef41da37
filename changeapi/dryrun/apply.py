"""The one apply path: Django's `Migration.apply` and `Migration.unapply` loops, step for step.

The traced dry-run, the untraced template build, the reversal on the clone and a bundle's
rollback trace all run a migration's operations through these functions, as every migration
Django runs goes through its executor: one place decides the per-operation atomic block and
that a data step (RunPython) is never executed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.db import transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.operations.base import Operation
from django.db.migrations.operations.special import RunPython
from django.db.migrations.state import ProjectState

from changeapi.intake.plan import PlannedMigration

OperationHook = Callable[[int | None], None]
"""Told the index of the operation about to run, then None before the deferred SQL runs."""


def is_data_step(operation: Operation) -> bool:
    """RunPython is reviewed, never run: the service does not execute submitted code."""
    return isinstance(operation, RunPython)


@dataclass
class OperationStates:
    """The project state before and after one operation, as the forwards run rendered them."""

    operation: Operation
    before: ProjectState
    after: ProjectState


def operation_states(migration: PlannedMigration, state_before: ProjectState) -> list[OperationStates]:
    """The states around each operation, as `Migration.unapply` computes them (its phase 1)."""
    steps: list[OperationStates] = []
    new_state = state_before
    for operation in migration.operations:
        new_state = new_state.clone()
        old_state = new_state.clone()
        operation.state_forwards(migration.app_label, new_state)
        steps.append(OperationStates(operation, old_state, new_state))
    return steps


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

    With `steps`, the states around each operation are kept for the reversal, which then needs
    no state_forwards (and no re-rendering) of its own.
    """
    befores: list[ProjectState] = []
    editor_class = editor_class or connection.SchemaEditorClass
    with editor_class(connection, atomic=migration.atomic) as schema_editor:
        for index, operation in enumerate(migration.operations):
            if at_operation is not None:
                at_operation(index)
            old_state = state.clone()
            befores.append(old_state)
            operation.state_forwards(migration.app_label, state)
            if not is_data_step(operation):
                _database_step(schema_editor, migration, OperationStates(operation, old_state, state), backwards=False)
            if after_operation is not None:
                after_operation()
        if at_operation is not None:
            at_operation(None)
    if steps is not None and migration.operations:
        # Each operation's after-state is the next one's before-state; `state` itself goes on
        # changing with the next migration, so the last after-state is a clone.
        afters = [*befores[1:], state.clone()]
        steps.extend(OperationStates(op, b, a) for op, b, a in zip(migration.operations, befores, afters, strict=True))
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
