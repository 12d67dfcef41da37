"""Estimation: measured time scaled to production bytes by the calibrated model, or why not."""

from __future__ import annotations

from django.db import models
from django.db.migrations import operations as ops

from changeapi.dryrun.profile import ProductionProfile, TableFigures
from tests.engine.analysis.conftest import SMALL, plan_of, small, statement

REWRITE = plan_of([ops.AlterField("order", "total", models.BigIntegerField())])


def test_without_table_stats_nothing_is_estimated_and_the_report_says_why(dry_run):
    report = dry_run(REWRITE)

    estimate = report["statements"][0]["estimate"]
    assert estimate["estimated_ms"] is None
    assert "no table stats" in estimate["basis"]
    assert report["estimation"]["estimated"] is False


def test_a_rewrite_is_scaled_by_production_bytes_with_the_calibrated_exponent(dry_run):
    seeded = small()
    tenfold = ProductionProfile(
        {name: TableFigures(f.rows, f.total_bytes * 10) for name, f in seeded.tables.items()}, seed_max_rows=max(SMALL.values())
    )

    report = dry_run(REWRITE, profile=tenfold)

    estimate = statement(report, "TYPE bigint")["estimate"]
    shadow_bytes = next(t["bytes"] for t in report["estimation"]["seeded_tables"] if t["table"] == "shop_order")
    assert estimate["scale"] == round(tenfold.tables["shop_order"].total_bytes / shadow_bytes, 3)
    assert estimate["exponent"] == next(e["exponent"] for e in report["estimation"]["exponents"] if e["work_class"] == "rewrite")
    assert estimate["low_ms"] <= estimate["estimated_ms"] <= estimate["high_ms"]
    assert estimate["estimated_ms"] > estimate["measured_ms"]


def test_a_catalog_only_statement_is_estimated_at_its_measured_time(dry_run):
    report = dry_run(plan_of([ops.AddField("order", "flag", models.BooleanField(null=True))]), profile=small())

    estimate = report["statements"][0]["estimate"]
    assert estimate["work_class"] == "catalog_only"
    assert estimate["estimated_ms"] == estimate["measured_ms"]


def test_the_production_lock_span_covers_the_estimated_work_it_holds_through(dry_run):
    change = plan_of(
        [
            ops.AddField("order", "flag", models.BooleanField(null=True)),
            ops.AlterField("order", "total", models.BigIntegerField()),
        ]
    )
    seeded = small()
    tenfold = ProductionProfile(
        {name: TableFigures(f.rows, f.total_bytes * 10) for name, f in seeded.tables.items()}, seed_max_rows=2_000
    )

    report = dry_run(change, profile=tenfold)

    rewrite = statement(report, "TYPE bigint")["estimate"]["estimated_ms"]
    blocked = next(t for t in report["tables"] if t["table"] == "shop_order")
    assert blocked["reads_blocked_estimated_ms"] >= rewrite
    assert report["summary"]["estimated_total_ms"] >= rewrite
