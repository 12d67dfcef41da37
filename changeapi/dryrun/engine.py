"""Apply a plan to a shadow database exactly as Django's executor would, tracing each statement.

Each migration runs in `connection.schema_editor(atomic=migration.atomic)`, its operations
applied by Django's `Migration.apply` loop (`dryrun/apply.py`), so the SQL, the transaction
boundaries and the deferred statements are Django's own. Every statement the schema editor
executes passes through `TracingSchemaEditor.execute`, which times it and reads the catalogs
before and after it, inside its transaction.
"""

from __future__ import annotations

import dataclasses
import time
import weakref
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

import psycopg
from django.db import DatabaseError
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.migrations.state import ProjectState

from changeapi.caches import BoundedCache
from changeapi.dryrun.apply import OperationStates, apply_migration, is_data_step
from changeapi.dryrun.backfill import DEFAULT_SAMPLE_BATCHES, sample_backfill
from changeapi.dryrun.contract import (
    BackfillTiming,
    MigrationEntry,
    MigrationOperation,
    ReportError,
    SeededDataFailure,
    StatementTrace,
)
from changeapi.dryrun.seeded_failures import (
    ProductionColumns,
    RowCondition,
    conform_seeded_rows,
    release,
    row_conditions,
    rows_written,
    savepoint,
    sqlstate_of,
)
from changeapi.dryrun.sql_forms import StatementForm, statement_form
from changeapi.dryrun.tracing import (
    Snapshot,
    describe_change,
    documented_locks,
    notice_events,
    take_delta,
    take_snapshot,
    take_transaction_start,
)
from changeapi.dryrun.warm_up import plan_tables, warm_tables
from changeapi.intake.backfill import Backfill
from changeapi.intake.plan import Plan, PlannedMigration
from changeapi.intake.python_source.history import plan_state
from changeapi.intake.unrendered_state import UnrenderedState
from changeapi.shadow.watchdog import breach_of

ProgressCallback = Callable[[int, int], None]


# By plan identity; the weak reference tells a live plan from a dead one that left its id free.
_baselines: BoundedCache[int, tuple[weakref.ref[Plan], ProjectState]] = BoundedCache(8)


def baseline_state(plan: Plan) -> ProjectState:
    """The state after `plan`, built once per process and plan, never rendered.

    Nothing renders the whole project: each operation of a dry-run renders only the models
    its schema change reads (`changeapi.intake.state_closure`). Callers clone before
    changing it. Kept for the last few plans (a baseline's plan is itself cached per
    process), and forgotten with the plan.
    """
    cached = _baselines.get(id(plan))
    if cached is not None and cached[0]() is plan:
        return cached[1]
    state = plan_state(plan)
    _baselines.put(id(plan), (weakref.ref(plan), state))
    return state


@dataclass
class _RunningStatement:
    """A statement while it runs: what is known before it executes; the rest comes after."""

    index: int
    migration: str
    operation_index: int | None
    sql: str
    form: StatementForm
    transactional: bool
    transaction: int | None
    started_ms: float
    ended_ms: float | None = None

    def timed(self, execute: Callable[[], None], now_ms: Callable[[], float]) -> Callable[[], None]:
        """`execute`, with the statement's start and end taken right around it: its time is the
        server's work, not the parsing, savepoints and catalog reads the tracer does around it."""

        def run() -> None:
            self.started_ms = round(now_ms(), 3)
            self.ended_ms = None
            try:
                execute()
            finally:
                self.ended_ms = round(now_ms(), 3)

        return run

    def trace(self, *, duration_ms: float, notices: tuple[str, ...]) -> StatementTrace:
        """The statement as it leaves the tracer when it did not complete (no locks read)."""
        return StatementTrace(
            index=self.index,
            migration=self.migration,
            operation_index=self.operation_index,
            sql=self.sql,
            command=self.form.command,
            target_tables=tuple(self.form.tables),
            concurrently=self.form.concurrently,
            transactional=self.transactional,
            transaction=self.transaction,
            started_ms=self.started_ms,
            duration_ms=duration_ms,
            notices=notices,
            events=notice_events(notices),
        )


@dataclass
class Trace:
    """Everything recorded while a plan runs; becomes the report's statements and spans."""

    started: float = field(default_factory=time.perf_counter)
    statements: list[StatementTrace] = field(default_factory=list)
    transactions: dict[int, float | None] = field(default_factory=dict)
    notices: list[str] = field(default_factory=list)
    migration: str = ""
    operation_index: int | None = None
    open_transaction: int | None = None
    next_transaction: int = 1
    # Tables the template's seeder filled, and those whose rows are no longer only the seeder's:
    # the change created them or wrote rows into them; after unknown work (a DO block), every
    # table (see seeded_failures).
    seeded_tables: frozenset[str] = frozenset()
    written_tables: set[str] = field(default_factory=set)
    unknown_writes: bool = False
    production: ProductionColumns = field(default_factory=dict)

    def not_seeded(self, table: str) -> bool:
        return table not in self.seeded_tables or self.unknown_writes or table in self.written_tables

    def note_writes(self, sql_text: str) -> None:
        if not self.seeded_tables:
            return  # nothing seeded, nothing to tell apart (and no second parse of every statement)
        tables, anywhere = rows_written(sql_text)
        self.written_tables.update(tables)
        self.unknown_writes = self.unknown_writes or anywhere

    def now_ms(self) -> float:
        return (time.perf_counter() - self.started) * 1000

    def at_operation(self, index: int | None) -> None:
        """The operation the next statements belong to; None for the deferred SQL run as the block closes."""
        self.operation_index = index


class TransactionBoundaryError(Exception):
    """Submitted SQL ended the transaction Django's executor opened (COMMIT inside a DO block)."""


class _Tracer:
    """Reads the catalogs around each statement of one connection."""

    def __init__(self, connection: BaseDatabaseWrapper, trace: Trace) -> None:
        self.connection = connection
        self.trace = trace
        # The catalogs as the last statement left them, with the transaction they were read in.
        self.known: Snapshot | None = None

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

    def _before(self, raw: Any, in_transaction: bool) -> Snapshot:
        """The catalogs before a statement: the previous statement's after when it ran in the
        same open transaction (nothing untraced changes them in between); at the start of a
        later transaction, its relations with the new transaction's counters; else one full read."""
        known = self.known
        if in_transaction:
            if known is not None and known.transaction is not None and self.trace.open_transaction is not None:
                return known
            if known is not None:
                return take_transaction_start(raw, known)
            return take_snapshot(raw, with_locks=True, assign_transaction=True)
        if known is not None and known.transaction is None:
            return known
        return take_snapshot(raw, with_locks=False)

    def run(self, sql_text: str, params: Any, execute: Callable[[], None]) -> None:
        raw = self.connection.connection
        in_transaction = self.connection.in_atomic_block
        before = self._before(raw, in_transaction)
        txn = self._transaction_id()
        self.trace.notices.clear()
        display = display_sql(self.connection, sql_text, params)
        running = _RunningStatement(
            index=len(self.trace.statements),
            migration=self.trace.migration,
            operation_index=self.trace.operation_index,
            sql=display,
            form=statement_form(display),
            transactional=in_transaction,
            transaction=txn,
            started_ms=round(self.trace.now_ms(), 3),
        )
        conditions = row_conditions(display) if in_transaction and self.trace.seeded_tables else []
        self.trace.note_writes(display)
        seeded: tuple[SeededDataFailure, ...] = ()
        timed_execute = running.timed(execute, self.trace.now_ms)
        try:
            if conditions:
                seeded, before = self._run_guarded(raw, running, conditions, timed_execute, before)
            else:
                timed_execute()
        finally:
            # Appended whatever happens next: a failed statement is reported without locks.
            ended_ms = running.ended_ms if running.ended_ms is not None else round(self.trace.now_ms(), 3)
            ended = running.trace(duration_ms=round(ended_ms - running.started_ms, 3), notices=tuple(self.trace.notices))
            self.trace.statements.append(dataclasses.replace(ended, seeded_failures=seeded))
        ended = self.trace.statements[-1]
        after = take_delta(raw, before) if in_transaction else _autocommit_after(raw)
        self.known = after
        if in_transaction and after.transaction != before.transaction:
            self.trace.statements[-1] = dataclasses.replace(ended, transaction_boundary=True)
            raise TransactionBoundaryError(
                f"statement {running.index + 1} ended the migration's transaction and began another (a COMMIT or "
                "ROLLBACK inside the submitted SQL): the locks, timings and atomicity reported after it would be "
                "wrong, so the dry-run stops here"
            )
        change = describe_change(before, after)
        self.trace.written_tables.update(change.created_relations)
        self.trace.statements[-1] = dataclasses.replace(
            ended,
            # Outside a transaction the statement's locks are gone by now: report the documented ones.
            locks=change.locks if in_transaction else documented_locks(running.form, before),
            rewrites=change.rewrites,
            rebuilt_indexes=change.rebuilt_indexes,
            sequential_scans=change.sequential_scans,
            created_relations=change.created_relations,
            dropped_relations=change.dropped_relations,
            locks_source="observed" if in_transaction else "documented",
            volatile_default_columns=tuple(running.form.volatile_default_columns),
        )

    def _run_guarded(
        self,
        raw: Any,
        running: _RunningStatement,
        conditions: list[RowCondition],
        execute: Callable[[], None],
        before: Snapshot,
    ) -> tuple[tuple[SeededDataFailure, ...], Snapshot]:
        """Run a statement that depends on existing rows under a savepoint; when it fails only
        because of seeded rows, make them conform and run it again, timed and traced afresh.

        Returns what was made to conform and the catalogs the traced run starts from. The
        catalogs are read again after the seeded rows were changed, so the UPDATE's own locks
        and scans are not the statement's. A second failure raises the first error.
        """
        savepoint(raw)
        try:
            execute()
        except Exception as exc:
            seeded = conform_seeded_rows(raw, conditions, exc, not_seeded=self.trace.not_seeded, production=self.trace.production)
            if not seeded:
                raise
            before = take_snapshot(raw, with_locks=True, assign_transaction=True)
            self.trace.notices.clear()
            try:
                execute()
            except Exception:  # noqa: BLE001 - a second failure is the schema's: the first error is the one to report
                raise exc from None
            release(raw)
            return seeded, before
        release(raw)
        return (), before


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


def collected_sql(editor: Any, sql_text: str, params: Any) -> str:
    """The statement as the schema editor ran it, parameters inlined: psycopg's rendering on
    PostgreSQL, and on the other engines the editor's own quoting, as `sqlmigrate` collects it."""
    if editor.connection.vendor == "postgresql":
        return display_sql(editor.connection, sql_text, params)
    return sql_text % tuple(map(editor.quote_value, params)) if params else sql_text


def _tracing_editor_class(connection: BaseDatabaseWrapper, tracer: _Tracer) -> type:
    """The backend's own schema editor, with `execute` timed and traced."""
    base = connection.SchemaEditorClass

    class TracingSchemaEditor(base):  # type: ignore[valid-type, misc]
        def execute(self, sql: Any, params: Any = ()) -> None:
            tracer.run(str(sql), params, lambda: super(TracingSchemaEditor, self).execute(sql, params))

    return TracingSchemaEditor


def apply_plan_untraced(connection: BaseDatabaseWrapper, plan: Plan, state: ProjectState | None = None) -> ProjectState:
    """Apply a plan without tracing: how a baseline's template database is built."""
    state = state.clone() if state is not None else ProjectState()
    for migration in plan.migrations:
        state = apply_migration(connection, migration, state)
    return state


@dataclass
class PlanRun:
    """The outcome of a traced run: statements, per-migration facts, and the first error."""

    statements: tuple[StatementTrace, ...]
    migrations: tuple[MigrationEntry, ...]
    transactions: dict[int, float | None]
    error: ReportError | None
    total_ms: float
    # Per migration of the plan that completed, the states around each of its operations.
    states: list[list[OperationStates]] = field(default_factory=list)
    # The Backfill steps sampled after their migrations committed, in plan order.
    backfills: tuple[BackfillTiming, ...] = ()


def apply_plan_traced(
    connection: BaseDatabaseWrapper,
    plan: Plan,
    state: ProjectState,
    *,
    on_progress: ProgressCallback | None = None,
    seeded_tables: Collection[str] = (),
    production: ProductionColumns | None = None,
    backfill_sample_batches: int = DEFAULT_SAMPLE_BATCHES,
) -> PlanRun:
    """Apply `plan` on top of `state`, recording every statement; stop at the first error.

    After a migration that ends with Backfill steps commits, each is sampled on the clone
    (`dryrun.backfill`, up to `backfill_sample_batches` batches); the sample's time is kept out
    of the migrations' timeline, since production runs the backfill apart from the deploy.

    A failing statement rolls back its migration's transaction as Django's executor would;
    the error (message and SQLSTATE) is returned, not raised, so it lands in the report.
    A statement that failed only because of the rows the seeder put in `seeded_tables` is
    the exception: it runs again on rows made to conform, unless `production` (uploaded
    column statistics) shows such rows in production too (`seeded_failures`).
    """
    trace = Trace(seeded_tables=frozenset(seeded_tables), production=production or {})
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
    warm_tables(connection, plan_tables(plan, state, max_name_length=connection.ops.max_name_length()))

    total = plan.operation_count
    done = 0
    migrations: list[MigrationEntry] = []
    states: list[list[OperationStates]] = []
    error: ReportError | None = None
    backfills: list[BackfillTiming] = []

    def advance() -> None:
        nonlocal done
        done += 1
        if on_progress is not None:
            on_progress(done, total)

    state = UnrenderedState.copy_of(state)
    for migration in plan.migrations:
        started_ms = round(trace.now_ms(), 3)
        trace.migration = f"{migration.app_label}.{migration.name}"
        steps: list[OperationStates] = []
        try:
            state = apply_migration(
                connection,
                migration,
                state,
                editor_class=editor_class,
                at_operation=trace.at_operation,
                after_operation=advance,
                steps=steps,
            )
        except (DatabaseError, Exception) as exc:  # noqa: BLE001 - every failure belongs in the report
            message = _failure_message(connection, exc)
            last = trace.statements[-1] if trace.statements else None
            failed_index = None
            if last is not None and last.locks is None:
                failed_index = last.index
                trace.statements[-1] = dataclasses.replace(last, error=message)
            error = ReportError(
                message=message,
                sqlstate=sqlstate_of(exc),
                statement_index=failed_index,
                migration=f"{migration.app_label}.{migration.name}",
                operation_index=trace.operation_index,
            )
            migrations.append(migration_entry(migration, started_ms, round(trace.now_ms(), 3)))
            break
        migrations.append(migration_entry(migration, started_ms, round(trace.now_ms(), 3)))
        states.append(steps)
        error = _sample_backfills(connection, migration, state, trace, backfills, backfill_sample_batches)
        if error is not None:
            break
    raw.remove_notice_handler(notice)
    return PlanRun(
        statements=tuple(trace.statements),
        migrations=tuple(migrations),
        transactions=dict(trace.transactions),
        error=error,
        total_ms=round(trace.now_ms(), 3),
        states=states,
        backfills=tuple(backfills),
    )


def _sample_backfills(
    connection: BaseDatabaseWrapper,
    migration: PlannedMigration,
    state: ProjectState,
    trace: Trace,
    into: list[BackfillTiming],
    sample_batches: int,
) -> ReportError | None:
    """Sample the migration's Backfill steps (they end it: the intake refuses anything after one)
    on the committed clone; a failing batch is the run's error, as it would stop production's."""
    label = f"{migration.app_label}.{migration.name}"
    for index, operation in enumerate(migration.operations):
        if not isinstance(operation, Backfill):
            continue
        started = time.perf_counter()
        try:
            into.append(
                sample_backfill(
                    connection, operation, state=state, migration=label, operation_index=index, sample_batches=sample_batches
                )
            )
        except Exception as exc:  # noqa: BLE001 - every failure belongs in the report
            message = _failure_message(connection, exc)
            return ReportError(
                message=f"{operation.describe()} failed on the shadow: {message}",
                sqlstate=sqlstate_of(exc),
                statement_index=None,
                migration=label,
                operation_index=index,
            )
        finally:
            # The sample is reported on its own: the migrations' clock does not see it.
            trace.started += time.perf_counter() - started
    return None


def migration_entry(migration: PlannedMigration, started_ms: float, finished_ms: float) -> MigrationEntry:
    return MigrationEntry(
        app_label=migration.app_label,
        name=migration.name,
        atomic=migration.atomic,
        operations=tuple(
            MigrationOperation(
                index=i,
                type=type(op).__name__,
                description=op.describe(),
                executed=not is_data_step(op),
                note=_operation_note(op),
            )
            for i, op in enumerate(migration.operations)
        ),
        started_ms=started_ms,
        finished_ms=finished_ms,
    )


def _operation_note(operation: Any) -> str:
    if is_data_step(operation):
        return "data migration step: recorded for review, not executed"
    if isinstance(operation, Backfill):
        return "backfill step: a sample of its batches ran on the clone after this migration committed (see backfills)"
    return ""


# Connection exceptions, and the server shutting down, crashing or not accepting connections.
_LOST_SQLSTATES = ("08", "57P")


def _connection_lost(connection: BaseDatabaseWrapper, exc: BaseException) -> bool:
    """Whether the run failed because its server went away, not because of its SQL: however
    far the run had got, the message then says so, whatever words the driver used."""
    state = sqlstate_of(exc)
    if state is not None and state.startswith(_LOST_SQLSTATES):
        return True
    raw = connection.connection
    return raw is None or bool(raw.closed) or raw.info.transaction_status == psycopg.pq.TransactionStatus.UNKNOWN


def _failure_message(connection: BaseDatabaseWrapper, exc: BaseException) -> str:
    """What the report says of a failure: the database's error, prefixed by the limit the
    watchdog enforced or by the server's going away when either is the cause."""
    message = _error_message(exc)
    breach = breach_of(str(connection.settings_dict["USER"]))
    if breach is not None:
        return f"{breach}: {message}"
    if _connection_lost(connection, exc):
        return f"the shadow server became unavailable during the dry-run: {message}"
    return message


def _error_message(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0] if "\n" in text and len(text) > 2000 else text
