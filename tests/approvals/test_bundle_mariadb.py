"""Release bundles of a MySQL/MariaDB project, sealed on the local MariaDB: the SQL Django's MySQL
schema editor produces, statement by statement, under the session's lock_wait_timeout and with no
transaction around DDL; a manifest naming the engine and its version; the same bytes when
rebuilt; verified like any bundle; and the scripts, run as the `mysql` client would, leave the
schema Django's migrate leaves and roll back to the baseline."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import sqlparse
from django.conf import settings
from django.utils import timezone

from approvals.models import ReleaseBundle
from approvals.services.bundles import bundle_rebuild
from changeapi.dryrun.contract import report_from_json
from changeapi.intake.python_source import plan_state
from changeapi.intake.python_source.history import plan_history
from changeapi.intake.python_source.migration_files import read_migration_file
from changeapi.models import Project, ShadowDatabase
from changeapi.selectors import baseline_plan
from changeapi.services.shadows import shadow_chores_wait, shadows_reap
from changeapi.shadow.mysql_databases import database_copy, database_create, database_drop, database_exists, databases_named
from tests.approvals.bundling import Release, archive_files
from tests.conftest import SHOP_BASELINE
from tests.factories import UserFactory
from tests.support.mariadb import MARIADB, MARIADB_URL, mariadb_connection

pytestmark = pytest.mark.django_db(transaction=True)

WIDEN_TOTAL_AND_INDEX: list[dict[str, Any]] = [
    {
        "app_label": "shop",
        "operations": [
            {"op": "AddField", "model_name": "order", "name": "note", "field": {"type": "TextField", "null": True}},
            {"op": "AlterField", "model_name": "order", "name": "total", "field": {"type": "BigIntegerField"}},
            {"op": "AddIndex", "model_name": "order", "index": {"name": "order_total_idx", "fields": ["total"]}},
        ],
    }
]

ADD_STATUS_WITH_DEFAULT: list[dict[str, Any]] = [
    {
        "app_label": "shop",
        "operations": [
            {
                "op": "AddField",
                "model_name": "order",
                "name": "status",
                "field": {"type": "CharField", "max_length": 16, "default": "new"},
            },
        ],
    }
]


@pytest.fixture
def release(client_for, settings) -> Iterator[Release]:  # noqa: ANN001
    """A MySQL project `shop` on the local MariaDB, with a ready baseline and a reviewer."""
    settings.SHADOW_SERVERS = [*settings.SHADOW_SERVERS, MARIADB_URL]
    api = client_for(UserFactory(username="owner"))
    project = {"slug": "shop", "name": "Shop", "engine": "mysql", "engine_version": 10}
    assert api.post("/api/v1/projects/", project, format="json").status_code == 201
    baseline = api.post("/api/v1/projects/shop/baselines/", {"operations": SHOP_BASELINE}, format="json").json()
    assert api.get(f"/api/v1/baselines/{baseline['id']}/").json()["status"] == "ready"
    yield Release({"api": api}, client_for)
    shadow_chores_wait()
    for name in databases_named(MARIADB, settings.SHADOW_DATABASE_PREFIX):
        database_drop(MARIADB, name)


def _sealed(release: Release, *migrations: list[dict[str, Any]]) -> tuple[ReleaseBundle, dict[str, bytes], dict[str, Any]]:
    bundle, archive = release.sealed(*[release.approved(m) for m in migrations])
    files = archive_files(archive)
    return ReleaseBundle.objects.select_related("baseline").get(pk=bundle["id"]), files, json.loads(files["manifest.json"])


def _statements(script: bytes) -> list[str]:
    statements = [sqlparse.format(s, strip_comments=True).strip() for s in sqlparse.split(script.decode())]
    return [s for s in statements if s]


def _schema_statements(script: bytes) -> list[str]:
    """The statements of a script that change the schema: not its session guards, not the history."""
    return [
        s
        for s in _statements(script)
        if not s.startswith(("SET ", "PREPARE ", "EXECUTE ", "DEALLOCATE ")) and "django_migrations" not in s
    ]


class _Copy:
    """A copy of the baseline's MariaDB template, dropped afterwards."""

    def __init__(self, template: str) -> None:
        self.template = template
        self.name = f"{settings.SHADOW_DATABASE_PREFIX}test_{uuid.uuid4().hex[:12]}"

    def __enter__(self) -> str:
        database_copy(MARIADB, source=self.template, name=self.name)
        return self.name

    def __exit__(self, *exc: object) -> None:
        database_drop(MARIADB, self.name)


def _run_scripts(database: str, scripts: list[bytes]) -> None:
    """As `mysql --database=<name> < file` would: each statement sent on its own, in order, in autocommit."""
    connection = MARIADB.admin_connect()
    try:
        connection.autocommit(True)
        cursor = connection.cursor()
        cursor.execute(f"USE `{database}`")
        for script in scripts:
            for statement in _statements(script):
                cursor.execute(statement)
    finally:
        connection.close()


def _catalog(database: str) -> dict[str, list[tuple[Any, ...]]]:
    """What the schema is, from information_schema: columns, indexes and constraints."""
    connection = MARIADB.admin_connect()
    try:
        cursor = connection.cursor()
        queries = {
            "columns": "SELECT TABLE_NAME, ORDINAL_POSITION, COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, COLUMN_DEFAULT"
            " FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s ORDER BY 1, 2",
            "indexes": "SELECT TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX, COLUMN_NAME, NON_UNIQUE"
            " FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = %s ORDER BY 1, 2, 3",
            "constraints": "SELECT TABLE_NAME, CONSTRAINT_NAME, CONSTRAINT_TYPE"
            " FROM information_schema.TABLE_CONSTRAINTS WHERE TABLE_SCHEMA = %s ORDER BY 1, 2",
        }
        result = {}
        for key, query in queries.items():
            cursor.execute(query, [database])
            result[key] = list(cursor.fetchall())
        return result
    finally:
        connection.close()


def _collected_by_django(database: str, bundle: ReleaseBundle, files: dict[str, bytes]) -> list[str]:
    """What `sqlmigrate` prints for each of the bundle's migration files, in order: the files read
    back by the safe intake (never imported), and Django's MySQL schema editor collecting their
    SQL on a database that has the baseline, each migration then applied so that the next one
    is collected on the schema it runs on."""
    base = baseline_plan(bundle.baseline)
    read = [
        read_migration_file(app_label=path.split("/")[1], name=path.split("/")[2][:-3], source=data.decode(), filename=path)
        for path, data in sorted(files.items())
        if path.startswith("migrations/")
    ]
    plan = plan_history([*base.migrations, *read], applied=[m.key for m in base.migrations])
    state = plan_state(base)
    collected: list[str] = []
    with mariadb_connection(database) as connection:
        for migration in plan.migrations:
            django_migration = migration.to_django()
            with connection.schema_editor(collect_sql=True, atomic=migration.atomic) as editor:
                django_migration.apply(state.clone(), editor, collect_sql=True)
            collected += [sql.strip().rstrip(";") for sql in editor.collected_sql if not sql.startswith("--")]
            with connection.schema_editor(atomic=migration.atomic) as editor:
                state = django_migration.apply(state, editor)
    return collected


def test_a_mariadb_change_request_goes_from_post_to_a_verified_bundle(release, client_for):
    change_request = release.submit(WIDEN_TOTAL_AND_INDEX, "widen the total")
    dry_run = release.api.get(f"/api/v1/dry-runs/{change_request['latest_dry_run']}/").json()
    assert dry_run["status"] == "succeeded", dry_run["error"]
    assert report_from_json(dry_run["report"]).engine == "mariadb"
    release.approve(change_request)

    sealed, archive = release.sealed(change_request)
    verdict = client_for(None).post("/api/v1/bundles/verify/", archive, content_type="application/gzip")

    assert verdict.status_code == 200, verdict.content
    assert verdict.json()["valid"] is True and verdict.json()["problems"] == []
    manifest = json.loads(archive_files(archive)["manifest.json"])
    assert manifest["engine"]["name"] == "mariadb" and "MariaDB" in manifest["engine"]["server_version"]
    assert manifest["dry_run"]["engine"] == "mariadb" and manifest["project"]["engine"] == "mysql"
    assert release.api.get(f"/api/v1/change-requests/{change_request['id']}/").json()["status"] == "released"
    assert sealed["sha256"] and verdict.json()["files_checked"] == len(manifest["files"])


def test_forward_sql_is_djangos_mysql_schema_editor_output_statement_by_statement(release):
    bundle, files, manifest = _sealed(release, WIDEN_TOTAL_AND_INDEX, ADD_STATUS_WITH_DEFAULT)

    forward = [s.rstrip(";") for path in manifest["apply_order"] for s in _schema_statements(files[path])]
    with _Copy(bundle.baseline.template_name) as database:
        expected = _collected_by_django(database, bundle, files)

    assert forward == expected
    assert "ALTER TABLE `shop_order` MODIFY `total` bigint NOT NULL" in forward


def test_every_script_sets_the_projects_lock_wait_timeout_and_writes_no_transaction(release):
    Project.objects.filter(slug="shop").update(lock_timeout_ms=1234)
    _, files, manifest = _sealed(release, WIDEN_TOTAL_AND_INDEX)

    for path in [*manifest["apply_order"], *manifest["rollback_order"]]:
        statements = _statements(files[path])
        assert statements[:2] == ["SET SESSION lock_wait_timeout = 2;", "SET SESSION innodb_lock_wait_timeout = 2;"], path
        assert not {"BEGIN;", "COMMIT;", "START TRANSACTION;"} & set(statements), path
        assert "-- no BEGIN/COMMIT: MySQL/MariaDB DDL is not transactional, each statement commits on its own" in (
            files[path].decode()
        )
        assert "lock_timeout = '" not in files[path].decode()
    assert manifest["guards"]["lock_wait_timeout_s"] == 2
    assert {g["guard"] for g in manifest["guards"]["left_out"]} >= {
        "lock_timeout",
        "CONCURRENTLY statements outside transactions",
    }
    readme = files["README.md"].decode()
    assert "SET SESSION lock_wait_timeout = 2" in readme and "commits on its own" in readme


def test_forward_sql_leaves_the_schema_djangos_migrate_leaves_and_the_rollback_restores_the_baseline(release):
    bundle, files, manifest = _sealed(release, WIDEN_TOTAL_AND_INDEX, ADD_STATUS_WITH_DEFAULT)

    with _Copy(bundle.baseline.template_name) as by_sql, _Copy(bundle.baseline.template_name) as by_django:
        baseline_schema = _catalog(by_sql)
        _run_scripts(by_sql, [files[path] for path in manifest["apply_order"]])
        _collected_by_django(by_django, bundle, files)
        assert _catalog(by_sql) == _catalog(by_django) != baseline_schema

        _run_scripts(by_sql, [files[path] for path in manifest["rollback_order"]])
        assert manifest["rollback"]["complete"] is True
        assert _catalog(by_sql) == baseline_schema


def test_the_scripts_keep_djangos_migration_history_in_step(release):
    bundle, files, manifest = _sealed(release, WIDEN_TOTAL_AND_INDEX)
    [name] = [m["name"] for cr in manifest["change_requests"] for m in cr["migrations"]]

    with _Copy(bundle.baseline.template_name) as database:
        _run_scripts(
            database,
            [
                b"CREATE TABLE django_migrations (id bigint AUTO_INCREMENT PRIMARY KEY, app varchar(255),"
                b" name varchar(255), applied datetime(6));"
            ],
        )
        _run_scripts(database, [files[path] for path in manifest["apply_order"]])
        applied = _history(database)
        _run_scripts(database, [files[path] for path in manifest["rollback_order"]])

        assert applied == [("shop", name)]
        assert _history(database) == []


def _history(database: str) -> list[tuple[str, str]]:
    connection = MARIADB.admin_connect()
    try:
        cursor = connection.cursor()
        cursor.execute(f"SELECT app, name FROM `{database}`.django_migrations ORDER BY id")
        return [tuple(row) for row in cursor.fetchall()]
    finally:
        connection.close()


def test_a_sealed_mariadb_bundle_rebuilt_gives_identical_bytes(release):
    sealed, archive = release.sealed(release.approved(WIDEN_TOTAL_AND_INDEX), release.approved(ADD_STATUS_WITH_DEFAULT))

    rebuilt = bundle_rebuild(bundle=ReleaseBundle.objects.get(pk=sealed["id"]))

    assert rebuilt.archive == archive
    assert rebuilt.sha256 == sealed["sha256"]


# A bundle build's clone (bd_), and the copy a drift report or verification reads a catalog on (snap_).
@pytest.mark.parametrize("kind", ["bd_", "snap_"])
def test_the_reaper_drops_a_registered_bundle_clone_a_dead_worker_left_and_keeps_a_fresh_one(release, settings, kind):
    stale, fresh = (f"{settings.SHADOW_DATABASE_PREFIX}{kind}{uuid.uuid4().hex[:16]}" for _ in range(2))
    for name in (stale, fresh):
        database_create(MARIADB, name)
        ShadowDatabase.objects.create(server=MARIADB.key, name=name, kind=ShadowDatabase.Kind.CLONE)
    lease = dt.timedelta(seconds=settings.SCHEMAGATE_DRY_RUN_LEASE_SECONDS)
    ShadowDatabase.objects.filter(name=stale).update(created_at=timezone.now() - 2 * lease)

    [result] = [r for r in shadows_reap() if r.server == MARIADB.key]

    assert stale in result.dropped and fresh in result.kept
    assert not database_exists(MARIADB, stale) and database_exists(MARIADB, fresh)
    assert ShadowDatabase.objects.get(name=stale).dropped_at is not None


def test_change_requests_that_do_not_apply_together_on_mariadb_are_refused_with_the_servers_error(release):
    add_note = [WIDEN_TOTAL_AND_INDEX[0] | {"operations": WIDEN_TOTAL_AND_INDEX[0]["operations"][:1]}]
    first, second = release.approved(add_note, "a note"), release.approved(add_note, "the same note")

    response = release.bundle(first, second)

    assert response.status_code == 409, response.content
    [error] = response.json()["errors"]
    assert (error["migration"], error["change_request"]) == ("shop.0003_order_note", second["number"])
    assert "Duplicate column name 'note'" in error["detail"]
    assert ReleaseBundle.objects.count() == 0
