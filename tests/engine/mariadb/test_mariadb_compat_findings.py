"""The compatibility findings of every engine on a MariaDB dry-run: a drop or a rename of what the
running version uses (SG201, SG202) and a data step among schema operations (SG301, worded for
DDL that commits statement by statement); none for a table the change itself creates."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.migrations import operations as ops

from changeapi.dryrun.contract import Report
from changeapi.dryrun.mysql_run import dry_run_execute_mysql
from changeapi.intake.plan import Plan, PlannedMigration
from changeapi.shadow.engine_servers import MySqlShadowServer
from tests.engine.mariadb.conftest import TemplateFactory, plan_of, shop_baseline
from tests.support.compat_changes import coupon_then_drop_and_rename, fill_remarks, findings_of


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


def test_dropping_a_column_of_an_existing_table_is_sg201(mariadb, shop_template):
    report = _run(mariadb, shop_template, plan_of([ops.RemoveField("order", "note")], start=2))

    [found] = findings_of(report, "SG201")
    assert found.table == "shop_order" and found.statement_index == 0


def test_renaming_a_column_of_an_existing_table_is_sg202(mariadb, shop_template):
    report = _run(mariadb, shop_template, plan_of([ops.RenameField("order", "note", "remark")], start=2))

    [found] = findings_of(report, "SG202")
    assert found.table == "shop_order" and "db_column='note'" in found.safer_alternative.example


def test_a_drop_and_a_rename_on_a_table_the_change_creates_are_no_finding(mariadb, shop_template):
    change = plan_of(coupon_then_drop_and_rename(), start=2)

    report = _run(mariadb, shop_template, change)

    assert findings_of(report, "SG201") == [] and findings_of(report, "SG202") == []


def test_a_data_step_among_schema_operations_says_each_ddl_statement_has_committed_before_it(mariadb, shop_template):
    change = Plan(
        [
            PlannedMigration(
                "shop",
                "0002_step",
                [ops.AddField("order", "remark", models.TextField(null=True)), ops.RunPython(fill_remarks)],
            )
        ]
    )

    report = _run(mariadb, shop_template, change)

    [found] = findings_of(report, "SG301")
    assert "DDL is not transactional on this engine" in found.message
    assert "inside the schema change's transaction" not in found.message
