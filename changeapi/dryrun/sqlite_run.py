"""Engine entry point for SQLite: dry-run a plan on a clone of the baseline's template file.

The same typed `Report` as the other engines, with what this engine says: each statement as
Django's SQLite schema editor ran it, timed; the database's one write lock, taken by the first
write of each transaction and held to its commit (lock spans, transactions and "time each table
is blocked", on the whole database: readers go on in WAL mode, every writer waits); the tables
Django remade (`remakes`), with their time and rows; each statement's work class and estimate
at production size, scaled from the clone's rows and bytes before the change
(`analysis/sqlite_estimate`), each remake's as the sum of its statements', and the write lock's
spans on the production timeline; the reversal of the change on the same clone
(`reversibility`), under the same watchdog; and this engine's findings (SG701-SG702, and SG302
from the reversal).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import sqlite3
import time
from collections.abc import Callable, Sequence

from changeapi.dryrun.analysis import rules_compat, rules_sqlite
from changeapi.dryrun.analysis.findings import AnalysisContext, finding_counts, run_rules
from changeapi.dryrun.analysis.held import transaction_entries
from changeapi.dryrun.analysis.sqlite_estimate import analyse_sqlite_statements, remakes_at_scale, sqlite_model_summary
from changeapi.dryrun.analysis.timeline import estimated_total_ms, lock_spans, production_timeline, table_blocking
from changeapi.dryrun.contract import Report, Reversibility, Summary
from changeapi.dryrun.engine import ProgressCallback, baseline_state
from changeapi.dryrun.profile import ProductionProfile
from changeapi.dryrun.reversibility import StatementGuard, limit_stopped, plan_reversible, reverse_plan
from changeapi.dryrun.sqlite_session import sqlite_session
from changeapi.dryrun.sqlite_tables import SqliteTableFacts, sqlite_table_facts
from changeapi.dryrun.sqlite_trace import (
    LimitExceeded,
    SqlitePlanRun,
    WriteProbe,
    apply_plan_traced_sqlite,
    table_remakes,
)
from changeapi.intake.plan import Plan
from changeapi.shadow.engine_servers import SqliteShadowServer
from changeapi.shadow.sqlite_seed import base_tables, quote


def dry_run_execute_sqlite(
    *,
    server: SqliteShadowServer,
    template: str,
    clone_name: str,
    baseline: Plan,
    change: Plan,
    on_progress: ProgressCallback | None = None,
    spares: list[str] | None = None,
    drop_clone: bool = True,
    profile: ProductionProfile | None = None,
) -> Report:
    """Take a spare of (or copy) the template, apply `change` traced, reverse it, delete the clone; the report.

    A database error in the change is a failed report, not an exception; so is a limit the
    watchdog enforced, which the error then names. After a successful run the change is
    reversed on the same connection, from the states the forwards run rendered, with the
    watchdog still timing each statement (a limit it enforces then is named in the failed
    entry). The findings size their work by `profile`'s production rows, else by the clone's
    (counted once the watchdog stopped, after the reversal: the tables the change found keep
    their rows, as no data step runs).
    """
    started_at = dt.datetime.now(dt.UTC)
    with sqlite_session(server, template=template, name=clone_name, spares=spares, drop=drop_clone) as session:
        watchdog = session.watchdog

        def check_limits() -> None:
            if watchdog.breach is not None:
                raise LimitExceeded(watchdog.breach)

        def on_statement(started: float | None) -> None:
            watchdog.statement_started = started

        raw = session.connection.connection
        assert raw is not None
        # The clone as the change found it, what each statement's time is scaled from: the tables
        # production figures were uploaded for (no other statement is estimated).
        facts = sqlite_table_facts(raw, only=profile.tables) if profile is not None and profile.has_sizes else SqliteTableFacts()
        probe = WriteProbe(session.path)
        base_state = baseline_state(baseline)
        reversibility: list[Reversibility] = []
        try:
            try:
                run = apply_plan_traced_sqlite(
                    session.connection,
                    change,
                    base_state,
                    probe=probe,
                    on_progress=on_progress,
                    check_limits=check_limits,
                    on_statement=on_statement,
                )
            finally:
                probe.close()
            if run.error is None:
                guard = _watched(check_limits, on_statement)
                reversibility = reverse_plan(session.connection, change, base_state, forwards_states=run.states, guard=guard)
        finally:
            watchdog.stop()
        rows = table_rows(raw)
    breach = watchdog.breach
    if breach is None and run.error is not None and "database or disk is full" in run.error.message:
        breach = (
            f"the clone reached its file-size cap of {session.max_bytes:,} bytes (the template's size plus "
            "SHADOW_MAX_CLONE_GROWTH_BYTES)"
        )
    if breach is not None and run.error is not None and not run.error.message.startswith(breach):
        run.error = dataclasses.replace(run.error, message=f"{breach}, and was stopped: {run.error.message}")
    reversibility = limit_stopped(reversibility, breach)
    return sqlite_report(
        run=run,
        server=server.key,
        server_version=sqlite3.sqlite_version,
        shadow_database=session.name,
        clone_ms=session.clone_ms,
        started_at=started_at.isoformat(),
        plan=change,
        profile=profile,
        table_rows=rows,
        facts=facts,
        reversibility=reversibility,
    )


def _watched(check_limits: Callable[[], None], on_statement: Callable[[float | None], None]) -> StatementGuard:
    """Each backwards statement as the forwards tracer runs one: not started once a limit has
    passed, and on the watchdog's clock while it runs."""

    def guard(execute: Callable[[], None]) -> None:
        check_limits()
        on_statement(time.monotonic())
        try:
            execute()
        finally:
            on_statement(None)

    return guard


def table_rows(raw: sqlite3.Connection) -> dict[str, int]:
    """The clone's rows per table after the run (the findings' size when no stats were uploaded)."""
    return {table: int(raw.execute(f"SELECT count(*) FROM {quote(table)}").fetchone()[0]) for table in base_tables(raw)}


def sqlite_report(
    *,
    run: SqlitePlanRun,
    server: str,
    server_version: str,
    shadow_database: str,
    clone_ms: float,
    started_at: str,
    plan: Plan | None = None,
    profile: ProductionProfile | None = None,
    table_rows: dict[str, int] | None = None,
    facts: SqliteTableFacts | None = None,
    reversibility: Sequence[Reversibility] = (),
) -> Report:
    """The report of a SQLite run: its statements classed and estimated at `profile`'s sizes
    from the clone's (`facts`), the database lock over time on the run's and the production
    timeline, remakes, the reversal, findings."""
    facts = facts or SqliteTableFacts()
    reversibility = tuple(reversibility)
    statements = analyse_sqlite_statements(run.statements, profile=profile, clone=facts)
    timeline = production_timeline(statements)
    estimated_total = estimated_total_ms(statements, timeline, run.total_ms, has_sizes=profile is not None and profile.has_sizes)
    spans = lock_spans(statements, run.transactions, run.total_ms, timeline)
    blocking = table_blocking(spans)
    remakes = remakes_at_scale(table_remakes(run.statements, run.copied_rows), statements)
    context = AnalysisContext(
        statements=statements,
        migrations=run.migrations,
        spans=spans,
        blocking=blocking,
        reversibility=reversibility,
        queue=(),
        plan=plan,
        profile=profile,
        engine="sqlite",
        table_rows=table_rows or {},
        remakes=remakes,
    )
    findings = run_rules(context, rules_sqlite.RULES + rules_compat.EVERY_ENGINE_RULES)
    return Report(
        engine="sqlite",
        server=server,
        server_version=server_version,
        shadow_database=shadow_database,
        clone_ms=clone_ms,
        started_at=started_at,
        finished_at=dt.datetime.now(dt.UTC).isoformat(),
        status="failed" if run.error else "succeeded",
        error=run.error,
        total_ms=run.total_ms,
        summary=Summary(
            migrations=len(run.migrations),
            operations=sum(len(m.operations) for m in run.migrations),
            statements=len(statements),
            rewrites=tuple(sorted({r.table for r in remakes})),
            tables_scanned=(),
            data_steps_not_executed=sum(1 for m in run.migrations for op in m.operations if not op.executed),
            estimated_total_ms=estimated_total,
            findings=finding_counts(findings),
            reversible=plan_reversible(reversibility),
        ),
        migrations=tuple(run.migrations),
        statements=statements,
        lock_spans=spans,
        tables=blocking,
        transactions=transaction_entries(statements, run.transactions, run.total_ms, timeline),
        estimation=sqlite_model_summary(facts, estimated=estimated_total is not None),
        reversibility=reversibility,
        findings=findings,
        remakes=remakes,
    )
