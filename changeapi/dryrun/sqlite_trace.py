"""Apply a plan on a SQLite clone as Django's executor would, tracing each statement.

Migrations go through the one apply path (`dryrun/apply.py`) with Django's SQLite schema
editor; every statement it executes passes through `execute` here, which times it and, inside
the migration's transaction, asks a second connection whether it could start a write
(`BEGIN IMMEDIATE`, not waiting): SQLite has one writer per database, so from the first write
of a transaction to its commit every other writer waits, whatever table it writes. The lock is
listed on the statement that took it, as the engine's other locks are.

Django remakes a table for most changes SQLite's ALTER TABLE cannot make (`_remake_table`):
CREATE TABLE "new__t", INSERT INTO "new__t" SELECT … FROM "t", DROP TABLE "t", ALTER TABLE
"new__t" RENAME TO "t", then the table's indexes again. `table_remakes` finds those runs of
statements, with the rows the copy moved (SQLite's `changes()` after the INSERT).
"""

from __future__ import annotations

import dataclasses
import functools
import re
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.migrations.state import ProjectState

from changeapi.dryrun.apply import OperationStates, apply_migration
from changeapi.dryrun.contract import Lock, MigrationEntry, ReportError, StatementTrace, TableRemake
from changeapi.dryrun.engine import ProgressCallback, collected_sql, migration_entry
from changeapi.intake.plan import Plan

DATABASE_LOCK_RELATION = "database"
"""What SQLite's write lock is on: the whole database file, every table at once."""
DATABASE_LOCK_MODE = "RESERVED"
"""SQLite's name for the lock of the one writer: readers go on (in WAL mode, also while it
commits), every other writer waits for it to commit."""
REMAKE_PREFIX = "new__"

_NAME = r'"((?:[^"]|"")+)"'
_CREATE_TABLE = re.compile(rf"^\s*CREATE\s+TABLE\s+{_NAME}", re.IGNORECASE)
_INSERT_SELECT = re.compile(rf"^\s*INSERT\s+INTO\s+{_NAME}.*\bFROM\s+{_NAME}\s*$", re.IGNORECASE | re.DOTALL)
_DROP_TABLE = re.compile(rf"^\s*DROP\s+TABLE\s+{_NAME}", re.IGNORECASE)
_RENAME_TABLE = re.compile(rf"^\s*ALTER\s+TABLE\s+{_NAME}\s+RENAME\s+TO\s+{_NAME}", re.IGNORECASE)
_ALTER_TABLE = re.compile(rf"^\s*ALTER\s+TABLE\s+{_NAME}", re.IGNORECASE)
_INDEX_ON = re.compile(rf"^\s*CREATE\s+(?:UNIQUE\s+)?INDEX\s+{_NAME}\s+ON\s+{_NAME}", re.IGNORECASE)
_INSERT_UPDATE_DELETE = re.compile(rf"^\s*(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+{_NAME}", re.IGNORECASE)
_READ_ONLY = re.compile(r"^\s*(?:SELECT|WITH|EXPLAIN|PRAGMA)\b", re.IGNORECASE)


def _unquote(name: str) -> str:
    return name.replace('""', '"')


def statement_tables(sql: str) -> tuple[str, ...]:
    """The tables a statement of Django's SQLite schema editor works on, by its form."""
    for pattern in (_INSERT_SELECT, _RENAME_TABLE):
        match = pattern.match(sql)
        if match:
            return tuple(dict.fromkeys(_unquote(g) for g in match.groups()))
    match = _INDEX_ON.match(sql)
    if match:
        return (_unquote(match.group(2)),)
    for pattern in (_CREATE_TABLE, _DROP_TABLE, _ALTER_TABLE, _INSERT_UPDATE_DELETE):
        match = pattern.match(sql)
        if match:
            return (_unquote(match.group(1)),)
    return ()


def _command(sql: str) -> str:
    words = sql.split()
    if not words:
        return ""
    first = words[0].upper()
    if first in {"ALTER", "CREATE", "DROP"} and len(words) > 1:
        second = words[1].upper()
        if second == "UNIQUE" and len(words) > 2:
            return f"{first} {words[2].upper()}"
        return f"{first} {second}"
    return first


def database_lock(*, source: str) -> Lock:
    """SQLite's write lock, on the whole database."""
    return Lock(
        relation=DATABASE_LOCK_RELATION,
        relation_kind="database",
        table=None,
        mode=DATABASE_LOCK_MODE,
        blocks_reads=False,
        blocks_writes=True,
        blocks_ddl=True,
        source=source,
    )


class WriteProbe:
    """A second connection to the clone that asks, without waiting, whether a write could start."""

    def __init__(self, path: str) -> None:
        self._connection = sqlite3.connect(path, timeout=0, isolation_level=None)

    def writers_blocked(self) -> bool:
        try:
            self._connection.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError:
            return True  # "database is locked": another connection is the writer
        self._connection.execute("ROLLBACK")
        return False

    def close(self) -> None:
        self._connection.close()


@dataclass
class SqlitePlanRun:
    """The outcome of a traced run: statements, per-migration facts, transactions, the first error."""

    statements: list[StatementTrace] = field(default_factory=list)
    migrations: list[MigrationEntry] = field(default_factory=list)
    transactions: dict[int, float | None] = field(default_factory=dict)
    copied_rows: dict[int, int] = field(default_factory=dict)
    error: ReportError | None = None
    total_ms: float = 0.0
    # Per migration of the plan that completed, the states around each of its operations (for the reversal).
    states: list[list[OperationStates]] = field(default_factory=list)


@dataclass
class _Tracer:
    run: SqlitePlanRun
    connection: BaseDatabaseWrapper
    probe: WriteProbe | None
    # Raised between statements once a limit the watchdog enforces has passed (it interrupts the
    # statement running then; this stops the next one from starting).
    check_limits: Callable[[], None] = lambda: None
    # Told when a statement starts (time.monotonic()) and None once it ended: the watchdog's clock.
    on_statement: Callable[[float | None], None] = lambda _started: None
    started: float = field(default_factory=time.perf_counter)
    migration: str = ""
    operation_index: int | None = None
    open_transaction: int | None = None
    locked_in: int | None = None  # the transaction whose write lock a statement already took
    next_transaction: int = 1

    def now_ms(self) -> float:
        return round((time.perf_counter() - self.started) * 1000, 3)

    def transaction_id(self) -> int | None:
        """A number for the enclosing transaction, stamped with its commit by an on_commit hook."""
        if not self.connection.in_atomic_block:
            return None
        if self.open_transaction is None:
            txn = self.next_transaction
            self.next_transaction += 1
            self.open_transaction = txn
            self.run.transactions[txn] = None

            def committed(txn: int = txn) -> None:
                self.run.transactions[txn] = self.now_ms()
                self.open_transaction = None

            self.connection.on_commit(committed)
        return self.open_transaction

    def trace(self, sql: str, shown: str, execute: Callable[[], None]) -> None:
        self.check_limits()
        txn = self.transaction_id()
        index = len(self.run.statements)
        running = StatementTrace(
            index=index,
            migration=self.migration,
            operation_index=self.operation_index,
            sql=shown,
            command=_command(sql),
            target_tables=statement_tables(sql),
            transactional=txn is not None,
            transaction=txn,
            started_ms=self.now_ms(),
            duration_ms=None,
            notices=(),
        )
        started = time.perf_counter()
        self.on_statement(time.monotonic())
        try:
            execute()
        except Exception as exc:
            duration = round((time.perf_counter() - started) * 1000, 3)
            self.run.statements.append(dataclasses.replace(running, duration_ms=duration, error=str(exc)))
            raise
        finally:
            self.on_statement(None)
        duration = round((time.perf_counter() - started) * 1000, 3)
        match = _INSERT_SELECT.match(sql)
        raw = self.connection.connection
        if match and _unquote(match.group(1)).startswith(REMAKE_PREFIX) and raw is not None:
            self.run.copied_rows[index] = int(raw.execute("SELECT changes()").fetchone()[0])
        self.run.statements.append(
            dataclasses.replace(running, duration_ms=duration, locks=self._locks(sql, txn), locks_source=self._source(txn))
        )

    def _writes(self, sql: str) -> bool:
        return not _READ_ONLY.match(sql)

    def _locks(self, sql: str, txn: int | None) -> tuple[Lock, ...]:
        """The write lock, on the statement that took it: the first write of its transaction, or
        every write outside one (each commits at once, taking and releasing it)."""
        if not self._writes(sql) or (txn is not None and self.locked_in == txn):
            return ()
        if txn is None:
            return (database_lock(source="documented"),)
        observed = self.probe.writers_blocked() if self.probe is not None else None
        if observed is False:
            return ()  # nothing was written yet (SQLite takes the lock at the first change)
        self.locked_in = txn
        return (database_lock(source="observed" if observed else "documented"),)

    def _source(self, txn: int | None) -> str:
        return "observed" if txn is not None and self.probe is not None else "documented"


def tracing_editor_class(base: type, tracer: _Tracer) -> type:
    """Django's SQLite schema editor, with `execute` traced."""

    class SqliteTracingSchemaEditor(base):  # type: ignore[valid-type,misc]
        def execute(self, sql: Any, params: Any = ()) -> None:
            text = str(sql)
            shown = collected_sql(self, text, params)
            tracer.trace(text, shown, lambda: super(SqliteTracingSchemaEditor, self).execute(sql, params))

    return SqliteTracingSchemaEditor


def apply_plan_traced_sqlite(
    connection: BaseDatabaseWrapper,
    plan: Plan,
    state: ProjectState,
    *,
    probe: WriteProbe | None = None,
    on_progress: ProgressCallback | None = None,
    check_limits: Callable[[], None] = lambda: None,
    on_statement: Callable[[float | None], None] = lambda _started: None,
) -> SqlitePlanRun:
    """Apply `plan` on the clone behind `connection`, each statement timed and its lock noted.

    A failure stops the run (the report's error) and rolls back its migration, as Django's
    executor would; earlier migrations stay committed. Errors Django raises itself (a change its
    SQLite schema editor cannot make) are reported as `migrate` would raise them.
    """
    run = SqlitePlanRun()
    tracer = _Tracer(run=run, connection=connection, probe=probe, check_limits=check_limits, on_statement=on_statement)
    editor = tracing_editor_class(connection.SchemaEditorClass, tracer)
    state = state.clone()
    total = plan.operation_count
    done = 0

    def at_operation(index: int | None) -> None:
        tracer.operation_index = index

    def after_operation() -> None:
        nonlocal done
        done += 1
        if on_progress is not None:
            on_progress(done, total)

    apply = functools.partial(apply_migration, editor_class=editor, at_operation=at_operation, after_operation=after_operation)
    for migration in plan.migrations:
        tracer.migration = f"{migration.app_label}.{migration.name}"
        started_ms = tracer.now_ms()
        steps: list[OperationStates] = []
        try:
            state = apply(connection, migration, state, steps=steps)
        except Exception as exc:  # noqa: BLE001 - every failure belongs in the report, as Django's own errors do
            tracer.open_transaction = None
            failed = run.statements[-1] if run.statements and run.statements[-1].error else None
            run.error = ReportError(
                message=str(exc).strip() or type(exc).__name__,
                sqlstate=None,
                statement_index=failed.index if failed else None,
                migration=tracer.migration,
                operation_index=tracer.operation_index,
            )
            run.migrations.append(migration_entry(migration, started_ms, tracer.now_ms()))
            break
        run.migrations.append(migration_entry(migration, started_ms, tracer.now_ms()))
        run.states.append(steps)
    run.total_ms = tracer.now_ms()
    return run


class LimitExceeded(Exception):
    """A limit of the job (its wall time) passed between two statements."""


def table_remakes(statements: list[StatementTrace], copied_rows: dict[int, int]) -> tuple[TableRemake, ...]:
    """Django's remakes among `statements`: each CREATE TABLE "new__t" followed, in the same
    operation, by the copy from "t", the drop of "t", the rename to "t" and the indexes of "t"
    made again; timed as the sum of their statements' times."""
    remakes = []
    position = 0
    while position < len(statements):
        first = statements[position]
        created = _CREATE_TABLE.match(first.sql)
        name = _unquote(created.group(1)) if created else ""
        if not name.startswith(REMAKE_PREFIX):
            position += 1
            continue
        table = name.removeprefix(REMAKE_PREFIX)
        steps = [first]
        for later in statements[position + 1 :]:
            same_operation = (later.migration, later.operation_index) == (first.migration, first.operation_index)
            if not same_operation or later.error is not None or not _part_of_remake(later.sql, name, table, steps):
                break
            steps.append(later)
        renamed = any(_RENAME_TABLE.match(s.sql) for s in steps)
        if renamed:
            copy = next((s for s in steps if _INSERT_SELECT.match(s.sql)), None)
            remakes.append(
                TableRemake(
                    table=table,
                    migration=first.migration,
                    operation_index=first.operation_index,
                    statement_indexes=tuple(s.index for s in steps),
                    duration_ms=round(sum(s.duration_ms or 0.0 for s in steps), 3),
                    rows=copied_rows.get(copy.index) if copy is not None else None,
                )
            )
        position += len(steps)
    return tuple(remakes)


def _part_of_remake(sql: str, new: str, table: str, steps: list[StatementTrace]) -> bool:
    """Whether `sql` is the next step of the remake of `table` (through `new`) begun by `steps`."""
    renamed = any(_RENAME_TABLE.match(s.sql) for s in steps)
    if not renamed:
        copy = _INSERT_SELECT.match(sql)
        if copy:
            return _unquote(copy.group(1)) == new and _unquote(copy.group(2)) == table
        drop = _DROP_TABLE.match(sql)
        if drop:
            return _unquote(drop.group(1)) == table
        rename = _RENAME_TABLE.match(sql)
        return rename is not None and (_unquote(rename.group(1)), _unquote(rename.group(2))) == (new, table)
    index = _INDEX_ON.match(sql)
    return index is not None and _unquote(index.group(2)) == table
