"""Engine entry point for MySQL/MariaDB: dry-run a plan on a clone of the baseline's template.

The same typed `Report` as PostgreSQL's `run.dry_run_execute`, with what this engine says:
per statement the algorithm and lock the server allows, whether the table was rebuilt, what
the statement blocks and that it committed on its own, its work class and estimate at
production size (`analysis/mysql_estimate`), the span of each statement's lock on the run's
and the production timeline (held for the statement alone: it commits on its own), what each
table had blocked, the findings of this engine's rules (SG601-SG605), and the reversal of the
change on the same clone (`reversibility`, SG302), through the job's own fenced session.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence

from changeapi.dryrun.analysis import rules_backfill, rules_compat, rules_mysql
from changeapi.dryrun.analysis.findings import AnalysisContext, finding_counts, run_rules
from changeapi.dryrun.analysis.mysql_estimate import analyse_mysql_statements, mysql_model_summary, worked_tables
from changeapi.dryrun.analysis.timeline import estimated_total_ms, lock_spans, production_timeline, table_blocking
from changeapi.dryrun.contract import Report, Reversibility, Summary
from changeapi.dryrun.engine import ProgressCallback, baseline_state
from changeapi.dryrun.mysql_connection import raw_connection
from changeapi.dryrun.mysql_session import mysql_session
from changeapi.dryrun.mysql_tables import MySqlTableFacts, mysql_table_facts
from changeapi.dryrun.mysql_trace import MySqlPlanRun, apply_plan_traced_mysql
from changeapi.dryrun.profile import ProductionProfile
from changeapi.dryrun.reversibility import limit_stopped, plan_reversible, reverse_plan
from changeapi.intake.plan import Plan
from changeapi.shadow.engine_servers import MySqlShadowServer
from changeapi.shadow.mysql_watchdog import mysql_breach_of


def dry_run_execute_mysql(
    *,
    server: MySqlShadowServer,
    template: str,
    clone_name: str,
    baseline: Plan,
    change: Plan,
    on_progress: ProgressCallback | None = None,
    spares: Sequence[str] = (),
    drop_clone: bool = True,
    profile: ProductionProfile | None = None,
) -> Report:
    """Take a spare of (or copy) the template, apply `change` traced, reverse it, drop the clone; the report.

    A database error in the change is a failed report, not an exception; the report's
    `shadow_database` is the database the run used (a claimed spare keeps its name). The
    findings size their work by `profile`'s production rows, else by the clone's, counted
    before the reversal. After a successful run the change is reversed on the same session
    (its lock waits bounded, its statements under the watchdog) from the states the forwards
    run rendered; DDL commits per statement here, so a rollback failing half-way leaves part of
    it applied on the clone, which is dropped anyway.
    """
    started_at = dt.datetime.now(dt.UTC)
    flavor = server.flavor()
    reversibility: list[Reversibility] = []
    with mysql_session(server, template=template, name=clone_name, spares=spares, drop=drop_clone) as session:
        with session.connection.cursor() as cursor:
            cursor.execute("SELECT VERSION()")
            server_version = str(cursor.fetchone()[0])
        probe = raw_connection(server, session.user)
        admin = server.admin_connect()
        base_state = baseline_state(baseline)
        try:
            run = apply_plan_traced_mysql(
                session.connection,
                change,
                base_state,
                flavor=flavor,
                probe_cursor=probe.cursor(),
                admin_cursor=admin.cursor(),
                connect=lambda: raw_connection(server, session.user),
                on_progress=on_progress,
            )
            facts = mysql_table_facts(probe.cursor(), worked_tables(run.statements))
        finally:
            probe.close()
            admin.close()
        if run.error is None:
            reversibility = reverse_plan(session.connection, change, base_state, forwards_states=run.states)
    breach = mysql_breach_of(session.user.name)
    if breach is not None and run.error is not None:
        run.error = dataclasses.replace(run.error, message=f"{breach}, and was stopped: {run.error.message}")
    reversibility = limit_stopped(reversibility, breach)
    return mysql_report(
        run=run,
        engine=flavor,
        server=server.key,
        server_version=server_version,
        shadow_database=session.name,
        clone_ms=session.clone_ms,
        started_at=started_at.isoformat(),
        plan=change,
        profile=profile,
        facts=facts,
        reversibility=reversibility,
    )


def mysql_report(
    *,
    run: MySqlPlanRun,
    engine: str,
    server: str,
    server_version: str,
    shadow_database: str,
    clone_ms: float,
    started_at: str,
    plan: Plan | None = None,
    profile: ProductionProfile | None = None,
    facts: MySqlTableFacts | None = None,
    reversibility: Sequence[Reversibility] = (),
) -> Report:
    """The report of a MySQL/MariaDB run: its statements as traced, classed and estimated at
    `profile`'s sizes from the clone's (`facts`), their summary, the reversal and the findings."""
    facts = facts or MySqlTableFacts()
    reversibility = tuple(reversibility)
    statements = analyse_mysql_statements(run.statements, profile=profile, clone=facts)
    timeline = production_timeline(statements)
    estimated_total = estimated_total_ms(statements, timeline, run.total_ms, has_sizes=profile is not None and profile.has_sizes)
    # Each statement commits on its own: the lock the server took is held for the statement only.
    spans = lock_spans(statements, {}, run.total_ms, timeline)
    blocking = table_blocking(spans)
    context = AnalysisContext(
        statements=statements,
        migrations=run.migrations,
        spans=spans,
        blocking=blocking,
        reversibility=reversibility,
        queue=(),
        plan=plan,
        profile=profile,
        engine=engine,
        table_rows=facts.rows,
        foreign_keys=facts.foreign_keys,
    )
    findings = run_rules(context, rules_mysql.RULES + rules_compat.EVERY_ENGINE_RULES + [rules_backfill.unbatched_data_change])
    return Report(
        engine=engine,
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
            rewrites=tuple(sorted({t for s in statements for t in s.rewrites})),
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
        estimation=mysql_model_summary(facts, estimated=estimated_total is not None),
        reversibility=reversibility,
        findings=findings,
    )
