"""Access patterns over HTTP: managed per project, checked on the baseline when saved (a located
400 when they do not prepare), and explained before and after the change in every dry-run."""

from __future__ import annotations

import pytest
from django.conf import settings

from changeapi.dryrun.contract import report_from_json
from changeapi.dryrun.render import report_markdown
from changeapi.shadow.provision import databases_with_prefix
from changeapi.shadow.servers import configured_servers
from tests.approvals.test_release_flow import _submit
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

URL = "/api/v1/projects/shop/access-patterns/"
BY_TOTAL = {
    "name": "orders_by_total",
    "sql": "SELECT id, total\nFROM shop_order\nWHERE total = %(total)s",
    "params": {"total": 42},
    "orm": "Order.objects.filter(total=total)",
    "weight": 30,
}


def validation_clones() -> list[str]:
    prefix = f"{settings.SHADOW_DATABASE_PREFIX}ap_"
    return [name for server in configured_servers() for name in databases_with_prefix(server, prefix)]


@pytest.fixture
def api(project_with_baseline):
    return project_with_baseline["api"]


def test_a_manager_adds_a_pattern_checked_on_the_current_baseline(api):
    response = api.post(URL, BY_TOTAL, format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    assert {k: body[k] for k in BY_TOTAL} == BY_TOTAL
    assert body["checked_baseline_version"] == 1
    assert [p["name"] for p in api.get(URL).json()] == ["orders_by_total"]
    assert validation_clones() == []


def test_sample_values_by_position_fill_numbered_placeholders(api):
    pattern = {"name": "by_customer", "sql": "SELECT id FROM shop_order WHERE customer_id = $1 AND total > $2", "params": [7, 10]}

    response = api.post(URL, pattern, format="json")

    assert response.status_code == 201, response.content
    assert response.json()["params"] == {"1": 7, "2": 10}


def test_a_misspelt_column_is_a_400_located_in_the_sql(api):
    response = api.post(URL, {**BY_TOTAL, "sql": "SELECT id, total\nFROM shop_order\nWHERE totl = %(total)s"}, format="json")

    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"].endswith("/invalid-access-pattern")
    [error] = problem["errors"]
    assert {"pointer": "/sql", "line": 3, "column": 7, "sqlstate": "42703"}.items() <= error.items()
    assert error["detail"].startswith('column "totl" does not exist')
    assert api.get(URL).json() == []
    assert validation_clones() == []


def test_a_syntax_error_and_a_missing_table_are_located_too(api):
    syntax = api.post(URL, {**BY_TOTAL, "sql": "SELECT id FROM shop_order\n  WHER total = %(total)s"}, format="json")
    missing = api.post(URL, {**BY_TOTAL, "sql": "SELECT id FROM shop_orders WHERE total = %(total)s"}, format="json")

    assert {"pointer": "/sql", "line": 2, "column": 8, "sqlstate": "42601"}.items() <= syntax.json()["errors"][0].items()
    assert {"pointer": "/sql", "line": 1, "column": 16, "sqlstate": "42P01"}.items() <= missing.json()["errors"][0].items()


def test_a_missing_sample_value_points_at_params_and_its_placeholder(api):
    response = api.post(URL, {**BY_TOTAL, "params": {}}, format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"detail": "no sample value for %(total)s: add it to params", "pointer": "/params", "line": 3, "column": 15}
    ]


def test_a_sample_value_of_the_wrong_type_points_at_that_value(api):
    response = api.post(URL, {**BY_TOTAL, "params": {"total": "many"}}, format="json")

    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert error["pointer"] == "/params/total" and error["sqlstate"] == "22P02"


def test_a_second_statement_is_refused_where_it_starts(api):
    response = api.post(URL, {**BY_TOTAL, "sql": "SELECT 1; DROP TABLE shop_order", "params": {}}, format="json")

    assert response.status_code == 400
    assert {"pointer": "/sql", "line": 1, "column": 9}.items() <= response.json()["errors"][0].items()


def test_two_patterns_of_a_project_cannot_share_a_name(api):
    assert api.post(URL, BY_TOTAL, format="json").status_code == 201

    assert api.post(URL, BY_TOTAL, format="json").status_code == 409


def test_changing_the_sql_checks_it_again_and_keeps_the_old_one_on_failure(api):
    pattern = api.post(URL, BY_TOTAL, format="json").json()
    url = f"{URL}{pattern['id']}/"

    refused = api.patch(url, {"sql": "SELECT nope FROM shop_order WHERE total = %(total)s"}, format="json")
    reweighed = api.patch(url, {"weight": 2.5}, format="json")

    assert refused.status_code == 400
    assert reweighed.status_code == 200
    assert reweighed.json()["weight"] == 2.5 and reweighed.json()["sql"] == BY_TOTAL["sql"]


def test_a_manager_deletes_a_pattern(api):
    pattern = api.post(URL, BY_TOTAL, format="json").json()

    assert api.delete(f"{URL}{pattern['id']}/").status_code == 204
    assert api.get(f"{URL}{pattern['id']}/").status_code == 404


def test_a_project_without_a_baseline_cannot_check_patterns(owner, client_for):
    api = client_for(owner)
    api.post("/api/v1/projects/", {"slug": "bare", "name": "Bare"}, format="json")

    response = api.post("/api/v1/projects/bare/access-patterns/", BY_TOTAL, format="json")

    assert response.status_code == 409


def test_permissions_anonymous_401_outsider_404_viewer_403(api, client_for):
    pattern = api.post(URL, BY_TOTAL, format="json").json()
    item = f"{URL}{pattern['id']}/"
    UserFactory(username="viewer")
    api.post("/api/v1/projects/shop/members/", {"username": "viewer", "permissions": ["view_project"]}, format="json")
    anonymous, outsider = client_for(None), client_for(UserFactory(username="outsider"))
    viewer = client_for(UserFactory(username="viewer"))

    assert anonymous.get(URL).status_code == 401
    assert [outsider.get(URL).status_code, outsider.get(item).status_code] == [404, 404]
    assert outsider.post(URL, {**BY_TOTAL, "name": "x"}, format="json").status_code == 404
    assert outsider.delete(item).status_code == 404
    assert [viewer.get(URL).status_code, viewer.get(item).status_code] == [200, 200]
    assert viewer.post(URL, {**BY_TOTAL, "name": "x"}, format="json").status_code == 403
    assert viewer.patch(item, {"weight": 1}, format="json").status_code == 403
    assert viewer.delete(item).status_code == 403


def test_every_dry_run_reports_each_pattern_before_and_after_the_change(api):
    api.post(URL, BY_TOTAL, format="json")
    change_request = _submit(api)

    dry_run = api.get(f"/api/v1/dry-runs/{change_request['latest_dry_run']}/").json()

    assert dry_run["status"] == "succeeded", dry_run["error"]
    [entry] = dry_run["report"]["access_patterns"]["patterns"]
    assert entry["name"] == "orders_by_total" and entry["weight"] == 30
    assert entry["before"]["scans"][0]["table"] == "shop_order"
    assert entry["after"]["total_cost"] > 0
    assert entry["warnings"] == [
        "no table stats were uploaded: the shadow was not seeded, so this plan was taken on empty tables"
    ]
    text = report_markdown(report_from_json(dry_run["report"]), public_url="http://localhost:8000")
    assert "#### Access patterns" in text and "**orders_by_total** · 30 calls/s" in text
    assert "| Before |" in text and "| After |" in text


def test_with_50_million_rows_in_the_stats_an_index_scan_stays_an_index_scan_at_seed_size(api, settings):
    settings.SCHEMAGATE_SEED_MAX_ROWS = 20_000
    stats = {
        "project": "shop",
        "tables": [
            {"table": "shop_order", "rows": 50_000_000, "total_bytes": 6_000_000_000},
            {"table": "shop_customer", "rows": 1_000_000, "total_bytes": 100_000_000},
        ],
    }
    assert api.post("/api/v1/table-stats/", stats, format="json").status_code == 200
    by_customer = {"name": "orders_of_customer", "sql": "SELECT id FROM shop_order WHERE customer_id = $1", "params": [42]}
    api.post(URL, by_customer, format="json")
    change_request = _submit(api)

    report = api.get(f"/api/v1/dry-runs/{change_request['latest_dry_run']}/").json()["report"]

    [entry] = report["access_patterns"]["patterns"]
    assert [s["scan_method"] for s in entry["before"]["scans"]] in (["index_scan"], ["bitmap_scan"])
    assert [s["scan_method"] for s in entry["after"]["scans"]] in (["index_scan"], ["bitmap_scan"])
    assert entry["before"]["rows"] >= 1
    assert {"table": "shop_order", "seed_rows": 20_000, "production_rows": 50_000_000}.items() <= entry["tables"][0].items()
    assert "Plans (EXPLAIN, estimated) taken on the shadow at: shop_order 20,000 rows" in report_markdown(
        report_from_json(report), public_url="http://localhost:8000"
    )
