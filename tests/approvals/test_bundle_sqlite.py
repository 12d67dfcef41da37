"""Release bundles of a SQLite project, sealed on a SQLite shadow directory: the SQL Django's SQLite
schema editor produces, table remakes included, statement by statement; each atomic migration in
BEGIN/COMMIT with foreign keys off outside it and checked before COMMIT, under the session's
busy_timeout; a manifest naming the engine and its version; the same bytes when rebuilt; verified
like any bundle; and the scripts, run as the `sqlite3` shell would, leave the schema Django's
migrate leaves and roll back to the baseline."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlparse
from django.conf import settings
from django.utils import timezone

from approvals.models import ReleaseBundle
from approvals.services.bundles import bundle_rebuild
from changeapi.dryrun.contract import report_from_json
from changeapi.dryrun.sqlite_connection import sqlite_connection
from changeapi.intake.python_source import plan_state
from changeapi.intake.python_source.history import plan_history
from changeapi.intake.python_source.migration_files import read_migration_file
from changeapi.models import Project, ShadowDatabase
from changeapi.selectors import baseline_plan
from changeapi.services.shadows import shadow_chores_wait, shadows_reap
from changeapi.shadow.engine_servers import SqliteShadowServer, sqlite_server
from changeapi.shadow.sqlite_files import database_copy, database_create, database_drop, database_exists, shadow_path
from tests.approvals.bundling import Release, archive_files
from tests.conftest import SHOP_BASELINE
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

WIDEN_TOTAL: list[dict[str, Any]] = [
    {
        "app_label": "shop",
        "operations": [
            {"op": "AlterField", "model_name": "order", "name": "total", "field": {"type": "BigIntegerField"}},
        ],
    }
]

ADD_STATUS_WITH_DEFAULT_AND_INDEX: list[dict[str, Any]] = [
    {
        "app_label": "shop",
        "operations": [
            {
                "op": "AddField",
                "model_name": "order",
                "name": "status",
                "field": {"type": "CharField", "max_length": 16, "default": "new"},
            },
            {"op": "AddIndex", "model_name": "order", "index": {"name": "order_status_idx", "fields": ["status"]}},
        ],
    }
]


class SqliteRelease(Release):
    server: SqliteShadowServer


@pytest.fixture
def release(client_for, settings, tmp_path: Path, django_db_blocker) -> Iterator[SqliteRelease]:  # noqa: ANN001
    """A SQLite project `shop` on a SQLite shadow directory, with a ready baseline and a reviewer."""
    directory = tmp_path / "shadows"
    directory.mkdir()
    settings.SHADOW_SERVERS = [*settings.SHADOW_SERVERS, f"sqlite://{directory}"]
    api = client_for(UserFactory(username="owner"))
    project = {"slug": "shop", "name": "Shop", "engine": "sqlite", "engine_version": 3}
    assert api.post("/api/v1/projects/", project, format="json").status_code == 201
    baseline = api.post("/api/v1/projects/shop/baselines/", {"operations": SHOP_BASELINE}, format="json").json()
    assert api.get(f"/api/v1/baselines/{baseline['id']}/").json()["status"] == "ready"
    release = SqliteRelease({"api": api}, client_for)
    release.server = sqlite_server(f"sqlite://{directory}")
    with django_db_blocker.unblock():
        yield release
    shadow_chores_wait()


def _sealed(release: Release, *migrations: list[dict[str, Any]]) -> tuple[ReleaseBundle, dict[str, bytes], dict[str, Any]]:
    bundle, archive = release.sealed(*[release.approved(m) for m in migrations])
    files = archive_files(archive)
    return ReleaseBundle.objects.select_related("baseline").get(pk=bundle["id"]), files, json.loads(files["manifest.json"])


def _statements(script: bytes) -> list[str]:
    statements = [sqlparse.format(s, strip_comments=True).strip() for s in sqlparse.split(script.decode())]
    return [s for s in statements if s]


def _schema_statements(script: bytes) -> list[str]:
    """The statements of a script that change the schema: not its guards, the foreign key
    check, the transaction or the history."""
    return [
        s
        for s in _statements(script)
        if not s.startswith(("PRAGMA ", "BEGIN", "COMMIT"))
        and "django_migrations" not in s
        and "schemagate_foreign_key_check" not in s
    ]


class _Copy:
    """A copy of the baseline's SQLite template file, deleted afterwards."""

    def __init__(self, server: SqliteShadowServer, template: str) -> None:
        self.server = server
        self.template = template
        self.name = f"{settings.SHADOW_DATABASE_PREFIX}test_{uuid.uuid4().hex[:12]}"

    def __enter__(self) -> Path:
        database_copy(self.server, source=self.template, name=self.name)
        return shadow_path(self.server, self.name)

    def __exit__(self, *exc: object) -> None:
        database_drop(self.server, self.name)


def _run_scripts(path: Path, scripts: list[bytes]) -> None:
    """As `sqlite3 -bail <file> < script` would: the statements in order, stopping at the first error."""
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        for script in scripts:
            connection.executescript(script.decode())
    finally:
        connection.close()


def _schema(path: Path) -> list[tuple[Any, ...]]:
    """What the schema is: every table and index of sqlite_master, with its SQL, but Django's
    history table (and the sequence table its AUTOINCREMENT brings)."""
    connection = sqlite3.connect(path)
    try:
        return connection.execute(
            "SELECT type, name, tbl_name, sql FROM sqlite_master"
            " WHERE name NOT IN ('django_migrations', 'sqlite_sequence') ORDER BY type, name"
        ).fetchall()
    finally:
        connection.close()


def _migrated_by_django(path: Path, bundle: ReleaseBundle, files: dict[str, bytes], *, rollback: bool = False) -> list[str]:
    """What `sqlmigrate` prints for each of the bundle's migration files, in order: the files read
    back by the safe intake (never imported), and Django's SQLite schema editor collecting their
    SQL on a database that has the baseline, each migration then applied so that the next one
    is collected on the schema it runs on. With `rollback`, then what `sqlmigrate --backwards`
    prints for each, last first, each then unapplied: Django's rollback of the bundle.

    The state is rendered before each migration and kept, as Django's executor renders and keeps
    it: a remake lays out its columns by when each field object was made, so an unrendered state
    would put an altered column elsewhere."""
    base = baseline_plan(bundle.baseline)
    read = [
        read_migration_file(app_label=p.split("/")[1], name=p.split("/")[2][:-3], source=data.decode(), filename=p)
        for p, data in sorted(files.items())
        if p.startswith("migrations/")
    ]
    plan = plan_history([*base.migrations, *read], applied=[m.key for m in base.migrations])
    state = plan_state(base)
    collected: list[str] = []
    applied = []
    with sqlite_connection(path, alias=f"test_collect_{uuid.uuid4().hex[:8]}") as connection:
        for migration in plan.migrations:
            django_migration = migration.to_django()
            state.apps  # noqa: B018 - rendered, as MigrationExecutor renders it before applying
            applied.append((django_migration, migration.atomic, state.clone()))
            with connection.schema_editor(collect_sql=True, atomic=migration.atomic) as editor:
                django_migration.apply(state.clone(), editor, collect_sql=True)
            collected += _sql(editor.collected_sql)
            with connection.schema_editor(atomic=migration.atomic) as editor:
                state = django_migration.apply(state, editor)
        if not rollback:
            return collected
        reverted: list[str] = []
        for django_migration, atomic, before in reversed(applied):
            with connection.schema_editor(collect_sql=True, atomic=atomic) as editor:
                django_migration.unapply(before.clone(), editor, collect_sql=True)
            reverted += _sql(editor.collected_sql)
            with connection.schema_editor(atomic=atomic) as editor:
                django_migration.unapply(before.clone(), editor)
        return reverted


def _sql(collected: list[str]) -> list[str]:
    return [sql.strip().rstrip(";") for sql in collected if not sql.startswith("--")]


def _structure(path: Path) -> dict[str, Any]:
    """The schema up to the order of each table's columns: the columns, indexes and foreign keys
    of every table (Django's remake lays the columns out in the order of the model's fields)."""
    connection = sqlite3.connect(path)
    try:
        tables = [r[0] for r in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {
            table: {
                "columns": sorted(c[1:] for c in connection.execute(f'PRAGMA table_info("{table}")')),
                "indexes": sorted(
                    r[0:2]
                    for r in connection.execute(
                        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ?", [table]
                    )
                ),
                "foreign_keys": sorted(connection.execute(f'PRAGMA foreign_key_list("{table}")').fetchall()),
            }
            for table in tables
            if table not in ("django_migrations", "sqlite_sequence")
        }
    finally:
        connection.close()


def test_a_sqlite_change_request_goes_from_post_to_a_verified_bundle(release, client_for):
    change_request = release.submit(WIDEN_TOTAL, "widen the total")
    dry_run = release.api.get(f"/api/v1/dry-runs/{change_request['latest_dry_run']}/").json()
    assert dry_run["status"] == "succeeded", dry_run["error"]
    assert [r.table for r in report_from_json(dry_run["report"]).remakes] == ["shop_order"]
    release.approve(change_request)

    sealed, archive = release.sealed(change_request)
    verdict = client_for(None).post("/api/v1/bundles/verify/", archive, content_type="application/gzip")

    assert verdict.status_code == 200, verdict.content
    assert verdict.json()["valid"] is True and verdict.json()["problems"] == []
    manifest = json.loads(archive_files(archive)["manifest.json"])
    assert manifest["engine"] == {"name": "sqlite", "server_version": sqlite3.sqlite_version}
    assert manifest["dry_run"]["engine"] == "sqlite" and manifest["project"]["engine"] == "sqlite"
    assert manifest["dry_run"]["summary"]["rewrites"] == ["shop_order"]
    assert release.api.get(f"/api/v1/change-requests/{change_request['id']}/").json()["status"] == "released"
    assert sealed["sha256"] and verdict.json()["files_checked"] == len(manifest["files"])


def test_forward_sql_is_djangos_sqlite_schema_editor_output_statement_by_statement(release):
    bundle, files, manifest = _sealed(release, WIDEN_TOTAL, ADD_STATUS_WITH_DEFAULT_AND_INDEX)

    forward = [s.rstrip(";") for path in manifest["apply_order"] for s in _schema_statements(files[path])]
    with _Copy(release.server, bundle.baseline.template_name) as database:
        expected = _migrated_by_django(database, bundle, files)

    assert forward == expected
    assert forward[:5] == [
        'CREATE TABLE "new__shop_order" ("id" integer NOT NULL PRIMARY KEY AUTOINCREMENT, "customer_id" bigint NOT NULL'
        ' REFERENCES "shop_customer" ("id") DEFERRABLE INITIALLY DEFERRED, "total" bigint NOT NULL)',
        'INSERT INTO "new__shop_order" ("id", "customer_id", "total") SELECT "id", "customer_id", "total" FROM "shop_order"',
        'DROP TABLE "shop_order"',
        'ALTER TABLE "new__shop_order" RENAME TO "shop_order"',
        'CREATE INDEX "shop_order_customer_id_f638df20" ON "shop_order" ("customer_id")',
    ]


def test_each_migration_runs_in_one_transaction_with_foreign_keys_off_outside_it_and_checked_before_commit(release):
    Project.objects.filter(slug="shop").update(lock_timeout_ms=1234)
    _, files, manifest = _sealed(release, WIDEN_TOTAL)

    for path in [*manifest["apply_order"], *manifest["rollback_order"]]:
        statements = _statements(files[path])
        assert statements[:4] == [
            "PRAGMA busy_timeout = 1234;",
            "PRAGMA legacy_alter_table = OFF;",
            "PRAGMA foreign_keys = OFF;",
            "BEGIN;",
        ], path
        assert statements[-5:] == [
            "CREATE TEMP TABLE schemagate_foreign_key_check (foreign_key_violations integer CHECK (foreign_key_violations = 0));",
            "INSERT INTO temp.schemagate_foreign_key_check SELECT count(*) FROM pragma_foreign_key_check;",
            "DROP TABLE temp.schemagate_foreign_key_check;",
            "COMMIT;",
            "PRAGMA foreign_keys = ON;",
        ], path
        assert statements.count("BEGIN;") == statements.count("COMMIT;") == 1, path
    assert manifest["guards"]["busy_timeout_ms"] == 1234
    assert {g["guard"] for g in manifest["guards"]["left_out"]} >= {"lock_timeout", "BEGIN IMMEDIATE"}
    assert "PRAGMA busy_timeout = 1234" in files["README.md"].decode()


def test_forward_sql_leaves_the_schema_djangos_migrate_leaves(release):
    bundle, files, manifest = _sealed(release, WIDEN_TOTAL, ADD_STATUS_WITH_DEFAULT_AND_INDEX)

    with (
        _Copy(release.server, bundle.baseline.template_name) as by_sql,
        _Copy(release.server, bundle.baseline.template_name) as by_django,
    ):
        baseline_schema = _schema(by_sql)
        _run_scripts(by_sql, [files[path] for path in manifest["apply_order"]])
        _migrated_by_django(by_django, bundle, files)

        assert _schema(by_sql) == _schema(by_django) != baseline_schema


def test_rollback_sql_is_djangos_and_restores_the_baseline_schema(release):
    bundle, files, manifest = _sealed(release, WIDEN_TOTAL, ADD_STATUS_WITH_DEFAULT_AND_INDEX)

    with (
        _Copy(release.server, bundle.baseline.template_name) as by_sql,
        _Copy(release.server, bundle.baseline.template_name) as by_django,
    ):
        baseline_structure = _structure(by_sql)
        _run_scripts(by_sql, [files[path] for path in [*manifest["apply_order"], *manifest["rollback_order"]]])
        reverted = _migrated_by_django(by_django, bundle, files, rollback=True)

        rollback = [s.rstrip(";") for path in manifest["rollback_order"] for s in _schema_statements(files[path])]
        assert manifest["rollback"]["complete"] is True
        assert rollback == reverted
        assert _schema(by_sql) == _schema(by_django)
        # Django's own rollback remakes the table with the columns in the model's order, so the
        # schema comes back whole but for where the altered column sits.
        assert _structure(by_sql) == baseline_structure


def test_the_scripts_keep_djangos_migration_history_in_step(release):
    bundle, files, manifest = _sealed(release, WIDEN_TOTAL)
    [name] = [m["name"] for cr in manifest["change_requests"] for m in cr["migrations"]]

    with _Copy(release.server, bundle.baseline.template_name) as database:
        _run_scripts(database, [files[path] for path in manifest["apply_order"]])
        applied = _history(database)
        _run_scripts(database, [files[path] for path in manifest["rollback_order"]])

        assert applied == [("shop", name)]
        assert _history(database) == []


def _history(path: Path) -> list[tuple[str, str]]:
    connection = sqlite3.connect(path)
    try:
        return connection.execute("SELECT app, name FROM django_migrations ORDER BY id").fetchall()
    finally:
        connection.close()


def test_a_foreign_key_violation_stops_the_forward_script_with_the_migration_rolled_back(release):
    bundle, files, manifest = _sealed(release, WIDEN_TOTAL)

    with _Copy(release.server, bundle.baseline.template_name) as database:
        _run_scripts(database, [b"PRAGMA foreign_keys = OFF; INSERT INTO shop_order (total, customer_id) VALUES (1, 999);"])
        before = _schema(database)
        with pytest.raises(sqlite3.IntegrityError, match="CHECK constraint failed"):
            _run_scripts(database, [files[path] for path in manifest["apply_order"]])

        assert _schema(database) == before


def test_a_sealed_sqlite_bundle_rebuilt_gives_identical_bytes(release):
    sealed, archive = release.sealed(release.approved(WIDEN_TOTAL), release.approved(ADD_STATUS_WITH_DEFAULT_AND_INDEX))

    rebuilt = bundle_rebuild(bundle=ReleaseBundle.objects.get(pk=sealed["id"]))

    assert rebuilt.archive == archive
    assert rebuilt.sha256 == sealed["sha256"]


def test_a_non_atomic_migration_runs_its_statements_each_on_its_own_with_foreign_keys_still_off_around_them(release):
    widen_outside_a_transaction = [{"app_label": "shop", "atomic": False, "operations": [{**WIDEN_TOTAL[0]["operations"][0]}]}]
    bundle, files, manifest = _sealed(release, widen_outside_a_transaction)

    [forward] = manifest["apply_order"]
    statements = _statements(files[forward])
    assert "BEGIN;" not in statements and "COMMIT;" not in statements
    assert statements[2] == "PRAGMA foreign_keys = OFF;" and statements[-1] == "PRAGMA foreign_keys = ON;"
    with (
        _Copy(release.server, bundle.baseline.template_name) as by_sql,
        _Copy(release.server, bundle.baseline.template_name) as by_django,
    ):
        _run_scripts(by_sql, [files[forward]])
        _migrated_by_django(by_django, bundle, files)
        assert _schema(by_sql) == _schema(by_django)


# A bundle build's clone (bd_), and the copy a drift report or verification reads a catalog on (snap_).
@pytest.mark.parametrize("kind", ["bd_", "snap_"])
def test_the_reaper_deletes_a_registered_bundle_clone_a_dead_worker_left_and_keeps_a_fresh_one(release, settings, kind):
    stale, fresh = (f"{settings.SHADOW_DATABASE_PREFIX}{kind}{uuid.uuid4().hex[:16]}" for _ in range(2))
    for name in (stale, fresh):
        database_create(release.server, name)
        ShadowDatabase.objects.create(server=release.server.key, name=name, kind=ShadowDatabase.Kind.CLONE)
    lease = dt.timedelta(seconds=settings.SCHEMAGATE_DRY_RUN_LEASE_SECONDS)
    ShadowDatabase.objects.filter(name=stale).update(created_at=timezone.now() - 2 * lease)

    [result] = [r for r in shadows_reap() if r.server == release.server.key]

    assert stale in result.dropped and fresh in result.kept
    assert not database_exists(release.server, stale) and database_exists(release.server, fresh)
    assert ShadowDatabase.objects.get(name=stale).dropped_at is not None
