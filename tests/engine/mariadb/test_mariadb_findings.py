"""The findings of a MariaDB dry-run (SG601-SG605), on a clone with 200,000 orders: each fires on
the change that triggers it, with its safer alternative, and not on work on a table the change
creates nor on an INSTANT change it does not concern."""

from __future__ import annotations

import uuid

import pytest
from django.conf import settings
from django.db import models
from django.db.migrations import operations as ops
from django.db.migrations.operations.base import Operation

from changeapi.dryrun.contract import Finding, Report
from changeapi.dryrun.mysql_run import dry_run_execute_mysql
from changeapi.dryrun.profile import ProductionProfile, TableFigures
from changeapi.shadow.engine_servers import MySqlShadowServer
from tests.engine.mariadb.conftest import TemplateFactory, plan_of, shop_baseline

pytestmark = pytest.mark.slow

ORDERS = 200_000


@pytest.fixture
def dry_run(mariadb: MySqlShadowServer, shop_template: TemplateFactory):
    template = shop_template(orders=ORDERS, customers=20_000)

    def run(*migrations: list[Operation], profile: ProductionProfile | None = None) -> Report:
        return dry_run_execute_mysql(
            server=mariadb,
            template=template.name,
            clone_name=f"{settings.SHADOW_DATABASE_PREFIX}t_df_{uuid.uuid4().hex[:8]}",
            baseline=plan_of(shop_baseline()),
            change=plan_of(*migrations, start=2),
            profile=profile,
        )

    return run


def _codes(report: Report) -> list[str]:
    return [f.code for f in report.findings]


def _one(report: Report, code: str) -> Finding:
    [found] = [f for f in report.findings if f.code == code]
    return found


def _new_model() -> ops.CreateModel:
    return ops.CreateModel(
        "Coupon",
        [
            ("id", models.BigAutoField(primary_key=True)),
            ("code", models.CharField(max_length=20)),
            ("total", models.IntegerField()),
            ("customer", models.ForeignKey("shop.Customer", models.CASCADE)),
        ],
    )


def test_a_copy_of_a_table_with_rows_is_sg601_with_an_online_schema_change_tool_and_its_foreign_key_caveat(dry_run):
    report = dry_run([ops.AlterField("order", "total", models.BigIntegerField())])
    found = _one(report, "SG601")
    assert found.severity == "medium" and found.table == "shop_order" and found.statement_index == 0
    assert "ALGORITHM=COPY" not in found.message and "copies the table row by row with LOCK=SHARED" in found.message
    assert "200,000 rows on the seeded shadow" in found.message and "LOCK=NONE was refused" in found.message
    assert "pt-online-schema-change" in found.safer_alternative.example
    assert "MODIFY `total` bigint NOT NULL" in found.safer_alternative.example
    steps = " ".join(found.safer_alternative.steps)
    assert "refuse tables with foreign keys" in steps and "shop_order -> shop_customer" in steps
    assert report.summary.findings.medium >= 1


def test_sg601_follows_the_production_rows_when_table_stats_are_uploaded(dry_run):
    profile = ProductionProfile(tables={"shop_order": TableFigures(rows=5_000_000, total_bytes=10**9)})
    found = _one(dry_run([ops.AlterField("order", "total", models.BigIntegerField())], profile=profile), "SG601")
    assert found.severity == "high" and "5,000,000 rows in production" in found.message


def test_a_varchar_widened_across_its_length_byte_is_told_to_stay_within_it(dry_run):
    # From 40 characters (160 bytes, values past 127 bytes have one length byte) to 100 (400 bytes).
    report = dry_run(
        [ops.AlterField("order", "code", models.CharField(max_length=40))],
        [ops.AlterField("order", "code", models.CharField(max_length=100))],
    )
    found = _one(report, "SG601")
    assert found.statement_index == 1
    assert "length-byte class" in found.safer_alternative.summary
    assert "max_length=63" in found.safer_alternative.example


def test_an_instant_change_and_work_on_a_new_table_are_no_sg601_and_a_new_table_triggers_nothing(dry_run):
    instant = dry_run([ops.AddField("order", "coupon", models.CharField(max_length=20, null=True))])
    assert "SG601" not in _codes(instant)
    new_table = dry_run([_new_model(), ops.AlterField("coupon", "total", models.BigIntegerField())])
    assert new_table.error is None
    assert not {"SG601", "SG602", "SG603", "SG604", "SG605"} & set(_codes(new_table))


def test_a_migration_of_several_statements_is_sg602_with_the_statements_that_undo_it(dry_run):
    report = dry_run(
        [
            ops.AddField("order", "coupon", models.CharField(max_length=20, null=True)),
            ops.AddIndex("order", models.Index(fields=["total"], name="order_total_idx")),
            ops.AlterField("order", "total", models.BigIntegerField()),
        ]
    )
    found = _one(report, "SG602")
    assert found.severity == "medium" and found.migration == "shop.0002_step"
    assert "statements 1-2 stay applied" in found.message
    assert found.safer_alternative.example == (
        "DROP INDEX `order_total_idx` ON `shop_order`;\nALTER TABLE `shop_order` DROP COLUMN `coupon`;"
    )


def test_a_migration_that_failed_half_way_is_a_high_sg602_naming_what_stayed(dry_run):
    report = dry_run(
        [
            ops.AddField("order", "coupon", models.CharField(max_length=20, null=True)),
            ops.AddField("order", "coupon2", models.IntegerField(unique=True, default=1)),
        ]
    )
    assert report.status == "failed"
    found = _one(report, "SG602")
    assert found.severity == "high" and "failed, and statement 1 stayed applied" in found.message
    assert "ALTER TABLE `shop_order` DROP COLUMN `coupon`;" in found.safer_alternative.example


def test_one_statement_per_migration_is_no_sg602(dry_run):
    report = dry_run(
        [ops.AddField("order", "coupon", models.CharField(max_length=20, null=True))],
        [ops.AddField("order", "status", models.CharField(max_length=10, default="new"))],
    )
    assert report.error is None and "SG602" not in _codes(report)


def test_any_alter_on_an_existing_table_is_sg603_and_sets_lock_wait_timeout(dry_run):
    report = dry_run([ops.AddField("order", "coupon", models.CharField(max_length=20, null=True))])
    found = _one(report, "SG603")
    assert "31,536,000 s (a year)" in found.message and "every later query" in found.message
    assert "SET SESSION lock_wait_timeout = 5" in found.safer_alternative.example
    assert "release bundles" in " ".join(found.safer_alternative.steps)


def test_sg603_counts_the_queries_that_queue_behind_the_oldest_transaction(dry_run):
    busy = TableFigures(rows=1_000, total_bytes=10**6, queries_per_second=200.0, oldest_transaction_seconds=30.0)
    report = dry_run(
        [ops.AddField("order", "coupon", models.CharField(max_length=20, null=True))],
        profile=ProductionProfile(tables={"shop_order": busy}),
    )
    found = _one(report, "SG603")
    assert found.severity == "high" and "about 6,000 queries queue" in found.message


def test_a_foreign_key_added_to_a_table_with_rows_is_sg604(dry_run):
    field = models.ForeignKey("shop.Customer", models.CASCADE, null=True, related_name="+")
    report = dry_run([ops.AddField("order", "referrer", field)])
    found = _one(report, "SG604")
    assert found.table == "shop_order" and "shop_customer is locked" in found.message
    assert "ALGORITHM=COPY, LOCK=SHARED" in found.message
    assert "foreign_key_checks = 0" in found.safer_alternative.example
    assert "SG601" not in _codes(report)  # the same statement, told once


def test_a_foreign_key_on_a_new_table_is_no_sg604(dry_run):
    report = dry_run([_new_model()])
    assert report.error is None and "SG604" not in _codes(report)


def test_an_instant_column_change_counts_toward_the_tables_limit_sg605(dry_run):
    report = dry_run(
        [ops.AddField("order", "coupon", models.CharField(max_length=20, null=True))],
        [ops.RemoveField("order", "note")],
    )
    found = _one(report, "SG605")
    assert found.severity == "low" and "statements 1-2 (2 instant column change(s))" in found.message
    assert "1017" in found.message and "A rebuild resets the count" in found.message
    assert "FORCE" in found.safer_alternative.example


def test_an_instant_rename_and_an_index_build_are_no_sg605(dry_run):
    report = dry_run(
        [ops.RenameField("order", "note", "remark")],
        [ops.AddIndex("order", models.Index(fields=["total"], name="order_total_idx"))],
    )
    assert report.error is None and "SG605" not in _codes(report)
