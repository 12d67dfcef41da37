"""Each rule of the findings catalog, triggered by a real change on a seeded shadow."""

from __future__ import annotations

import uuid

import pytest
from django.db import models
from django.db.migrations import operations as ops

from changeapi.dryrun.analysis.findings import CATALOG
from changeapi.intake.backfill import Backfill
from changeapi.intake.python_source import parse_migration_file
from tests.engine.analysis.conftest import codes, finding, plan_of, small


def _fill_flags(apps, schema_editor):
    """A data step: the dry-run lists it and never calls it."""
    raise AssertionError("data steps are never run")


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


def test_not_null_suggests_expand_backfill_contract_as_migration_files_the_intake_reads(dry_run):
    report = dry_run(plan_of([ops.AlterField("order", "note", models.TextField(default="none"))]), profile=small())

    example = finding(report, "SG104")["safer_alternative"]["example"]
    files = [part.split("\n", 1)[1] for part in example.split("# --- migration ")[1:]]
    read = [
        parse_migration_file(app_label="shop", name=f"000{n}_x", source=source, filename=f"shop/migrations/000{n}_x.py")
        for n, source in enumerate(files, start=2)
    ]
    (backfill,) = read[0].operations
    assert isinstance(backfill, Backfill)
    assert (backfill.model, backfill.assignments["note"].value) == ("shop.order", "none")
    assert backfill.parity == models.Q(note__isnull=True)
    assert [type(op).__name__ for m in read[1:] for op in m.operations] == [
        "AddConstraintNotValid",
        "ValidateConstraint",
        "AlterField",
        "RemoveConstraint",
    ]
    assert not read[3].operations[0].field.has_default()  # no UPDATE ... WHERE note IS NULL scan under the lock


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


def test_rename_field_suggests_expand_backfill_contract_as_migration_files_the_intake_reads(dry_run):
    report = dry_run(plan_of([ops.RenameField("order", "total", "amount")]), profile=small())

    example = finding(report, "SG202")["safer_alternative"]["example"]
    files = [part.split("\n", 1)[1] for part in example.split("# --- migration ")[1:]]
    expand, contract = (
        parse_migration_file(app_label="shop", name=f"000{n}_x", source=source, filename=f"shop/migrations/000{n}_x.py")
        for n, source in enumerate(files, start=2)
    )
    add, backfill = expand.operations
    assert (type(add).__name__, add.name, add.field.null) == ("AddField", "amount", True)
    assert isinstance(backfill, Backfill) and backfill.assignments["amount"] == models.F("total")
    assert backfill.parity == models.Q(amount__isnull=True, total__isnull=False)
    assert [(type(op).__name__, op.name) for op in contract.operations] == [("AlterField", "amount"), ("RemoveField", "total")]
    assert contract.operations[0].field.null is False


def test_run_python_next_to_schema_operations_is_flagged_and_not_executed(dry_run):
    change = plan_of([ops.AddField("order", "flag", models.BooleanField(null=True)), ops.RunPython(_fill_flags)])

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


def test_now_as_the_default_of_an_added_column_gives_every_existing_row_one_moment(dry_run):
    sql = "ALTER TABLE shop_order ADD COLUMN placed_at timestamptz DEFAULT now() NOT NULL"

    report = dry_run(plan_of([ops.RunSQL(sql, "ALTER TABLE shop_order DROP COLUMN placed_at")]), profile=small())

    found = finding(report, "SG303")
    assert "evaluates once" in found["message"]
    assert report["statements"][0]["work_class"] == "catalog_only"


@pytest.mark.parametrize(
    "column",
    [
        "extra jsonb DEFAULT '{}'::jsonb NOT NULL",
        "tags jsonb DEFAULT '[]'",
        "uses integer DEFAULT 0",
        "flag boolean DEFAULT false",
    ],
)
def test_a_constant_sql_default_of_an_added_column_is_no_volatile_default(dry_run, column):
    name = column.split()[0]
    sql = f"ALTER TABLE shop_order ADD COLUMN {column}"

    report = dry_run(plan_of([ops.RunSQL(sql, f"ALTER TABLE shop_order DROP COLUMN {name}")]), profile=small())

    assert "SG303" not in codes(report)
    assert report["statements"][0]["work_class"] == "catalog_only"


@pytest.mark.parametrize("default", ["CURRENT_TIMESTAMP", "statement_timestamp()"])
def test_a_default_evaluated_once_of_an_added_column_gives_every_existing_row_one_moment(dry_run, default):
    sql = f"ALTER TABLE shop_order ADD COLUMN placed_at timestamptz DEFAULT {default}"

    report = dry_run(plan_of([ops.RunSQL(sql, "ALTER TABLE shop_order DROP COLUMN placed_at")]), profile=small())

    assert "evaluates once" in finding(report, "SG303")["message"]


def test_a_volatile_default_for_new_rows_only_is_no_volatile_default(dry_run):
    sql = "ALTER TABLE shop_order ALTER COLUMN note SET DEFAULT gen_random_uuid()::text"

    report = dry_run(plan_of([ops.RunSQL(sql, "ALTER TABLE shop_order ALTER COLUMN note DROP DEFAULT")]), profile=small())

    assert "SG303" not in codes(report)


def _coupon() -> ops.CreateModel:
    return ops.CreateModel(
        "Coupon",
        [
            ("id", models.BigAutoField(primary_key=True)),
            ("code", models.CharField(max_length=20, unique=True)),
            ("uses", models.IntegerField(default=0)),
            ("customer", models.ForeignKey("shop.Customer", models.CASCADE)),
        ],
    )


def test_create_table_with_a_primary_key_and_a_unique_column_is_catalog_only_work(dry_run):
    report = dry_run(plan_of([_coupon()]), profile=small())

    creating = report["statements"][0]
    assert creating["sql"].startswith('CREATE TABLE "shop_coupon"')
    assert creating["work_class"] == "catalog_only"
    assert "SG101" not in codes(report)


def test_work_on_a_table_the_change_creates_triggers_no_finding(dry_run):
    change = plan_of(
        [
            _coupon(),
            ops.AddIndex("coupon", models.Index(fields=["code"], name="coupon_code_idx")),
            ops.AlterField("coupon", "uses", models.BigIntegerField(default=0)),
            ops.AddField("coupon", "note", models.TextField(null=True)),
            ops.AlterField("coupon", "note", models.TextField(default="none")),
            ops.AddConstraint("coupon", models.CheckConstraint(condition=models.Q(uses__gte=0), name="coupon_uses_positive")),
            ops.AddField("coupon", "token", models.UUIDField(default=uuid.uuid4)),
            ops.RenameField("coupon", "note", "remark"),
            ops.RemoveField("coupon", "remark"),
        ]
    )

    report = dry_run(change, profile=small())

    assert [s["work_class"] for s in report["statements"]] == ["catalog_only"] * len(report["statements"])
    assert codes(report) == []


def test_deleting_a_model_the_change_created_is_no_backward_incompatible_drop(dry_run):
    report = dry_run(plan_of([_coupon(), ops.DeleteModel("Coupon")]), profile=small())

    assert "SG201" not in codes(report)


def test_constant_callable_defaults_are_no_volatile_default(dry_run):
    change = plan_of(
        [
            ops.AddField("order", "extra", models.JSONField(default=dict)),
            ops.AddField("order", "tags", models.JSONField(default=list)),
            ops.AddField("order", "label", models.CharField(max_length=10, default=str)),
        ]
    )

    report = dry_run(change, profile=small())

    assert "jsonb DEFAULT '{}'" in report["statements"][0]["sql"]
    assert "SG303" not in codes(report)


def test_full_table_update_in_run_sql_is_an_unbatched_data_change_with_a_batched_backfill(dry_run):
    backfill = ops.RunSQL("UPDATE shop_order SET note = 'none' WHERE note IS NULL", ops.RunSQL.noop)

    report = dry_run(plan_of([backfill]), profile=small())

    found = finding(report, "SG304")
    assert found["table"] == "shop_order"
    assert found["statement_index"] == 0
    assert "note IS NULL" in found["message"]
    example = found["safer_alternative"]["example"]
    assert "transaction.atomic()" in example
    assert "WHERE note IS NULL AND id >= %s AND id < %s" in example


def test_delete_without_where_in_run_sql_is_an_unbatched_data_change(dry_run):
    report = dry_run(plan_of([ops.RunSQL("DELETE FROM shop_order", ops.RunSQL.noop)]), profile=small())

    assert "no WHERE clause" in finding(report, "SG304")["message"]


def test_update_after_other_sql_in_one_run_sql_is_an_unbatched_data_change(dry_run):
    sql = "ALTER TABLE shop_order ADD COLUMN doubled integer; UPDATE shop_order SET doubled = total * 2"

    report = dry_run(plan_of([ops.RunSQL(sql, "ALTER TABLE shop_order DROP COLUMN doubled")]), profile=small())

    found = finding(report, "SG304")
    assert found["table"] == "shop_order"
    assert "UPDATE shop_order SET doubled = total * 2 WHERE id >= %s AND id < %s" in found["safer_alternative"]["example"]


def test_update_of_a_table_the_change_creates_is_no_unbatched_data_change(dry_run):
    fill = ops.RunSQL("UPDATE shop_coupon SET uses = 1", ops.RunSQL.noop)

    report = dry_run(plan_of([_coupon(), fill]), profile=small())

    assert "SG304" not in codes(report)


def test_key_range_and_limit_batches_in_run_sql_are_no_unbatched_data_change(dry_run):
    batches = [
        ops.RunSQL("UPDATE shop_order SET note = 'none' WHERE note IS NULL AND id >= 1 AND id < 1001", ops.RunSQL.noop),
        ops.RunSQL(
            "UPDATE shop_order SET note = 'none' WHERE id IN (SELECT id FROM shop_order WHERE note IS NULL LIMIT 1000)",
            ops.RunSQL.noop,
        ),
    ]

    report = dry_run(plan_of(batches), profile=small())

    assert "SG304" not in codes(report)


def test_run_python_is_reported_as_unknown_work(dry_run):
    report = dry_run(plan_of([ops.RunPython(_fill_flags, ops.RunPython.noop)]), profile=small())

    found = finding(report, "SG304")
    assert found["severity"] == "info"
    assert "unknown" in found["message"]


def test_run_python_in_a_non_atomic_migration_is_not_said_to_run_in_the_schema_transaction(dry_run):
    change = plan_of([ops.AddField("order", "flag", models.BooleanField(null=True)), ops.RunPython(_fill_flags)], atomic=False)

    report = dry_run(change, profile=small())

    message = finding(report, "SG301")["message"]
    assert "inside the schema change's transaction" not in message
    assert "not atomic" in message


def test_inline_foreign_key_on_a_nullable_column_reports_the_referenced_table_lock(dry_run):
    add = ops.AddField("order", "buyer", models.ForeignKey("shop.Customer", models.CASCADE, null=True, related_name="+"))

    report = dry_run(plan_of([add]), profile=small())

    found = finding(report, "SG105")
    assert "REFERENCES" in report["statements"][found["statement_index"]]["sql"]
    assert found["severity"] == "low"
    assert "scan is skipped" in found["message"]
    assert "SHARE ROW EXCLUSIVE on the referenced table shop_customer" in found["message"]
    assert "NOT VALID" in found["safer_alternative"]["example"]


def test_inline_foreign_key_with_a_default_reports_the_validation_scan(dry_run):
    add = ops.AddField("order", "payer", models.ForeignKey("shop.Customer", models.CASCADE, default=1, related_name="+"))

    report = dry_run(plan_of([add]), profile=small())

    found = finding(report, "SG105")
    assert "scanning all of shop_order" in found["message"]
    assert "shop_customer" in found["message"]


def test_inline_foreign_key_to_a_table_the_change_creates_locks_nobody(dry_run):
    add = ops.AddField("order", "coupon", models.ForeignKey("shop.Coupon", models.CASCADE, null=True))

    report = dry_run(plan_of([_coupon(), add]), profile=small())

    assert "SG105" not in codes(report)


def test_a_no_op_data_step_is_neither_mixed_data_nor_unknown_work(dry_run):
    change = plan_of([ops.AddField("order", "flag", models.BooleanField(null=True)), ops.RunPython(ops.RunPython.noop)])

    report = dry_run(change, profile=small())

    assert "SG301" not in codes(report)
    assert "SG304" not in codes(report)


def test_every_catalog_rule_is_documented():
    with open("docs/findings.md", encoding="utf-8") as docs:
        text = docs.read()

    for rule in CATALOG.values():
        assert f"## {rule.code} {rule.slug}" in text
