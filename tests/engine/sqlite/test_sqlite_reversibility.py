"""A SQLite dry-run reverses the change on its clone after the forwards run: the backwards SQL is
what Django's SQLite schema editor runs to reverse it, table remakes included, a step without a
backwards step is irreversible (SG302), and a rollback that fails on the seeded rows is reported
failing at its statement, rolled back whole (SQLite's DDL is transactional)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.migrations import operations as ops
from django.db.migrations.operations.base import Operation

from changeapi.dryrun.contract import Report
from changeapi.dryrun.sqlite_run import dry_run_execute_sqlite
from changeapi.dryrun.sqlite_session import sqlite_session
from changeapi.shadow.engine_servers import SqliteShadowServer
from tests.engine.sqlite.conftest import TemplateFactory, plan_of, shop_baseline
from tests.support.django_backwards import django_backwards_sql

BASELINE = plan_of(shop_baseline())


def _run(server: SqliteShadowServer, template: str, *migrations: list[Operation]) -> Report:
    return dry_run_execute_sqlite(
        server=server,
        template=template,
        clone_name=f"{settings.SHADOW_DATABASE_PREFIX}dr_rv",
        baseline=BASELINE,
        change=plan_of(*migrations, start=2),
    )


REVERSIBLE = (
    [ops.AddField("order", "shipped", models.BooleanField(null=True))],
    [
        ops.AlterField("order", "total", models.BigIntegerField()),
        ops.AddIndex("order", models.Index(fields=["total"], name="order_total_ix")),
    ],
)


def test_a_reversible_change_reverses_with_djangos_sql_including_a_remake_backwards(
    server: SqliteShadowServer, shop_template: TemplateFactory
):
    template = shop_template(orders=300)

    report = _run(server, template.name, *REVERSIBLE)

    assert report.status == "succeeded", report.error
    assert [(r.migration, r.reversible, r.checked, r.reason) for r in report.reversibility] == [
        ("shop.0002_step", True, True, ""),
        ("shop.0003_step", True, True, ""),
    ]
    with sqlite_session(server, template=template.name, name=f"{settings.SHADOW_DATABASE_PREFIX}dr_django") as scratch:
        expected = django_backwards_sql(scratch.connection, BASELINE, plan_of(*REVERSIBLE, start=2))
    assert [list(r.backwards_sql) for r in report.reversibility] == expected
    remake = report.reversibility[1].backwards_sql
    assert remake[0] == 'DROP INDEX "order_total_ix"'
    assert remake[1].startswith('CREATE TABLE "new__shop_order" (') and '"total" integer NOT NULL' in remake[1]
    assert remake[4] == 'ALTER TABLE "new__shop_order" RENAME TO "shop_order"'
    assert report.summary.reversible is True
    assert "SG302" not in [f.code for f in report.findings]


def test_run_sql_without_reverse_sql_is_irreversible_and_sg302(server: SqliteShadowServer, shop_template: TemplateFactory):
    report = _run(server, shop_template().name, [ops.RunSQL('CREATE INDEX "order_note_ix" ON "shop_order" ("note")')])

    [entry] = report.reversibility
    assert (entry.checked, entry.reversible, entry.reason) == (True, False, "RunSQL without reverse_sql")
    [found] = [f for f in report.findings if f.code == "SG302"]
    assert found.migration == "shop.0002_step" and "RunSQL without reverse_sql" in found.message
    assert report.summary.reversible is False


def test_a_rollback_whose_remake_fails_on_the_seeded_rows_is_reported_failing_and_rolled_back_whole(
    server: SqliteShadowServer, shop_template: TemplateFactory
):
    # Backwards, the dropped NOT NULL total comes back by a remake that copies NULL into it.
    report = _run(
        server,
        shop_template(orders=200).name,
        [ops.AddField("order", "shipped", models.BooleanField(null=True)), ops.RemoveField("order", "total")],
    )

    assert report.status == "succeeded", report.error
    [entry] = report.reversibility
    assert entry.checked and not entry.reversible
    failing = len(entry.backwards_sql)
    assert entry.backwards_sql[failing - 1].startswith('INSERT INTO "new__shop_order"')
    assert entry.reason.startswith(f"the backwards SQL fails on the shadow at its statement {failing}: ")
    assert "NOT NULL constraint failed: new__shop_order.total" in entry.reason
    assert "stay applied" not in entry.reason  # the migration's transaction rolled the rollback back
    assert entry.data_loss == (
        "reversing 'Remove field total from order' re-creates the column empty (or with its default): its data is gone",
    )
    [found] = [f for f in report.findings if f.code == "SG302"]
    assert "NOT NULL constraint failed" in found.message


def test_the_rollback_runs_under_the_jobs_watchdog(server: SqliteShadowServer, shop_template: TemplateFactory, settings):
    settings.SHADOW_STATEMENT_TIMEOUT_MS = 500
    endless = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"

    report = _run(server, shop_template().name, [ops.RunSQL("SELECT 1", reverse_sql=endless)])

    [entry] = report.reversibility
    assert report.status == "succeeded" and not entry.reversible
    assert entry.reason == (
        "a statement ran past SHADOW_STATEMENT_TIMEOUT_MS (500 ms), and was stopped: "
        "the backwards SQL fails on the shadow at its statement 1: interrupted"
    )
