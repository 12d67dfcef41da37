"""A project dry-runs "as production is" (its latest schema snapshot restored) or "as the
migrations say" (the replay of its baseline), and every report says which."""

from __future__ import annotations

from typing import Any

import pytest

from changeapi.models import AuditEvent, Project, SchemaSnapshot, ShadowDatabase
from changeapi.services.dry_run_schemas import snapshot_template_name
from changeapi.services.shadows import shadow_chores_wait, shadows_reap, spare_names_for
from changeapi.services.table_stats import production_profile
from changeapi.shadow import provision
from changeapi.shadow.servers import configured_servers
from tests.approvals.test_release_flow import _submit
from tests.changeapi.test_schema_drift import QUERY, _production
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

PROJECT = "/api/v1/projects/shop/"
EXTRA_INDEX = "CREATE INDEX order_total_idx ON shop_order (total)"


def _upload_snapshot(api, *statements: str) -> dict[str, Any]:
    with _production() as conn:
        for statement in statements:
            conn.execute(statement)
        snapshot = conn.execute(QUERY).fetchone()[0]
    response = api.post("/api/v1/projects/shop/schema-snapshots/", snapshot, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def _as_production(api) -> None:
    response = api.patch(PROJECT, {"dry_run_schema": "snapshot"}, format="json")
    assert response.status_code == 200, response.content


def _dry_run(api, change_request) -> dict[str, Any]:
    return api.get(f"/api/v1/dry-runs/{change_request['latest_dry_run']}/").json()


def _snapshot_template(slug: str = "shop") -> str:
    snapshot = SchemaSnapshot.objects.filter(project__slug=slug).latest("id")
    return snapshot_template_name(snapshot=snapshot, profile=production_profile(project=snapshot.project))


def _drop_snapshot_template() -> None:
    """Templates outlive a test on purpose; a test that watches one being built starts without it."""
    provision.template_drop(configured_servers()[0], _snapshot_template())


def test_as_production_is_an_add_index_of_a_name_production_has_fails_on_that_statement(project_with_baseline):
    api = project_with_baseline["api"]
    _upload_snapshot(api, EXTRA_INDEX)
    _as_production(api)

    dry_run = _dry_run(api, _submit(api))

    assert dry_run["status"] == "failed"
    error = dry_run["report"]["error"]
    failed = dry_run["report"]["statements"][error["statement_index"]]
    assert failed["sql"].startswith('CREATE INDEX "order_total_idx"')
    assert error["sqlstate"] == "42P07"
    assert 'relation "order_total_idx" already exists' in error["message"]


def test_as_the_migrations_say_the_same_change_succeeds_and_warns_about_the_drift(project_with_baseline):
    api = project_with_baseline["api"]
    _upload_snapshot(api, EXTRA_INDEX)

    dry_run = _dry_run(api, _submit(api))

    assert dry_run["status"] == "succeeded", dry_run["error"]
    report = dry_run["report"]
    assert report["schema_source"] == {"schema": "migrations", "requested": "migrations"}
    assert [w["name"] for w in report["schema_drift"]["touched"]] == ["order_total_idx"]


def test_the_report_names_the_snapshot_it_ran_against(project_with_baseline):
    api = project_with_baseline["api"]
    snapshot = _upload_snapshot(api, "CREATE INDEX order_customer_total ON shop_order (customer_id, total)")
    _as_production(api)
    change_request = _submit(api)

    source = _dry_run(api, change_request)["report"]["schema_source"]
    markdown = api.get(f"/api/v1/dry-runs/{change_request['latest_dry_run']}/report.md").content.decode()

    assert (source["schema"], source["requested"], source["snapshot"]) == ("snapshot", "snapshot", snapshot["id"])
    assert source["snapshot_sha256"] == SchemaSnapshot.objects.get(pk=snapshot["id"]).sha256
    assert f"Schema: as production is (schema snapshot {snapshot['id']}, uploaded " in markdown


def test_a_snapshot_project_without_a_snapshot_falls_back_to_the_migrations_and_says_so(project_with_baseline):
    api = project_with_baseline["api"]
    _as_production(api)
    change_request = _submit(api)

    dry_run = _dry_run(api, change_request)
    markdown = api.get(f"/api/v1/dry-runs/{change_request['latest_dry_run']}/report.md").content.decode()

    assert dry_run["status"] == "succeeded", dry_run["error"]
    assert dry_run["report"]["schema_source"] == {
        "schema": "migrations",
        "requested": "snapshot",
        "fallback": "it has no schema snapshot yet",
    }
    assert "Schema: as the migrations say (the baseline's migrations replayed); the project asks for its snapshot" in markdown


def test_a_snapshot_the_shadow_cannot_restore_falls_back_to_the_migrations_naming_the_value(project_with_baseline):
    api = project_with_baseline["api"]
    with _production() as conn:
        content = conn.execute(QUERY).fetchone()[0]
    t = next(i for i, table in enumerate(content["tables"]) if table["name"] == "shop_order")
    c = next(i for i, column in enumerate(content["tables"][t]["columns"]) if column["name"] == "total")
    content["tables"][t]["columns"][c]["default"] = "0; DROP TABLE shop_customer"
    assert api.post("/api/v1/projects/shop/schema-snapshots/", content, format="json").status_code == 201
    _as_production(api)

    dry_run = _dry_run(api, _submit(api))

    assert dry_run["status"] == "succeeded", dry_run["error"]
    source = dry_run["report"]["schema_source"]
    assert (source["schema"], source["requested"]) == ("migrations", "snapshot")
    snapshot = SchemaSnapshot.objects.get().pk
    assert source["fallback"].startswith(f"schema snapshot {snapshot} cannot be restored on the shadow (")
    assert source["fallback"].endswith(f"at /tables/{t}/columns/{c}/default)")


def test_a_change_to_a_table_production_lacks_fails_naming_the_table(project_with_baseline):
    api = project_with_baseline["api"]
    _upload_snapshot(api, "DROP TABLE shop_order")
    _as_production(api)

    dry_run = _dry_run(api, _submit(api))

    assert dry_run["status"] == "failed"
    snapshot = SchemaSnapshot.objects.get().pk
    assert dry_run["error"].startswith(f"production's schema (schema snapshot {snapshot}) has no table shop_order, ")
    assert 'relation "shop_order" does not exist' in dry_run["error"]


def test_a_change_to_a_column_production_lacks_fails_naming_the_column(project_with_baseline):
    api = project_with_baseline["api"]
    _upload_snapshot(api, "ALTER TABLE shop_order DROP COLUMN total")
    _as_production(api)

    dry_run = _dry_run(api, _submit(api))

    assert dry_run["status"] == "failed"
    assert "has no column shop_order.total, which the baseline's migrations have" in dry_run["error"]


def test_the_snapshot_template_is_built_once_and_registered_as_a_template(project_with_baseline):
    api = project_with_baseline["api"]
    _upload_snapshot(api, EXTRA_INDEX)
    _as_production(api)
    _drop_snapshot_template()

    first, second = _dry_run(api, _submit(api)), _dry_run(api, _submit(api))

    (row,) = ShadowDatabase.objects.filter(name=_snapshot_template(), dropped_at=None)
    assert (row.kind, row.schema_snapshot_id) == (ShadowDatabase.Kind.TEMPLATE, SchemaSnapshot.objects.get().pk)
    assert first["report"]["error"]["sqlstate"] == second["report"]["error"]["sqlstate"] == "42P07"


def test_the_next_dry_run_on_the_snapshot_takes_a_spare_of_its_template(project_with_baseline):
    api = project_with_baseline["api"]
    _upload_snapshot(api, EXTRA_INDEX)
    _as_production(api)
    _dry_run(api, _submit(api))
    shadow_chores_wait()
    spare = spare_names_for(_snapshot_template())[0]
    made = ShadowDatabase.objects.get(name=spare, dropped_at=None)

    _dry_run(api, _submit(api))

    made.refresh_from_db()
    assert (made.kind, made.dropped_at is not None) == (ShadowDatabase.Kind.SPARE, True)


def test_the_snapshot_template_is_seeded_like_a_baseline_template(project_with_baseline):
    api = project_with_baseline["api"]
    tables = [
        {"table": "shop_customer", "rows": 50, "total_bytes": 16384},
        {"table": "shop_order", "rows": 500, "total_bytes": 65536},
    ]
    assert api.post("/api/v1/table-stats/", {"project": "shop", "tables": tables}, format="json").status_code == 200
    _upload_snapshot(api, "CREATE INDEX order_customer_total ON shop_order (customer_id, total)")
    _as_production(api)

    dry_run = _dry_run(api, _submit(api))

    assert dry_run["status"] == "succeeded", dry_run["error"]
    assert dry_run["report"]["schema_source"]["schema"] == "snapshot"
    seeded = {t["table"]: t["rows"] for t in dry_run["report"]["estimation"]["seeded_tables"]}
    assert seeded == {"shop_customer": 50, "shop_order": 500}, dry_run["report"]["estimation"]["seed_warnings"]


def test_the_reaper_keeps_the_snapshot_template_only_while_the_project_dry_runs_on_it(project_with_baseline):
    api = project_with_baseline["api"]
    _upload_snapshot(api, EXTRA_INDEX)
    _as_production(api)
    _drop_snapshot_template()
    _submit(api)
    template = _snapshot_template()

    kept = template in shadows_reap()[0].kept
    api.patch(PROJECT, {"dry_run_schema": "migrations"}, format="json")
    dropped = template in shadows_reap()[0].dropped

    assert (kept, dropped) == (True, True)


def _project(client_for):  # noqa: ANN001, ANN202
    api = client_for(UserFactory(username="owner"))
    assert api.post("/api/v1/projects/", {"slug": "shop", "name": "Shop"}, format="json").status_code == 201
    return api


@pytest.mark.django_db(transaction=False)
def test_a_manager_switches_to_the_snapshot_and_the_change_is_audited(client_for):
    api = _project(client_for)

    response = api.patch(PROJECT, {"dry_run_schema": "snapshot"}, format="json")

    assert response.status_code == 200, response.content
    assert api.get(PROJECT).json()["dry_run_schema"] == "snapshot"
    event = AuditEvent.objects.get(action="project.updated")
    assert (event.before, event.after) == ({"dry_run_schema": "migrations"}, {"dry_run_schema": "snapshot"})


@pytest.mark.django_db(transaction=False)
def test_a_new_project_dry_runs_as_the_migrations_say(client_for):
    api = _project(client_for)

    assert api.get(PROJECT).json()["dry_run_schema"] == "migrations"


@pytest.mark.django_db(transaction=False)
def test_only_a_manager_changes_the_dry_run_schema(client_for):
    api = _project(client_for)
    viewer = client_for(UserFactory(username="viewer"))
    api.post(f"{PROJECT}members/", {"username": "viewer", "permissions": ["view_project"]}, format="json")
    outsider = client_for(UserFactory(username="outsider"))

    refused = [
        c.patch(PROJECT, {"dry_run_schema": "snapshot"}, format="json").status_code for c in (client_for(None), outsider, viewer)
    ]

    assert refused == [401, 404, 403]
    assert Project.objects.get(slug="shop").dry_run_schema == "migrations"


@pytest.mark.django_db(transaction=False)
def test_a_schema_that_is_neither_is_refused_at_its_field(client_for):
    api = _project(client_for)

    response = api.patch(PROJECT, {"dry_run_schema": "production"}, format="json")

    assert response.status_code == 400
    assert [e["pointer"] for e in response.json()["errors"]] == ["/dry_run_schema"]


@pytest.mark.django_db(transaction=False)
def test_a_project_of_another_engine_cannot_dry_run_on_a_snapshot(client_for):
    api = client_for(UserFactory(username="owner"))
    project = {"slug": "shop", "name": "Shop", "engine": "sqlite", "engine_version": 3}
    assert api.post("/api/v1/projects/", project, format="json").status_code == 201, "created"

    response = api.patch(PROJECT, {"dry_run_schema": "snapshot"}, format="json")

    assert response.status_code == 409
    assert Project.objects.get(slug="shop").dry_run_schema == "migrations"
