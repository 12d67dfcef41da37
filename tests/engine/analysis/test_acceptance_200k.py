"""Acceptance: on a table of 200,000 rows, each kind of change is reported as what it is."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import models
from django.db.migrations import operations as ops

from tests.engine.analysis.conftest import held_at, plan_of, sizes, statement

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def report(dry_run: Any) -> dict[str, Any]:
    """One dry-run of four independent migrations on a shadow seeded with 200,000 orders."""
    change = plan_of(
        [ops.AlterField("order", "total", models.BigIntegerField())],
        [ops.AddIndex("order", models.Index(fields=["total"], name="order_total_idx"))],
        [ops.AddField("order", "flag", models.BooleanField(null=True))],
        [ops.AlterField("order", "note", models.TextField(default="none"))],
    )
    return dry_run(change, profile=sizes(shop_order=200_000, shop_customer=20_000))


def test_the_shadow_holds_200000_seeded_orders(report):
    seeded = {t["table"]: t["rows"] for t in report["estimation"]["seeded_tables"]}

    assert seeded["shop_order"] == 200_000


def test_int_to_bigint_is_a_rewrite_under_access_exclusive(report):
    alter = statement(report, 'ALTER COLUMN "total" TYPE bigint')

    assert alter["work_class"] == "rewrite"
    assert alter["rewrites"] == ["shop_order"]
    assert {"table": "shop_order", "mode": "AccessExclusiveLock"}.items() <= held_at(report, alter)[0].items()


def test_blocking_index_build_takes_share_lock_and_scans_the_table(report):
    create = statement(report, 'CREATE INDEX "order_total_idx"')

    assert create["work_class"] == "index_build"
    assert [h["mode"] for h in held_at(report, create) if h["table"] == "shop_order"] == ["ShareLock"]
    assert create["sequential_scans"] == [{"table": "shop_order", "count": 1}]


def test_adding_a_nullable_column_is_catalog_only(report):
    add = statement(report, 'ADD COLUMN "flag"')

    assert add["work_class"] == "catalog_only"
    assert add["rewrites"] == [] and add["sequential_scans"] == []


def test_not_null_with_default_backfills_under_access_exclusive(report):
    backfill = statement(report, 'UPDATE "shop_order" SET "note"')

    assert backfill["work_class"] == "backfill"
    [held] = held_at(report, backfill)
    assert {
        "table": "shop_order",
        "mode": "AccessExclusiveLock",
        "blocks_reads": True,
        "blocks_writes": True,
    }.items() <= held.items()
    assert held["statement_index"] < backfill["index"], "the lock was taken by an earlier statement of the migration"
    assert ("shop_order", "AccessExclusiveLock") not in {(lock["relation"], lock["mode"]) for lock in backfill["locks"]}


def test_measured_and_estimated_times_are_reported_side_by_side(report):
    rewrite = statement(report, 'ALTER COLUMN "total" TYPE bigint')["estimate"]

    assert rewrite["measured_ms"] > 0
    assert rewrite["low_ms"] <= rewrite["estimated_ms"] <= rewrite["high_ms"]
    assert report["estimation"]["calibrated"] is True
