"""A Backfill step timed on a seeded clone: sampled batches cut on the ordering key, each with its
rows, time, locks and WAL; the whole backfill at production size; a recommended batch size; the
parity check's count after the sample."""

from __future__ import annotations

import math
from typing import Any

import pytest
from django.db import models
from django.db.migrations import operations as ops
from django.db.models import F, Q, Value

from changeapi.dryrun.analysis.backfill import estimate_backfill
from changeapi.dryrun.contract import BackfillBatch, BackfillTiming, report_from_json
from changeapi.dryrun.profile import ProductionProfile, TableFigures
from changeapi.dryrun.render.markdown import report_markdown
from changeapi.dryrun.template_facts import TemplateFacts
from changeapi.intake.backfill import Backfill
from tests.engine.analysis.conftest import codes, finding, plan_of, statement

ADD_CENTS = ops.AddField("order", "cents", models.BigIntegerField(null=True))
BATCH = 200
PAUSE_MS = 50

# 2,000 orders seeded on the shadow; 20,000 in production.
PROFILE = ProductionProfile(
    {
        "shop_order": TableFigures(rows=20_000, total_bytes=20_000 * 160),
        "shop_customer": TableFigures(rows=200, total_bytes=32_000),
    },
    seed_max_rows=2_000,
)


def cents_backfill(**changes: Any) -> Backfill:
    members: dict[str, Any] = {
        "model": "shop.Order",
        "assignments": {"cents": F("total") * 100},
        "filter": Q(cents__isnull=True),
        "batch_size": BATCH,
        "pause_ms": PAUSE_MS,
        "parity": Q(cents__isnull=True),
        **changes,
    }
    return Backfill(**members)


@pytest.fixture(scope="module")
def report(dry_run) -> dict[str, Any]:
    return dry_run(plan_of([ADD_CENTS, cents_backfill()]), profile=PROFILE)


@pytest.fixture(scope="module")
def timing(report) -> dict[str, Any]:
    assert report["status"] == "succeeded", report.get("error")
    (only,) = report["backfills"]
    return only


def test_each_sampled_batch_reports_its_rows_time_and_wal_bytes(timing):
    assert len(timing["batches"]) == 5
    for batch in timing["batches"]:
        assert batch["keys"] == batch["rows"] == batch["rows_locked"] == BATCH
        assert 0 < batch["lock_ms"] <= batch["duration_ms"]
        assert batch["wal_bytes"] > 0


def test_each_batch_holds_a_row_exclusive_lock_on_its_table_only(timing):
    locks = {(lock["relation"], lock["mode"]) for lock in timing["batches"][0]["locks"]}

    assert ("shop_order", "RowExclusiveLock") in locks
    assert all(mode in ("RowExclusiveLock", "AccessShareLock") for _, mode in locks)


def test_batches_follow_one_another_on_the_ordering_key(timing):
    batches = timing["batches"]

    assert batches[0]["after_key"] is None
    assert [b["after_key"] for b in batches[1:]] == [b["to_key"] for b in batches[:-1]]
    assert timing["key_column"] == "id"


def test_one_batch_is_a_keyset_update_with_the_filter(timing):
    sql = timing["sql"]

    assert sql.startswith('UPDATE "shop_order" SET "cents" = ("shop_order"."total" * 100)')
    assert '"shop_order"."id" > 200' in sql and '"shop_order"."id" <= 400' in sql
    assert '"shop_order"."cents" IS NULL' in sql


def test_the_whole_backfill_at_production_size_is_its_batches_work_and_pauses(timing):
    scale = timing["at_production"]

    assert scale["rows"] == 20_000
    assert scale["batches"] == math.ceil(20_000 / BATCH)
    assert scale["pauses_ms"] == PAUSE_MS * (scale["batches"] - 1)
    assert scale["total_ms"] == pytest.approx(scale["work_ms"] + scale["pauses_ms"])
    assert scale["low_ms"] < scale["total_ms"] < scale["high_ms"]
    assert scale["range_factor"] >= 1.5


def test_the_shadow_alone_would_take_its_batches_at_the_sampled_rate(timing):
    assert timing["rows_matched"] == timing["rows_total"] == 2_000
    assert timing["shadow_batches"] == 10
    assert timing["covers_all_rows"] is False


def test_the_parity_check_counts_the_rows_left_after_the_sample(timing):
    parity = timing["parity"]

    assert parity["condition"] == "cents__isnull=True"
    assert parity["before"] == 2_000
    assert parity["after"] == 2_000 - 5 * BATCH
    assert parity["in_sampled_range"] == 0
    assert parity["holds_in_sampled_range"] is True


def test_a_lower_target_lock_time_recommends_smaller_batches(report):
    (sampled,) = report_from_json(report).backfills
    facts = TemplateFacts()

    tight = estimate_backfill(sampled, profile=PROFILE, facts=facts, target_lock_ms=20)
    loose = estimate_backfill(sampled, profile=PROFILE, facts=facts, target_lock_ms=2_000)

    assert tight.recommended_batch_size is not None and loose.recommended_batch_size is not None
    assert 1 <= tight.recommended_batch_size < loose.recommended_batch_size
    assert tight.target_lock_ms == 20


def test_the_recommended_batch_size_is_stated_for_the_projects_target(timing):
    assert timing["target_lock_ms"] == 200
    assert timing["recommended_batch_size"] >= 1
    assert "under 200 ms" in timing["recommendation"]


@pytest.fixture(scope="module")
def unmet(dry_run) -> dict[str, Any]:
    """A backfill whose assignments leave every row its parity check counts."""
    return dry_run(
        plan_of([ADD_CENTS, cents_backfill(assignments={"cents": Value(None, models.BigIntegerField())})]), profile=PROFILE
    )


def test_assignments_that_leave_the_parity_check_unmet_are_counted_in_the_sampled_range(unmet):
    parity = unmet["backfills"][0]["parity"]

    assert parity["in_sampled_range"] == 5 * BATCH
    assert parity["holds_in_sampled_range"] is False


def test_assignments_that_leave_the_parity_check_unmet_are_a_high_finding(unmet):
    found = finding(unmet, "SG306")

    assert found["severity"] == "high"
    assert found["migration"] == "shop.0002_step" and found["operation_index"] == 1
    assert "still counts 1,000 rows" in found["message"]


def test_a_backfill_whose_parity_holds_has_no_parity_finding(report):
    assert "SG306" not in codes(report)


def test_batches_holding_locks_past_the_target_are_a_finding_with_the_recommended_size(dry_run):
    report = dry_run(plan_of([ADD_CENTS, cents_backfill(batch_size=2_000)]), profile=PROFILE, backfill_target_lock_ms=1)

    found = finding(report, "SG305")
    assert "past the project's target of 1 ms" in found["message"]
    assert found["safer_alternative"]["summary"] == "Use batches of 1 row."


def test_batches_within_the_target_have_no_batch_finding(report):
    assert "SG305" not in codes(report)


def test_a_batch_failing_on_the_shadow_fails_the_dry_run_naming_the_step(dry_run):
    report = dry_run(plan_of([ADD_CENTS, cents_backfill(assignments={"cents": F("total") / 0})]), profile=PROFILE)

    assert report["status"] == "failed"
    assert report["error"]["sqlstate"] == "22012"
    assert report["error"]["message"].startswith("Backfill shop.Order")
    assert report["error"]["operation_index"] == 1
    assert "backfills" not in report


def test_migrations_after_a_backfill_apply_on_the_sampled_clone(dry_run):
    later = [ops.AlterField("order", "cents", models.BigIntegerField(null=True, db_index=True))]

    report = dry_run(plan_of([ADD_CENTS, cents_backfill()], later), profile=PROFILE)

    assert report["status"] == "succeeded", report.get("error")
    assert [m["name"] for m in report["migrations"]] == ["0002_step", "0003_step"]
    assert report["backfills"][0]["migration"] == "shop.0002_step"


def test_the_markdown_report_shows_the_backfill_and_its_recommendation(report):
    text = report_markdown(report_from_json(report), public_url="https://schemagate.example")

    assert "#### Backfill of shop.Order (`shop.0002_step`, batches of 200 by id)" in text
    assert "At production size: 20,000 rows in 100 batches" in text
    assert "in the sampled range it holds" in text


def test_a_sample_that_reaches_every_matching_row_brings_the_parity_check_to_zero(dry_run):
    report = dry_run(plan_of([ADD_CENTS, cents_backfill(batch_size=1_000)]), profile=PROFILE)

    timing = report["backfills"][0]
    assert [batch["rows"] for batch in timing["batches"]] == [1_000, 1_000]
    assert timing["covers_all_rows"] is True
    assert timing["parity"]["after"] == 0


def _sampled(**changes: Any) -> BackfillTiming:
    batch = BackfillBatch(
        index=0,
        after_key=None,
        to_key="200",
        keys=200,
        rows=200,
        rows_locked=200,
        duration_ms=12.0,
        lock_ms=10.0,
        wal_bytes=40_000,
    )
    figures: dict[str, Any] = {
        "migration": "shop.0002_step",
        "operation_index": 1,
        "model": "shop.Order",
        "table": "shop_order",
        "key_column": "id",
        "batch_size": 200,
        "pause_ms": 0,
        "sql": "UPDATE ...",
        "rows_total": 2_000,
        "rows_matched": 1_000,
        "batches": (batch,),
        "sampled_rows": 200,
        "sampled_wal_bytes": 40_000,
        "sampled_keys": 200,
        "covers_all_rows": False,
        "shadow_batches": 5,
        "shadow_total_ms": 60.0,
        **changes,
    }
    return BackfillTiming(**figures)


def test_without_table_stats_a_backfill_is_not_estimated_at_production_size_and_says_so():
    estimated = estimate_backfill(_sampled(), profile=None, facts=TemplateFacts())

    assert estimated.at_production is None
    assert estimated.estimate_basis == "not estimated: no table stats uploaded"
    assert "on the shadow's rows" in estimated.recommendation


def test_production_rows_are_taken_at_the_share_of_the_shadows_rows_the_filter_matched():
    estimated = estimate_backfill(_sampled(), profile=PROFILE, facts=TemplateFacts())

    assert estimated.at_production is not None
    assert estimated.at_production.rows == 10_000
    assert estimated.at_production.batches == 100  # every key is walked, 200 at a time


def test_a_sample_that_set_no_rows_recommends_no_batch_size():
    empty = BackfillBatch(
        index=0, after_key=None, to_key="1", keys=1, rows=0, rows_locked=0, duration_ms=1.0, lock_ms=0.5, wal_bytes=0
    )

    estimated = estimate_backfill(_sampled(batches=(empty,), rows_matched=0), profile=PROFILE, facts=TemplateFacts())

    assert estimated.recommended_batch_size is None
    assert estimated.at_production is None


def test_a_batch_spans_its_keys_and_sets_only_the_rows_of_them_the_filter_matches(dry_run):
    report = dry_run(plan_of([ADD_CENTS, cents_backfill(filter=Q(cents__isnull=True, id__lte=300))]), profile=PROFILE)

    batches = report["backfills"][0]["batches"]
    assert [batch["keys"] for batch in batches] == [BATCH] * 5
    assert [batch["rows"] for batch in batches] == [200, 100, 0, 0, 0]


def test_a_not_null_after_the_backfill_applies_on_rows_the_sample_did_not_reach(dry_run):
    contract = [ops.AlterField("order", "cents", models.BigIntegerField())]

    report = dry_run(plan_of([ADD_CENTS, cents_backfill()], contract), profile=PROFILE)

    assert report["status"] == "succeeded", report.get("error")
    not_null = statement(report, 'ALTER COLUMN "cents" SET NOT NULL')
    assert not_null["seeded_failures"][0]["kind"] == "null_values"
