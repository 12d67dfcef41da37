"""Schema snapshots of MySQL/MariaDB and SQLite projects over HTTP: the documented query of each
engine, run on a real MariaDB database or SQLite file, is an upload its project accepts; a
snapshot of another engine is a 422 at /engine; the engine's own limits hold; and the drift
report compares production with the baseline's template read on that engine's shadow."""

from __future__ import annotations

import copy
import sqlite3
import uuid
from pathlib import Path
from typing import Any

import pytest

from changeapi.models import AuditEvent, Project, SchemaSnapshot
from changeapi.services.drift_checks import schema_drift_check
from changeapi.shadow.engine_catalogs import MARIADB_CATALOG_QUERY, MYSQL_CATALOG_QUERY, SQLITE_CATALOG_QUERY
from tests.approvals import test_bundle_mariadb as mariadb_bundles
from tests.approvals import test_bundle_sqlite as sqlite_bundles
from tests.changeapi.test_schema_snapshots import SNAPSHOT, _pointers
from tests.support.catalog_queries import documented_queries, mariadb_snapshot, sqlite_snapshot
from tests.support.mariadb import MARIADB, drop_database, recreate_database

pytestmark = pytest.mark.django_db(transaction=True)

mariadb_release = mariadb_bundles.release
sqlite_release = sqlite_bundles.release

SHOP_DDL = [
    "CREATE TABLE shop_customer (id bigint AUTO_INCREMENT NOT NULL PRIMARY KEY, email varchar(254) NOT NULL UNIQUE)",
    "CREATE TABLE shop_order (id bigint AUTO_INCREMENT NOT NULL PRIMARY KEY, total integer NOT NULL,"
    " qty integer UNSIGNED NOT NULL CHECK (qty >= 0), status varchar(16) NOT NULL DEFAULT 'new', note longtext NULL,"
    " customer_id bigint NOT NULL, CONSTRAINT total_positive CHECK (total >= 0),"
    " CONSTRAINT shop_order_customer_fk FOREIGN KEY (customer_id) REFERENCES shop_customer (id) ON DELETE CASCADE)",
    "CREATE INDEX order_total_idx ON shop_order (total DESC, status(4))",
]


@pytest.fixture
def projects(owner, client_for, settings, tmp_path):  # noqa: ANN001, ANN201
    """Projects `shop` (MySQL), `lite` (SQLite) and `pg` (PostgreSQL), and their owner's client."""
    settings.SHADOW_SERVERS = [*settings.SHADOW_SERVERS, mariadb_bundles.MARIADB_URL, f"sqlite://{tmp_path}"]
    api = client_for(owner)
    for slug, engine, version in (("shop", "mysql", 10), ("lite", "sqlite", 3), ("pg", "postgresql", 15)):
        body = {"slug": slug, "name": slug, "engine": engine, "engine_version": version}
        assert api.post("/api/v1/projects/", body, format="json").status_code == 201
    return api


def _run_on(database: str, statements: list[str]) -> None:
    connection = MARIADB.admin_connect()
    try:
        cursor = connection.cursor()
        cursor.execute(f"USE `{database}`")
        for statement in statements:
            cursor.execute(statement)
    finally:
        connection.close()


@pytest.fixture
def mariadb_production() -> Any:
    """A real MariaDB database with a shop schema written by hand, dropped afterwards."""
    name = f"sgtest_{uuid.uuid4().hex[:12]}"
    recreate_database(name)
    _run_on(name, SHOP_DDL)
    yield name
    drop_database(name)


@pytest.fixture
def sqlite_production(tmp_path: Path) -> Path:
    """A real SQLite file with the shop schema Django's SQLite backend writes."""
    path = tmp_path / "production.sqlite3"
    connection = sqlite3.connect(path)
    connection.executescript(
        'CREATE TABLE "shop_customer" ("id" integer NOT NULL PRIMARY KEY AUTOINCREMENT, "email" varchar(254) NOT NULL UNIQUE);'
        'CREATE TABLE "shop_order" ("id" integer NOT NULL PRIMARY KEY AUTOINCREMENT, "total" integer NOT NULL,'
        " \"status\" varchar(16) DEFAULT 'new' NOT NULL,"
        ' "customer_id" bigint NOT NULL REFERENCES "shop_customer" ("id") DEFERRABLE INITIALLY DEFERRED);'
        'CREATE INDEX "shop_order_customer_id_idx" ON "shop_order" ("customer_id");'
        'CREATE INDEX "order_total_idx" ON "shop_order" ("total" DESC) WHERE "total" > 0;'
    )
    connection.close()
    return path


def _upload(api: Any, slug: str, body: dict[str, Any]) -> Any:
    return api.post(f"/api/v1/projects/{slug}/schema-snapshots/", body, format="json")


@pytest.mark.parametrize(
    ("engine", "query"), [("mariadb", MARIADB_CATALOG_QUERY), ("mysql", MYSQL_CATALOG_QUERY), ("sqlite", SQLITE_CATALOG_QUERY)]
)
def test_each_engines_documented_query_is_the_one_the_service_runs_on_templates(engine, query):
    assert documented_queries()[engine] == query


def test_the_mysql_query_differs_from_mariadbs_only_in_how_it_finds_a_check_clause():
    differing = [
        (a, b) for a, b in zip(MARIADB_CATALOG_QUERY.splitlines(), MYSQL_CATALOG_QUERY.splitlines(), strict=True) if a != b
    ]

    assert [(a.strip(), b.strip()) for a, b in differing] == [
        (
            "WHERE cc.CONSTRAINT_SCHEMA = k.CONSTRAINT_SCHEMA AND cc.TABLE_NAME = k.TABLE_NAME",
            "WHERE cc.CONSTRAINT_SCHEMA = k.CONSTRAINT_SCHEMA",
        )
    ]


def test_the_documented_mariadb_query_on_a_real_database_is_an_upload_a_mysql_project_accepts(projects, mariadb_production):
    response = _upload(projects, "shop", mariadb_snapshot(mariadb_production))

    assert response.status_code == 201, response.content
    content = response.json()["content"]
    assert content["engine"] == "mysql" and "MariaDB" in content["server_version"]
    assert content["server_version_num"] // 10000 == 10 and content["schema"] == mariadb_production
    assert (content["sequences"], content["extensions"]) == ([], [])
    indexes = {(i["table"], i["name"]): i for i in content["indexes"]}
    assert indexes["shop_order", "order_total_idx"]["definition"] == (
        "CREATE INDEX order_total_idx ON shop_order USING BTREE (total DESC, status(4))"
    )
    assert indexes["shop_order", "PRIMARY"]["primary"] and indexes["shop_customer", "PRIMARY"]["primary"]
    constraints = {(k["table"], k["name"]): (k["type"], k["definition"]) for k in content["constraints"]}
    assert constraints["shop_order", "shop_order_customer_fk"] == (
        "foreign_key",
        "FOREIGN KEY (customer_id) REFERENCES shop_customer(id) ON UPDATE RESTRICT ON DELETE CASCADE",
    )
    assert constraints["shop_order", "total_positive"] == ("check", "CHECK (`total` >= 0)")
    assert constraints["shop_customer", "email"] == ("unique", "UNIQUE (email)")
    order = next(t for t in content["tables"] if t["name"] == "shop_order")
    columns = {c["name"]: c for c in order["columns"]}
    assert columns["id"]["identity"] == "by_default" and columns["note"]["nullable"] is True
    assert (columns["status"]["default"], columns["status"]["collation"]) == ("'new'", "utf8mb4_unicode_ci")


def test_the_documented_sqlite_query_on_a_real_file_is_an_upload_a_sqlite_project_accepts(projects, sqlite_production):
    response = _upload(projects, "lite", sqlite_snapshot(sqlite_production))

    assert response.status_code == 201, response.content
    content = response.json()["content"]
    assert (content["engine"], content["schema"], content["server_version"]) == ("sqlite", "main", sqlite3.sqlite_version)
    assert (
        content["server_version_num"]
        == sqlite3.sqlite_version_info[0] * 1_000_000 + sqlite3.sqlite_version_info[1] * 1000 + sqlite3.sqlite_version_info[2]
    )
    assert [t["name"] for t in content["tables"]] == ["shop_customer", "shop_order"]  # not sqlite_sequence
    indexes = {i["name"]: i for i in content["indexes"]}
    assert indexes["order_total_idx"]["definition"] == "CREATE INDEX order_total_idx ON shop_order (total DESC)"
    assert indexes["order_total_idx"]["predicate"] == '"total" > 0'
    assert indexes["sqlite_autoindex_shop_customer_1"]["unique"] is True
    constraints = {k["name"]: (k["type"], k["definition"]) for k in content["constraints"]}
    assert constraints["shop_order_pkey"] == ("primary_key", "PRIMARY KEY (id)")
    assert constraints["shop_order_customer_id_fkey"] == (
        "foreign_key",
        "FOREIGN KEY (customer_id) REFERENCES shop_customer(id) ON UPDATE NO ACTION ON DELETE NO ACTION",
    )
    assert constraints["sqlite_autoindex_shop_customer_1"] == ("unique", "UNIQUE (email)")


@pytest.mark.parametrize(
    ("slug", "engine", "project_engine"),
    [("shop", None, "mysql"), ("lite", "mysql", "sqlite"), ("pg", "sqlite", "postgresql"), ("shop", "postgresql", "mysql")],
)
def test_a_snapshot_of_another_engine_than_the_projects_is_a_422_at_engine_and_stores_nothing(
    projects, slug, engine, project_engine
):
    body = SNAPSHOT if engine is None else {**SNAPSHOT, "engine": engine, "sequences": [], "extensions": []}

    response = _upload(projects, slug, body)

    assert response.status_code == 422, response.content
    assert response["Content-Type"] == "application/problem+json"
    assert [e["pointer"] for e in response.json()["errors"]] == ["/engine"]
    assert project_engine in response.json()["errors"][0]["detail"]
    assert SchemaSnapshot.objects.count() == 0
    assert not AuditEvent.objects.filter(action="schema_snapshot.uploaded").exists()


def _mysql_snapshot(**changes: Any) -> dict[str, Any]:
    body = {
        **SNAPSHOT,
        "engine": "mysql",
        "server_version": "8.0.36",
        "server_version_num": 80036,
        "sequences": [],
        "extensions": [],
    }
    return copy.deepcopy({**body, **changes})


@pytest.mark.parametrize(
    ("slug", "engine", "version", "limit"),
    [("shop", "mysql", ("8.0.36", 80036), 64), ("lite", "sqlite", ("3.40.1", 3040001), 255)],
)
def test_a_name_may_be_as_long_as_the_engine_allows_and_not_longer(projects, slug, engine, version, limit):
    def body(length: int) -> dict[str, Any]:
        table = {**SNAPSHOT["tables"][0], "name": "t" * length}
        return _mysql_snapshot(
            engine=engine, server_version=version[0], server_version_num=version[1], tables=[table], indexes=[], constraints=[]
        )

    accepted, refused = _upload(projects, slug, body(limit)), _upload(projects, slug, body(limit + 1))

    assert accepted.status_code == 201, accepted.content
    assert refused.status_code == 400
    assert _pointers(refused) == ["/tables/0/name"]


def test_a_mysql_or_sqlite_snapshot_with_sequences_or_extensions_is_refused_at_their_path(projects):
    mysql = _upload(projects, "shop", _mysql_snapshot(sequences=SNAPSHOT["sequences"]))
    sqlite = _upload(
        projects,
        "lite",
        _mysql_snapshot(engine="sqlite", server_version="3.40.1", server_version_num=3040001, extensions=SNAPSHOT["extensions"]),
    )

    assert (mysql.status_code, sqlite.status_code) == (400, 400)
    assert (_pointers(mysql), _pointers(sqlite)) == (["/sequences"], ["/extensions"])


def test_a_mysql_index_name_may_repeat_on_another_table_but_not_on_the_same_one(projects):
    customer = {"name": "shop_customer", "partitioned": False, "columns": SNAPSHOT["tables"][0]["columns"]}
    primary = {"name": "PRIMARY", "definition": "CREATE UNIQUE INDEX PRIMARY", "unique": True, "primary": True, "valid": True}
    both = [{**primary, "table": "shop_order"}, {**primary, "table": "shop_customer"}]

    accepted = _upload(projects, "shop", _mysql_snapshot(tables=[SNAPSHOT["tables"][0], customer], indexes=both))
    refused = _upload(projects, "shop", _mysql_snapshot(indexes=[both[0], both[0]]))

    assert accepted.status_code == 201, accepted.content
    assert refused.status_code == 400
    assert _pointers(refused) == ["/indexes/1/name"]


def test_a_mysql_server_version_num_below_mysql_57_is_refused(projects):
    response = _upload(projects, "shop", _mysql_snapshot(server_version="5.6.51", server_version_num=50651))

    assert response.status_code == 400
    assert _pointers(response) == ["/server_version_num"]


def _snapshot_of_copy(release: Any, alter: list[str]) -> int:
    """Upload the documented snapshot of a copy of the MySQL baseline's template, altered by hand."""
    template = Project.objects.get(slug="shop").current_baseline.template_name  # type: ignore[union-attr]
    with mariadb_bundles._Copy(template) as production:
        _run_on(production, alter)
        response = _upload(release.api, "shop", mariadb_snapshot(production))
    assert response.status_code == 201, response.content
    return int(response.json()["id"])


def test_a_mariadb_production_as_the_baseline_says_has_no_drift(mariadb_release):
    snapshot = _snapshot_of_copy(mariadb_release, [])

    report = mariadb_release.api.get(f"/api/v1/schema-snapshots/{snapshot}/drift/").json()

    assert (report["drifted"], report["items"]) == (False, [])
    assert "MariaDB" in report["shadow_version"]


def test_a_mariadb_production_with_a_hand_made_index_and_a_widened_column_reports_both(mariadb_release):
    snapshot = _snapshot_of_copy(
        mariadb_release,
        ["ALTER TABLE shop_order MODIFY total bigint NOT NULL", "CREATE INDEX order_hand_idx ON shop_order (total)"],
    )

    report = mariadb_release.api.get(f"/api/v1/schema-snapshots/{snapshot}/drift/").json()

    assert [(d["kind"], d["status"], d["table"], d["name"]) for d in report["items"]] == [
        ("column", "different", "shop_order", "total"),
        ("index", "extra", "shop_order", "order_hand_idx"),
    ]
    assert report["items"][0]["detail"] == "column shop_order.total: type bigint in production, int in the migrations"


def test_a_scheduled_drift_check_of_a_mysql_project_reads_its_shadow(mariadb_release):
    _snapshot_of_copy(mariadb_release, ["CREATE INDEX order_hand_idx ON shop_order (total)"])

    check = schema_drift_check(project_id=Project.objects.get(slug="shop").pk)

    assert check is not None
    assert (check.status, [i["name"] for i in check.items]) == ("drifted", ["order_hand_idx"])


def test_a_sqlite_production_lacking_an_index_of_the_baseline_reports_it_missing(sqlite_release):
    template = Project.objects.get(slug="shop").current_baseline.template_name  # type: ignore[union-attr]
    with sqlite_bundles._Copy(sqlite_release.server, template) as production:
        connection = sqlite3.connect(production)
        [index] = [
            row[0]
            for row in connection.execute("SELECT name FROM sqlite_schema WHERE type = 'index' AND sql IS NOT NULL").fetchall()
        ]
        connection.execute(f'DROP INDEX "{index}"')
        connection.close()
        snapshot = _upload(sqlite_release.api, "shop", sqlite_snapshot(Path(production))).json()["id"]

    report = sqlite_release.api.get(f"/api/v1/schema-snapshots/{snapshot}/drift/").json()

    assert [(d["kind"], d["status"], d["name"]) for d in report["items"]] == [("index", "missing", index)]


def _touched(release: Any, migrations: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    change_request = release.submit(migrations, "widen and index")
    dry_run = release.api.get(f"/api/v1/dry-runs/{change_request['latest_dry_run']}/").json()
    assert dry_run["status"] == "succeeded", dry_run["error"]
    return [(w["kind"], w["status"], w["name"]) for w in dry_run["report"]["schema_drift"]["touched"]]


def test_a_mariadb_dry_run_adding_an_index_production_already_has_is_warned_about(mariadb_release):
    _snapshot_of_copy(mariadb_release, ["CREATE INDEX order_total_idx ON shop_order (total)"])

    assert _touched(mariadb_release, mariadb_bundles.WIDEN_TOTAL_AND_INDEX) == [("index", "extra", "order_total_idx")]


def test_a_sqlite_dry_run_on_a_table_production_has_otherwise_is_warned_about(sqlite_release):
    template = Project.objects.get(slug="shop").current_baseline.template_name  # type: ignore[union-attr]
    with sqlite_bundles._Copy(sqlite_release.server, template) as production:
        connection = sqlite3.connect(production)
        connection.execute('CREATE INDEX "order_status_idx" ON "shop_order" ("total")')
        connection.close()
        assert _upload(sqlite_release.api, "shop", sqlite_snapshot(Path(production))).status_code == 201

    touched = _touched(sqlite_release, sqlite_bundles.ADD_STATUS_WITH_DEFAULT_AND_INDEX)

    assert touched == [("index", "extra", "order_status_idx")]


@pytest.mark.parametrize("engine", ["oracle", "MySQL", ["mysql"], 1, None])
def test_an_engine_that_is_none_of_the_three_is_a_400_at_engine(projects, engine):
    response = _upload(projects, "shop", _mysql_snapshot(engine=engine))

    assert _pointers(response) == ["/engine"]
    assert SchemaSnapshot.objects.count() == 0
