"""Hostile schema snapshots: wrong types, deep nesting, duplicated names, huge values and SQL in
names are each a 400 problem+json naming the JSON path of the value, and change nothing."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from changeapi.models import AuditEvent, SchemaSnapshot
from changeapi.services.schema_snapshots import _template_catalogs
from tests.changeapi.test_schema_snapshots import SNAPSHOT, URL, _changed, _pointers, shop  # noqa: F401 - fixture

pytestmark = pytest.mark.django_db

REQUIRED = ("constraints", "extensions", "indexes", "schema", "sequences", "server_version", "server_version_num", "tables")


def _post(api, body: object) -> Any:  # noqa: ANN001
    return api.post(URL, data=body if isinstance(body, str) else json.dumps(body), content_type="application/json")


def _nothing_stored() -> None:
    assert SchemaSnapshot.objects.count() == 0
    assert not AuditEvent.objects.filter(action="schema_snapshot.uploaded").exists()


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("/tables/0/name", 123),
        ("/tables/0/columns/0/nullable", "true"),
        ("/tables/0/columns/0/nullable", 1),
        ("/indexes/0/unique", "yes"),
        ("/server_version_num", "150020"),
        ("/server_version_num", 150020.5),
        ("/tables", {"shop_order": {}}),
        ("/tables/0", "shop_order"),
        ("/tables/0/columns", None),
        ("/constraints/0/validated", None),
        ("/extensions/0", ["plpgsql", "1.0"]),
    ],
)
def test_a_value_of_the_wrong_json_type_is_refused_at_its_path(shop, path, value):  # noqa: F811
    assert _pointers(_post(shop, _changed(path, value))) == [path]
    _nothing_stored()


def test_a_snapshot_that_is_not_an_object_is_refused_at_the_root(shop):  # noqa: F811
    assert _pointers(_post(shop, [SNAPSHOT])) == ["/"]
    _nothing_stored()


def test_an_empty_object_names_each_missing_field_once(shop):  # noqa: F811
    response = _post(shop, {})

    assert response.status_code == 400
    assert [e["pointer"] for e in response.json()["errors"]] == [f"/{name}" for name in REQUIRED]
    _nothing_stored()


def test_a_snapshot_nested_past_the_depth_limit_is_refused_where_it_goes_too_deep(shop):  # noqa: F811
    # Built as text: json.dumps itself cannot write something this deep.
    body = json.dumps(_changed("/tables/0/columns/0/default", "HOLE")).replace('"HOLE"', "[" * 5000 + "]" * 5000)

    response = _post(shop, body)

    assert response.status_code == 400
    problem = response.json()
    assert problem["limit"]["name"] == "SCHEMAGATE_MAX_JSON_DEPTH"
    assert problem["errors"][0]["pointer"].startswith("/tables/0/columns/0/default/0/0")
    _nothing_stored()


def test_a_nested_value_where_text_belongs_is_refused_at_its_path(shop):  # noqa: F811
    response = _post(shop, _changed("/indexes/0/definition", {"sql": [[["CREATE INDEX"]]]}))

    assert _pointers(response) == ["/indexes/0/definition"]
    _nothing_stored()


@pytest.mark.parametrize(
    ("collection", "pointer"),
    [("tables", "/tables/1/name"), ("indexes", "/indexes/1/name"), ("sequences", "/sequences/1/name")],
)
def test_a_name_listed_twice_is_refused_at_the_second(shop, collection, pointer):  # noqa: F811
    items = SNAPSHOT[collection]

    assert _pointers(_post(shop, _changed(f"/{collection}", [*items, copy.deepcopy(items[0])]))) == [pointer]
    _nothing_stored()


def test_a_constraint_listed_twice_on_one_table_is_refused_but_the_same_name_on_two_tables_is_not(shop):  # noqa: F811
    twice = _changed("/constraints", [*SNAPSHOT["constraints"], copy.deepcopy(SNAPSHOT["constraints"][0])])
    other_table = copy.deepcopy(SNAPSHOT)
    other_table["tables"].append({"name": "shop_refund", "columns": []})
    other_table["constraints"].append({**SNAPSHOT["constraints"][0], "table": "shop_refund"})

    assert _pointers(_post(shop, twice)) == ["/constraints/1/name"]
    assert _post(shop, other_table).status_code == 201


def test_a_definition_past_its_bound_is_refused_at_its_path(shop):  # noqa: F811
    response = _post(shop, _changed("/constraints/0/definition", "CHECK (" + "x OR " * 5000 + "true)"))

    assert _pointers(response) == ["/constraints/0/definition"]
    _nothing_stored()


def test_too_many_columns_in_one_table_are_refused_at_that_table(shop):  # noqa: F811
    columns = [{**SNAPSHOT["tables"][0]["columns"][1], "name": f"c{n}"} for n in range(1601)]

    assert _pointers(_post(shop, _changed("/tables/0/columns", columns))) == ["/tables/0/columns"]
    _nothing_stored()


def test_keys_the_catalog_query_does_not_write_are_not_stored(shop):  # noqa: F811
    snapshot = {**copy.deepcopy(SNAPSHOT), "password": "hunter2", "extra": [[["anything"]]]}
    snapshot["tables"][0]["owner"] = "postgres"

    response = _post(shop, snapshot)

    assert response.status_code == 201, response.content
    content = SchemaSnapshot.objects.get().content
    assert "password" not in content and "extra" not in content
    assert "owner" not in content["tables"][0]


@pytest.mark.django_db(transaction=True)
def test_sql_in_every_kind_of_name_is_compared_as_text_and_runs_nowhere(project_with_baseline):
    api = project_with_baseline["api"]
    table = 'shop_order"; DROP TABLE shop_customer; --'
    snapshot = copy.deepcopy(SNAPSHOT)
    snapshot["tables"].append({"name": table, "columns": [{"name": "'); DROP TABLE x; --", "type": "integer", "nullable": True}]})
    snapshot["indexes"].append({**SNAPSHOT["indexes"][0], "name": "i; DELETE FROM pg_index", "table": table})
    uploaded = api.post("/api/v1/projects/shop/schema-snapshots/", snapshot, format="json")
    assert uploaded.status_code == 201, uploaded.content

    drift = api.get(f"/api/v1/schema-snapshots/{uploaded.json()['id']}/drift/")

    assert drift.status_code == 200, drift.content
    names = {(item["kind"], item["status"], item["name"]) for item in drift.json()["items"]}
    assert {("table", "extra", table), ("index", "extra", "i; DELETE FROM pg_index")} <= names
    _template_catalogs.clear()  # the template read afresh, after the names went through upload and comparison
    again = api.get(f"/api/v1/schema-snapshots/{uploaded.json()['id']}/drift/").json()
    assert again["items"] == drift.json()["items"]
    # The snapshot lacks shop_customer, so it is missing only while the template still has it.
    assert ("table", "missing", "shop_customer") in {(i["kind"], i["status"], i["name"]) for i in again["items"]}
