"""The compatibility findings of every engine on a MariaDB dry-run: a drop or a rename of what the
running version uses (SG201, SG202) and a data step among schema operations (SG301, worded for
DDL that commits statement by statement); none for a table the change itself creates."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.migrations import operations as ops
from django.db.migrations.operations.base import Operation

from changeapi.dryrun.contract import Finding, Report
from changeapi.dryrun.mysql_run import dry_run_execute_mysql
from changeapi.intake.plan import Plan, PlannedMigration
from changeapi.shadow.engine_servers import MySqlShadowServer
from tests.engine.mariadb.conftest import TemplateFactory, plan_of, shop_baseline


def _run(mariadb: MySqlShadowServer, shop_template: TemplateFactory, change: Plan) -> Report:
    report = dry_run_execute_mysql(
        server=mariadb,
        template=shop_template().name,
        clone_name=f"{settings.SHADOW_DATABASE_PREFIX}t_cf_{uuid.uuid4().hex[:8]}",
        baseline=plan_of(shop_baseline()),
        change=change,
    )
    assert report.status == "succeeded", report.error
    return report


def _found(report: Report, code: str) -> list[Finding]:
    return [f for f in report.findings if f.code == code]


def _fill_remarks(apps, schema_editor):  # noqa: ANN001, ANN201
    """A data step: the dry-run lists it and never calls it."""
    raise AssertionError("data steps are never run")


def _coupon() -> Operation:
    return ops.CreateModel("Coupon", [("id", models.BigAutoField(primary_key=True)), ("code", models.CharField(max_length=20))])


def test_dropping_a_column_of_an_existing_table_is_sg201(mariadb, shop_template):
    report = _run(mariadb, shop_template, plan_of([ops.RemoveField("order", "note")], start=2))

    [found] = _found(report, "SG201")
    assert found.table == "shop_order" and found.statement_index == 0


def test_renaming_a_column_of_an_existing_table_is_sg202(mariadb, shop_template):
    report = _run(mariadb, shop_template, plan_of([ops.RenameField("order", "note", "remark")], start=2))

    [found] = _found(report, "SG202")
    assert found.table == "shop_order" and "db_column='note'" in found.safer_alternative.example


def test_a_drop_and_a_rename_on_a_table_the_change_creates_are_no_finding(mariadb, shop_template):
    change = plan_of(
        [
            _coupon(),
            ops.AddField("coupon", "label", models.CharField(max_length=20, null=True)),
            ops.RenameField("coupon", "code", "token"),
            ops.RemoveField("coupon", "label"),
        ],
        start=2,
    )

    report = _run(mariadb, shop_template, change)

    assert _found(report, "SG201") == [] and _found(report, "SG202") == []


def test_a_data_step_among_schema_operations_says_each_ddl_statement_has_committed_before_it(mariadb, shop_template):
    change = Plan(
        [
            PlannedMigration(
                "shop",
                "0002_step",
                [ops.AddField("order", "remark", models.TextField(null=True)), ops.RunPython(_fill_remarks)],
            )
        ]
    )

    report = _run(mariadb, shop_template, change)

    [found] = _found(report, "SG301")
    assert "DDL is not transactional on this engine" in found.message
    assert "inside the schema change's transaction" not in found.message
