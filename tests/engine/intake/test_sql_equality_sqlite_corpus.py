"""On SQLite, Django's SQLite schema editor applying the intake's plan of real migration histories
runs exactly the SQL Django's own `migrate` runs, migration by migration.

The corpus of test_sql_equality_mariadb.py (django.contrib and twenty third-party packages, read
as text for a SQLite project) is planned by the intake and applied through the service's one
apply path (`dryrun.apply.apply_migration`) with Django's SQLite schema editor on an empty file,
while a subprocess runs the real `manage.py migrate` of the same apps with Django's SQLite
backend on another (reference_settings.py). SQLite remakes a table for most AlterFields, and a
remake writes the new table's columns in the order of the model's fields, so this also holds
the service's states to the order Django's executor gives them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.migrations.state import ProjectState

from changeapi.dryrun.apply import apply_migration
from changeapi.dryrun.connection import registered_wrapper
from changeapi.intake.plan import Plan
from changeapi.intake.python_source.history import plan_history
from tests.engine.intake.history_corpus import HISTORY_APPS, HISTORY_MIDDLEWARE, history_files
from tests.engine.intake.test_sql_equality_mariadb import Recorded, _comparable
from tests.engine.intake.third_party_apps import THIRD_PARTY_DJANGO_SETTINGS

# A minute of set-up (a real migrate of the whole corpus): collected first, see tests/conftest.py.
pytestmark = pytest.mark.slow

REPOSITORY = Path(__file__).resolve().parents[3]


def _reference(records: list[dict[str, Any]]) -> Recorded:
    by_migration: dict[str, list[str]] = defaultdict(list)
    for record in records:
        if "sql" not in record or not record["migration"] or not record["by_schema_editor"] or record["in_data_step"]:
            continue
        if '"django_migrations"' in record["sql"]:
            continue
        by_migration[record["migration"]].append(_comparable(record["sql"]))
    return Recorded(applied=[r["applied"] for r in records if "applied" in r], schema_sql=dict(by_migration))


def _service(connection: BaseDatabaseWrapper, plan: Plan) -> Recorded:
    by_migration: dict[str, list[str]] = defaultdict(list)
    current: dict[str, Any] = {"migration": None, "in_editor": 0}
    base_editor = connection.SchemaEditorClass

    class RecordingEditor(base_editor):  # type: ignore[misc, valid-type]
        def execute(self, sql: Any, params: Any = ()) -> None:
            current["in_editor"] += 1
            try:
                super().execute(sql, params)
            finally:
                current["in_editor"] -= 1

    def capture(execute: Any, sql: Any, params: Any, many: bool, call: dict[str, Any]) -> Any:
        result = execute(sql, params, many, call)
        if current["in_editor"]:
            text = connection.ops.last_executed_query(call["cursor"].cursor, sql, params) if params else str(sql)
            by_migration[current["migration"]].append(_comparable(text))
        return result

    state = ProjectState()
    applied = []
    with connection.execute_wrapper(capture):
        for migration in plan.migrations:
            current["migration"] = f"{migration.app_label}.{migration.name}"
            applied.append(current["migration"])
            state = apply_migration(connection, migration, state, editor_class=RecordingEditor)
    return Recorded(applied=applied, schema_sql=dict(by_migration))


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, django_db_blocker: Any) -> Iterator[tuple[Recorded, Recorded]]:
    directory = tmp_path_factory.mktemp("sql_reference_sqlite")
    output = directory / "statements.json"
    environment = {
        **os.environ,
        "SQL_REFERENCE_ENGINE": "django.db.backends.sqlite3",
        "SQL_REFERENCE_DATABASE": json.dumps({"NAME": str(directory / "reference.sqlite3")}),
        "SQL_REFERENCE_APPS": ",".join(HISTORY_APPS),
        "SQL_REFERENCE_MIDDLEWARE": ",".join(HISTORY_MIDDLEWARE),
        "SQL_REFERENCE_SETTINGS": json.dumps(THIRD_PARTY_DJANGO_SETTINGS),
        "SQL_REFERENCE_OUTPUT": str(output),
    }
    migrate = subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "migrate",
            "--settings=tests.engine.intake.reference_settings",
            "--skip-checks",
            "--no-input",
            "--verbosity=0",
        ],
        cwd=REPOSITORY,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        plan = plan_history(history_files(engine="sqlite"))
        (directory / "service.sqlite3").touch()
        settings_dict = {"ENGINE": "django.db.backends.sqlite3", "NAME": str(directory / "service.sqlite3"), "OPTIONS": {}}
        with django_db_blocker.unblock(), registered_wrapper(settings_dict, "test_sqlite_equality") as connection:
            connection.ensure_connection()
            service = _service(connection, plan)
        _, errors = migrate.communicate(timeout=900)
        assert migrate.returncode == 0, errors
        yield _reference(json.loads(output.read_text(encoding="utf-8"))), service
    finally:
        if migrate.poll() is None:
            migrate.kill()


def test_the_service_applies_the_migrations_in_the_order_django_migrate_applies_them_on_sqlite(runs):
    reference, service = runs
    assert service.applied == reference.applied


def test_every_schema_changing_migration_runs_the_sql_django_migrate_runs_on_sqlite(runs):
    reference, service = runs
    expected, actual = reference.schema_sql, service.schema_sql
    differing = {
        label: {"django": expected.get(label, []), "service": actual.get(label, [])}
        for label in sorted(set(expected) | set(actual))
        if expected.get(label) != actual.get(label)
    }
    assert differing == {}


def test_the_compared_sqlite_migrations_remake_tables(runs):
    reference, _ = runs
    remakes = [s for statements in reference.schema_sql.values() for s in statements if s.startswith('CREATE TABLE "new__')]
    assert len(reference.schema_sql) >= 245 and len(remakes) >= 50
