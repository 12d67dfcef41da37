"""Findings a DBA would not call noise, over the real migration histories of the test corpus.

A sample of the corpus (django.contrib and third-party apps of the `test` extra, read as text
as the SQL-equality test reads them; Oscar's large, interlinked apps are left out to keep it
quick) is applied traced on an empty shadow, once. Each migration is then reported on as a
change of its own on top of the ones before it, as a project uploading it would see: the
tables earlier migrations made exist, the ones it makes are new. No rule may fire on work on a
table the same migration created, and SG303 never on a constant default.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import pytest
from django.conf import settings
from django.db.migrations import operations as ops
from django.db.migrations.state import ProjectState
from django.db.models.fields import NOT_PROVIDED

from changeapi.dryrun.analysis.rules_compat import CONSTANT_CALLABLES
from changeapi.dryrun.connection import shadow_connection
from changeapi.dryrun.contract import Finding, Report
from changeapi.dryrun.engine import PlanRun, apply_plan_traced
from changeapi.dryrun.report import RunFacts, build_report
from changeapi.dryrun.sql_forms import statement_form
from changeapi.intake.plan import Plan, PlannedMigration
from changeapi.intake.python_source.history import plan_history
from changeapi.shadow import provision
from changeapi.shadow.servers import ShadowServer, configured_servers
from tests.engine.intake.history_corpus import history_files

pytestmark = pytest.mark.slow

# Apps whose histories are sampled, with the apps they depend on: about 200 migrations that
# create some 80 tables with a primary key and add constant container defaults (jsonb '[]').
SAMPLE_APPS = {
    "contenttypes",
    "auth",
    "sites",
    "sessions",
    "admin",
    "account",
    "socialaccount",
    "mfa",
    "oauth2_provider",
    "django_celery_beat",
    "django_q",
    "post_office",
    "cms",
    "knox",
    "token_blacklist",
    "waffle",
    "silk",
    "axes",
    "constance",
    "otp_email",
    "push_notifications",
}

# Rules about work on a table: none of them may name a table the migration itself created.
TABLE_WORK_RULES = {"SG101", "SG102", "SG103", "SG104", "SG105", "SG106", "SG201", "SG202", "SG303", "SG304"}
FACTS = RunFacts(
    engine="postgresql",
    server="corpus",
    server_version="",
    shadow_database="",
    clone_ms=0.0,
    started_at="",
    finished_at="",
)


@dataclass(frozen=True)
class MigrationReport:
    migration: PlannedMigration
    report: Report


@pytest.fixture(scope="module")
def shadow_server() -> ShadowServer:
    return configured_servers()[0]


@pytest.fixture(scope="module")
def corpus(shadow_server: ShadowServer, django_db_blocker: Any) -> Iterator[tuple[Plan, PlanRun]]:
    history = plan_history(history_files())
    sample = Plan([m for m in history.migrations if m.app_label in SAMPLE_APPS])
    prefix = settings.SHADOW_DATABASE_PREFIX
    template, clone = f"{prefix}precision_empty", f"{prefix}precision_run"
    with shadow_server.admin_connect() as conn:
        for name in (template, clone):
            provision.drop_database(conn, name)
    try:
        with django_db_blocker.unblock():
            provision.template_ensure(shadow_server, template, lambda dbname: None)
            provision.clone_create(shadow_server, template=template, name=clone)
            with shadow_connection(shadow_server, clone) as connection:
                run = apply_plan_traced(connection, sample, ProjectState())
        yield sample, run
    finally:
        with shadow_server.admin_connect() as conn:
            for name in (clone, template):
                provision.drop_database(conn, name)
            provision.job_role_drop(conn, shadow_server, clone)


def _migration_run(run: PlanRun, label: str) -> PlanRun:
    """The statements of one migration, numbered from 0, as if it had been the whole change."""
    statements = [s for s in run.statements if s.migration == label]
    transactions = {s.transaction for s in statements}
    return PlanRun(
        statements=tuple(replace(s, index=i) for i, s in enumerate(statements)),
        migrations=tuple(m for m in run.migrations if m.label == label),
        transactions={t: at for t, at in run.transactions.items() if t in transactions},
        error=None,
        total_ms=max((s.end_ms for s in statements), default=0.0),
    )


@pytest.fixture(scope="module")
def reports(corpus: tuple[Plan, PlanRun]) -> list[MigrationReport]:
    history, run = corpus
    made = []
    for migration in history.migrations:
        one = _migration_run(run, f"{migration.app_label}.{migration.name}")
        report = build_report(run=one, facts_of_run=FACTS, plan=Plan([migration]))
        made.append(MigrationReport(migration, report))
    return made


def _created_by_then(entry: MigrationReport, finding: Finding) -> set[str]:
    """What the migration had created by the finding's statement (a table dropped and made again
    by the same migration existed before it)."""
    last = finding.statement_index if finding.statement_index is not None else len(entry.report.statements)
    return {r for s in entry.report.statements[: last + 1] for r in s.created_relations}


def _sql(entry: MigrationReport, finding: Finding) -> str:
    return entry.report.statements[finding.statement_index].sql if finding.statement_index is not None else ""


def test_the_corpus_applies_without_error(corpus: tuple[Plan, PlanRun]) -> None:
    _, run = corpus
    assert run.error is None


def test_the_corpus_has_what_the_rules_were_noisy_on(reports: list[MigrationReport]) -> None:
    """The premise: many tables created with a primary key, and constant container defaults."""
    statements = [s for entry in reports for s in entry.report.statements]
    assert sum(1 for s in statements if s.sql.startswith("CREATE TABLE") and "PRIMARY KEY" in s.sql) >= 60
    assert any(re.search(r"ADD COLUMN .* DEFAULT '(\{\}|\[\])'", s.sql) for s in statements)


def test_no_finding_on_work_on_a_table_the_same_migration_created(reports: list[MigrationReport]) -> None:
    noise = [
        (f"{entry.migration.app_label}.{entry.migration.name}", f.code, f.table, _sql(entry, f)[:80])
        for entry in reports
        for f in entry.report.findings
        if f.code in TABLE_WORK_RULES and f.table in _created_by_then(entry, f)
    ]
    assert noise == []


def test_no_creating_statement_is_classed_as_work_on_existing_data(reports: list[MigrationReport]) -> None:
    classed = [
        (f"{entry.migration.app_label}.{entry.migration.name}", s.sql[:80], s.work_class)
        for entry in reports
        for s in entry.report.statements
        if s.command == "CREATE TABLE" and s.work_class != "catalog_only"
    ]
    assert classed == []


def _constant_default(entry: MigrationReport, finding: Finding) -> bool:
    """Whether the SG303 finding is about a default that is the same for every row by design:
    neither a volatile nor a once-evaluated SQL default, nor a Python callable that varies."""
    sql = _sql(entry, finding)
    form = statement_form(sql)
    if form.volatile_default_columns or form.once_default_columns:
        return False
    operation = entry.migration.operations[finding.operation_index] if finding.operation_index is not None else None
    if isinstance(operation, ops.AddField):
        default = operation.field.default
        varying = callable(default) and not any(default is constant for constant in CONSTANT_CALLABLES)
        return default is not NOT_PROVIDED and not varying
    return True


def test_no_volatile_default_finding_on_a_constant_default(reports: list[MigrationReport]) -> None:
    constant = [
        (f"{entry.migration.app_label}.{entry.migration.name}", f.message[:100])
        for entry in reports
        for f in entry.report.findings
        if f.code == "SG303" and _constant_default(entry, f)
    ]
    assert constant == []
