"""A bundle's SQL on copies of the baseline database: the same schema as Django's migrations, a
rollback back to the baseline, lock_timeout on every statement, CONCURRENTLY outside transactions."""

from __future__ import annotations

import json

import pytest
import sqlparse

from approvals.models import ReleaseBundle
from changeapi.dryrun.connection import shadow_connection
from changeapi.dryrun.engine import apply_plan_untraced
from changeapi.intake.python_source import plan_state
from changeapi.intake.python_source.history import plan_history
from changeapi.intake.python_source.migration_files import read_migration_file
from changeapi.models import Project
from changeapi.selectors import baseline_plan
from tests.approvals.bundling import (
    ADD_STATUS_CONCURRENTLY,
    IRREVERSIBLE_SQL,
    Release,
    archive_files,
    baseline_copy,
    catalog,
    run_sql_files,
    shadow_server,
)
from tests.conftest import ADD_NOTE_AND_INDEX

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def release(project_with_baseline, client_for):  # noqa: ANN001, ANN201
    return Release(project_with_baseline, client_for)


def _sealed(release, *migrations):  # noqa: ANN001, ANN002, ANN202
    bundle, archive = release.sealed(*[release.approved(m) for m in migrations])
    files = archive_files(archive)
    return ReleaseBundle.objects.select_related("baseline").get(pk=bundle["id"]), files, json.loads(files["manifest.json"])


def _migrate_with_django(dbname, bundle, files):  # noqa: ANN001, ANN202
    """The bundle's migration files, read back by the safe intake (never imported), ordered by
    Django's migration graph after the baseline, and applied as Django's executor does."""
    base = baseline_plan(bundle.baseline)
    read = [
        read_migration_file(app_label=path.split("/")[1], name=path.split("/")[2][:-3], source=data.decode(), filename=path)
        for path, data in sorted(files.items())
        if path.startswith("migrations/")
    ]
    plan = plan_history([*base.migrations, *read], applied=[m.key for m in base.migrations])
    with shadow_connection(shadow_server(), dbname) as connection:
        apply_plan_untraced(connection, plan, plan_state(base))
    return plan


def test_forward_sql_gives_the_same_schema_as_applying_the_migration_files_with_django(release):
    bundle, files, manifest = _sealed(release, ADD_NOTE_AND_INDEX, ADD_STATUS_CONCURRENTLY)

    with baseline_copy(bundle.baseline.template_name) as by_sql, baseline_copy(bundle.baseline.template_name) as by_django:
        baseline_schema = catalog(by_sql)
        run_sql_files(by_sql, [files[path] for path in manifest["apply_order"]])
        plan = _migrate_with_django(by_django, bundle, files)

        assert [m.name for m in plan.migrations] == [m["name"] for cr in manifest["change_requests"] for m in cr["migrations"]]
        assert catalog(by_sql) == catalog(by_django)
        assert catalog(by_sql) != baseline_schema


def test_rollback_sql_returns_the_schema_to_the_baseline(release):
    bundle, files, manifest = _sealed(release, ADD_NOTE_AND_INDEX, ADD_STATUS_CONCURRENTLY)

    with baseline_copy(bundle.baseline.template_name) as database:
        baseline_schema = catalog(database)
        run_sql_files(database, [files[path] for path in manifest["apply_order"]])
        run_sql_files(database, [files[path] for path in manifest["rollback_order"]])

        assert manifest["rollback"]["complete"] is True
        assert catalog(database) == baseline_schema


def test_an_irreversible_step_stops_the_rollback_and_is_listed_in_the_manifest(release):
    _, files, manifest = _sealed(release, ADD_NOTE_AND_INDEX, IRREVERSIBLE_SQL)

    first_rollback, second_rollback = (files[path].decode() for path in manifest["rollback_order"])

    assert manifest["rollback"]["complete"] is False
    assert [(i["migration"], i["operation_index"], i["reason"]) for i in manifest["rollback"]["irreversible"]] == [
        ("shop.0003_auto", 0, "RunSQL without reverse_sql")
    ]
    assert "-- IRREVERSIBLE, operation 0: RunSQL without reverse_sql" in first_rollback
    assert "DELETE FROM django_migrations" not in first_rollback
    assert "-- NOT REACHED" in second_rollback and "DROP COLUMN" not in second_rollback


def _statements(script: bytes) -> list[str]:
    statements = [sqlparse.format(s, strip_comments=True).strip() for s in sqlparse.split(script.decode())]
    return [s for s in statements if s]


def test_every_forward_statement_runs_under_the_projects_lock_timeout(release):
    Project.objects.filter(slug="shop").update(lock_timeout_ms=1234)
    _, files, manifest = _sealed(release, ADD_NOTE_AND_INDEX, ADD_STATUS_CONCURRENTLY)

    for path in manifest["apply_order"]:
        guarded, in_transaction = False, False
        for statement in _statements(files[path]):
            if statement == "BEGIN;":
                in_transaction, guarded = True, False
            elif statement == "COMMIT;":
                in_transaction, guarded = False, False
            elif statement.startswith("SET LOCAL lock_timeout"):
                assert in_transaction and statement == "SET LOCAL lock_timeout = '1234ms';"
                guarded = True
            elif statement.startswith("SET lock_timeout"):
                assert not in_transaction and statement == "SET lock_timeout = '1234ms';"
                guarded = True
            else:
                assert guarded, f"{path}: {statement} runs without lock_timeout"
                guarded = in_transaction


def test_concurrently_statements_are_written_outside_transaction_blocks(release):
    _, files, manifest = _sealed(release, ADD_NOTE_AND_INDEX, ADD_STATUS_CONCURRENTLY)

    concurrent = []
    for path in [*manifest["apply_order"], *manifest["rollback_order"]]:
        in_transaction = False
        for statement in _statements(files[path]):
            in_transaction = {"BEGIN;": True, "COMMIT;": False}.get(statement, in_transaction)
            if "CONCURRENTLY" in statement:
                concurrent.append(statement)
                assert not in_transaction, f"{path}: {statement} is inside a transaction block"

    assert concurrent == [
        'CREATE INDEX CONCURRENTLY "order_status_idx" ON "shop_order" ("status");',
        'DROP INDEX CONCURRENTLY IF EXISTS "order_status_idx";',
    ]
