"""Benchmark: estimates made from the default seed against times measured at production size.

"Production" is a template seeded with every row, at 200,000 and at 1,000,000 orders, from
realistic column statistics (an all-NULL note, a five-valued status, a timestamp in insertion
order, unique codes ...); its real size is what the team would upload as table stats. A
template seeded with the default cap (SCHEMAGATE_SEED_MAX_ROWS) from the same statistics then
dry-runs the same changes and estimates their time at that size. Per change (all of its
statements together) the benchmark prints the measured time (the median of seven runs when it
is under 50 ms), the estimate and its range, and at the end the share of estimates within a
factor of 2 and the share of ranges that hold the measured time. It prints; it does not fail on figures (a shared machine times noisily).

Run: DATABASE_URL=... SHADOW_DATABASE_PREFIX=... .venv/bin/python -m tests.bench.bench_estimation
(`--rows 20000,50000` for a quick look, `--only rename` for some changes; or
`.venv/bin/pytest tests/bench/bench_estimation.py -s`); a few minutes, most of it seeding and
timing the 1,000,000-row template.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from typing import Any

from django.conf import settings
from django.db import models
from django.db.migrations import operations as ops
from django.db.migrations.operations.base import Operation

from changeapi.dryrun.contract import to_json
from changeapi.dryrun.profile import ProductionProfile, TableFigures, seeded_template_name
from changeapi.dryrun.run import dry_run_execute, template_build
from changeapi.dryrun.template_facts import facts_read
from changeapi.shadow import provision
from changeapi.shadow.column_stats import ColumnFigures
from changeapi.shadow.servers import ShadowServer, configured_servers
from tests.bench.support import django_setup
from tests.engine.analysis.conftest import plan_of

# BENCH_ROWS=20000,50000 for a quick look; the acceptance figures are at the defaults.
PRODUCTION_SIZES = tuple(int(n) for n in os.environ.get("BENCH_ROWS", "200000,1000000").split(","))
CUSTOMERS = 20_000
SHORT_CHANGE_MS = 50.0
SHORT_CHANGE_RUNS = 7

ORDER_COLUMNS = {
    "total": ColumnFigures(null_frac=0.0, avg_width=4, n_distinct=5_000, correlation=0.01),
    "note": ColumnFigures(null_frac=1.0, avg_width=0, n_distinct=0, correlation=None),
    "memo": ColumnFigures(null_frac=0.6, avg_width=18, n_distinct=-0.3, correlation=0.0),
    "status": ColumnFigures(null_frac=0.0, avg_width=8, n_distinct=5, correlation=0.2),
    "code": ColumnFigures(null_frac=0.0, avg_width=12, n_distinct=-1, correlation=0.9),
    "sku": ColumnFigures(null_frac=0.0, avg_width=8, n_distinct=-0.2, correlation=0.0),
    "label": ColumnFigures(null_frac=0.0, avg_width=14, n_distinct=-0.5, correlation=0.0),
    "legacy": ColumnFigures(null_frac=0.2, avg_width=30, n_distinct=-0.8, correlation=0.0),
    "created": ColumnFigures(null_frac=0.0, avg_width=8, n_distinct=-0.95, correlation=0.99),
    "customer_id": ColumnFigures(null_frac=0.0, avg_width=8, n_distinct=15_000, correlation=0.05),
}
CUSTOMER_COLUMNS = {"email": ColumnFigures(null_frac=0.0, avg_width=24, n_distinct=-1, correlation=0.0)}


def bench_baseline() -> list[Operation]:
    """An order table of the shape most applications have, and its customers."""
    return [
        ops.CreateModel(
            "Customer",
            [("id", models.BigAutoField(primary_key=True)), ("email", models.EmailField(max_length=254, unique=True))],
        ),
        ops.CreateModel(
            "Order",
            [
                ("id", models.BigAutoField(primary_key=True)),
                ("total", models.IntegerField()),
                ("note", models.TextField(null=True)),
                ("memo", models.CharField(max_length=100, null=True)),
                ("status", models.CharField(max_length=20)),
                ("code", models.CharField(max_length=20)),
                ("sku", models.CharField(max_length=20)),
                ("label", models.CharField(max_length=20)),
                ("legacy", models.TextField(null=True)),
                ("created", models.DateTimeField()),
                ("customer", models.ForeignKey("shop.Customer", models.CASCADE)),
            ],
        ),
    ]


CHANGES: dict[str, list[Any]] = {
    "backfill of an all-NULL column": [ops.RunSQL("UPDATE shop_order SET note = status WHERE note IS NULL", ops.RunSQL.noop)],
    "NOT NULL with default": [ops.AlterField("order", "memo", models.CharField(max_length=100, default="none"))],
    "narrowing varchar(20) -> 10": [ops.AlterField("order", "sku", models.CharField(max_length=10))],
    "int -> bigint": [ops.AlterField("order", "total", models.BigIntegerField())],
    "index on a low-cardinality column": [ops.AddIndex("order", models.Index(fields=["status"], name="bench_status_idx"))],
    "composite index with a timestamp": [
        ops.AddIndex("order", models.Index(fields=["customer", "created"], name="bench_cust_created_idx"))
    ],
    "unique constraint": [ops.AddConstraint("order", models.UniqueConstraint(fields=["code"], name="bench_code_uniq"))],
    "foreign key add": [
        ops.AddField("order", "referrer", models.ForeignKey("shop.Customer", models.SET_NULL, null=True, related_name="+"))
    ],
    "check constraint": [
        ops.AddConstraint("order", models.CheckConstraint(condition=models.Q(total__gte=0), name="bench_total_gte_0"))
    ],
    "add column with volatile default": [
        ops.RunSQL(
            "ALTER TABLE shop_order ADD COLUMN token uuid DEFAULT gen_random_uuid()",
            "ALTER TABLE shop_order DROP COLUMN token",
        )
    ],
    "varchar widen 20 -> 50": [ops.AlterField("order", "label", models.CharField(max_length=50))],
    "drop column": [ops.RemoveField("order", "legacy")],
    "rename column": [ops.RenameField("order", "label", "title")],
    "data-heavy RunSQL UPDATE": [ops.RunSQL("UPDATE shop_order SET total = total + 1", ops.RunSQL.noop)],
}


def _profile(rows: int, *, cap: int, order_bytes: int | None = None, customer_bytes: int | None = None) -> ProductionProfile:
    return ProductionProfile(
        {
            "shop_order": TableFigures(rows=rows, total_bytes=order_bytes or rows * 120, columns=ORDER_COLUMNS),
            "shop_customer": TableFigures(
                rows=CUSTOMERS, total_bytes=customer_bytes or CUSTOMERS * 100, columns=CUSTOMER_COLUMNS
            ),
        },
        seed_max_rows=cap,
    )


def _run(server: ShadowServer, template: str, change: list[Any], profile: ProductionProfile) -> dict[str, Any]:
    report = dry_run_execute(
        server=server,
        template=template,
        clone_name=f"{settings.SHADOW_DATABASE_PREFIX}dr_bench",
        baseline=plan_of(bench_baseline()),
        change=plan_of(change, start=2),
        profile=profile,
    )
    return to_json(report)


def _totals(report: dict[str, Any]) -> dict[str, float]:
    """The change's statements together: measured, estimated and the range's ends."""
    estimates = [s["estimate"] for s in report["statements"] if s.get("estimate")]
    return {
        key: sum(float(e[key] if e[key] is not None else e["measured_ms"]) for e in estimates)
        for key in ("measured_ms", "estimated_ms", "low_ms", "high_ms")
    }


def _measured(server: ShadowServer, template: str, change: list[Any], profile: ProductionProfile) -> float:
    """The change's time at production size: one run, or the median of seven for a change of a
    few milliseconds, whose one timing is as much the machine's jitter as the change's work (a
    median of three still moved by 2x between runs on a busy machine)."""
    first = _totals(_run(server, template, change, profile))["measured_ms"]
    if first >= SHORT_CHANGE_MS:
        return first
    again = [_totals(_run(server, template, change, profile))["measured_ms"] for _ in range(SHORT_CHANGE_RUNS - 1)]
    return statistics.median([first, *again])


def _build(server: ShadowServer, prefix: str, profile: ProductionProfile, made: list[str]) -> str:
    name = seeded_template_name(prefix, profile)
    started = time.perf_counter()
    template_build(server=server, name=name, baseline=plan_of(bench_baseline()), profile=profile)
    made.append(name)
    print(f"  template {name}: built in {time.perf_counter() - started:,.1f} s")
    return name


def test_estimates_from_the_default_seed_against_production_size(django_db_blocker: Any) -> None:
    with django_db_blocker.unblock():
        bench(PRODUCTION_SIZES, CHANGES)


def bench(sizes: tuple[int, ...], changes: dict[str, list[Any]]) -> None:
    """Build the templates of each production size and its seed, time `changes` on both, print."""
    server = configured_servers()[0]
    prefix = f"{settings.SHADOW_DATABASE_PREFIX}tpl_bench"
    cap = int(getattr(settings, "SCHEMAGATE_SEED_MAX_ROWS", 100_000))
    made: list[str] = []
    rows: list[tuple[int, str, dict[str, float], float, str]] = []
    started = time.perf_counter()
    print()
    try:
        for size in sizes:
            production = _profile(size, cap=size)
            production_template = _build(server, prefix, production, made)
            real = facts_read(server, production_template).seeded
            uploaded = _profile(
                size,
                cap=cap,
                order_bytes=real["shop_order"]["total_bytes"],
                customer_bytes=real["shop_customer"]["total_bytes"],
            )
            seeded_template = _build(server, prefix, uploaded, made)
            facts = facts_read(server, seeded_template)
            print(
                f"  production {size:,} orders, {real['shop_order']['total_bytes'] / 2**20:,.1f} MiB; "
                f"seed {facts.seeded['shop_order']['rows']:,} orders, "
                f"{facts.seeded['shop_order']['total_bytes'] / 2**20:,.1f} MiB; load average {_load()}"
            )
            for label, change in changes.items():
                measured = _measured(server, production_template, change, production)
                estimated = _run(server, seeded_template, change, uploaded)
                classes = ",".join(sorted({s["estimate"]["work_class"] for s in estimated["statements"] if s.get("estimate")}))
                rows.append((size, label, _totals(estimated), measured, classes))
            provision.template_drop(server, production_template)
            made.remove(production_template)
    finally:
        for name in made:
            provision.template_drop(server, name)
    _print(rows, facts_calibration=facts, seconds=time.perf_counter() - started)


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.1f} (5 min {five:.1f}) on {os.cpu_count()} cores"


def _print(rows: list[tuple[int, str, dict[str, float], float, str]], *, facts_calibration: Any, seconds: float) -> None:
    calibration = facts_calibration.calibration
    if calibration is not None:
        print(f"calibration at {calibration.small_rows:,} and {calibration.large_rows:,} rows, noise {calibration.noise:.1%}:")
        for name, c in sorted(calibration.classes.items()):
            print(
                f"  {name:12} {c.law:8} c={c.fixed_ms:.1f} ms a={c.coefficient_ms:.3g} ms "
                f"deviation {c.deviation:+.3f} (fitted {c.residual:+.3f}) noise {c.noise:.1%}"
            )
    print(
        f"{'rows':>9} {'change':36} {'class':28} {'shadow ms':>10} {'estimate ms':>12} {'range ms':>22} "
        f"{'measured ms':>12} {'ratio':>6} {'in range':>8}"
    )
    within, contained, growing, growing_within, growing_contained = 0, 0, 0, 0, 0
    for size, label, estimate, measured, classes in rows:
        ratio = estimate["estimated_ms"] / measured if measured else 1.0
        close = 0.5 <= ratio <= 2.0
        held = estimate["low_ms"] <= measured <= estimate["high_ms"]
        within += close
        contained += held
        if classes != "catalog_only":
            growing += 1
            growing_within += close
            growing_contained += held
        print(
            f"{size:>9,} {label:36} {classes[:28]:28} {estimate['measured_ms']:>10,.1f} {estimate['estimated_ms']:>12,.1f} "
            f"{estimate['low_ms']:>10,.1f}-{estimate['high_ms']:<11,.1f} {measured:>12,.1f} {ratio:>6.2f}"
            f"{'' if close else ' !':2} {'yes' if held else 'NO':>6}"
        )
    print(
        f"within 2x: {within}/{len(rows)} ({within / len(rows):.0%}); "
        f"range holds the measured time: {contained}/{len(rows)} ({contained / len(rows):.0%}); {seconds:,.0f} s in all"
    )
    print(
        f"work that grows (not catalog-only, {growing} cases): within 2x {growing_within}/{growing}; "
        f"range holds the measured time {growing_contained}/{growing}"
    )
    print(f"load average at the end {_load()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--rows",
        default=",".join(str(n) for n in PRODUCTION_SIZES),
        help="production sizes in orders, comma-separated (default: %(default)s)",
    )
    parser.add_argument("--only", action="append", default=[], help="time only the changes whose name contains this")
    args = parser.parse_args()
    django_setup(eager=True)
    sizes = tuple(int(n) for n in args.rows.split(","))
    changes = {k: v for k, v in CHANGES.items() if not args.only or any(o in k for o in args.only)}
    bench(sizes, changes)


if __name__ == "__main__":
    main()
