"""Benchmark: estimates made from the default seed against times measured at production size.

A "production" template is seeded with 1,000,000 orders; its real size is what the team would
upload as table stats. A template seeded with the default cap (SCHEMAGATE_SEED_MAX_ROWS) then
dry-runs the same changes and estimates their time at that size. The benchmark prints
measured and estimated figures side by side and the ratio; the goal is a factor of 2.

Run: DATABASE_URL=... SHADOW_DATABASE_PREFIX=... .venv/bin/pytest tests/bench/bench_estimation.py -s
"""

from __future__ import annotations

import statistics
from typing import Any

from django.conf import settings
from django.db import models
from django.db.migrations import operations as ops

from changeapi.dryrun.contract import to_json
from changeapi.dryrun.profile import ProductionProfile, TableFigures, seeded_template_name
from changeapi.dryrun.run import dry_run_execute, template_build
from changeapi.dryrun.template_facts import facts_read
from changeapi.shadow import provision
from changeapi.shadow.servers import configured_servers
from tests.engine.analysis.conftest import plan_of, shop_baseline

PRODUCTION_ROWS = 1_000_000
CUSTOMERS = 20_000
REPEATS = 3

CHANGES: dict[str, tuple[str, list[Any]]] = {
    "rewrite (int -> bigint)": ('ALTER COLUMN "total" TYPE bigint', [ops.AlterField("order", "total", models.BigIntegerField())]),
    "index build (integer)": ("CREATE INDEX", [ops.AddIndex("order", models.Index(fields=["total"], name="bench_total_idx"))]),
    "index build (text)": ("CREATE INDEX", [ops.AddIndex("order", models.Index(fields=["note"], name="bench_note_idx"))]),
    "backfill (full-table UPDATE)": ("UPDATE", [ops.RunSQL("UPDATE shop_order SET total = total + 1", ops.RunSQL.noop)]),
    "backfill (NOT NULL with default)": (
        "UPDATE",
        [ops.AlterField("order", "note", models.TextField(default="none"))],
    ),
}


def _profile(total_bytes: int | None, cap: int) -> ProductionProfile:
    orders = total_bytes if total_bytes is not None else PRODUCTION_ROWS * 160
    return ProductionProfile(
        {
            "shop_order": TableFigures(rows=PRODUCTION_ROWS, total_bytes=orders),
            "shop_customer": TableFigures(rows=CUSTOMERS, total_bytes=CUSTOMERS * 120),
        },
        seed_max_rows=cap,
    )


def _run(server: Any, template: str, change: list[Any], profile: ProductionProfile) -> dict[str, Any]:
    report = dry_run_execute(
        server=server,
        template=template,
        clone_name=f"{settings.SHADOW_DATABASE_PREFIX}dr_bench",
        baseline=plan_of(shop_baseline()),
        change=plan_of(change, start=2),
        profile=profile,
    )
    return to_json(report)


def _statement(report: dict[str, Any], fragment: str) -> dict[str, Any]:
    return next(s for s in report["statements"] if fragment in s["sql"])


def test_estimates_from_the_default_seed_are_within_a_factor_of_two(django_db_blocker: Any) -> None:
    server = configured_servers()[0]
    base = plan_of(shop_baseline())
    prefix = f"{settings.SHADOW_DATABASE_PREFIX}tpl_bench"
    made = []
    with django_db_blocker.unblock():
        production = _profile(None, PRODUCTION_ROWS)
        production_template = seeded_template_name(prefix, production)
        template_build(server=server, name=production_template, baseline=base, profile=production)
        made.append(production_template)
        facts = facts_read(server, production_template)
        production_bytes = facts.seeded["shop_order"]["total_bytes"]
        seeded = _profile(
            production_bytes, settings.SCHEMAGATE_SEED_MAX_ROWS if hasattr(settings, "SCHEMAGATE_SEED_MAX_ROWS") else 100_000
        )
        seeded_template = seeded_template_name(prefix, seeded)
        template_build(server=server, name=seeded_template, baseline=base, profile=seeded)
        made.append(seeded_template)
        seed_facts = facts_read(server, seeded_template)
        rows = []
        try:
            for label, (fragment, change) in CHANGES.items():
                measured = statistics.median(
                    _statement(_run(server, production_template, change, production), fragment)["duration_ms"]
                    for _ in range(REPEATS)
                )
                estimates = [
                    _statement(_run(server, seeded_template, change, seeded), fragment)["estimate"] for _ in range(REPEATS)
                ]
                estimate = sorted(estimates, key=lambda e: e["estimated_ms"])[len(estimates) // 2]
                rows.append((label, estimate, measured))
        finally:
            for name in made:
                provision.template_drop(server, name)

    print()
    print(f"production: shop_order {PRODUCTION_ROWS:,} rows, {production_bytes / 2**20:,.1f} MiB")
    seeded_orders = seed_facts.seeded["shop_order"]
    print(
        f"default seed: {seeded_orders['rows']:,} rows, {seeded_orders['total_bytes'] / 2**20:,.1f} MiB (cap {seeded.seed_max_rows:,})"
    )
    assert seed_facts.calibration is not None
    print(
        "calibration: "
        + ", ".join(f"{n} k={c.exponent} (c={c.fixed_ms} ms)" for n, c in sorted(seed_facts.calibration.classes.items()))
    )
    print(f"{'change':34} {'shadow ms':>10} {'estimate ms':>12} {'range ms':>20} {'measured ms':>12} {'ratio':>6}")
    failures = []
    for label, estimate, measured in rows:
        ratio = estimate["estimated_ms"] / measured
        within = 0.5 <= ratio <= 2.0
        if not within:
            failures.append(label)
        print(
            f"{label:34} {estimate['measured_ms']:>10,.1f} {estimate['estimated_ms']:>12,.1f} "
            f"{estimate['low_ms']:>9,.0f}-{estimate['high_ms']:<10,.0f} {measured:>12,.1f} {ratio:>6.2f}{'' if within else '  !'}"
        )
    assert not failures, f"estimates off by more than a factor of 2: {failures}"
