"""Seeding: synthetic rows that respect types, NOT NULL, unique indexes and foreign keys."""

from __future__ import annotations

from django.db import models
from django.db.migrations import operations as ops

from changeapi.dryrun.profile import ProductionProfile, TableFigures, seeded_template_name
from changeapi.shadow.column_stats import ColumnFigures
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


def _shaped(**columns: ColumnFigures) -> ProductionProfile:
    """shop_order at 2,000 rows with the given column statistics, shop_customer at 200."""
    return ProductionProfile(
        {
            "shop_order": TableFigures(2_000, 320_000, columns=columns),
            "shop_customer": TableFigures(200, 32_000),
        },
        seed_max_rows=2_000,
    )


def _assert_sql(condition: str) -> ops.RunSQL:
    """A step that fails the dry-run unless `condition` holds on the seeded clone."""
    return ops.RunSQL(f"DO $$ BEGIN IF NOT ({condition}) THEN RAISE EXCEPTION 'seed: %', $q${condition}$q$; END IF; END $$")


def _holds(dry_run, profile: ProductionProfile, *conditions: str, baseline=None) -> None:
    report = dry_run(plan_of([_assert_sql(c) for c in conditions]), profile=profile, baseline=baseline)
    assert report["status"] == "succeeded", report["error"]


def test_a_nullable_column_is_null_in_the_share_its_statistics_give(dry_run):
    _holds(
        dry_run,
        _shaped(note=ColumnFigures(null_frac=1.0)),
        "(SELECT count(*) FROM shop_order WHERE note IS NOT NULL) = 0",
    )


def test_a_partial_null_share_is_honoured_within_a_few_percent(dry_run):
    _holds(
        dry_run,
        _shaped(note=ColumnFigures(null_frac=0.35)),
        "(SELECT avg((note IS NULL)::int) FROM shop_order) BETWEEN 0.33 AND 0.37",
    )


def test_a_not_null_column_is_never_null_whatever_its_statistics_say(dry_run):
    _holds(
        dry_run,
        _shaped(total=ColumnFigures(null_frac=0.8)),
        "(SELECT count(*) FROM shop_order WHERE total IS NULL) = 0",
    )


def test_text_widths_follow_avg_width(dry_run):
    _holds(
        dry_run,
        _shaped(note=ColumnFigures(null_frac=0.0, avg_width=200)),
        "(SELECT avg(octet_length(note)) FROM shop_order) BETWEEN 190 AND 210",
        "(SELECT count(*) FROM shop_order WHERE note IS NULL) = 0",
    )


def test_varchar_widths_stay_within_max_length(dry_run):
    baseline = [
        ops.CreateModel(
            "Order",
            [("id", models.BigAutoField(primary_key=True)), ("code", models.CharField(max_length=12))],
        )
    ]
    profile = ProductionProfile(
        {"shop_order": TableFigures(500, 50_000, columns={"code": ColumnFigures(avg_width=40)})}, seed_max_rows=500
    )

    _holds(dry_run, profile, "(SELECT max(length(code)) FROM shop_order) <= 12", baseline=baseline)


def test_n_distinct_sets_the_number_of_distinct_values(dry_run):
    _holds(
        dry_run,
        _shaped(total=ColumnFigures(n_distinct=4), note=ColumnFigures(n_distinct=-0.5, null_frac=0.0)),
        "(SELECT count(DISTINCT total) FROM shop_order) = 4",
        "(SELECT count(DISTINCT note) FROM shop_order) = 1000",
    )


def test_a_foreign_key_keeps_to_existing_parents_with_the_cardinality_given(dry_run):
    _holds(
        dry_run,
        _shaped(customer_id=ColumnFigures(n_distinct=7)),
        "(SELECT count(DISTINCT customer_id) FROM shop_order) = 7",
        "NOT EXISTS (SELECT 1 FROM shop_order o LEFT JOIN shop_customer c ON c.id = o.customer_id WHERE c.id IS NULL)",
    )


def test_a_unique_column_stays_unique_whatever_n_distinct_says(dry_run):
    profile = ProductionProfile(
        {
            "shop_customer": TableFigures(300, 60_000, columns={"email": ColumnFigures(n_distinct=3, avg_width=5)}),
        },
        seed_max_rows=300,
    )

    _holds(dry_run, profile, "(SELECT count(DISTINCT email) FROM shop_customer) = 300")


def test_correlation_decides_whether_rows_are_stored_in_value_order(dry_run):
    _holds(
        dry_run,
        _shaped(total=ColumnFigures(n_distinct=-1, correlation=0.98), note=ColumnFigures(correlation=0.01)),
        "(SELECT correlation FROM pg_stats WHERE tablename = 'shop_order' AND attname = 'total') > 0.95",
        "(SELECT abs(correlation) FROM pg_stats WHERE tablename = 'shop_order' AND attname = 'note') < 0.3",
    )


def test_sorted_text_is_stored_in_its_own_sort_order(dry_run):
    _holds(
        dry_run,
        _shaped(note=ColumnFigures(n_distinct=-1, correlation=-0.9, null_frac=0.0)),
        "(SELECT correlation FROM pg_stats WHERE tablename = 'shop_order' AND attname = 'note') < -0.95",
    )


def test_the_report_says_which_columns_were_seeded_from_statistics_and_which_by_default(dry_run):
    report = dry_run(plan_of([ops.RunSQL("SELECT 1", ops.RunSQL.noop)]), profile=_shaped(note=ColumnFigures(null_frac=0.5)))

    seeded = {t["table"]: t for t in report["estimation"]["seeded_tables"]}
    assert seeded["shop_order"]["columns_from_stats"] == ["note"]
    assert seeded["shop_order"]["columns_by_default"] == ["total", "customer_id"]
    assert seeded["shop_customer"]["columns_from_stats"] == []
    assert seeded["shop_customer"]["columns_by_default"] == ["email"]


def test_statistics_for_a_column_the_table_lacks_are_ignored_with_a_warning(dry_run):
    report = dry_run(plan_of([ops.RunSQL("SELECT 1", ops.RunSQL.noop)]), profile=_shaped(gone=ColumnFigures(null_frac=0.5)))

    assert any("shop_order" in w and "gone" in w for w in report["estimation"]["seed_warnings"])


def test_rows_shaped_by_statistics_that_a_check_refuses_are_seeded_with_the_defaults(dry_run):
    checked = shop_baseline() + [ops.RunSQL("ALTER TABLE shop_order ADD CONSTRAINT wide CHECK (length(note) > 20)")]

    report = dry_run(
        plan_of([ops.RunSQL("SELECT 1", ops.RunSQL.noop)]),
        profile=_shaped(note=ColumnFigures(avg_width=5, null_frac=0.0)),
        baseline=checked,
    )

    seeded = {t["table"]: t for t in report["estimation"]["seeded_tables"]}
    assert seeded["shop_order"]["rows"] == 2_000
    assert seeded["shop_order"]["columns_from_stats"] == []
    assert any("seeded with the defaults" in w for w in report["estimation"]["seed_warnings"])


def test_column_statistics_change_the_seeded_template_name_and_none_keep_it():
    base = "sg_tpl_abc"
    plain = ProductionProfile({"t": TableFigures(10, 100)})
    shaped = ProductionProfile({"t": TableFigures(10, 100, columns={"c": ColumnFigures(null_frac=1.0)})})

    assert seeded_template_name(base, shaped) != seeded_template_name(base, plain)
    assert seeded_template_name(base, plain) == "sg_tpl_abc_s" + plain.seed_digest()[:10]


def test_statistics_of_a_column_postgresql_fills_are_ignored_quietly(dry_run):
    report = dry_run(plan_of([ops.RunSQL("SELECT 1", ops.RunSQL.noop)]), profile=_shaped(id=ColumnFigures(n_distinct=-1)))

    assert report["estimation"]["seed_warnings"] == []
