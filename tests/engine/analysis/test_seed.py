"""Seeding: synthetic rows that respect types, NOT NULL, unique indexes and foreign keys."""

from __future__ import annotations

from django.db import models
from django.db.migrations import operations as ops

from changeapi.dryrun.profile import ProductionProfile, TableFigures, seeded_template_name
from tests.engine.analysis.conftest import plan_of, shop_baseline, sizes, small

CHECK_ORDERS = """
DO $$ BEGIN
  IF (SELECT count(*) FROM shop_order o LEFT JOIN shop_customer c ON c.id = o.customer_id WHERE c.id IS NULL) > 0
    OR (SELECT count(*) FROM shop_customer) <> (SELECT count(DISTINCT email) FROM shop_customer)
    OR (SELECT count(*) FROM shop_order WHERE note IS NULL) = 0
  THEN RAISE EXCEPTION 'seed does not respect the schema';
  END IF;
END $$
"""


def test_each_table_is_seeded_to_its_production_rows_up_to_the_cap(dry_run):
    profile = ProductionProfile(
        {"shop_order": TableFigures(50_000, 8_000_000), "shop_customer": TableFigures(300, 60_000)}, seed_max_rows=3_000
    )

    report = dry_run(plan_of([ops.AddField("order", "flag", models.BooleanField(null=True))]), profile=profile)

    seeded = {t["table"]: t["rows"] for t in report["estimation"]["seeded_tables"]}
    assert seeded == {"shop_order": 3_000, "shop_customer": 300}
    assert report["estimation"]["seed_warnings"] == []


def test_seeded_rows_reference_real_parents_keep_unique_values_and_leave_some_nulls(dry_run):
    report = dry_run(plan_of([ops.RunSQL(CHECK_ORDERS, ops.RunSQL.noop)]), profile=small())

    assert report["status"] == "succeeded", report["error"]


def test_unique_pairs_of_foreign_keys_are_seeded_without_duplicates(dry_run):
    through = ops.CreateModel(
        "Favourite",
        [
            ("id", models.BigAutoField(primary_key=True)),
            ("customer", models.ForeignKey("shop.Customer", models.CASCADE)),
            ("order", models.ForeignKey("shop.Order", models.CASCADE)),
        ],
        options={"unique_together": {("customer", "order")}},
    )
    profile = sizes(shop_order=300, shop_customer=20, shop_favourite=5_000)

    report = dry_run(
        plan_of([ops.AddField("order", "flag", models.BooleanField(null=True))]),
        profile=profile,
        baseline=shop_baseline() + [through],
    )

    seeded = {t["table"]: t["rows"] for t in report["estimation"]["seeded_tables"]}
    assert seeded["shop_favourite"] == 5_000
    assert report["estimation"]["seed_warnings"] == []


def test_a_not_null_column_of_an_unknown_type_leaves_its_table_empty_with_a_warning(dry_run):
    odd = ops.RunSQL("CREATE TABLE shop_shape (id bigint PRIMARY KEY, centre point NOT NULL)", ops.RunSQL.noop)

    report = dry_run(
        plan_of([ops.RunSQL("SELECT 1", ops.RunSQL.noop)]), profile=sizes(shop_shape=100), baseline=shop_baseline() + [odd]
    )

    assert any("shop_shape.centre" in warning for warning in report["estimation"]["seed_warnings"])


def test_the_seeded_template_name_changes_with_sizes_but_not_with_traffic():
    base = "sg_tpl_abc"
    quiet = ProductionProfile({"t": TableFigures(10, 100)})
    busy = ProductionProfile({"t": TableFigures(10, 100, queries_per_second=900.0)})
    bigger = ProductionProfile({"t": TableFigures(20, 200)})

    assert seeded_template_name(base, quiet) == seeded_template_name(base, busy)
    assert seeded_template_name(base, quiet) != seeded_template_name(base, bigger)
    assert seeded_template_name(base, None) == base
