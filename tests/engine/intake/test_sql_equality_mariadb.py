"""On MariaDB, Django's MySQL schema editor applying the intake's plan of real migration histories
runs exactly the SQL Django's own `migrate` runs, migration by migration.

The same corpus as test_sql_equality.py (django.contrib and twenty third-party packages, read as
text for a MySQL/MariaDB project: none of it is PostgreSQL-only) is planned by the intake and
applied through the service's one apply path (`dryrun.apply.apply_migration`, Django's
`Migration.apply`) with the MySQL schema editor, connected to an empty database on the local
MariaDB. Meanwhile a subprocess runs the real `manage.py migrate` of the same apps with Django's
MySQL backend on another empty database, recording every statement MariaDB received
(reference_settings.py). Per migration, the schema editor's statements must be the same text in
the same order; bookkeeping, introspection and RunPython's data statements are no part of it.

This is the ground a MariaDB dry-run stands on: the SQL is Django's, for that vendor, and a
dry-run on a database holding the baseline makes it, as `migrate` would, not `sqlmigrate`.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.migrations.state import ProjectState

from changeapi.dryrun.apply import apply_migration
from changeapi.intake.plan import Plan
from changeapi.intake.python_source.history import plan_history
from tests.engine.intake.history_corpus import CONTRIB_APPS, HISTORY_APPS, HISTORY_MIDDLEWARE, THIRD_PARTY_APPS, history_files
from tests.engine.intake.third_party_apps import THIRD_PARTY_DJANGO_SETTINGS
from tests.support.mariadb import database_settings, drop_database, mariadb_connection, recreate_database

# A minute of set-up (a real migrate of the whole corpus): collected first, see tests/conftest.py.
pytestmark = pytest.mark.slow

REPOSITORY = Path(__file__).resolve().parents[3]

SqlByMigration = dict[str, list[str]]


# A callable default such as `timezone.now` is evaluated when the column is added, so its
# literal is the time of each run; so is a random key (django_otp.util.random_hex). Only those
# values are masked, the statement is compared whole.
RUN_TIME_LITERAL = re.compile(r"'\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(?:\.\d+)?'")
RANDOM_HEX_LITERAL = re.compile(r"DEFAULT '[0-9a-f]{40}'")


def _comparable(statement: str) -> str:
    statement = RUN_TIME_LITERAL.sub("'<time of the run>'", statement)
    return RANDOM_HEX_LITERAL.sub("DEFAULT '<random hex>'", statement)


@dataclass
class Recorded:
    """The migrations in the order applied, and each one's schema editor statements."""

    applied: list[str]
    schema_sql: SqlByMigration


def _reference(records: list[dict[str, Any]]) -> Recorded:
    by_migration: dict[str, list[str]] = defaultdict(list)
    for record in records:
        if "sql" not in record or not record["migration"] or not record["by_schema_editor"] or record["in_data_step"]:
            continue
        if "`django_migrations`" in record["sql"]:
            continue
        by_migration[record["migration"]].append(_comparable(record["sql"]))
    return Recorded(applied=[r["applied"] for r in records if "applied" in r], schema_sql=dict(by_migration))


def _service(connection: BaseDatabaseWrapper, plan: Plan) -> Recorded:
    """Apply `plan` migration by migration through the service's apply path, recording what the
    schema editor sent, as MariaDB received it (MySQLdb interpolates parameters itself)."""
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
def history() -> Plan:
    return plan_history(history_files(engine="mysql"))


@pytest.fixture(scope="module")
def runs(history: Plan, tmp_path_factory: pytest.TempPathFactory, django_db_blocker: Any) -> Iterator[tuple[Recorded, Recorded]]:
    """Both runs at once: `manage.py migrate` in a subprocess while the service applies the plan."""
    prefix = settings.SHADOW_DATABASE_PREFIX
    reference_db, service_db = f"{prefix}sqleq_reference", f"{prefix}sqleq_service"
    output = tmp_path_factory.mktemp("sql_reference_mariadb") / "statements.json"
    for name in (reference_db, service_db):
        recreate_database(name)
    reference_database = {key: value for key, value in database_settings(reference_db).items() if key != "ENGINE"}
    environment = {
        **os.environ,
        "SQL_REFERENCE_ENGINE": "django.db.backends.mysql",
        "SQL_REFERENCE_DATABASE": json.dumps(reference_database),
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
        with django_db_blocker.unblock(), mariadb_connection(service_db) as connection:
            service = _service(connection, history)
        _, errors = migrate.communicate(timeout=900)
        assert migrate.returncode == 0, errors
        yield _reference(json.loads(output.read_text(encoding="utf-8"))), service
    finally:
        if migrate.poll() is None:
            migrate.kill()
        for name in (reference_db, service_db):
            drop_database(name)


def test_the_service_applies_the_migrations_in_the_order_django_migrate_applies_them(runs: tuple[Recorded, Recorded]) -> None:
    reference, service = runs
    assert service.applied == reference.applied


def test_every_schema_changing_migration_runs_the_sql_django_migrate_runs_on_mariadb(runs: tuple[Recorded, Recorded]) -> None:
    reference, service = runs
    expected, actual = reference.schema_sql, service.schema_sql
    differing = {
        label: {"django": expected.get(label, []), "service": actual.get(label, [])}
        for label in sorted(set(expected) | set(actual))
        if expected.get(label) != actual.get(label)
    }
    assert differing == {}


def test_the_compared_migrations_span_contrib_and_third_party_apps(runs: tuple[Recorded, Recorded]) -> None:
    reference, _ = runs
    app_labels = {label.partition(".")[0] for label in reference.schema_sql}
    assert CONTRIB_APPS | THIRD_PARTY_APPS <= app_labels
    # Fewer than on PostgreSQL: Django's MySQL backend makes no `_like` pattern index for text
    # columns and no index of its own for a foreign key (InnoDB makes one), so a few migrations
    # make no SQL at all there.
    assert len(reference.schema_sql) >= 245
    assert sum(len(statements) for statements in reference.schema_sql.values()) >= 950
