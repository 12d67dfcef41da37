"""Uploading and reading production schema snapshots over HTTP: validation, permissions, audit."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from changeapi.models import AuditEvent, SchemaSnapshot
from changeapi.shadow.catalog import CATALOG_QUERY
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

SNAPSHOT: dict[str, Any] = {
    "server_version": "15.20",
    "server_version_num": 150020,
    "schema": "public",
    "extensions": [{"name": "plpgsql", "version": "1.0"}],
    "tables": [
        {
            "name": "shop_order",
            "partitioned": False,
            "columns": [
                {"name": "id", "type": "bigint", "nullable": False, "default": None, "collation": None, "identity": "by_default"},
                {"name": "total", "type": "integer", "nullable": False, "default": None, "collation": None, "identity": None},
            ],
        }
    ],
    "indexes": [
        {
            "name": "shop_order_pkey",
            "table": "shop_order",
            "definition": "CREATE UNIQUE INDEX shop_order_pkey ON public.shop_order USING btree (id)",
            "unique": True,
            "primary": True,
            "valid": True,
            "predicate": None,
        }
    ],
    "constraints": [
        {
            "name": "shop_order_pkey",
            "table": "shop_order",
            "type": "primary_key",
            "definition": "PRIMARY KEY (id)",
            "validated": True,
        }
    ],
    "sequences": [{"name": "shop_order_id_seq", "type": "bigint", "owned_by": "shop_order.id"}],
}
URL = "/api/v1/projects/shop/schema-snapshots/"


@pytest.fixture
def shop(owner, client_for):
    api = client_for(owner)
    assert api.post("/api/v1/projects/", {"slug": "shop", "name": "Shop"}, format="json").status_code == 201
    return api


def _member(api, username, permissions):
    UserFactory(username=username)
    response = api.post("/api/v1/projects/shop/members/", {"username": username, "permissions": permissions}, format="json")
    assert response.status_code == 200, response.content


def _changed(path: str, value: Any) -> dict[str, Any]:
    """SNAPSHOT with the value at a JSON pointer replaced."""
    snapshot = copy.deepcopy(SNAPSHOT)
    *parents, last = path.strip("/").split("/")
    node: Any = snapshot
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    node[int(last) if isinstance(node, list) else last] = value
    return snapshot


def _pointers(response) -> list[str]:
    """The distinct JSON paths a 400 problem names."""
    assert response.status_code == 400, response.content
    assert response["Content-Type"] == "application/problem+json"
    return sorted({error["pointer"] for error in response.json()["errors"]})


def test_manager_uploads_a_snapshot_and_reads_it_back(shop):
    response = shop.post(URL, SNAPSHOT, format="json")

    assert response.status_code == 201, response.content
    detail = shop.get(response["Location"]).json()
    assert (detail["server_version"], detail["table_count"], detail["uploaded_by"]) == ("15.20", 1, "owner")
    assert detail["content"]["indexes"] == SNAPSHOT["indexes"]
    assert [s["id"] for s in shop.get(URL).json()["results"]] == [detail["id"]]


def test_upload_is_recorded_in_the_audit_trail(shop):
    snapshot = shop.post(URL, SNAPSHOT, format="json").json()

    event = AuditEvent.objects.get(action="schema_snapshot.uploaded")
    assert (event.target_id, event.after["tables"]) == (str(snapshot["id"]), 1)


def test_anonymous_upload_is_unauthorized(shop, client_for):
    assert client_for(None).post(URL, SNAPSHOT, format="json").status_code == 401


def test_user_without_access_to_the_project_gets_not_found(shop, client_for):
    snapshot = shop.post(URL, SNAPSHOT, format="json").json()
    outsider = client_for(UserFactory(username="outsider"))

    assert outsider.post(URL, SNAPSHOT, format="json").status_code == 404
    assert outsider.get(URL).status_code == 404
    assert outsider.get(f"{URL}{snapshot['id']}/").status_code == 404
    assert outsider.get(f"/api/v1/schema-snapshots/{snapshot['id']}/drift/").status_code == 404


def test_read_only_member_can_read_but_not_upload(shop, client_for):
    snapshot = shop.post(URL, SNAPSHOT, format="json").json()
    _member(shop, "viewer", ["view_project"])
    viewer = client_for(UserFactory(username="viewer"))

    assert viewer.post(URL, SNAPSHOT, format="json").status_code == 403
    assert viewer.get(f"{URL}{snapshot['id']}/").status_code == 200
    assert SchemaSnapshot.objects.count() == 1


def test_a_snapshot_of_another_project_is_not_found_under_this_one(shop, owner):
    shop.post("/api/v1/projects/", {"slug": "blog", "name": "Blog"}, format="json")
    snapshot = shop.post("/api/v1/projects/blog/schema-snapshots/", SNAPSHOT, format="json").json()

    assert shop.get(f"{URL}{snapshot['id']}/").status_code == 404


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("/tables/0/columns/1/nullable", "sometimes"),
        ("/tables/0/columns/1/type", None),
        ("/indexes/0/valid", None),
        ("/constraints/0/type", "trigger"),
        ("/server_version_num", "fifteen"),
        ("/tables/0/name", "x" * 64),
        ("/sequences/0/name", "seq\x00"),
    ],
)
def test_a_malformed_value_is_refused_at_its_json_path(shop, path, value):
    response = shop.post(URL, _changed(path, value), format="json")

    assert _pointers(response) == [path]
    assert SchemaSnapshot.objects.count() == 0


def test_a_snapshot_without_its_tables_is_refused(shop):
    snapshot = {k: v for k, v in SNAPSHOT.items() if k != "tables"}

    assert _pointers(shop.post(URL, snapshot, format="json")) == ["/tables"]


def test_a_column_listed_twice_is_refused_at_the_second(shop):
    columns = SNAPSHOT["tables"][0]["columns"]

    response = shop.post(URL, _changed("/tables/0/columns", [*columns, columns[1]]), format="json")

    assert _pointers(response) == ["/tables/0/columns/2/name"]


def test_an_index_on_a_table_the_snapshot_lacks_is_refused_at_its_table(shop):
    response = shop.post(URL, _changed("/indexes/0/table", "shop_refund"), format="json")

    assert _pointers(response) == ["/indexes/0/table"]


def test_too_many_tables_are_refused(shop):
    table = {"name": "t", "columns": []}
    tables = [{**table, "name": f"t{n}"} for n in range(5001)]

    assert _pointers(shop.post(URL, _changed("/tables", tables), format="json")) == ["/tables"]


def test_sql_in_names_is_stored_as_text_and_never_run(shop):
    name = 'x"; DROP TABLE changeapi_project; --'

    response = shop.post(URL, _changed("/tables/0/columns/1/name", name), format="json")

    assert response.status_code == 201, response.content
    assert response.json()["content"]["tables"][0]["columns"][1]["name"] == name
    assert shop.get("/api/v1/projects/shop/").status_code == 200


def test_a_body_that_is_not_json_is_refused(shop):
    response = shop.generic("POST", URL, "{not json", content_type="application/json")

    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"


def _documented_query() -> str:
    text = (Path(__file__).resolve().parents[2] / "docs" / "drift.md").read_text()
    return re.findall(r"```sql\n(.*?)```", text, re.S)[0]


def test_the_documented_query_is_the_one_the_service_runs_on_templates():
    assert _documented_query() == CATALOG_QUERY


def test_the_documented_query_reads_only_the_catalog_and_its_output_is_a_valid_upload(shop):
    query = _documented_query()
    with connection.cursor() as cursor:
        cursor.execute(query)
        snapshot = cursor.fetchone()[0]
    snapshot = json.loads(snapshot) if isinstance(snapshot, str) else snapshot

    response = shop.post(URL, snapshot, format="json")

    assert response.status_code == 201, response.content
    assert "changeapi_project" in {t["name"] for t in snapshot["tables"]}
    assert set(re.findall(r"\b(?:FROM|JOIN)\s+(\w+)", query)) <= {
        "pg_extension", "pg_attribute", "pg_attrdef", "pg_collation", "pg_class", "pg_index", "pg_constraint",
        "pg_depend", "pg_sequence", "pg_namespace",
    }  # fmt: skip


def test_a_snapshot_over_the_body_limit_is_refused_and_stores_nothing(shop, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2_000
    columns = [{**SNAPSHOT["tables"][0]["columns"][1], "name": f"c{n}"} for n in range(100)]

    response = shop.post(URL, _changed("/tables/0/columns", columns), format="json")

    assert response.status_code == 413
    assert response.json()["limit"]["name"] == "SCHEMAGATE_MAX_BODY_BYTES"
    assert SchemaSnapshot.objects.count() == 0


@pytest.mark.parametrize("text", ["by \udc00", "nul \x00"])
def test_text_postgresql_cannot_store_is_refused_at_its_json_path(shop, text):
    body = json.dumps(_changed("/indexes/0/definition", text))

    response = shop.post(URL, data=body, content_type="application/json")

    assert _pointers(response) == ["/indexes/0/definition"]
    assert SchemaSnapshot.objects.count() == 0
