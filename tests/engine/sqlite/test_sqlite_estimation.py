"""A SQLite dry-run estimates each statement at production size from the uploaded table stats
and the clone's own rows and bytes: a remake's copy linear in the rows, an index build n log n,
schema-only statements as timed, and nothing scaled without stats."""

from __future__ import annotations

import math
import sqlite3

from django.db import models
from django.db.migrations import operations as ops

from changeapi.dryrun.analysis.estimate import JITTER_MS, UNFITTED_RESIDUAL, growth_at_scale
from changeapi.dryrun.calibration import DEFAULT_NOISE
from changeapi.dryrun.contract import StatementTrace
from changeapi.dryrun.profile import ProductionProfile, TableFigures
from changeapi.dryrun.sqlite_tables import SqliteTableFacts, sqlite_table_facts
from changeapi.shadow.engine_servers import SqliteShadowServer
from changeapi.shadow.sqlite_files import shadow_path
from tests.engine.sqlite.conftest import TemplateFactory, dry_run_of, file_facts

WIDEN_TOTAL = [ops.AlterField("order", "total", models.BigIntegerField())]


def _scaled(facts: SqliteTableFacts, table: str, factor: int) -> ProductionProfile:
    """Production as `factor` times the clone's rows and bytes of `table` (the same row width)."""
    figures = TableFigures(rows=facts.rows[table] * factor, total_bytes=facts.total_bytes[table] * factor)
    return ProductionProfile(tables={table: figures})


def _estimate(statement: StatementTrace):  # noqa: ANN202 - the Estimate, never None here
    assert statement.estimate is not None
    return statement.estimate


def test_a_remakes_copy_at_ten_times_the_clones_rows_is_estimated_at_ten_times_its_time(
    server: SqliteShadowServer, shop_template: TemplateFactory
):
    template = shop_template(orders=2000)

    report = dry_run_of(server, template.name, WIDEN_TOTAL, _scaled(file_facts(server, template.name), "shop_order", 10))

    [remake] = report.remakes
    copy = report.statements[remake.statement_indexes[1]]
    estimate = _estimate(copy)
    assert (copy.work_class, copy.work_tables, estimate.law, estimate.rows_scale) == ("rewrite", ("shop_order",), "linear", 10)
    assert (estimate.width_scale, estimate.scale) == (1.0, 10.0)  # the clone's bytes weighed as production's were
    assert estimate.estimated_ms == round(estimate.measured_ms * 10, 3)
    # The stated range: the unfitted law's doubt over one e-fold and a bit of rows, the floor, the noise.
    factor = growth_at_scale(
        law="linear",
        rows_shadow=2000,
        rows_prod=20_000,
        width_ratio=1.0,
        deviation=0.0,
        residual=UNFITTED_RESIDUAL,
        noise=DEFAULT_NOISE,
    ).range_factor
    assert estimate.range_factor == round(factor, 3)
    assert estimate.low_ms == round(max(estimate.measured_ms * 10 / factor - JITTER_MS, 0.0), 3)
    assert estimate.high_ms == round(estimate.measured_ms * 10 * factor + JITTER_MS, 3)
    assert "on the clone's 2,000 rows" in estimate.basis


def test_an_index_build_on_an_existing_table_scales_n_log_n(server: SqliteShadowServer, shop_template: TemplateFactory):
    template = shop_template(orders=2000)
    index = ops.AddIndex("order", models.Index(fields=["total"], name="order_total_idx"))

    report = dry_run_of(server, template.name, [index], _scaled(file_facts(server, template.name), "shop_order", 10))

    [build] = [s for s in report.statements if s.command == "CREATE INDEX"]
    estimate = _estimate(build)
    growth = 20_000 * math.log2(20_001) / (2000 * math.log2(2001))
    assert (build.work_class, estimate.law) == ("index_build", "n_log_n")
    assert estimate.estimated_ms == round(estimate.measured_ms * growth, 3)
    assert estimate.exponent is not None and estimate.exponent > 1


def test_schema_only_statements_and_work_on_a_new_table_are_not_scaled(
    server: SqliteShadowServer, shop_template: TemplateFactory
):
    template = shop_template(orders=2000)
    change = [
        ops.AddField("order", "extra", models.TextField(null=True)),
        ops.CreateModel("Coupon", [("id", models.BigAutoField(primary_key=True)), ("code", models.CharField(max_length=9))]),
        ops.AddIndex("coupon", models.Index(fields=["code"], name="coupon_code_idx")),
    ]

    report = dry_run_of(server, template.name, change, _scaled(file_facts(server, template.name), "shop_order", 1000))

    assert [s.work_class for s in report.statements] == ["catalog_only"] * len(report.statements)
    for statement in report.statements:
        estimate = _estimate(statement)
        assert (estimate.law, estimate.estimated_ms, estimate.rows_scale) == ("constant", estimate.measured_ms, None)
    assert "shop_coupon was created by the change" in report.statements[-1].evidence


def test_without_table_stats_the_copy_is_not_estimated_and_the_model_says_so(
    server: SqliteShadowServer, shop_template: TemplateFactory
):
    template = shop_template(orders=500)

    report = dry_run_of(server, template.name, WIDEN_TOTAL, None)

    [remake] = report.remakes
    copy = _estimate(report.statements[remake.statement_indexes[1]])
    assert (copy.estimated_ms, copy.basis) == (None, "not estimated: no table stats uploaded")
    assert remake.estimate is not None and remake.estimate.estimated_ms is None
    assert report.estimation is not None and not report.estimation.estimated and not report.estimation.calibrated
    assert report.summary.estimated_total_ms is None


def test_a_remake_and_the_write_lock_it_holds_are_estimated_at_production_size(
    server: SqliteShadowServer, shop_template: TemplateFactory
):
    template = shop_template(orders=2000)

    report = dry_run_of(server, template.name, WIDEN_TOTAL, _scaled(file_facts(server, template.name), "shop_order", 50))

    [remake] = report.remakes
    assert remake.estimate is not None and remake.estimate.estimated_ms is not None
    steps = [_estimate(report.statements[i]) for i in remake.statement_indexes]
    assert remake.estimate.estimated_ms == round(sum(s.estimated_ms or 0.0 for s in steps), 3)
    assert remake.estimate.low_ms == round(sum(s.low_ms or 0.0 for s in steps), 3)
    [span] = report.lock_spans
    assert span.estimated_held_ms >= remake.estimate.estimated_ms > span.held_ms
    [finding] = report.findings
    assert f"100,000 rows in production, so about {_ms(remake.estimate.estimated_ms)} there" in finding.message
    assert report.estimation is not None and report.estimation.estimated and not report.estimation.calibrated
    # The clone's figures it scaled from: of the tables production figures were uploaded for.
    [seeded] = report.estimation.seeded_tables
    assert (seeded.table, seeded.rows) == ("shop_order", 2000) and seeded.bytes > 2000 * 8


def _ms(ms: float) -> str:
    return f"{ms:,.0f} ms" if ms < 1000 else f"{ms / 1000:,.2f} s"


def test_without_dbstat_the_clones_bytes_are_its_used_pages_shared_by_record_length(
    server: SqliteShadowServer, shop_template: TemplateFactory
):
    template = shop_template(orders=2000)
    raw = sqlite3.connect(f"file:{shadow_path(server, template.name)}?mode=ro", uri=True)
    try:
        shared = sqlite_table_facts(raw, use_dbstat=False)
        used = (raw.execute("PRAGMA page_count").fetchone()[0] - raw.execute("PRAGMA freelist_count").fetchone()[0]) * 4096
    finally:
        raw.close()

    assert shared.bytes_source == "page share"
    assert abs(sum(shared.total_bytes.values()) - used) <= len(shared.total_bytes)
    assert shared.total_bytes["shop_order"] > shared.total_bytes["shop_customer"] > 0


def test_a_runsql_update_of_an_existing_table_is_a_backfill_linear_in_its_rows(
    server: SqliteShadowServer, shop_template: TemplateFactory
):
    template = shop_template(orders=2000)
    backfill = ops.RunSQL("UPDATE shop_order SET total = total + 1", reverse_sql=ops.RunSQL.noop)

    report = dry_run_of(server, template.name, [backfill], _scaled(file_facts(server, template.name), "shop_order", 10))

    [update] = report.statements
    estimate = _estimate(update)
    assert (update.work_class, update.work_tables, estimate.law) == ("backfill", ("shop_order",), "linear")
    assert estimate.estimated_ms == round(estimate.measured_ms * 10, 3)


def test_dropping_a_column_rewrites_the_tables_rows(server: SqliteShadowServer, shop_template: TemplateFactory):
    template = shop_template(orders=2000)

    report = dry_run_of(
        server, template.name, [ops.RemoveField("order", "note")], _scaled(file_facts(server, template.name), "shop_order", 10)
    )

    [drop] = report.statements
    assert drop.sql == 'ALTER TABLE "shop_order" DROP COLUMN "note"'
    assert (drop.work_class, _estimate(drop).law, _estimate(drop).rows_scale) == ("rewrite", "linear", 10)
