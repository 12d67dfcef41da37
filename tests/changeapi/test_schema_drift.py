"""Drift reports on the real PostgreSQL: a copy of the baseline's template drifted by hand, the
documented query run on it and uploaded, and the report listing exactly what was changed."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from django.conf import settings

from changeapi.models import Baseline, ShadowDatabase
from changeapi.services.schema_snapshots import _template_catalogs
from changeapi.shadow import provision
from changeapi.shadow.servers import configured_servers
from tests.changeapi.test_schema_snapshots import SNAPSHOT

pytestmark = pytest.mark.django_db(transaction=True)

QUERY = re.findall(r"```sql\n(.*?)```", (Path(__file__).resolve().parents[2] / "docs" / "drift.md").read_text(), re.S)[0]


@contextmanager
def _production(slug: str = "shop") -> Iterator[psycopg.Connection]:
    """A database made from the baseline's template, as production would be after migrating,
    with an autocommit admin connection to drift it by hand."""
    server = configured_servers()[0]
    baseline = Baseline.objects.get(project__slug=slug, status=Baseline.Status.READY)
    name = f"{settings.SHADOW_DATABASE_PREFIX}prod_{uuid.uuid4().hex[:12]}"
    provision.clone_create(server, template=baseline.template_name, name=name)
    try:
        with server.admin_connect(name) as conn:
            yield conn
    finally:
        provision.clone_drop(server, name)


def _drift(api, conn: psycopg.Connection) -> dict[str, Any]:
    """Run the documented query on `conn`, upload its output, and read the drift report."""
    row = conn.execute(QUERY).fetchone()
    assert row is not None
    response = api.post("/api/v1/projects/shop/schema-snapshots/", row[0], format="json")
    assert response.status_code == 201, response.content
    response = api.get(f"/api/v1/schema-snapshots/{response.json()['id']}/drift/")
    assert response.status_code == 200, response.content
    return response.json()


def _items(report: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {(item["kind"], item["status"], item["name"]) for item in report["items"]}


def test_a_database_as_the_migrations_say_has_no_drift(project_with_baseline):
    with _production() as conn:
        report = _drift(project_with_baseline["api"], conn)

    assert (report["drifted"], report["items"], report["baseline_version"]) == (False, [], 1)


def test_the_report_lists_exactly_the_changes_made_by_hand(project_with_baseline):
    with _production() as conn:
        conn.execute("CREATE INDEX shop_customer_email_upper ON shop_customer (upper(email))")
        conn.execute("ALTER TABLE shop_order DROP COLUMN total")
        conn.execute("INSERT INTO shop_customer (email) VALUES ('a@example.com')")
        conn.execute("INSERT INTO shop_order (customer_id) SELECT id FROM shop_customer, generate_series(1, 2)")
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute("CREATE UNIQUE INDEX CONCURRENTLY shop_order_one_per_customer ON shop_order (customer_id)")
        conn.execute("ALTER TABLE shop_customer ADD CONSTRAINT shop_customer_email_lower CHECK (email = lower(email)) NOT VALID")
        conn.execute("ALTER TABLE shop_customer ALTER COLUMN email SET DEFAULT ''")
        report = _drift(project_with_baseline["api"], conn)

    assert _items(report) == {
        ("index", "extra", "shop_customer_email_upper"),
        ("column", "missing", "total"),
        ("index", "invalid", "shop_order_one_per_customer"),
        ("constraint", "not_valid", "shop_customer_email_lower"),
        ("column", "different", "email"),
    }
    assert len(report["items"]) == 5


def test_an_extra_index_warns_that_an_add_index_of_its_name_will_fail(project_with_baseline):
    with _production() as conn:
        conn.execute("CREATE INDEX order_total_idx ON shop_order (total)")
        (item,) = _drift(project_with_baseline["api"], conn)["items"]

    assert (item["severity"], item["table"]) == ("medium", "shop_order")
    assert "an AddIndex of the same name will fail" in item["consequence"]
    assert item["expected"] is None and item["actual"]["definition"].startswith("CREATE INDEX order_total_idx")


def test_an_invalid_index_is_high_and_says_to_drop_and_rebuild_it(project_with_baseline):
    with _production() as conn:
        conn.execute("INSERT INTO shop_customer (email) VALUES ('a@example.com'), ('b@example.com')")
        conn.execute("INSERT INTO shop_order (total, customer_id) SELECT 1, id FROM shop_customer")
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute("CREATE UNIQUE INDEX CONCURRENTLY shop_order_total_key ON shop_order (total)")
        (item,) = _drift(project_with_baseline["api"], conn)["items"]

    assert (item["status"], item["severity"], item["actual"]["valid"]) == ("invalid", "high", False)
    assert "drop and rebuild it" in item["consequence"]


def test_an_index_the_migrations_have_but_production_lacks_is_missing(project_with_baseline):
    with _production() as conn:
        name = conn.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'shop_order' AND indexname LIKE '%customer_id%'"
        ).fetchone()[0]
        conn.execute(f'DROP INDEX "{name}"')
        (item,) = _drift(project_with_baseline["api"], conn)["items"]

    assert (item["kind"], item["status"], item["name"]) == ("index", "missing", name)
    assert "RemoveIndex" in item["consequence"]


def test_an_index_redefined_by_hand_is_different(project_with_baseline):
    with _production() as conn:
        name = conn.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'shop_order' AND indexname LIKE '%customer_id%'"
        ).fetchone()[0]
        conn.execute(f'DROP INDEX "{name}"')
        conn.execute(f'CREATE INDEX "{name}" ON shop_order (customer_id) WHERE total > 0')
        (item,) = _drift(project_with_baseline["api"], conn)["items"]

    assert (item["kind"], item["status"], item["actual"]["predicate"]) == ("index", "different", "(total > 0)")


def test_a_not_valid_constraint_says_how_to_validate_it(project_with_baseline):
    with _production() as conn:
        conn.execute("ALTER TABLE shop_order ADD CONSTRAINT shop_order_total_positive CHECK (total > 0) NOT VALID")
        (item,) = _drift(project_with_baseline["api"], conn)["items"]

    assert (item["kind"], item["status"], item["table"]) == ("constraint", "not_valid", "shop_order")
    assert "VALIDATE CONSTRAINT shop_order_total_positive" in item["consequence"]


def test_a_validated_extra_constraint_is_extra(project_with_baseline):
    with _production() as conn:
        conn.execute("ALTER TABLE shop_order ADD CONSTRAINT shop_order_total_positive CHECK (total > 0)")
        (item,) = _drift(project_with_baseline["api"], conn)["items"]

    assert (item["kind"], item["status"], item["severity"]) == ("constraint", "extra", "medium")
    assert "AddConstraint" in item["consequence"]


def test_a_dropped_foreign_key_is_a_missing_constraint(project_with_baseline):
    with _production() as conn:
        name = conn.execute(
            "SELECT conname FROM pg_constraint WHERE contype = 'f' AND conrelid = 'shop_order'::regclass"
        ).fetchone()[0]
        conn.execute(f'ALTER TABLE shop_order DROP CONSTRAINT "{name}"')
        (item,) = _drift(project_with_baseline["api"], conn)["items"]

    assert (item["kind"], item["status"], item["name"]) == ("constraint", "missing", name)


def test_a_column_whose_type_changed_is_high(project_with_baseline):
    with _production() as conn:
        conn.execute("ALTER TABLE shop_order ALTER COLUMN total TYPE bigint")
        (item,) = _drift(project_with_baseline["api"], conn)["items"]

    assert (item["kind"], item["status"], item["severity"]) == ("column", "different", "high")
    assert (item["expected"]["type"], item["actual"]["type"]) == ("integer", "bigint")


def test_a_changed_default_is_different_and_names_both(project_with_baseline):
    with _production() as conn:
        conn.execute("ALTER TABLE shop_order ALTER COLUMN total SET DEFAULT 0")
        (item,) = _drift(project_with_baseline["api"], conn)["items"]

    assert (item["status"], item["severity"], item["actual"]["default"], item["expected"]["default"]) == (
        "different",
        "medium",
        "0",
        None,
    )


def test_an_extra_not_null_column_without_default_is_high(project_with_baseline):
    with _production() as conn:
        conn.execute("ALTER TABLE shop_order ADD COLUMN region text NOT NULL")
        (item,) = _drift(project_with_baseline["api"], conn)["items"]

    assert (item["kind"], item["status"], item["severity"]) == ("column", "extra", "high")
    assert "every INSERT Django makes fails" in item["consequence"]


def test_an_extra_table_warns_that_creating_it_will_fail(project_with_baseline):
    with _production() as conn:
        conn.execute("CREATE TABLE legacy_refund (id integer PRIMARY KEY)")
        items = _items(_drift(project_with_baseline["api"], conn))

    assert items == {
        ("table", "extra", "legacy_refund"),
        ("index", "extra", "legacy_refund_pkey"),
        ("constraint", "extra", "legacy_refund_pkey"),
    }


def test_a_missing_table_is_one_item(project_with_baseline):
    with _production() as conn:
        conn.execute("DROP TABLE shop_order")
        report = _drift(project_with_baseline["api"], conn)

    assert _items(report) == {("table", "missing", "shop_order")}
    assert report["counts"] == {"high": 1, "medium": 0, "low": 0, "info": 0}


def test_an_extension_production_has_and_the_migrations_do_not_is_info(project_with_baseline):
    with _production() as conn:
        conn.execute("CREATE EXTENSION pg_trgm")
        (item,) = _drift(project_with_baseline["api"], conn)["items"]

    assert (item["kind"], item["status"], item["severity"], item["name"]) == ("extension", "extra", "info", "pg_trgm")


def test_an_extra_sequence_is_low(project_with_baseline):
    with _production() as conn:
        conn.execute("CREATE SEQUENCE shop_invoice_number")
        (item,) = _drift(project_with_baseline["api"], conn)["items"]

    assert (item["kind"], item["status"], item["severity"]) == ("sequence", "extra", "low")


def test_the_template_is_read_on_a_clone_that_is_dropped(project_with_baseline):
    _template_catalogs.clear()  # read afresh, as by a new process
    with _production() as conn:
        _drift(project_with_baseline["api"], conn)

    reads = ShadowDatabase.objects.filter(name__contains="snap_")
    assert reads.count() == 1 and reads.get().dropped_at is not None
    assert provision.databases_with_prefix(configured_servers()[0], f"{settings.SHADOW_DATABASE_PREFIX}snap_") == []


def test_a_template_is_read_once_per_process(project_with_baseline):
    _template_catalogs.clear()
    with _production() as conn:
        _drift(project_with_baseline["api"], conn)
    with _production() as conn:
        _drift(project_with_baseline["api"], conn)

    assert ShadowDatabase.objects.filter(name__contains="snap_").count() == 1


def test_drift_without_a_ready_baseline_is_a_conflict(owner, client_for):
    api = client_for(owner)
    api.post("/api/v1/projects/", {"slug": "shop", "name": "Shop"}, format="json")
    snapshot = api.post("/api/v1/projects/shop/schema-snapshots/", SNAPSHOT, format="json").json()

    response = api.get(f"/api/v1/schema-snapshots/{snapshot['id']}/drift/")

    assert response.status_code == 409
    assert response["Content-Type"] == "application/problem+json"
