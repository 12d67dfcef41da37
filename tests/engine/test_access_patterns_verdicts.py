"""Verdicts from two plans, without a database: the thresholds and the settings that move them."""

from __future__ import annotations

from typing import Any

from changeapi.dryrun.access_patterns import AccessPattern, PatternsSnapshot, access_patterns_report
from changeapi.dryrun.access_patterns.compare import Sizes, compare_plans
from changeapi.dryrun.access_patterns.explain import plan_summary
from changeapi.dryrun.profile import ProductionProfile, TableFigures


def scan(kind: str, cost: float, *, index: str | None = None, table: str = "shop_order") -> dict[str, Any]:
    node = {"Node Type": kind, "Relation Name": table, "Startup Cost": 0.0, "Total Cost": cost, "Plan Rows": 5}
    if index:
        node["Index Name"] = index
    return plan_summary([{"Plan": node}])


def sizes(rows: int | None) -> Sizes:
    tables = {"shop_order": TableFigures(rows=rows, total_bytes=rows * 100)} if rows is not None else {}
    return Sizes(ProductionProfile(tables, seed_max_rows=rows or 0), {"shop_order": (min(rows or 500, 20_000), 10)})


def verdict(before: dict[str, Any], after: dict[str, Any], rows: int | None = 1_000_000, factor: float = 2.0) -> Any:
    return compare_plans(before, after, sizes=sizes(rows), factor=factor, large_rows=10_000)


def test_an_index_scan_becoming_a_seq_scan_on_a_small_table_within_the_factor_is_unchanged():
    result = verdict(scan("Index Scan", 20, index="i"), scan("Seq Scan", 35), rows=2_000)

    assert result.verdict == "unchanged"
    assert "a small table (2,000 rows in production)" in result.reasons[0]


def test_cost_growing_past_the_factor_is_a_regression_whatever_the_scans():
    assert verdict(scan("Seq Scan", 100), scan("Seq Scan", 201)).verdict == "regressed"
    assert verdict(scan("Seq Scan", 100), scan("Seq Scan", 201), factor=3.0).verdict == "unchanged"


def test_cost_falling_past_the_factor_is_an_improvement():
    assert verdict(scan("Seq Scan", 100), scan("Seq Scan", 40)).verdict == "improved"


def test_without_table_stats_the_shadow_size_decides_whether_a_table_is_large():
    result = verdict(scan("Index Scan", 8, index="i"), scan("Seq Scan", 12), rows=None)

    assert result.verdict == "unchanged"
    assert "500 rows on the shadow, no table stats" in result.reasons[0]


def test_the_regression_factor_comes_from_settings(settings):
    settings.SCHEMAGATE_PLAN_REGRESSION_FACTOR = 10.0
    pattern = AccessPattern(name="p", sql="SELECT 1")
    before = PatternsSnapshot({"p": scan("Seq Scan", 100)}, {}, {}, {"shop_order": (500, 10)}, {})
    after = PatternsSnapshot({"p": scan("Seq Scan", 500)}, {}, {}, {"shop_order": (500, 10)}, {})

    block, findings = access_patterns_report(patterns=[pattern], before=before, after=after, profile=None, statements=[])

    assert block.regression_factor == 10.0
    assert block.patterns[0].verdict == "unchanged"
    assert findings == []
