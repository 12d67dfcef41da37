"""Locks per statement: observed in transactions, documented outside them, spans until commit."""

from __future__ import annotations

from django.contrib.postgres.operations import AddIndexConcurrently, RemoveIndexConcurrently
from django.db import models
from django.db.migrations import operations as ops

from tests.engine.analysis.conftest import held_at, plan_of, small, statement

ORDER_INDEX = models.Index(fields=["total"], name="order_total_idx")


def test_create_index_concurrently_reports_its_documented_share_update_exclusive_lock(dry_run):
    report = dry_run(plan_of([AddIndexConcurrently("order", ORDER_INDEX)], atomic=False), profile=small())

    create = statement(report, "CREATE INDEX CONCURRENTLY")
    assert create["locks_source"] == "documented"
    assert create["work_class"] == "concurrent_index_build"
    assert {"table": "shop_order", "mode": "ShareUpdateExclusiveLock", "source": "documented"}.items() <= create["locks"][
        0
    ].items()
    assert create["locks"][0]["blocks_writes"] is False


def test_drop_index_concurrently_resolves_the_index_to_its_table(dry_run):
    change = plan_of(
        [AddIndexConcurrently("order", ORDER_INDEX)], [RemoveIndexConcurrently("order", "order_total_idx")], atomic=False
    )

    report = dry_run(change, profile=small())

    drop = statement(report, "DROP INDEX CONCURRENTLY")
    assert {(lock["table"], lock["mode"]) for lock in drop["locks"]} == {("shop_order", "ShareUpdateExclusiveLock")}


def test_dropping_a_table_locks_the_table_it_references(dry_run):
    report = dry_run(plan_of([ops.DeleteModel("Order")]), profile=small())

    drop = statement(report, "DROP TABLE")
    modes = {lock["relation"]: lock["mode"] for lock in drop["locks"] if lock["relation_kind"] == "table"}
    assert modes == {"shop_order": "AccessExclusiveLock", "shop_customer": "AccessExclusiveLock"}


def test_adding_a_foreign_key_locks_the_referenced_table_against_writes(dry_run):
    add_fk = ops.RunSQL(
        "ALTER TABLE shop_order ADD CONSTRAINT order_customer_again FOREIGN KEY (customer_id) REFERENCES shop_customer (id)",
        "ALTER TABLE shop_order DROP CONSTRAINT order_customer_again",
    )

    report = dry_run(plan_of([add_fk]), profile=small())

    held = {h["table"]: h["mode"] for h in held_at(report, report["statements"][0])}
    assert held == {"shop_order": "ShareRowExclusiveLock", "shop_customer": "ShareRowExclusiveLock"}


def test_a_lock_from_the_first_statement_is_held_until_the_migration_commits(dry_run):
    change = plan_of([ops.AddField("order", "flag", models.BooleanField(null=True)), ops.AddIndex("order", ORDER_INDEX)])

    report = dry_run(change, profile=small())

    index = statement(report, "CREATE INDEX")
    span = next(s for s in report["lock_spans"] if s["relation"] == "shop_order" and s["mode"] == "AccessExclusiveLock")
    assert span["statement_index"] == 0
    assert span["to_ms"] >= index["started_ms"] + index["duration_ms"]
    blocked = next(t for t in report["tables"] if t["table"] == "shop_order")
    assert blocked["reads_blocked_ms"] == span["held_ms"]


def test_locks_on_relations_the_change_creates_block_nobody(dry_run):
    create = ops.CreateModel("Coupon", [("id", models.BigAutoField(primary_key=True)), ("code", models.CharField(max_length=20))])

    report = dry_run(plan_of([create]), profile=small())

    assert report["tables"] == []
    assert all(span["new_relation"] for span in report["lock_spans"])


def test_non_atomic_migration_releases_each_lock_when_its_statement_ends(dry_run):
    change = plan_of(
        [ops.AddField("order", "flag", models.BooleanField(null=True)), ops.AddIndex("order", ORDER_INDEX)], atomic=False
    )

    report = dry_run(change, profile=small())

    add = statement(report, 'ADD COLUMN "flag"')
    span = next(s for s in report["lock_spans"] if s["statement_index"] == add["index"] and s["relation"] == "shop_order")
    assert span["to_ms"] < statement(report, "CREATE INDEX")["started_ms"]
