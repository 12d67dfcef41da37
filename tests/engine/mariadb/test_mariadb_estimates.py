"""Estimates at production size on the local MariaDB: a clone with 200,000 orders, production
said to hold ten times as many. A COPY rebuild grows with the rows from its own time on the
clone; an INSTANT change stays at its measured time; the report states the model and the
clone's sizes it scaled from."""

from __future__ import annotations

import uuid

import pytest
from django.conf import settings
from django.db import models
from django.db.migrations import operations as ops
from django.db.migrations.operations.base import Operation

from changeapi.dryrun.contract import Report, StatementTrace
from changeapi.dryrun.mysql_run import dry_run_execute_mysql
from changeapi.dryrun.profile import ProductionProfile, TableFigures
from changeapi.dryrun.render.markdown import report_markdown
from changeapi.shadow.engine_servers import MySqlShadowServer
from tests.engine.mariadb.conftest import TemplateFactory, plan_of, shop_baseline

pytestmark = pytest.mark.slow

ORDERS = 200_000
PRODUCTION = ProductionProfile(
    tables={
        "shop_order": TableFigures(rows=10 * ORDERS, total_bytes=10 * ORDERS * 120),
        "shop_customer": TableFigures(rows=200_000, total_bytes=200_000 * 100),
    }
)


@pytest.fixture
def dry_run(mariadb: MySqlShadowServer, shop_template: TemplateFactory):
    template = shop_template(orders=ORDERS, customers=20_000)

    def run(*operations: Operation) -> Report:
        report = dry_run_execute_mysql(
            server=mariadb,
            template=template.name,
            clone_name=f"{settings.SHADOW_DATABASE_PREFIX}t_dr_{uuid.uuid4().hex[:8]}",
            baseline=plan_of(shop_baseline()),
            change=plan_of(list(operations), start=2),
            profile=PRODUCTION,
        )
        assert report.error is None, report.error
        return report

    return run


def _only(report: Report) -> StatementTrace:
    [statement] = report.statements
    return statement


def test_a_copy_rebuild_at_ten_times_the_clones_rows_is_estimated_about_ten_times_longer(dry_run):
    statement = _only(dry_run(ops.AlterField("order", "total", models.BigIntegerField())))
    estimate, ddl = statement.estimate, statement.online_ddl

    assert estimate is not None and ddl is not None and ddl.probe_ms is not None
    assert (estimate.work_class, estimate.law, estimate.rows_scale) == ("rewrite", "linear", 10.0)
    assert estimate.estimated_ms == pytest.approx(
        ddl.probe_ms + (estimate.measured_ms - ddl.probe_ms) * 10 * (estimate.width_scale or 0), rel=1e-3
    )
    # The one-row copy's fixed cost is a small part of copying 200,000 rows.
    assert 5 < estimate.estimated_ms / estimate.measured_ms <= 10 * (estimate.width_scale or 0)


def test_an_instant_change_is_estimated_at_its_measured_time(dry_run):
    statement = _only(dry_run(ops.AddField("order", "coupon", models.CharField(max_length=20, null=True))))
    estimate = statement.estimate

    assert estimate is not None and statement.online_ddl is not None and statement.online_ddl.algorithm == "INSTANT"
    assert (estimate.work_class, estimate.law) == ("catalog_only", "constant")
    assert estimate.estimated_ms == estimate.measured_ms


def test_the_report_states_the_model_the_clones_sizes_and_a_total_at_production_size(dry_run):
    report = dry_run(
        ops.AddField("order", "coupon", models.CharField(max_length=20, null=True)),
        ops.AddIndex("order", models.Index(fields=["total"], name="order_total_idx")),
    )

    assert report.estimation is not None and report.estimation.estimated and not report.estimation.calibrated
    [order] = report.estimation.seeded_tables
    assert order.table == "shop_order" and order.rows == ORDERS and order.bytes > 0
    assert [s.work_class for s in report.statements] == ["catalog_only", "index_build"]
    assert report.summary.estimated_total_ms is not None and report.summary.estimated_total_ms > report.total_ms
    markdown = report_markdown(report, public_url="https://schemagate.example")
    assert "at production size" in markdown and "index build; ALGORITHM=NOCOPY, LOCK=NONE" in markdown
