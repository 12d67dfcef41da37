"""Apply a plan on a MySQL/MariaDB clone as Django's executor would, tracing each statement.

Migrations go through the one apply path (`dryrun/apply.py`) with Django's MySQL schema
editor; every statement it executes passes through `execute` here, which first asks the
server on a scratch copy how it may run the statement (`mysql_ddl`), then runs it as Django
does, timed, and reads the table's InnoDB id before and after from the admin side. DDL
commits on its own on these servers, so a migration that fails half-way leaves the schema
its earlier statements made: the trace stops at the failure and says so.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

from django.db import DatabaseError
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.migrations.state import ProjectState

from changeapi.dryrun.apply import OperationStates, apply_migration
from changeapi.dryrun.contract import Lock, MigrationEntry, OnlineDdl, ReportError, StatementTrace
from changeapi.dryrun.engine import ProgressCallback, collected_sql, migration_entry
from changeapi.dryrun.mysql_blocking import BlockingObserver
from changeapi.dryrun.mysql_ddl import DdlAnswer, ddl_ask, ddl_target, rows_copied, table_id
from changeapi.dryrun.mysql_dml import data_statement, leading_word, row_locks
from changeapi.intake.plan import Plan

_COMMITTING = ("ALTER", "CREATE", "DROP", "RENAME", "TRUNCATE")
"""Statements that commit implicitly on MySQL/MariaDB: before they run, and once they have."""


@dataclass
class MySqlPlanRun:
    """The outcome of a traced run: statements, per-migration facts, and the first error."""

    statements: list[StatementTrace] = field(default_factory=list)
    migrations: list[MigrationEntry] = field(default_factory=list)
    error: ReportError | None = None
    total_ms: float = 0.0
    # Per migration of the plan that completed, the states around each of its operations (for the reversal).
    states: list[list[OperationStates]] = field(default_factory=list)


@dataclass
class _Tracer:
    """What the editor needs to trace a statement: where it is in the plan, and the sessions
    that probe (the job's second connection) and read table ids (the admin's)."""

    run: MySqlPlanRun
    database: str
    flavor: str
    probe_cursor: Any
    admin_cursor: Any
    connect: Callable[[], Any]
    started: float = field(default_factory=time.perf_counter)
    migration: str = ""
    operation_index: int | None = None

    def now_ms(self) -> float:
        return round((time.perf_counter() - self.started) * 1000, 3)


def _command(sql: str) -> str:
    words = sql.split()
    if not words:
        return ""
    if words[0].upper() in {"ALTER", "CREATE", "DROP", "RENAME"} and len(words) > 1:
        second = words[1].upper()
        if second in {"UNIQUE", "FULLTEXT", "SPATIAL"} and len(words) > 2:
            return f"{words[0].upper()} {words[2].upper()}"
        return f"{words[0].upper()} {second}"
    return words[0].upper()


def _locks(table: str, answer: DdlAnswer) -> tuple[Lock, ...]:
    if answer.lock is None:
        return ()
    return (
        Lock(
            relation=table,
            relation_kind="table",
            table=table,
            mode=f"LOCK={answer.lock}",
            blocks_reads=bool(answer.blocks_reads),
            blocks_writes=bool(answer.blocks_writes),
            blocks_ddl=True,
            source="server",
        ),
    )


def tracing_editor_class(base: type, tracer: _Tracer) -> type:
    """Django's schema editor for the connection, with `execute` traced."""

    class MySqlTracingSchemaEditor(base):  # type: ignore[valid-type,misc]
        def execute(self, sql: Any, params: Any = ()) -> None:
            text = str(sql)
            shown = collected_sql(self, text, params)
            index = len(tracer.run.statements)
            target = ddl_target(text)
            answer = ddl_ask(tracer.probe_cursor, target, params, flavor=tracer.flavor) if target is not None else None
            before = table_id(tracer.admin_cursor, tracer.database, target.table, flavor=tracer.flavor) if target else None
            commits = leading_word(text) in _COMMITTING
            data = data_statement(text) if target is None else None
            transactional = not commits and self.connection.in_atomic_block
            started_ms = tracer.now_ms()
            started = time.perf_counter()
            running = StatementTrace(
                index=index,
                migration=tracer.migration,
                operation_index=tracer.operation_index,
                sql=shown,
                command=data.command if data is not None else _command(text),
                target_tables=(target.table,) if target else (data.table,) if data else (),
                transactional=transactional,
                transaction=None,
                started_ms=started_ms,
                duration_ms=None,
                notices=(),
                commits_on_its_own=commits,
            )
            observer = BlockingObserver(tracer.connect, target.table) if target is not None else None
            watching: AbstractContextManager[object] = observer if observer is not None else nullcontext()
            try:
                with watching:
                    super().execute(sql, params)
            except DatabaseError as exc:
                duration = round((time.perf_counter() - started) * 1000, 3)
                tracer.run.statements.append(dataclasses.replace(running, duration_ms=duration, error=str(exc)))
                raise
            duration = round((time.perf_counter() - started) * 1000, 3)
            online = None
            if target is not None and answer is not None:
                after = table_id(tracer.admin_cursor, tracer.database, target.table, flavor=tracer.flavor)
                raw = self.connection.connection
                copied = rows_copied(raw.info() if raw is not None else None)
                online = OnlineDdl(
                    table=target.table,
                    algorithm=answer.algorithm,
                    lock=answer.lock,
                    refusals=answer.refusals,
                    probe_error=answer.probe_error,
                    blocks_reads=answer.blocks_reads,
                    blocks_writes=answer.blocks_writes,
                    table_id_before=before,
                    table_id_after=after,
                    rebuilt=None if before is None or after is None else before != after,
                    rows_copied=copied,
                    observed_blocks_reads=observer.result.reads if observer else None,
                    observed_blocks_writes=observer.result.writes if observer else None,
                    observed_read_wait_ms=observer.result.read_wait_ms if observer else None,
                    observed_write_wait_ms=observer.result.write_wait_ms if observer else None,
                    probe_ms=answer.accepted_ms,
                )
            locks: tuple[Lock, ...] = ()
            source = "server"
            if target is not None and answer is not None:
                locks = _locks(target.table, answer)
            elif data is not None and data.locks_existing_rows:
                locks, source = row_locks(data.table, data.command), "documented"
            tracer.run.statements.append(
                dataclasses.replace(
                    running,
                    duration_ms=duration,
                    locks=locks,
                    locks_source=source,
                    rewrites=(online.table,) if online is not None and online.rebuilt else (),
                    online_ddl=online,
                )
            )

    return MySqlTracingSchemaEditor


def apply_plan_traced_mysql(
    connection: BaseDatabaseWrapper,
    plan: Plan,
    state: ProjectState,
    *,
    flavor: str,
    probe_cursor: Any,
    admin_cursor: Any,
    connect: Callable[[], Any],
    on_progress: ProgressCallback | None = None,
) -> MySqlPlanRun:
    """Apply `plan` on the clone behind `connection`, each statement asked about, run and timed.

    A database error stops the run (the report's error); what ran before it stays applied,
    as it would in production. `connect` opens another session of the job's user, for the
    probes that observe what a running statement blocks.
    """
    run = MySqlPlanRun()
    tracer = _Tracer(
        run=run,
        database=str(connection.settings_dict["NAME"]),
        flavor=flavor,
        probe_cursor=probe_cursor,
        admin_cursor=admin_cursor,
        connect=connect,
    )
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
            apply(connection, migration, state, steps=steps)
        except DatabaseError as exc:
            failed = run.statements[-1] if run.statements and run.statements[-1].error else None
            run.error = ReportError(
                message=_partial_schema_message(exc, run.statements, tracer.migration),
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


def _partial_schema_message(exc: BaseException, statements: list[StatementTrace], migration: str) -> str:
    """The error, and what it leaves behind: DDL that ran before it in the migration stays."""
    committed = [s for s in statements if s.migration == migration and s.commits_on_its_own and s.error is None]
    text = str(exc).strip() or type(exc).__name__
    if not committed:
        return text
    return (
        f"{text} (the {len(committed)} statement(s) of {migration} before it committed on their own and stay applied: "
        "MySQL/MariaDB DDL is not transactional, so the migration is left half-applied)"
    )
