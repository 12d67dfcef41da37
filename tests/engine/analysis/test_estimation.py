"""Estimation: measured time scaled to production rows by each class's growth law, with a range
made of the fit's residual and the server's noise, or the reason there is no estimate."""

from __future__ import annotations

import dataclasses
import math

import pytest
from django.db import models
from django.db.migrations import operations as ops

from changeapi.dryrun.analysis.estimate import JITTER_MS, RANGE_FLOOR, catalog_only_estimate, growth_at_scale
from changeapi.dryrun.calibration import (
    CATALOG_RUNS,
    CATALOG_STATEMENTS,
    DEVIATION_BOUNDS,
    LINEAR,
    N_LOG_N,
    Calibration,
    CatalogCost,
    catalog_cost,
    class_fit,
    law_units,
)
from changeapi.dryrun.profile import ProductionProfile, TableFigures
from tests.engine.analysis.conftest import SMALL, plan_of, small, statement

REWRITE = plan_of([ops.AlterField("order", "total", models.BigIntegerField())])


def _growth(law: str = LINEAR, *, rows_prod: float = 200_000, width_ratio: float = 1.0, **doubt: float):
    figures = {"deviation": 0.0, "residual": 0.0, "noise": 0.0, **doubt}
    return growth_at_scale(law=law, rows_shadow=100_000, rows_prod=rows_prod, width_ratio=width_ratio, **figures)


def test_doubling_rows_doubles_linear_work():
    assert _growth(LINEAR).factor == pytest.approx(2.0)


def test_an_index_build_grows_by_n_log_n_in_rows():
    expected = law_units(N_LOG_N, 200_000) / law_units(N_LOG_N, 100_000)

    growth = _growth(N_LOG_N)

    assert growth.factor == pytest.approx(expected)
    assert 2.0 < growth.factor < 2.2


def test_a_seed_wider_than_production_moves_the_estimate_only_through_the_bytes_share():
    narrower_in_production = _growth(LINEAR, width_ratio=0.5)

    assert narrower_in_production.factor == pytest.approx(2.0)
    assert narrower_in_production.width_scale == pytest.approx(0.75)


def test_a_fitted_deviation_from_the_law_is_carried_into_the_growth():
    assert _growth(LINEAR, deviation=0.1).factor == pytest.approx(2.0**1.1)


def test_no_range_is_narrower_than_the_floor():
    assert _growth(LINEAR, rows_prod=100_000).range_factor == pytest.approx(RANGE_FLOOR, rel=0.01)


def test_the_range_widens_with_the_servers_noise():
    assert _growth(LINEAR, noise=0.3).range_factor > _growth(LINEAR, noise=0.05).range_factor


def test_the_range_widens_as_the_residual_is_extrapolated_further():
    near = _growth(LINEAR, rows_prod=200_000, residual=0.2)
    far = _growth(LINEAR, rows_prod=10_000_000, residual=0.2)

    assert far.range_factor > near.range_factor > _growth(LINEAR, rows_prod=200_000).range_factor


def test_a_fit_through_linear_timings_finds_the_law_and_its_coefficient():
    fitted = class_fit("rewrite", 2.0, (2.0 + 12.5, 0.05), (2.0 + 100.0, 0.08), 12_500, 100_000)

    assert fitted.law == LINEAR
    assert fitted.residual == pytest.approx(0.0, abs=1e-4)
    assert fitted.coefficient_ms == pytest.approx(0.001)
    assert fitted.fixed_ms == 2.0
    assert fitted.noise == 0.08


def test_a_fit_past_the_bounds_is_bounded_and_says_so():
    fitted = class_fit("rewrite", 0.0, (10.0, 0.0), (10.0 * 8**1.6, 0.0), 12_500, 100_000)

    assert fitted.residual == pytest.approx(0.6, abs=1e-3)
    assert fitted.deviation == DEVIATION_BOUNDS["rewrite"][1]
    assert "bounded" in fitted.note


def test_a_deviation_within_the_noise_is_weighed_down_towards_the_law():
    timings = ((10.0, 0.4), (10.0 * 8**1.1, 0.4))

    noisy = class_fit("rewrite", 0.0, *timings, 12_500, 100_000)

    assert noisy.residual == pytest.approx(0.1, abs=1e-3)
    assert 0.0 < noisy.deviation < 0.05
    assert "noise" in noisy.note


def test_an_index_build_fit_measures_its_deviation_from_n_log_n_not_from_linear():
    small_units, large_units = law_units(N_LOG_N, 12_500), law_units(N_LOG_N, 100_000)

    fitted = class_fit("index_build", 0.0, (small_units * 1e-4, 0.0), (large_units * 1e-4, 0.0), 12_500, 100_000)

    assert fitted.residual == pytest.approx(0.0, abs=1e-4)
    assert fitted.exponent > 1.0


def test_a_calibration_stored_before_laws_were_kept_reads_with_each_class_s_law():
    stored = {"small_rows": 5_000, "small_bytes": 1, "large_rows": 40_000, "large_bytes": 8, "classes": {}}
    stored["classes"] = {"index_build": {"exponent": 1.12, "small_ms": 5.0, "large_ms": 50.0}}

    calibration = Calibration.from_dict(stored)

    assert calibration.classes["index_build"].law == N_LOG_N
    assert calibration.classes["index_build"].deviation == 0.0


def test_without_table_stats_nothing_is_estimated_and_the_report_says_why(dry_run):
    report = dry_run(REWRITE)

    estimate = report["statements"][0]["estimate"]
    assert estimate["estimated_ms"] is None
    assert "no table stats" in estimate["basis"]
    assert report["estimation"]["estimated"] is False


def test_the_report_shows_each_class_s_formula_coefficients_and_noise(dry_run):
    model = dry_run(REWRITE, profile=small())["estimation"]

    assert len(model["calibration_sizes"]) == 2
    laws = {e["work_class"]: e["law"] for e in model["exponents"]}
    assert laws == {"backfill": LINEAR, "index_build": N_LOG_N, "rewrite": LINEAR, "validation": LINEAR}
    assert all(e["formula"] and e["coefficient_ms"] >= 0 and e["noise"] >= 0 for e in model["exponents"])
    assert model["range_floor"] == RANGE_FLOOR
    assert model["jitter_ms"] >= JITTER_MS
    assert model["noise"] >= 0


def test_a_rewrite_at_twice_the_seeded_rows_is_estimated_at_twice_its_variable_time(dry_run):
    seeded = small()
    twice = ProductionProfile(
        {name: TableFigures(f.rows * 2, f.total_bytes * 2) for name, f in seeded.tables.items()},
        seed_max_rows=max(SMALL.values()),
    )

    report = dry_run(REWRITE, profile=twice)

    estimate = statement(report, "TYPE bigint")["estimate"]
    rewrite = next(e for e in report["estimation"]["exponents"] if e["work_class"] == "rewrite")
    fixed = min(rewrite["fixed_ms"], estimate["measured_ms"] * 0.9)
    grown = (estimate["measured_ms"] - fixed) * 2 ** (1 + rewrite["deviation"]) * estimate["width_scale"]
    assert estimate["rows_scale"] == 2.0
    assert estimate["law"] == LINEAR
    assert estimate["estimated_ms"] == pytest.approx(fixed + grown, rel=1e-3, abs=0.01)


def test_a_range_holds_its_estimate_and_is_never_a_few_percent_wide(dry_run):
    tenfold = ProductionProfile(
        {name: TableFigures(f.rows * 10, f.total_bytes * 10) for name, f in small().tables.items()},
        seed_max_rows=max(SMALL.values()),
    )

    estimate = statement(dry_run(REWRITE, profile=tenfold), "TYPE bigint")["estimate"]

    assert estimate["low_ms"] < estimate["estimated_ms"] < estimate["high_ms"]
    assert estimate["high_ms"] / estimate["estimated_ms"] >= RANGE_FLOOR
    assert estimate["range_factor"] >= RANGE_FLOOR


def test_more_bytes_at_the_same_rows_raise_an_estimate_only_through_the_bytes_share(dry_run):
    wider = ProductionProfile(
        {name: TableFigures(f.rows, f.total_bytes * 2) for name, f in small().tables.items()},
        seed_max_rows=max(SMALL.values()),
    )

    estimate = statement(dry_run(REWRITE, profile=wider), "TYPE bigint")["estimate"]

    assert estimate["rows_scale"] == 1.0
    assert 1.0 < estimate["width_scale"] < 2.0


COST = CatalogCost(median_ms=0.4, low_ms=0.3, high_ms=0.6, max_ms=1.2, runs=42)


def test_catalog_only_timings_give_their_median_percentiles_and_slowest():
    cost = catalog_cost([0.1 * n for n in range(1, 12)])

    assert cost.median_ms == pytest.approx(0.6)
    assert cost.low_ms == pytest.approx(0.2)
    assert cost.high_ms == pytest.approx(1.0)
    assert cost.max_ms == pytest.approx(1.1)
    assert cost.runs == 11


def _catalog_only(measured: float, *, creates_relations: bool = False, cost: CatalogCost = COST, noise: float = 0.1):
    return catalog_only_estimate(measured, creates_relations=creates_relations, cost=cost, noise=noise, jitter_ms=JITTER_MS)


def test_a_catalog_only_change_of_an_existing_table_weighs_its_timing_against_the_servers_catalog_only_median():
    estimate = _catalog_only(0.9)

    assert estimate.estimated_ms == pytest.approx(math.sqrt(COST.median_ms * 0.9), abs=1e-3)
    assert estimate.law == "constant"
    assert estimate.low_ms < COST.low_ms
    assert estimate.high_ms >= 0.9 * RANGE_FLOOR + JITTER_MS


def test_a_slow_timing_of_a_catalog_only_change_moves_its_estimate_only_half_way_in_ratio():
    slowed = _catalog_only(COST.median_ms * 16)

    assert slowed.estimated_ms == pytest.approx(COST.median_ms * 4, abs=1e-3)
    assert slowed.low_ms < COST.median_ms < slowed.high_ms
    assert slowed.high_ms > COST.median_ms * 16


def test_a_quick_timing_of_a_catalog_only_change_keeps_the_servers_spread_in_its_range():
    quick = _catalog_only(0.05)

    assert quick.low_ms < 0.05 < COST.high_ms < quick.high_ms


def test_a_catalog_only_statement_that_creates_relations_is_estimated_as_timed_down_to_the_typical_cost():
    estimate = _catalog_only(6.0, creates_relations=True)

    assert estimate.estimated_ms == 6.0
    assert estimate.low_ms < COST.low_ms
    assert estimate.high_ms > 6.0 * RANGE_FLOOR


def test_a_catalog_only_range_widens_with_the_spread_of_the_servers_catalog_timings():
    quiet = _catalog_only(0.4, noise=0.0)
    busy = _catalog_only(0.4, noise=0.0, cost=CatalogCost(median_ms=0.4, low_ms=0.2, high_ms=1.2, max_ms=4.0, runs=42))

    assert busy.range_factor > quiet.range_factor
    assert busy.high_ms > quiet.high_ms


def test_a_calibration_stored_before_catalog_only_statements_were_timed_reads_without_their_cost():
    stored = {"small_rows": 5_000, "small_bytes": 1, "large_rows": 40_000, "large_bytes": 8, "classes": {}}

    assert Calibration.from_dict(stored).catalog is None
    assert Calibration.from_dict({**stored, "catalog": dataclasses.asdict(COST)}).catalog == COST


def test_a_catalog_only_statement_is_estimated_at_what_such_statements_cost_on_the_server(dry_run):
    report = dry_run(plan_of([ops.AddField("order", "flag", models.BooleanField(null=True))]), profile=small())

    estimate = report["statements"][0]["estimate"]
    cost = report["estimation"]["catalog_only"]
    assert estimate["work_class"] == "catalog_only"
    assert estimate["law"] == "constant"
    assert cost["runs"] == len(CATALOG_STATEMENTS) * CATALOG_RUNS
    assert cost["low_ms"] <= cost["median_ms"] <= cost["high_ms"] <= cost["max_ms"]
    assert estimate["estimated_ms"] == pytest.approx(math.sqrt(cost["median_ms"] * estimate["measured_ms"]), abs=1e-3)
    assert estimate["low_ms"] <= estimate["estimated_ms"] <= estimate["high_ms"]
    assert estimate["low_ms"] <= estimate["measured_ms"] <= estimate["high_ms"]


def test_a_create_table_is_estimated_at_its_own_timing(dry_run):
    coupon = ops.CreateModel(
        "Coupon",
        [("id", models.BigAutoField(primary_key=True)), ("code", models.CharField(max_length=20, unique=True))],
    )

    estimate = statement(dry_run(plan_of([coupon]), profile=small()), 'CREATE TABLE "shop_coupon"')["estimate"]

    assert estimate["work_class"] == "catalog_only"
    assert estimate["estimated_ms"] == estimate["measured_ms"]
    assert estimate["low_ms"] <= estimate["measured_ms"] <= estimate["high_ms"]


def test_the_production_lock_span_covers_the_estimated_work_it_holds_through(dry_run):
    change = plan_of(
        [
            ops.AddField("order", "flag", models.BooleanField(null=True)),
            ops.AlterField("order", "total", models.BigIntegerField()),
        ]
    )
    seeded = small()
    tenfold = ProductionProfile(
        {name: TableFigures(f.rows * 10, f.total_bytes * 10) for name, f in seeded.tables.items()}, seed_max_rows=2_000
    )

    report = dry_run(change, profile=tenfold)

    rewrite = statement(report, "TYPE bigint")["estimate"]["estimated_ms"]
    blocked = next(t for t in report["tables"] if t["table"] == "shop_order")
    assert blocked["reads_blocked_estimated_ms"] >= rewrite
    assert report["summary"]["estimated_total_ms"] >= rewrite
    assert math.isfinite(rewrite)
