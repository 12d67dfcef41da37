"""Apply a plan to a shadow database exactly as Django's executor would, tracing each statement.

Each migration runs in `connection.schema_editor(atomic=migration.atomic)`, its operations
applied by the same loop as Django's `Migration.apply`, so the SQL, the transaction
boundaries and the deferred statements are Django's own. Every statement the schema editor
executes passes through `TracingSchemaEditor.execute`, which times it and reads the catalogs
before and after it, inside its transaction.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg
from django.db import DatabaseError, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.migrations.operations.base import Operation
from django.db.migrations.operations.special import RunPython
from django.db.migrations.state import ProjectState

from changeapi.dryrun.sql_forms import statement_form
from changeapi.dryrun.tracing import Snapshot, describe_change, documented_locks, notice_events, take_snapshot
from changeapi.intake.plan import Plan, PlannedMigration
from changeapi.shadow.watchdog import breach_of

ProgressCallback = Callable[[int, int], None]


def plan_state(plan: Plan, state: ProjectState | None = None) -> ProjectState:
    """The project state after `plan`, by `state_forwards` only (no database, no rendering)."""
    state = state.clone() if state is not None else ProjectState()
    for migration in plan.migrations:
        for operation in migration.operations:
            operation.state_forwards(migration.app_label, state)
    return state


_RENDERED_KEEP = 8
_rendered: OrderedDict[int, tuple[weakref.ref[Plan], ProjectState]] = OrderedDict()
_rendered_lock = threading.Lock()


def rendered_state(plan: Plan) -> ProjectState:
    """The state after `plan` with its models rendered, built once per process and plan.

    Rendering every model is the costly part of a replay; cloning a rendered state only
    copies its registry. Callers clone before changing it, as Django's executor does with
    the state it renders once before a migrate. Kept for the last few plans (a baseline's
    plan is itself cached per process), and forgotten with the plan.
    """
    key = id(plan)
    with _rendered_lock:
        cached = _rendered.get(key)
        if cached is not None and cached[0]() is plan:
            _rendered.move_to_end(key)
            return cached[1]
    state = plan_state(plan)
    state.apps  # noqa: B018 - render all models now, once
    with _rendered_lock:
        _rendered[key] = (weakref.ref(plan), state)
        while len(_rendered) > _RENDERED_KEEP:
            _rendered.popitem(last=False)
    return state


def is_data_step(operation: Operation) -> bool:
    """RunPython is reviewed, never run: the service does not execute submitted code."""
    return isinstance(operation, RunPython)


@dataclass
class StatementError:
    message: str
    sqlstate: str | None
    statement_index: int | None
    migration: str
    operation_index: int | None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Trace:
    """Everything recorded while a plan runs; becomes the report's statements and spans."""

    started: float = field(default_factory=time.perf_counter)
    statements: list[dict[str, Any]] = field(default_factory=list)
    transactions: dict[int, float | None] = field(default_factory=dict)
    notices: list[str] = field(default_factory=list)
    migration: str = ""
    operation_index: int | None = None
    open_transaction: int | None = None
    next_transaction: int = 1

    def now_ms(self) -> float:
        return (time.perf_counter() - self.started) * 1000


class TransactionBoundaryError(Exception):
    """Submitted SQL ended the transaction Django's executor opened (COMMIT inside a DO block)."""


class _Tracer:
    """Reads the catalogs around each statement of one connection."""

    def __init__(self, connection: BaseDatabaseWrapper, trace: Trace) -> None:
        self.connection = connection
        self.trace = trace

    def _transaction_id(self) -> int | None:
        """A number for the enclosing transaction, or None in autocommit.

        The transaction's end is stamped by an on_commit hook, which Django runs right after
        the outermost atomic block commits: that is when its locks are released.
        """
        if not self.connection.in_atomic_block:
            return None
        if self.trace.open_transaction is None:
            txn = self.trace.next_transaction
            self.trace.next_transaction += 1
            self.trace.open_transaction = txn
            self.trace.transactions[txn] = None

            def committed(txn: int = txn) -> None:
                self.trace.transactions[txn] = self.trace.now_ms()
                self.trace.open_transaction = None

            self.connection.on_commit(committed)
        return self.trace.open_transaction

    def run(self, sql_text: str, params: Any, execute: Callable[[], None]) -> None:
        raw = self.connection.connection
        in_transaction = self.connection.in_atomic_block
        before = take_snapshot(raw, with_locks=in_transaction, assign_transaction=True)
        txn = self._transaction_id()
        self.trace.notices.clear()
        started = self.trace.now_ms()
        display = display_sql(self.connection, sql_text, params)
        form = statement_form(display)
        statement: dict[str, Any] = {
            "index": len(self.trace.statements),
            "migration": self.trace.migration,
            "operation_index": self.trace.operation_index,
            "sql": display,
            "command": form.command,
            "target_tables": form.tables,
            "concurrently": form.concurrently,
            "transactional": in_transaction,
            "transaction": txn,
            "started_ms": round(started, 3),
            "duration_ms": None,
            "notices": [],
        }
        self.trace.statements.append(statement)
        try:
            execute()
        finally:
            statement["duration_ms"] = round(self.trace.now_ms() - started, 3)
            statement["notices"] = list(self.trace.notices)
            statement["events"] = notice_events(statement["notices"])
        after = take_snapshot(raw, with_locks=in_transaction) if in_transaction else _autocommit_after(raw)
        if in_transaction and after.transaction != before.transaction:
            statement["transaction_boundary"] = True
            raise TransactionBoundaryError(
                f"statement {statement['index'] + 1} ended the migration's transaction and began another (a COMMIT or "
                "ROLLBACK inside the submitted SQL): the locks, timings and atomicity reported after it would be "
                "wrong, so the dry-run stops here"
            )
        statement.update(describe_change(before, after))
        # Outside a transaction the statement's locks are gone by now: report the documented ones.
        statement["locks_source"] = "observed" if in_transaction else "documented"
        if not in_transaction:
            statement["locks"] = documented_locks(form, before)
        statement["volatile_default_columns"] = form.volatile_default_columns


def _autocommit_after(raw: Any) -> Snapshot:
    """After a statement outside a transaction its locks are gone and its scans flushed away;
    relations (rewrites, creations) can still be compared."""
    snap = take_snapshot(raw, with_locks=False)
    snap.seq_scans = {}
    return snap


def display_sql(connection: BaseDatabaseWrapper, sql_text: str, params: Any) -> str:
    """The statement as it ran, parameters inlined, for the report."""
    if not params:
        return sql_text
    try:
        return str(connection.ops.compose_sql(sql_text, params))  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 - showing the raw SQL is the right fallback for display
        return f"{sql_text} -- params: {params!r}"


def _tracing_editor_class(connection: BaseDatabaseWrapper, tracer: _Tracer) -> type:
    """The backend's own schema editor, with `execute` timed and traced."""
    base = connection.SchemaEditorClass

    class TracingSchemaEditor(base):  # type: ignore[valid-type, misc]
        def execute(self, sql: Any, params: Any = ()) -> None:
            tracer.run(str(sql), params, lambda: super(TracingSchemaEditor, self).execute(sql, params))

    return TracingSchemaEditor


@dataclass
class OperationStates:
    """The project state before and after one operation, as the forwards run rendered them."""

    operation: Operation
    before: ProjectState
    after: ProjectState


def _apply_migration(
    connection: BaseDatabaseWrapper,
    migration: PlannedMigration,
    state: ProjectState,
    *,
    editor_class: type | None,
    trace: Trace | None,
    on_operation: Callable[[], None] | None,
    steps: list[OperationStates] | None = None,
) -> ProjectState:
    """Django's `MigrationExecutor.apply_migration` + `Migration.apply`, step for step.

    The loop is Django 5.2's own: state_forwards, then database_forwards, each operation in
    its own atomic block when the migration is not atomic but the operation is. With
    `steps`, the states around each operation are kept for the reversal, which then needs
    no state_forwards (and no re-rendering) of its own.
    """
    befores: list[ProjectState] = []
    editor_class = editor_class or connection.SchemaEditorClass
    label = f"{migration.app_label}.{migration.name}"
    if trace is not None:
        trace.migration = label
    with editor_class(connection, atomic=migration.atomic) as schema_editor:
        for index, operation in enumerate(migration.operations):
            if trace is not None:
                trace.operation_index = index
            old_state = state.clone()
            befores.append(old_state)
            operation.state_forwards(migration.app_label, state)
            if not is_data_step(operation):
                atomic_operation = operation.atomic or (migration.atomic and operation.atomic is not False)
                if not schema_editor.atomic_migration and atomic_operation:
                    with transaction.atomic(using=connection.alias):
                        operation.database_forwards(migration.app_label, schema_editor, old_state, state)
                else:
                    operation.database_forwards(migration.app_label, schema_editor, old_state, state)
            if on_operation is not None:
                on_operation()
        if trace is not None:
            trace.operation_index = None  # deferred SQL runs as the block closes
    if steps is not None and migration.operations:
        # Each operation's after-state is the next one's before-state; `state` itself goes on
        # changing with the next migration, so the last after-state is a clone.
        afters = [*befores[1:], state.clone()]
        steps.extend(OperationStates(op, b, a) for op, b, a in zip(migration.operations, befores, afters, strict=True))
    return state


def apply_plan_untraced(connection: BaseDatabaseWrapper, plan: Plan, state: ProjectState | None = None) -> ProjectState:
    """Apply a plan without tracing: how a baseline's template database is built."""
    state = state.clone() if state is not None else ProjectState()
    for migration in plan.migrations:
        state = _apply_migration(connection, migration, state, editor_class=None, trace=None, on_operation=None)
    return state


@dataclass
class PlanRun:
    """The outcome of a traced run: statements, per-migration facts, and the first error."""

    statements: list[dict[str, Any]]
    migrations: list[dict[str, Any]]
    transactions: dict[int, float | None]
    error: StatementError | None
    total_ms: float
    # Per migration of the plan that completed, the states around each of its operations.
    states: list[list[OperationStates]] = field(default_factory=list)


def apply_plan_traced(
    connection: BaseDatabaseWrapper,
    plan: Plan,
    state: ProjectState,
    *,
    on_progress: ProgressCallback | None = None,
) -> PlanRun:
    """Apply `plan` on top of `state`, recording every statement; stop at the first error.

    A failing statement rolls back its migration's transaction as Django's executor would;
    the error (message and SQLSTATE) is returned, not raised, so it lands in the report.
    """
    trace = Trace()
    tracer = _Tracer(connection, trace)
    editor_class = _tracing_editor_class(connection, tracer)
    raw = connection.connection

    def notice(diag: Any) -> None:
        message = diag.message_primary or ""
        if "JIT" in message or message.startswith("time to inline"):
            return  # the JIT compiler's chatter says nothing about the change
        trace.notices.append(f"{diag.severity}: {message}")

    raw.add_notice_handler(notice)
    with connection.cursor() as cursor:
        # PostgreSQL says at debug1 what it does: rewriting, verifying, building indexes.
        cursor.execute("SET client_min_messages = debug1")

    total = plan.operation_count
    done = 0
    migrations: list[dict[str, Any]] = []
    states: list[list[OperationStates]] = []
    error: StatementError | None = None

    def advance() -> None:
        nonlocal done
        done += 1
        if on_progress is not None:
            on_progress(done, total)

    state = state.clone()
    for migration in plan.migrations:
        entry = {
            "app_label": migration.app_label,
            "name": migration.name,
            "atomic": migration.atomic,
            "operations": [
                {
                    "index": i,
                    "type": type(op).__name__,
                    "description": op.describe(),
                    "executed": not is_data_step(op),
                    "note": "data migration step: recorded for review, not executed" if is_data_step(op) else "",
                }
                for i, op in enumerate(migration.operations)
            ],
            "started_ms": round(trace.now_ms(), 3),
            "finished_ms": None,
        }
        migrations.append(entry)
        steps: list[OperationStates] = []
        try:
            state = _apply_migration(
                connection, migration, state, editor_class=editor_class, trace=trace, on_operation=advance, steps=steps
            )
        except (DatabaseError, Exception) as exc:  # noqa: BLE001 - every failure belongs in the report
            message = _error_message(exc)
            breach = breach_of(str(connection.settings_dict["USER"]))
            if breach is not None:
                message = f"{breach}: {message}"
            elif _connection_lost(connection, exc):
                message = f"the shadow server became unavailable during the dry-run: {message}"
            failed_index = trace.statements[-1]["index"] if trace.statements else None
            if failed_index is not None and trace.statements[-1].get("locks") is None:
                trace.statements[-1]["error"] = message
            else:
                failed_index = None
            error = StatementError(
                message=message,
                sqlstate=_sqlstate(exc),
                statement_index=failed_index,
                migration=f"{migration.app_label}.{migration.name}",
                operation_index=trace.operation_index,
            )
            entry["finished_ms"] = round(trace.now_ms(), 3)
            break
        entry["finished_ms"] = round(trace.now_ms(), 3)
        states.append(steps)
    raw.remove_notice_handler(notice)
    return PlanRun(
        statements=trace.statements,
        migrations=migrations,
        transactions=dict(trace.transactions),
        error=error,
        total_ms=round(trace.now_ms(), 3),
        states=states,
    )


# Connection exceptions, and the server shutting down, crashing or not accepting connections.
_LOST_SQLSTATES = ("08", "57P")


def _connection_lost(connection: BaseDatabaseWrapper, exc: BaseException) -> bool:
    """Whether the run failed because its server went away, not because of its SQL: however
    far the run had got, the message then says so, whatever words the driver used."""
    state = _sqlstate(exc)
    if state is not None and state.startswith(_LOST_SQLSTATES):
        return True
    raw = connection.connection
    return raw is None or bool(raw.closed) or raw.info.transaction_status == psycopg.pq.TransactionStatus.UNKNOWN


def _sqlstate(exc: BaseException) -> str | None:
    cause: BaseException | None = exc
    while cause is not None:
        state = getattr(cause, "sqlstate", None)
        if state:
            return str(state)
        cause = cause.__cause__
    return None


def _error_message(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0] if "\n" in text and len(text) > 2000 else text
