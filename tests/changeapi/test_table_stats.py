"""Uploading and reading production table stats and activity over HTTP."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection

from changeapi.models import AuditEvent, Project
from changeapi.services.table_stats import production_profile
from changeapi.shadow.column_stats import ColumnFigures
from tests.factories import UserFactory
from tests.support.mariadb import MARIADB, drop_database, recreate_database

pytestmark = pytest.mark.django_db

UPLOAD = {
    "project": "shop",
    "tables": [
        {
            "table": "shop_order",
            "rows": 48_000_000,
            "total_bytes": 9_663_676_416,
            "queries_per_second": 850,
            "oldest_transaction_seconds": 4,
        },
        {"table": "shop_customer", "rows": 1_200_000, "total_bytes": 402_653_184},
    ],
}


@pytest.fixture
def shop(owner, client_for):
    api = client_for(owner)
    assert api.post("/api/v1/projects/", {"slug": "shop", "name": "Shop"}, format="json").status_code == 201
    return api


def _member(api, username, permissions):
    UserFactory(username=username)
    response = api.post("/api/v1/projects/shop/members/", {"username": username, "permissions": permissions}, format="json")
    assert response.status_code == 200, response.content


def test_manager_uploads_sizes_and_traffic_and_reads_them_back(shop):
    response = shop.post("/api/v1/table-stats/", UPLOAD, format="json")

    assert response.status_code == 200, response.content
    listed = shop.get("/api/v1/table-stats/?project=shop").json()["results"]
    order = next(t for t in listed if t["table"] == "shop_order")
    assert (order["rows"], order["total_bytes"], order["queries_per_second"]) == (48_000_000, 9_663_676_416, 850.0)
    assert next(t for t in listed if t["table"] == "shop_customer")["queries_per_second"] is None


def test_upload_with_replace_forgets_tables_not_sent(shop):
    shop.post("/api/v1/table-stats/", UPLOAD, format="json")

    shop.post("/api/v1/table-stats/", {"project": "shop", "tables": [UPLOAD["tables"][1]]}, format="json")

    assert [t["table"] for t in shop.get("/api/v1/table-stats/?project=shop").json()["results"]] == ["shop_customer"]


def test_upload_is_recorded_in_the_audit_trail(shop):
    shop.post("/api/v1/table-stats/", UPLOAD, format="json")

    assert AuditEvent.objects.filter(action="table_stats.uploaded").count() == 1


def test_upload_without_an_identifier_like_table_name_is_refused(shop):
    bad = {"project": "shop", "tables": [{"table": "shop_order; DROP TABLE x", "rows": 1, "total_bytes": 1}]}

    response = shop.post("/api/v1/table-stats/", bad, format="json")

    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"


def test_upload_listing_a_table_twice_is_refused(shop):
    twice = {"project": "shop", "tables": [UPLOAD["tables"][1], UPLOAD["tables"][1]]}

    assert shop.post("/api/v1/table-stats/", twice, format="json").status_code == 400


def test_anonymous_upload_is_unauthorized(shop, client_for):
    assert client_for(None).post("/api/v1/table-stats/", UPLOAD, format="json").status_code == 401


def test_user_without_access_to_the_project_gets_not_found(shop, client_for):
    stranger = UserFactory(username="stranger")

    assert client_for(stranger).post("/api/v1/table-stats/", UPLOAD, format="json").status_code == 404


def test_read_only_member_can_list_but_not_upload(shop, client_for):
    _member(shop, "viewer", ["view_project"])
    shop.post("/api/v1/table-stats/", UPLOAD, format="json")
    viewer = client_for(get_user_model().objects.get(username="viewer"))

    assert viewer.post("/api/v1/table-stats/", UPLOAD, format="json").status_code == 403
    assert len(viewer.get("/api/v1/table-stats/?project=shop").json()["results"]) == 2


COLUMNS = [
    {"column": "note", "null_frac": 1.0, "avg_width": 0, "n_distinct": 0, "correlation": None},
    {"column": "status", "null_frac": 0, "avg_width": 7, "n_distinct": 4, "correlation": 0.02},
    {"column": "id", "null_frac": 0, "avg_width": 8, "n_distinct": -1, "correlation": 1},
]


def _with_columns(**table):
    base = {"table": "shop_order", "rows": 200_000, "total_bytes": 30_000_000, "columns": COLUMNS}
    return {"project": "shop", "tables": [{**base, **table}]}


def test_upload_with_column_statistics_and_index_sizes_is_stored_and_read_back(shop):
    indexes = [{"index": "shop_order_pkey", "bytes": 4_500_000}]

    response = shop.post("/api/v1/table-stats/", _with_columns(indexes=indexes), format="json")

    assert response.status_code == 200, response.content
    order = shop.get("/api/v1/table-stats/?project=shop").json()["results"][0]
    assert order["columns"] == COLUMNS
    assert order["indexes"] == indexes


def test_upload_without_columns_is_still_valid_and_lists_none(shop):
    shop.post("/api/v1/table-stats/", UPLOAD, format="json")

    order = next(t for t in shop.get("/api/v1/table-stats/?project=shop").json()["results"] if t["table"] == "shop_order")
    assert (order["columns"], order["indexes"]) == ([], [])


def test_column_figures_may_be_partial(shop):
    partial = [{"column": "note", "null_frac": 0.5}]

    response = shop.post("/api/v1/table-stats/", _with_columns(columns=partial), format="json")

    assert response.status_code == 200, response.content
    stored = shop.get("/api/v1/table-stats/?project=shop").json()["results"][0]["columns"][0]
    assert stored == {"column": "note", "null_frac": 0.5, "avg_width": None, "n_distinct": None, "correlation": None}


@pytest.mark.parametrize(
    ("figure", "value"),
    [("null_frac", 1.5), ("null_frac", -0.1), ("avg_width", -1), ("n_distinct", -1.5), ("correlation", 1.01)],
)
def test_a_column_figure_out_of_range_is_refused_at_its_json_path(shop, figure, value):
    columns = [COLUMNS[0], {"column": "status", figure: value}]

    response = shop.post("/api/v1/table-stats/", _with_columns(columns=columns), format="json")

    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    assert [e["pointer"] for e in response.json()["errors"]] == [f"/tables/0/columns/1/{figure}"]


def test_a_column_listed_twice_is_refused(shop):
    response = shop.post("/api/v1/table-stats/", _with_columns(columns=[COLUMNS[0], COLUMNS[0]]), format="json")

    assert response.status_code == 400
    assert response.json()["errors"][0]["pointer"] == "/tables/0/columns"


def test_a_column_name_that_is_not_an_identifier_is_refused(shop):
    response = shop.post("/api/v1/table-stats/", _with_columns(columns=[{"column": "a b", "null_frac": 0}]), format="json")

    assert response.status_code == 400
    assert response.json()["errors"][0]["pointer"] == "/tables/0/columns/0/column"


def test_a_negative_index_size_is_refused_at_its_json_path(shop):
    response = shop.post("/api/v1/table-stats/", _with_columns(indexes=[{"index": "i", "bytes": -1}]), format="json")

    assert response.status_code == 400
    assert response.json()["errors"][0]["pointer"] == "/tables/0/indexes/0/bytes"


def test_uploaded_column_statistics_shape_the_production_profile_and_its_template(shop):
    shop.post("/api/v1/table-stats/", _with_columns(columns=[]), format="json")
    project = Project.objects.get(slug="shop")
    before = production_profile(project=project).seed_digest()

    shop.post("/api/v1/table-stats/", _with_columns(), format="json")

    profile = production_profile(project=project)
    assert profile.tables["shop_order"].columns["status"] == ColumnFigures(
        null_frac=0.0, avg_width=7, n_distinct=4.0, correlation=0.02
    )
    assert profile.seed_digest() != before


def _documented_query() -> str:
    text = (Path(__file__).resolve().parents[2] / "docs" / "table-stats.md").read_text()
    return re.findall(r"```sql\n(.*?)```", text, re.S)[0]


def test_the_documented_query_reads_no_values_and_its_output_is_a_valid_upload(shop):
    query = _documented_query()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE changeapi_project")
        cursor.execute(query)
        tables = cursor.fetchone()[0]
    tables = json.loads(tables) if isinstance(tables, str) else tables

    response = shop.post("/api/v1/table-stats/", {"project": "shop", "tables": tables}, format="json")

    assert response.status_code == 200, response.content
    project = next(t for t in tables if t["table"] == "changeapi_project")
    assert {c["column"] for c in project["columns"]} >= {"slug", "name"}
    assert not re.search(r"most_common|histogram", query)


def _documented_mysql_query() -> str:
    text = (Path(__file__).resolve().parents[2] / "docs" / "table-stats.md").read_text()
    [query] = [q for q in re.findall(r"```sql\n(.*?)```", text, re.S) if "information_schema.TABLES" in q]
    return query


def test_the_documented_mariadb_query_reads_sizes_only_and_its_output_is_a_valid_upload(shop):
    name = f"{settings.SHADOW_DATABASE_PREFIX}stats_query"
    recreate_database(name)
    try:
        raw = MARIADB.admin_connect()
        try:
            cursor = raw.cursor()
            cursor.execute(f"USE `{name}`")
            cursor.execute(
                "CREATE TABLE shop_order (id bigint PRIMARY KEY AUTO_INCREMENT, code varchar(20) NOT NULL, KEY (code))"
            )
            cursor.execute("CREATE VIEW shop_order_view AS SELECT id FROM shop_order")
            cursor.execute("INSERT INTO shop_order (code) SELECT CONCAT('c', seq) FROM seq_1_to_2000")
            raw.commit()
            cursor.execute("ANALYZE TABLE shop_order")
            cursor.fetchall()
            cursor.execute(_documented_mysql_query())
            tables = json.loads(cursor.fetchone()[0])
        finally:
            raw.close()
    finally:
        drop_database(name)

    response = shop.post("/api/v1/table-stats/", {"project": "shop", "tables": tables}, format="json")

    assert response.status_code == 200, response.content
    [order] = tables  # base tables only: no view
    assert order["table"] == "shop_order" and order["rows"] > 0 and order["total_bytes"] > 0
    assert set(order) == {"table", "rows", "total_bytes"}
