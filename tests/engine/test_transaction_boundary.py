"""SQL that ends the migration's transaction is caught by the engine, even where intake cannot see it."""

from __future__ import annotations

from typing import Any

from django.db.migrations import operations as ops
from django.db.migrations.state import ProjectState

from changeapi.dryrun.analysis.findings import AnalysisContext, run_rules
from changeapi.dryrun.analysis.rules_integrity import RULES
from changeapi.dryrun.connection import shadow_connection
from changeapi.dryrun.engine import apply_plan_traced
from changeapi.shadow.servers import configured_servers
from tests.engine.analysis.conftest import plan_of


def test_a_commit_inside_submitted_sql_stops_the_dry_run_with_a_high_finding(clone: str, django_db_blocker: Any) -> None:
    # Built directly: intake would refuse this SQL, the engine must catch it all the same.
    plan = plan_of(
        [
            ops.RunSQL("CREATE TABLE smuggled (id integer)"),
            ops.RunSQL("COMMIT; BEGIN; ALTER TABLE smuggled ALTER COLUMN id TYPE bigint; COMMIT; BEGIN"),
            ops.RunSQL("SELECT 1"),
        ]
    )
    with django_db_blocker.unblock(), shadow_connection(configured_servers()[0], clone) as connection:
        run = apply_plan_traced(connection, plan, ProjectState())

    assert run.error is not None and "ended the migration's transaction" in run.error.message
    assert run.statements[1].transaction_boundary is True
    assert len(run.statements) == 2
    context = AnalysisContext(
        statements=run.statements,
        migrations=run.migrations,
        spans=(),
        blocking=(),
        reversibility=(),
        queue=(),
        plan=plan,
        profile=None,
    )
    findings = run_rules(context, RULES)
    assert [(f.code, f.severity, f.statement_index) for f in findings] == [("SG501", "high", 1)]


def test_statements_in_one_transaction_pass_the_check(clone: str, django_db_blocker: Any) -> None:
    plan = plan_of([ops.RunSQL("CREATE TABLE fine (id integer)"), ops.RunSQL("ALTER TABLE fine ADD COLUMN n integer")])
    with django_db_blocker.unblock(), shadow_connection(configured_servers()[0], clone) as connection:
        run = apply_plan_traced(connection, plan, ProjectState())
    assert run.error is None
