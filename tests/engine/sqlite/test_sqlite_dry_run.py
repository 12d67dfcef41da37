"""A SQLite dry-run reports each statement as Django's SQLite schema editor ran it, the
database's one write lock from each transaction's first write to its commit, and Django's
table remakes as single steps with their time and rows; its limits stop it from outside."""

from __future__ import annotations

import time

import pytest
from django.conf import settings
from django.db import DatabaseError, models
from django.db.migrations import operations as ops

from changeapi.dryrun.contract import report_from_json, to_json
from changeapi.dryrun.sqlite_run import dry_run_execute_sqlite
from changeapi.dryrun.sqlite_session import template_build
from changeapi.intake.plan import Plan, PlannedMigration
from changeapi.shadow.engine_servers import SqliteShadowServer
from changeapi.shadow.sqlite_files import databases_named
from tests.engine.sqlite.conftest import TemplateFactory, plan_of, shop_baseline

ENDLESS = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"


def _run(server: SqliteShadowServer, template: str, *migrations: list[ops.Operation], **kwargs: object):
    return dry_run_execute_sqlite(
        server=server,
        template=template,
        clone_name=f"{settings.SHADOW_DATABASE_PREFIX}dr_test",
        baseline=plan_of(shop_baseline()),
        change=plan_of(*migrations, start=2),
        **kwargs,  # type: ignore[arg-type]
    )


def test_altering_a_column_is_one_remake_of_the_table_with_its_time_and_rows(
    server: SqliteShadowServer, shop_template: TemplateFactory
):
    template = shop_template(orders=2000)

    report = _run(server, template.name, [ops.AlterField("order", "total", models.BigIntegerField())])

    assert report.status == "succeeded", report.error
    [remake] = report.remakes
    assert (remake.table, remake.rows, remake.migration, remake.operation_index) == ("shop_order", 2000, "shop.0002_step", 0)
    steps = [report.statements[i] for i in remake.statement_indexes]
    assert [s.command for s in steps] == ["CREATE TABLE", "INSERT", "DROP TABLE", "ALTER TABLE", "CREATE INDEX", "CREATE INDEX"]
    assert steps[0].sql.startswith('CREATE TABLE "new__shop_order" (')
    assert steps[3].sql == 'ALTER TABLE "new__shop_order" RENAME TO "shop_order"'
    assert remake.duration_ms == round(sum(s.duration_ms or 0.0 for s in steps), 3) > 0
    assert report.summary.rewrites == ("shop_order",)


def test_the_write_lock_is_taken_by_the_first_write_and_held_to_the_commit(
    server: SqliteShadowServer, shop_template: TemplateFactory
):
    template = shop_template()

    report = _run(
        server,
        template.name,
        [
            ops.AddField("order", "extra", models.TextField(null=True)),
            ops.AddIndex("order", models.Index(fields=["total"], name="order_total_idx")),
        ],
    )

    add, index = report.statements
    assert report.remakes == ()
    assert index.sql == 'CREATE INDEX "order_total_idx" ON "shop_order" ("total")'
    [lock] = add.locks or ()
    assert (lock.relation, lock.mode, lock.blocks_reads, lock.blocks_writes, lock.source) == (
        "database",
        "RESERVED",
        False,
        True,
        "observed",  # a second connection could not start a write
    )
    assert index.locks == ()  # already held by its transaction
    [transaction] = report.transactions
    assert transaction.committed and [h.mode for h in transaction.held] == ["RESERVED"]
    [span] = report.lock_spans
    assert span.from_ms == add.started_ms and span.to_ms == transaction.released_ms >= index.end_ms


def test_renaming_a_field_and_a_table_alters_in_place_without_a_remake(
    server: SqliteShadowServer, shop_template: TemplateFactory
):
    template = shop_template()

    report = _run(server, template.name, [ops.RenameField("order", "note", "remark")])

    assert [s.sql for s in report.statements] == ['ALTER TABLE "shop_order" RENAME COLUMN "note" TO "remark"']
    assert report.remakes == ()
    assert [f.code for f in report.findings] == ["SG202"]  # no remake finding; the running code's old name breaks


def test_a_failing_migration_is_reported_and_leaves_the_clone_as_it_was(
    server: SqliteShadowServer, shop_template: TemplateFactory
):
    template = shop_template()

    report = _run(
        server,
        template.name,
        [ops.AddField("order", "extra", models.TextField(null=True)), ops.RunSQL("INSERT INTO missing_table VALUES (1)")],
    )

    assert report.status == "failed" and report.error is not None
    assert "no such table: missing_table" in report.error.message and report.error.statement_index == 1
    assert report.statements[1].error is not None and report.statements[1].locks is None
    [transaction] = report.transactions
    assert not transaction.committed


def test_the_sqlite_report_reads_back_from_its_json(server: SqliteShadowServer, shop_template: TemplateFactory):
    template = shop_template()
    report = _run(server, template.name, [ops.AlterField("order", "total", models.BigIntegerField())])

    assert report_from_json(to_json(report)) == report


def test_the_clone_is_deleted_after_the_run(server: SqliteShadowServer, shop_template: TemplateFactory):
    template = shop_template()
    _run(server, template.name, [ops.AddField("order", "extra", models.TextField(null=True))])

    assert databases_named(server, f"{settings.SHADOW_DATABASE_PREFIX}dr_") == []
    assert not any(p.name.startswith(f"{settings.SHADOW_DATABASE_PREFIX}dr_") for p in server.directory.iterdir())


def test_a_run_past_its_wall_time_is_interrupted_from_outside(
    server: SqliteShadowServer, shop_template: TemplateFactory, settings
):
    settings.SCHEMAGATE_DRY_RUN_WALL_SECONDS = 1
    template = shop_template()
    started = time.monotonic()

    report = _run(server, template.name, [ops.RunSQL(ENDLESS)])

    assert time.monotonic() - started < 30
    assert report.status == "failed" and report.error is not None
    assert report.error.message.startswith(
        "the dry-run exceeded its wall-time limit of 1 s (SCHEMAGATE_DRY_RUN_WALL_SECONDS), and was stopped: interrupted"
    )


def test_a_statement_past_its_time_is_interrupted_from_outside(
    server: SqliteShadowServer, shop_template: TemplateFactory, settings
):
    settings.SHADOW_STATEMENT_TIMEOUT_MS = 500
    template = shop_template()

    report = _run(server, template.name, [ops.RunSQL(ENDLESS)])

    assert report.error is not None
    assert report.error.message.startswith("a statement ran past SHADOW_STATEMENT_TIMEOUT_MS (500 ms), and was stopped")


def test_a_clone_that_outgrows_its_file_size_cap_fails_and_says_so(
    server: SqliteShadowServer, shop_template: TemplateFactory, settings
):
    settings.SHADOW_MAX_CLONE_GROWTH_BYTES = 64 * 1024
    template = shop_template()
    grow = "CREATE TABLE big AS WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 100000) SELECT x, hex(randomblob(64)) AS filler FROM c"

    report = _run(server, template.name, [ops.RunSQL(grow)])

    assert report.error is not None
    assert report.error.message.startswith("the clone reached its file-size cap of ")
    assert "database or disk is full" in report.error.message


def _odd_baseline(db_table: str) -> Plan:
    return plan_of(
        [
            ops.CreateModel(
                "Odd",
                [("id", models.BigAutoField(primary_key=True)), ("size", models.IntegerField())],
                options={"db_table": db_table},
            )
        ]
    )


def test_a_table_with_a_hostile_name_is_remade_seeded_and_reported_under_its_own_name(server: SqliteShadowServer, settings):
    hostile = "odd table; DROP TABLE shop_order; -- ünï"
    baseline = _odd_baseline(hostile)
    template = template_build(
        server=server, name=f"{settings.SHADOW_DATABASE_PREFIX}tpl_odd", baseline=baseline, rows={hostile: 30}
    )

    report = dry_run_execute_sqlite(
        server=server,
        template=template.name,
        clone_name=f"{settings.SHADOW_DATABASE_PREFIX}dr_odd",
        baseline=baseline,
        change=plan_of([ops.AlterField("odd", "size", models.BigIntegerField())], start=2),
    )

    assert report.status == "succeeded", report.error
    [remake] = report.remakes
    assert (remake.table, remake.rows) == (hostile, 30)
    assert report.statements[0].target_tables == (f"new__{hostile}",)


def test_a_baseline_django_cannot_apply_leaves_no_template_file(server: SqliteShadowServer, settings):
    # Django's SQLite backend does not escape a double quote in a name: migrate fails on it too.
    with pytest.raises(DatabaseError):
        template_build(server=server, name=f"{settings.SHADOW_DATABASE_PREFIX}tpl_bad", baseline=_odd_baseline('we"ird'))

    assert databases_named(server, settings.SHADOW_DATABASE_PREFIX) == []


def test_outside_a_transaction_each_write_takes_and_releases_the_lock_itself(
    server: SqliteShadowServer, shop_template: TemplateFactory, settings
):
    template = shop_template()
    change = Plan(
        [
            PlannedMigration(
                "shop",
                "0002_step",
                [
                    ops.AddField("order", "extra", models.TextField(null=True)),
                    ops.AddIndex("order", models.Index(fields=["total"], name="order_total_idx")),
                ],
                atomic=False,
            )
        ]
    )

    report = dry_run_execute_sqlite(
        server=server,
        template=template.name,
        clone_name=f"{settings.SHADOW_DATABASE_PREFIX}dr_nonatomic",
        baseline=plan_of(shop_baseline()),
        change=change,
    )

    assert [s.transaction for s in report.statements] == [None, None] and report.transactions == ()
    assert [[lock.source for lock in s.locks or ()] for s in report.statements] == [["documented"], ["documented"]]
    assert [span.to_ms for span in report.lock_spans] == [round(s.end_ms, 3) for s in report.statements]


def test_a_change_djangos_sqlite_editor_cannot_make_fails_the_report_with_djangos_error(
    server: SqliteShadowServer, shop_template: TemplateFactory
):
    template = shop_template()
    # Django 5.2's RenameField leaves the old name in a UniqueConstraint; renaming the model the
    # table refers to then remakes the table from that state, and `migrate` fails the same way.
    report = _run(
        server,
        template.name,
        [ops.AddConstraint("order", models.UniqueConstraint(fields=["code", "total"], name="order_code_total_uniq"))],
        [ops.RenameField("order", "code", "reference"), ops.RenameModel("Customer", "Client")],
    )

    assert report.status == "failed" and report.error is not None
    assert report.error.migration == "shop.0003_step" and "has no field named 'code'" in report.error.message
