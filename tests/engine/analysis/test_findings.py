"""Each rule of the findings catalog, triggered by a real change on a seeded shadow."""

from __future__ import annotations

import uuid

from django.db import models
from django.db.migrations import operations as ops

from changeapi.dryrun.analysis.findings import CATALOG
from tests.engine.analysis.conftest import codes, finding, plan_of, small


def test_add_index_is_a_blocking_index_build_with_a_concurrent_alternative(dry_run):
    report = dry_run(plan_of([ops.AddIndex("order", models.Index(fields=["total"], name="order_total_idx"))]), profile=small())

    found = finding(report, "SG101")
    assert found["table"] == "shop_order"
    assert "ShareLock" in found["message"]
    assert "AddIndexConcurrently" in found["safer_alternative"]["example"]
    assert "atomic = False" in found["safer_alternative"]["example"]


def test_int_to_bigint_is_a_table_rewrite_with_expand_contract_steps(dry_run):
    report = dry_run(plan_of([ops.AlterField("order", "total", models.BigIntegerField())]), profile=small())

    found = finding(report, "SG102")
    assert found["statement_index"] == 0
    assert "total_new" in found["safer_alternative"]["example"]


def test_validated_check_constraint_is_a_full_scan_under_access_exclusive(dry_run):
    check = models.CheckConstraint(condition=models.Q(total__gte=0), name="order_total_positive")

    report = dry_run(plan_of([ops.AddConstraint("order", check)]), profile=small())

    found = finding(report, "SG103")
    assert "AddConstraintNotValid" in found["safer_alternative"]["example"]
    assert "ValidateConstraint" in found["safer_alternative"]["example"]


def test_not_null_with_default_reports_the_scan_and_its_backfill(dry_run):
    report = dry_run(plan_of([ops.AlterField("order", "note", models.TextField(default="none"))]), profile=small())

    found = finding(report, "SG104")
    assert "backfill" in found["message"]
    assert "note IS NOT NULL" in found["safer_alternative"]["steps"][2]


def test_foreign_key_on_a_filled_column_is_validated_by_a_scan(dry_run):
    add_fk = ops.RunSQL(
        "ALTER TABLE shop_order ADD CONSTRAINT order_customer_again FOREIGN KEY (customer_id) REFERENCES shop_customer (id)",
        "ALTER TABLE shop_order DROP CONSTRAINT order_customer_again",
    )

    report = dry_run(plan_of([add_fk]), profile=small())

    found = finding(report, "SG105")
    assert found["table"] == "shop_order"
    assert "NOT VALID" in found["safer_alternative"]["example"]
    assert "VALIDATE CONSTRAINT" in found["safer_alternative"]["example"]


def test_access_exclusive_held_through_a_later_index_build_is_a_long_lock(dry_run):
    change = plan_of(
        [
            ops.AddField("order", "flag", models.BooleanField(null=True)),
            ops.AddIndex("order", models.Index(fields=["total"], name="order_total_idx")),
        ]
    )

    report = dry_run(change, profile=small())

    found = finding(report, "SG106")
    assert found["statement_index"] == 0
    assert "AccessExclusiveLock" in found["message"]
    assert "index build" in found["message"]


def test_busy_table_gets_a_lock_queue_estimate_and_a_lock_timeout(dry_run):
    profile = small(queries_per_second=500.0, oldest_transaction_seconds=2.0)

    report = dry_run(plan_of([ops.AddField("order", "flag", models.BooleanField(null=True))]), profile=profile)

    risk = report["lock_queue"][0]
    assert risk["table"] == "shop_order"
    assert risk["pile_up_queries"] >= 1000  # 500 qps for at least the 2 s wait
    assert risk["recommended_lock_timeout_ms"] == 100  # 50 queries at 500 qps
    assert "lock_timeout" in finding(report, "SG107")["safer_alternative"]["example"]


def test_remove_field_is_a_backward_incompatible_drop(dry_run):
    report = dry_run(plan_of([ops.RemoveField("order", "note")]), profile=small())

    found = finding(report, "SG201")
    assert found["severity"] == "high"
    assert "SeparateDatabaseAndState" in found["safer_alternative"]["example"]


def test_rename_field_is_a_backward_incompatible_rename(dry_run):
    report = dry_run(plan_of([ops.RenameField("order", "total", "amount")]), profile=small())

    found = finding(report, "SG202")
    assert "db_column='total'" in found["safer_alternative"]["example"]


def test_run_python_next_to_schema_operations_is_flagged_and_not_executed(dry_run):
    change = plan_of([ops.AddField("order", "flag", models.BooleanField(null=True)), ops.RunPython(ops.RunPython.noop)])

    report = dry_run(change, profile=small())

    assert finding(report, "SG301")["operation_index"] == 1
    assert report["migrations"][0]["operations"][1]["executed"] is False


def test_run_sql_without_reverse_sql_is_irreversible(dry_run):
    report = dry_run(plan_of([ops.RunSQL("CREATE INDEX order_note_idx ON shop_order (note)")]), profile=small())

    assert report["reversibility"][0]["reversible"] is False
    assert "RunSQL without reverse_sql" in finding(report, "SG302")["message"]


def test_rollback_that_fails_on_seeded_rows_is_irreversible(dry_run):
    report = dry_run(plan_of([ops.RemoveField("order", "total")]), profile=small())

    entry = report["reversibility"][0]
    assert entry["checked"] and not entry["reversible"]
    assert "fails on the shadow" in entry["reason"]
    assert "SG302" in codes(report)


def test_callable_default_gives_every_existing_row_one_value(dry_run):
    add = ops.AddField("order", "token", models.UUIDField(default=uuid.uuid4))

    report = dry_run(plan_of([add]), profile=small())

    found = finding(report, "SG303")
    assert "same value" in found["message"]


def test_volatile_database_default_rewrites_the_table(dry_run):
    sql = "ALTER TABLE shop_order ADD COLUMN token uuid DEFAULT gen_random_uuid()"

    report = dry_run(plan_of([ops.RunSQL(sql, "ALTER TABLE shop_order DROP COLUMN token")]), profile=small())

    found = finding(report, "SG303")
    assert "rewriting the table" in found["message"]
    assert report["statements"][0]["work_class"] == "rewrite"


def test_every_catalog_rule_is_documented():
    with open("docs/findings.md", encoding="utf-8") as docs:
        text = docs.read()

    for rule in CATALOG.values():
        assert f"## {rule.code} {rule.slug}" in text
