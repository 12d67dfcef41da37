"""Seeded failures are not production failures: a statement that fails on the shadow only
because of the synthetic rows is reported with the production rows that would make it fail,
and the dry-run goes on; a failure of the schema change itself, or of rows the change wrote,
still fails it."""

from __future__ import annotations

from django.db import models
from django.db.migrations import operations as ops

from changeapi.dryrun.contract import report_from_json
from changeapi.dryrun.profile import ProductionProfile, TableFigures
from changeapi.dryrun.render import report_markdown
from changeapi.dryrun.seeded_failures import RowCondition, row_conditions
from changeapi.shadow.column_stats import ColumnFigures
from tests.engine.analysis.conftest import plan_of, sizes, statement

ORDERS = 4_000  # more rows than the seeder has distinct dates (3,650), so dates repeat


def _baseline() -> list:
    return [
        ops.CreateModel(
            "Order",
            [
                ("id", models.BigAutoField(primary_key=True)),
                ("code", models.CharField(max_length=20)),
                ("placed", models.DateField()),
                ("note", models.TextField(null=True)),
            ],
        )
    ]


def _run(dry_run, *operations, columns=None):
    change = [*operations, ops.AddField("order", "flag", models.BooleanField(null=True))]
    profile = sizes(shop_order=ORDERS)
    if columns:
        profile = ProductionProfile({"shop_order": TableFigures(ORDERS, ORDERS * 160, columns=columns)}, seed_max_rows=ORDERS)
    return dry_run(plan_of(change), profile=profile, baseline=_baseline())


def _only_failure(report, fragment):
    failures = statement(report, fragment)["seeded_failures"]
    assert len(failures) == 1
    return failures[0]


def test_narrowing_a_char_field_below_the_seeded_values_reports_the_rows_and_goes_on(dry_run):
    report = _run(dry_run, ops.AlterField("order", "code", models.CharField(max_length=10)))

    assert report["status"] == "succeeded", report["error"]
    failure = _only_failure(report, "TYPE varchar(10)")
    assert (failure["kind"], failure["sqlstate"], failure["columns"]) == ("value_too_long", "22001", ["code"])
    assert failure["seeded_rows"] == ORDERS
    assert failure["production_check"] == 'SELECT count(*) FROM "shop_order" WHERE char_length("code") > 10;'
    assert "longer than 10 characters" in failure["fails_in_production_if"]
    assert any('ADD COLUMN "flag"' in s["sql"] for s in report["statements"])


def test_a_new_unique_constraint_over_repeated_seed_values_reports_the_rows_and_goes_on(dry_run):
    report = _run(dry_run, ops.AlterField("order", "placed", models.DateField(unique=True)))

    assert report["status"] == "succeeded", report["error"]
    failure = _only_failure(report, "UNIQUE")
    assert (failure["kind"], failure["sqlstate"], failure["columns"]) == ("duplicate_values", "23505", ["placed"])
    assert failure["seeded_rows"] == ORDERS - 3_650
    assert "HAVING count(*) > 1" in failure["production_check"]
    assert any('ADD COLUMN "flag"' in s["sql"] for s in report["statements"])


def test_not_null_without_a_default_over_seeded_nulls_reports_the_rows_and_goes_on(dry_run):
    report = _run(dry_run, ops.AlterField("order", "note", models.TextField()))

    assert report["status"] == "succeeded", report["error"]
    failure = _only_failure(report, "SET NOT NULL")
    assert (failure["kind"], failure["sqlstate"], failure["columns"]) == ("null_values", "23502", ["note"])
    assert failure["seeded_rows"] == ORDERS // 10
    assert failure["production_check"] == 'SELECT count(*) FROM "shop_order" WHERE "note" IS NULL;'


def test_the_rerun_statement_is_traced_with_its_own_locks(dry_run):
    report = _run(dry_run, ops.AlterField("order", "note", models.TextField()))

    locks = statement(report, "SET NOT NULL")["locks"]
    assert [(lock["relation"], lock["mode"]) for lock in locks] == [("shop_order", "AccessExclusiveLock")]


def test_a_statement_without_seeded_failures_has_no_such_key(dry_run):
    report = _run(dry_run, ops.AlterField("order", "code", models.CharField(max_length=40)))

    assert "seeded_failures" not in statement(report, "TYPE varchar(40)")


def test_nulls_the_change_itself_wrote_still_fail_the_dry_run(dry_run):
    report = _run(
        dry_run,
        ops.RunSQL("UPDATE shop_order SET note = NULL WHERE id < 10", ops.RunSQL.noop),
        ops.AlterField("order", "note", models.TextField()),
    )

    assert report["status"] == "failed"
    assert report["error"]["sqlstate"] == "23502"


def test_duplicates_in_a_table_the_change_filled_still_fail_the_dry_run(dry_run):
    report = _run(
        dry_run,
        ops.RunSQL("CREATE TABLE shop_tag (name varchar(10))", ops.RunSQL.noop),
        ops.RunSQL("INSERT INTO shop_tag VALUES ('a'), ('a')", ops.RunSQL.noop),
        ops.RunSQL("CREATE UNIQUE INDEX shop_tag_name ON shop_tag (name)", ops.RunSQL.noop),
    )

    assert report["status"] == "failed"
    assert report["error"]["sqlstate"] == "23505"


def test_a_failure_of_the_schema_change_itself_still_fails_the_dry_run(dry_run):
    report = _run(dry_run, ops.AlterField("order", "code", models.IntegerField()))

    assert report["status"] == "failed"
    assert report["error"]["sqlstate"] == "22P02"
    assert "seeded_failures" not in report["statements"][report["error"]["statement_index"]]


def test_each_seeded_failure_of_one_change_is_reported_and_the_run_goes_on(dry_run):
    report = _run(
        dry_run,
        ops.AlterField("order", "placed", models.DateField(unique=True)),
        ops.AlterField("order", "code", models.CharField(max_length=10)),
        ops.AlterField("order", "note", models.TextField()),
    )

    assert report["status"] == "succeeded", report["error"]
    kinds = [f["kind"] for s in report["statements"] for f in s.get("seeded_failures", [])]
    assert kinds == ["duplicate_values", "value_too_long", "null_values"]


def test_after_sql_that_may_write_anywhere_a_seeded_looking_failure_still_fails_the_dry_run(dry_run):
    report = _run(
        dry_run,
        ops.RunSQL("DO $$ BEGIN PERFORM 1; END $$", ops.RunSQL.noop),
        ops.AlterField("order", "note", models.TextField()),
    )

    assert report["status"] == "failed"
    assert report["error"]["sqlstate"] == "23502"


def test_not_null_fails_when_production_statistics_show_nulls(dry_run):
    report = _run(dry_run, ops.AlterField("order", "note", models.TextField()), columns={"note": ColumnFigures(null_frac=0.2)})

    assert report["status"] == "failed"
    assert report["error"]["sqlstate"] == "23502"


def test_narrowing_fails_when_production_values_are_wider_on_average(dry_run):
    report = _run(
        dry_run, ops.AlterField("order", "code", models.CharField(max_length=10)), columns={"code": ColumnFigures(avg_width=16)}
    )

    assert report["status"] == "failed"
    assert report["error"]["sqlstate"] == "22001"


def test_a_unique_constraint_fails_when_production_statistics_show_repeated_values(dry_run):
    report = _run(
        dry_run,
        ops.AlterField("order", "placed", models.DateField(unique=True)),
        columns={"placed": ColumnFigures(n_distinct=90)},
    )

    assert report["status"] == "failed"
    assert report["error"]["sqlstate"] == "23505"


def test_a_unique_constraint_over_values_production_keeps_distinct_goes_on(dry_run):
    report = _run(
        dry_run,
        ops.AlterField("order", "placed", models.DateField(unique=True)),
        ops.AlterField("order", "note", models.TextField()),
        columns={"placed": ColumnFigures(n_distinct=-1, null_frac=0.0), "note": ColumnFigures(null_frac=0.0)},
    )

    assert report["status"] == "succeeded", report["error"]
    assert "seeded_failures" not in statement(report, "UNIQUE")


def test_markdown_lists_seeded_failures_with_their_production_check(dry_run):
    report = _run(dry_run, ops.AlterField("order", "code", models.CharField(max_length=10)))

    text = report_markdown(report_from_json(report), public_url="http://localhost:8000")

    assert "#### Failed only on seeded rows" in text
    assert 'SELECT count(*) FROM "shop_order" WHERE char_length("code") > 10;' in text
    assert "- shop_order: statistics: none; defaults: code, placed, note" in text


def test_narrowing_a_unique_char_field_keeps_the_conforming_values_unique(dry_run):
    baseline = [ops.AlterField("order", "code", models.CharField(max_length=20, unique=True))]

    report = _run(dry_run, *baseline, ops.AlterField("order", "code", models.CharField(max_length=10, unique=True)))

    assert report["status"] == "succeeded", report["error"]
    assert _only_failure(report, "TYPE varchar(10)")["kind"] == "value_too_long"


def test_a_unique_index_in_submitted_sql_over_repeated_seed_values_goes_on(dry_run):
    report = _run(dry_run, ops.RunSQL("CREATE UNIQUE INDEX shop_order_day ON shop_order (placed)", ops.RunSQL.noop))

    assert report["status"] == "succeeded", report["error"]
    failure = _only_failure(report, "CREATE UNIQUE INDEX")
    assert (failure["kind"], failure["columns"]) == ("duplicate_values", ["placed"])


def test_rows_the_baseline_itself_put_in_a_table_the_seeder_did_not_fill_still_fail_the_dry_run(dry_run):
    tag = ops.CreateModel("Tag", [("id", models.BigAutoField(primary_key=True)), ("name", models.TextField(null=True))])
    data = ops.RunSQL("INSERT INTO shop_tag (name) VALUES (NULL)", ops.RunSQL.noop)

    report = dry_run(
        plan_of([ops.AlterField("tag", "name", models.TextField())]),
        profile=sizes(shop_order=ORDERS),
        baseline=[*_baseline(), tag, data],
    )

    assert report["status"] == "failed"
    assert report["error"]["sqlstate"] == "23502"


def test_partial_expression_and_concurrent_unique_indexes_are_not_retried():
    assert row_conditions("CREATE UNIQUE INDEX i ON t (a) WHERE a > 0") == []
    assert row_conditions("CREATE UNIQUE INDEX i ON t (lower(a))") == []
    assert row_conditions("CREATE UNIQUE INDEX CONCURRENTLY i ON t (a)") == []
    assert row_conditions('CREATE UNIQUE INDEX i ON "t" ("a", "b")') == [RowCondition("duplicate_values", "t", ("a", "b"))]


def test_a_primary_key_added_later_needs_distinct_and_non_null_values():
    kinds = [c.kind for c in row_conditions('ALTER TABLE "t" ADD CONSTRAINT "t_pkey" PRIMARY KEY ("a")')]

    assert kinds == ["duplicate_values", "null_values"]
