"""How close a SQLite estimate at production size comes to the time measured at that size: a
remake of shop_order (AlterField) estimated on a 20,000-row clone for 200,000 rows, then run on a
200,000-row clone; also an index build. Prints figures; not pass/fail.

    .venv/bin/pytest -p no:xdist -q -s tests/bench/bench_sqlite_estimation.py
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import models
from django.db.migrations import operations as ops

from changeapi.dryrun.contract import Estimate, Report
from changeapi.dryrun.profile import ProductionProfile, TableFigures
from changeapi.dryrun.sqlite_session import template_build
from changeapi.shadow.engine_servers import SqliteShadowServer, sqlite_server
from tests.engine.sqlite.conftest import dry_run_of, file_facts, plan_of, shop_baseline

CLONE_ROWS, PRODUCTION_ROWS, RUNS = 20_000, 200_000, 5
CHANGES = {
    "remake (AlterField total)": [ops.AlterField("order", "total", models.BigIntegerField())],
    "index build (AddIndex total)": [ops.AddIndex("order", models.Index(fields=["total"], name="order_total_idx"))],
}


def _template(server: SqliteShadowServer, orders: int) -> str:
    return template_build(
        server=server,
        name=f"{settings.SHADOW_DATABASE_PREFIX}tpl_est_{orders}",
        baseline=plan_of(shop_baseline()),
        rows={"shop_order": orders, "shop_customer": orders // 10},
    ).name


def _worked(report: Report) -> tuple[float, Estimate | None]:
    """The remake's time and estimate, or else the index build's."""
    if report.remakes:
        [remake] = report.remakes
        return remake.duration_ms, remake.estimate
    [build] = [s for s in report.statements if s.command == "CREATE INDEX"]
    return build.duration_ms or 0.0, build.estimate


def test_sqlite_estimate_against_the_measured_time_at_production_size(tmp_path: Path, django_db_blocker: Any) -> None:
    server = sqlite_server(f"sqlite://{tmp_path}")
    with django_db_blocker.unblock():
        small, large = _template(server, CLONE_ROWS), _template(server, PRODUCTION_ROWS)
        facts = file_facts(server, large)
        # Production as the 200,000-row file measures (the documented upload's figures).
        profile = ProductionProfile(
            tables={t: TableFigures(rows=facts.rows[t], total_bytes=facts.total_bytes[t]) for t in facts.rows}
        )
        for label, change in CHANGES.items():
            # Alternated, so a change in the machine's load falls on both sides alike.
            estimates, times = [], []
            for _ in range(RUNS):
                estimates.append(_worked(dry_run_of(server, small, change, profile))[1])
                times.append(_worked(dry_run_of(server, large, change))[0])
            measured = statistics.median(times)
            clone_ms = statistics.median(e.measured_ms for e in estimates if e is not None)
            mids = [e.estimated_ms or 0.0 for e in estimates if e is not None]
            middle = sorted(estimates, key=lambda e: e.estimated_ms or 0.0 if e else 0.0)[RUNS // 2]
            assert middle is not None
            estimated = statistics.median(mids)
            print(
                f"\n{label}: {clone_ms:,.1f} ms on {CLONE_ROWS:,} rows, estimated for {PRODUCTION_ROWS:,}: {estimated:,.1f} ms "
                f"(range {middle.low_ms:,.1f} .. {middle.high_ms:,.1f}); measured at {PRODUCTION_ROWS:,}: "
                f"{measured:,.1f} ms (medians of {RUNS}); estimated / measured = {estimated / measured:.2f}"
            )
