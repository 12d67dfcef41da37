"""Access patterns on a real shadow: plans before and after a change, verdicts and findings SG401-SG404.

Every test clones one template, seeded as if shop_order had 50 million rows and shop_customer
1 million, capped at 20,000 rows a table: large enough for the planner to choose index scans
where production would, small enough to build in seconds.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from django.conf import settings
from django.db import models
from django.db.migrations import operations as ops

from changeapi.dryrun.access_patterns import AccessPattern, PatternError, explain_patterns, pattern_check
from changeapi.dryrun.contract import to_json
from changeapi.dryrun.profile import ProductionProfile, TableFigures, seeded_template_name
from changeapi.dryrun.run import dry_run_execute, template_build
from changeapi.intake.plan import Plan, PlannedMigration
from changeapi.shadow import provision
from changeapi.shadow.servers import ShadowServer, configured_servers

PRODUCTION = ProductionProfile(
    {
        "shop_order": TableFigures(rows=50_000_000, total_bytes=50_000_000 * 120),
        "shop_customer": TableFigures(rows=1_000_000, total_bytes=1_000_000 * 100),
    },
    seed_max_rows=20_000,
)

BY_TOTAL = AccessPattern(
    name="orders_by_total", sql="SELECT id, total FROM shop_order WHERE total = %(total)s", params={"total": 7919}, weight=25
)
BY_NOTE = AccessPattern(name="orders_by_note", sql="SELECT id FROM shop_order WHERE note = $1", params={"1": "7-ab"})
BY_CUSTOMER = AccessPattern(
    name="recent_orders_of_customer",
    sql="SELECT id, total FROM shop_order WHERE customer_id = %(customer_id)s ORDER BY id DESC LIMIT 20",
    params={"customer_id": 42},
    orm="Order.objects.filter(customer_id=customer_id).order_by('-id')[:20]",
    weight=120,
)


def baseline_operations() -> list[Any]:
    """Customer and Order, with an index on Order.total."""
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
                ("customer", models.ForeignKey("shop.Customer", models.CASCADE)),
            ],
        ),
        ops.AddIndex("order", models.Index(fields=["total"], name="order_total_idx")),
    ]


def plan_of(operations: list[Any], *, name: str = "0001_initial") -> Plan:
    return Plan([PlannedMigration("shop", name, operations, atomic=True)])


@pytest.fixture(scope="module")
def shadow_server() -> ShadowServer:
    return configured_servers()[0]


@pytest.fixture(scope="module")
def template(shadow_server: ShadowServer, django_db_blocker: Any) -> Iterator[str]:
    base = plan_of(baseline_operations())
    digest = hashlib.sha256(repr([op.deconstruct() for op in base.migrations[0].operations]).encode()).hexdigest()
    name = seeded_template_name(f"{settings.SHADOW_DATABASE_PREFIX}tpl_ap{digest[:14]}", PRODUCTION)
    with django_db_blocker.unblock():
        template_build(server=shadow_server, name=name, baseline=base, profile=PRODUCTION)
    yield name
    provision.template_drop(shadow_server, name)


@pytest.fixture
def dry_run(shadow_server: ShadowServer, template: str, django_db_blocker: Any) -> Any:
    """dry_run(operations, patterns) -> the report of the change on a fresh clone, as JSON."""

    def run(operations: list[Any], patterns: list[AccessPattern]) -> dict[str, Any]:
        with django_db_blocker.unblock():
            report = dry_run_execute(
                server=shadow_server,
                template=template,
                clone_name=f"{settings.SHADOW_DATABASE_PREFIX}dr_access",
                baseline=plan_of(baseline_operations()),
                change=plan_of(operations, name="0002_change"),
                profile=PRODUCTION,
                access_patterns=patterns,
            )
        return to_json(report)

    return run


def result(report: dict[str, Any], name: str) -> dict[str, Any]:
    return next(p for p in report["access_patterns"]["patterns"] if p["name"] == name)


def findings(report: dict[str, Any], code: str) -> list[dict[str, Any]]:
    return [f for f in report["findings"] if f["code"] == code]


def test_dropping_an_index_a_pattern_uses_is_a_regression_with_both_plans(dry_run):
    report = dry_run([ops.RemoveIndex("order", "order_total_idx")], [BY_TOTAL])

    entry = result(report, "orders_by_total")
    assert entry["verdict"] == "regressed"
    assert "order_total_idx" in entry["before"]["indexes"]
    assert entry["after"]["indexes"] == []
    assert {s["scan_method"] for s in entry["after"]["scans"]} == {"seq_scan"}
    assert entry["after"]["total_cost"] > entry["before"]["total_cost"]
    assert "Seq Scan on shop_order (50,000,000 rows in production)" in entry["reasons"][0]


def test_a_regression_is_a_finding_whose_severity_follows_size_and_weight(dry_run):
    report = dry_run([ops.RemoveIndex("order", "order_total_idx")], [BY_TOTAL])

    [regression] = findings(report, "SG401")
    [dropped] = findings(report, "SG404")
    assert regression["severity"] == "high"
    assert regression["table"] == "shop_order"
    assert report["statements"][regression["statement_index"]]["sql"].startswith("DROP INDEX")
    assert "CREATE INDEX CONCURRENTLY order_total_idx" in regression["safer_alternative"]["example"]
    assert "order_total_idx" in dropped["message"] and "'orders_by_total' regressed" in dropped["message"]
    assert report["summary"]["findings"]["high"] >= 1


def test_adding_an_index_that_turns_a_seq_scan_into_an_index_scan_is_an_improvement(dry_run):
    report = dry_run([ops.AddIndex("order", models.Index(fields=["note"], name="order_note_idx"))], [BY_NOTE])

    entry = result(report, "orders_by_note")
    assert entry["verdict"] == "improved"
    assert {s["scan_method"] for s in entry["before"]["scans"]} == {"seq_scan"}
    assert entry["after"]["indexes"] == ["order_note_idx"]
    assert findings(report, "SG402") == []


def test_a_new_index_no_pattern_uses_and_an_unindexed_foreign_key_are_findings(dry_run):
    report = dry_run(
        [
            ops.AddIndex("order", models.Index(fields=["note"], name="order_note_idx")),
            ops.AddField("order", "referrer", models.ForeignKey("shop.Customer", models.SET_NULL, null=True, db_index=False)),
        ],
        [BY_TOTAL],
    )

    [unused] = findings(report, "SG402")
    [unindexed] = findings(report, "SG403")
    assert "order_note_idx" in unused["message"]
    assert report["statements"][unused["statement_index"]]["sql"].startswith("CREATE INDEX")
    assert unindexed["table"] == "shop_order"
    assert "(referrer_id) → shop_customer" in unindexed["message"]
    assert unindexed["severity"] == "high"
    assert "ON shop_order (referrer_id)" in unindexed["safer_alternative"]["example"]
    assert result(report, "orders_by_total")["verdict"] == "unchanged"


def test_an_indexed_new_foreign_key_is_no_finding(dry_run):
    report = dry_run([ops.AddField("order", "referrer", models.ForeignKey("shop.Customer", models.SET_NULL, null=True))], [])

    assert findings(report, "SG403") == []
    assert findings(report, "SG402") == []


def test_an_index_scan_at_production_size_is_an_index_scan_in_the_report_with_its_seed_size(dry_run):
    report = dry_run([ops.AddField("order", "coupon", models.TextField(null=True))], [BY_CUSTOMER])

    entry = result(report, "recent_orders_of_customer")
    scans = entry["before"]["scans"]
    assert [s["scan_method"] for s in scans] in (["index_scan"], ["bitmap_scan"])
    assert scans[0]["indexes"][0].startswith("shop_order_customer_id")
    assert all(node["rows"] >= 0 for node in entry["before"]["nodes"])
    assert {"table": "shop_order", "seed_rows": 20_000, "production_rows": 50_000_000}.items() <= entry["tables"][0].items()
    assert report["access_patterns"]["seed_max_rows"] == 20_000
    assert entry["verdict"] == "unchanged"


def test_row_estimates_skewed_by_seeding_tables_one_by_one_are_warned_about(dry_run):
    report = dry_run([ops.AddField("order", "coupon", models.TextField(null=True))], [BY_CUSTOMER])

    [warning] = result(report, "recent_orders_of_customer")["warnings"]
    assert warning.startswith("shop_order has 1.0 rows per shop_customer on the shadow and 50.0 in production")
    assert "customer_id are about 50× lower than production's" in warning


def test_a_query_that_fails_after_the_change_is_broken_and_a_high_finding(dry_run):
    report = dry_run([ops.RemoveField("order", "note")], [BY_NOTE])

    entry = result(report, "orders_by_note")
    assert entry["verdict"] == "broken"
    assert entry["after"]["sqlstate"] == "42703"
    assert findings(report, "SG401")[0]["severity"] == "high"


def test_a_seq_scan_on_a_table_seeded_below_its_production_size_is_warned_about(dry_run):
    report = dry_run([ops.AddField("order", "coupon", models.TextField(null=True))], [BY_NOTE])

    [warning] = result(report, "orders_by_note")["warnings"]
    assert "Seq Scan on shop_order planned at 20,000 rows; production has 50,000,000" in warning


def test_a_pattern_that_writes_is_planned_never_run(shadow_server, template, django_db_blocker):
    clone = f"{settings.SHADOW_DATABASE_PREFIX}dr_access_write"
    delete = AccessPattern(name="purge", sql="DELETE FROM shop_order WHERE total >= $1", params={"1": 0})
    with django_db_blocker.unblock():
        provision.clone_create(shadow_server, template=template, name=clone)
        try:
            with psycopg.connect(**shadow_server.runner_conninfo(clone), autocommit=True) as conn:  # type: ignore[arg-type]
                plan = pattern_check(conn, delete)
                row = conn.execute("SELECT count(*) FROM shop_order").fetchone()
                prepared = conn.execute("SELECT count(*) FROM pg_prepared_statements").fetchone()
        finally:
            provision.clone_drop(shadow_server, clone)

    assert plan.node_types[0] == "ModifyTable"
    assert row == (20_000,)
    assert prepared == (0,)


def test_a_misspelt_column_is_located_in_the_submitted_sql(shadow_server, template, django_db_blocker):
    clone = f"{settings.SHADOW_DATABASE_PREFIX}dr_access_typo"
    typo = AccessPattern(name="typo", sql="SELECT id\nFROM shop_order\nWHERE totl = %(total)s", params={"total": 1})
    with django_db_blocker.unblock():
        provision.clone_create(shadow_server, template=template, name=clone)
        try:
            with psycopg.connect(**shadow_server.runner_conninfo(clone), autocommit=True) as conn:  # type: ignore[arg-type]
                with pytest.raises(PatternError) as raised:
                    pattern_check(conn, typo)
        finally:
            provision.clone_drop(shadow_server, clone)

    assert raised.value.as_dict() == {
        "detail": 'column "totl" does not exist (hint: Perhaps you meant to reference the column "shop_order.total".)',
        "pointer": "/sql",
        "line": 3,
        "column": 7,
        "sqlstate": "42703",
    }


def test_the_snapshot_after_a_change_read_for_the_touched_tables_equals_a_full_read(shadow_server, template, django_db_blocker):
    clone = f"{settings.SHADOW_DATABASE_PREFIX}dr_access_touched"
    change = [
        "CREATE TABLE shop_refund (id bigint PRIMARY KEY, order_id bigint REFERENCES shop_order (id))",
        "CREATE INDEX refund_order_idx ON shop_refund (order_id)",
        "DROP INDEX order_total_idx",
        "ALTER TABLE shop_customer RENAME TO shop_client",
    ]
    with django_db_blocker.unblock():
        provision.clone_create(shadow_server, template=template, name=clone)
        try:
            with psycopg.connect(**shadow_server.runner_conninfo(clone), autocommit=True) as conn:  # type: ignore[arg-type]
                before = explain_patterns(conn, [BY_TOTAL])
                for statement in change:
                    conn.execute(statement)
                touched = {"shop_refund", "refund_order_idx", "shop_order", "order_total_idx", "shop_client"}
                incremental = explain_patterns(conn, [BY_TOTAL], since=before, touched=touched)
                full = explain_patterns(conn, [BY_TOTAL])
        finally:
            provision.clone_drop(shadow_server, clone)

    assert incremental is not None and full is not None
    assert incremental.indexes == full.indexes
    assert incremental.foreign_keys == full.foreign_keys
    assert {fk.parent for fk in incremental.foreign_keys.values()} >= {"shop_client", "shop_order"}
