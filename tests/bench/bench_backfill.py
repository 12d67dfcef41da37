"""Benchmark: a Backfill step's estimate from a sample on a small seed against the whole backfill
run batch by batch at production size.

"Production" is a template seeded with every order (BENCH_ROWS, default 200,000) from the column
statistics of bench_estimation; a template seeded with a tenth of them (as table stats with a
lower SCHEMAGATE_SEED_MAX_ROWS would make it) dry-runs the step with the default sample and
estimates the whole backfill. The production template then dry-runs the same step with a sample
large enough to do every batch, which is the backfill's measured time. Printed per batch size:
the estimate and its range against the measured work, and one batch's estimated lock time
against the measured median. It prints; it does not fail on figures.

Run: DATABASE_URL=... SHADOW_DATABASE_PREFIX=... .venv/bin/pytest tests/bench/bench_backfill.py -s
"""

from __future__ import annotations

import os
import statistics
import time
from typing import Any

from django.conf import settings
from django.db import models
from django.db.migrations import operations as ops
from django.db.models import F, Q

from changeapi.dryrun.contract import to_json
from changeapi.dryrun.run import dry_run_execute
from changeapi.dryrun.template_facts import facts_read
from changeapi.intake.backfill import Backfill
from changeapi.shadow import provision
from changeapi.shadow.servers import configured_servers
from tests.bench.bench_estimation import _build, _profile, bench_baseline
from tests.engine.analysis.conftest import plan_of

ROWS = int(os.environ.get("BENCH_ROWS", "200000"))
BATCH_SIZES = (1_000, 5_000)


def _change(batch_size: int) -> list[Any]:
    return [
        ops.AddField("order", "cents", models.BigIntegerField(null=True)),
        Backfill(
            "shop.Order",
            {"cents": F("total") * 100},
            filter=Q(cents__isnull=True),
            batch_size=batch_size,
            parity=Q(cents__isnull=True),
        ),
    ]


def _timing(server: Any, template: str, profile: Any, batch_size: int, sample_batches: int) -> dict[str, Any]:
    report = dry_run_execute(
        server=server,
        template=template,
        clone_name=f"{settings.SHADOW_DATABASE_PREFIX}dr_bench",
        baseline=plan_of(bench_baseline()),
        change=plan_of(_change(batch_size), start=2),
        profile=profile,
        backfill_sample_batches=sample_batches,
    )
    data = to_json(report)
    assert data["status"] == "succeeded", data.get("error")
    return data["backfills"][0]  # type: ignore[index, no-any-return]


def test_backfill_estimate_from_a_sample_against_the_whole_backfill(django_db_blocker: Any) -> None:
    server = configured_servers()[0]
    prefix = f"{settings.SHADOW_DATABASE_PREFIX}tpl_benchbf"
    made: list[str] = []
    started = time.perf_counter()
    print()
    with django_db_blocker.unblock():
        try:
            production = _profile(ROWS, cap=ROWS)
            production_template = _build(server, prefix, production, made)
            real = facts_read(server, production_template).seeded
            uploaded = _profile(
                ROWS,
                cap=ROWS // 10,
                order_bytes=real["shop_order"]["total_bytes"],
                customer_bytes=real["shop_customer"]["total_bytes"],
            )
            seeded_template = _build(server, prefix, uploaded, made)
            print(f"  production {ROWS:,} orders; seed {ROWS // 10:,}")
            print(f"  {'batch':>7} | {'estimate (range)':>30} | {'measured':>10} | ratio | {'batch lock est.':>16} | measured")
            for batch_size in BATCH_SIZES:
                sampled = _timing(server, seeded_template, uploaded, batch_size, 5)
                whole = _timing(server, production_template, production, batch_size, ROWS // batch_size + 1)
                scale = sampled["at_production"]
                measured = sum(batch["duration_ms"] for batch in whole["batches"])
                lock = statistics.median(batch["lock_ms"] for batch in whole["batches"] if batch["rows"])
                print(
                    f"  {batch_size:>7,} | {scale['total_ms']:>10,.0f} ({scale['low_ms']:>7,.0f}–{scale['high_ms']:>7,.0f}) ms"
                    f" | {measured:>7,.0f} ms | {scale['total_ms'] / measured:4.2f} | "
                    f"{scale['batch_ms']:>6,.1f} ({scale['batch_high_ms']:,.1f}) | {lock:,.1f} ms;"
                    f" recommended {sampled['recommended_batch_size']:,}; whole run covered all rows: {whole['covers_all_rows']}"
                )
        finally:
            for name in made:
                provision.template_drop(server, name)
    print(f"  took {time.perf_counter() - started:,.1f} s")
