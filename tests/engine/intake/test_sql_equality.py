"""The service's SQL for real migration histories equals the SQL Django's own `migrate` runs.

The histories of django.contrib and twenty widely used third-party packages installed by the
`test` extra (content management, e-commerce, payments, file and task queues, audit logs,
permissions, two-factor, tokens) are read as text from site-packages, with the intake settings
a project using them would set (history_corpus.py), planned by the intake (`read_migration_file` + `plan_history`,
as a `migration_files` baseline is) and applied traced, as the unprivileged runner role, on a
clone of an empty template. Meanwhile a subprocess runs the real `manage.py migrate` of the
same apps on a fresh empty database, recording every statement PostgreSQL received
(tests/engine/intake/reference_settings.py). Per migration, the statements the schema editor
ran must be the same text in the same order. Django's bookkeeping (django_migrations), its
introspection queries and the data statements of RunPython functions are no part of the
comparison: the service never runs RunPython, it reports it as a data step.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db.migrations.state import ProjectState

from changeapi.dryrun.connection import shadow_connection
from changeapi.dryrun.contract import StatementTrace
from changeapi.dryrun.engine import PlanRun, apply_plan_traced
from changeapi.intake.plan import Plan
from changeapi.intake.python_source.history import plan_history
from changeapi.shadow import provision
from changeapi.shadow.servers import ShadowServer, configured_servers
from tests.engine.intake.history_corpus import CONTRIB_APPS, HISTORY_APPS, HISTORY_MIDDLEWARE, THIRD_PARTY_APPS, history_files
from tests.engine.intake.third_party_apps import THIRD_PARTY_DJANGO_SETTINGS

# A minute of set-up (a real migrate of the whole corpus): collected first, see tests/conftest.py.
pytestmark = pytest.mark.slow

REPOSITORY = Path(__file__).resolve().parents[3]
SqlByMigration = dict[str, list[str]]

# A callable default such as `timezone.now` is evaluated when the column is added, so its
# literal is the time of each run; so is a random key (django_otp.util.random_hex). Only those
# values are masked, the statement is compared whole.
RUN_TIME_LITERAL = re.compile(r"'\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(?:\.\d+)?\+00:00'::timestamptz")
RANDOM_HEX_LITERAL = re.compile(r"DEFAULT '[0-9a-f]{40}'")


def _comparable(statement: str) -> str:
    statement = RUN_TIME_LITERAL.sub("'<time of the run>'::timestamptz", statement)
    return RANDOM_HEX_LITERAL.sub("DEFAULT '<random hex>'", statement)


@dataclass
class ReferenceRun:
    """What `manage.py migrate` did: the migrations in the order applied, and every statement."""

    applied: list[str]
    statements: list[dict[str, Any]]

    def schema_statements(self) -> list[dict[str, Any]]:
        """What the schema editor ran inside migrations, outside RunPython and bookkeeping."""
        return [
            s
            for s in self.statements
            if s["migration"] and s["by_schema_editor"] and not s["in_data_step"] and '"django_migrations"' not in s["sql"]
        ]

    def schema_sql(self) -> SqlByMigration:
        """The schema editor's statements per migration."""
        return _by_migration(self.schema_statements(), lambda s: _comparable(s["sql"]))

    def transactions(self) -> dict[str, list[bool]]:
        """Per migration, whether each schema statement ran inside a transaction."""
        return _by_migration(self.schema_statements(), lambda s: s["in_transaction"])


def _by_migration(statements: list[dict[str, Any]], value: Callable[[dict[str, Any]], Any]) -> dict[str, list[Any]]:
    by_migration: dict[str, list[Any]] = defaultdict(list)
    for statement in statements:
        by_migration[statement["migration"]].append(value(statement))
    return dict(by_migration)


@pytest.fixture(scope="module")
def shadow_server() -> ShadowServer:
    return configured_servers()[0]


@pytest.fixture(scope="module")
def history() -> Plan:
    return plan_history(history_files())


@pytest.fixture(scope="module")
def runs(
    shadow_server: ShadowServer, history: Plan, tmp_path_factory: pytest.TempPathFactory, django_db_blocker: Any
) -> Iterator[tuple[ReferenceRun, PlanRun]]:
    """Both runs at once: `manage.py migrate` in a subprocess while the service applies the plan."""
    prefix = settings.SHADOW_DATABASE_PREFIX
    reference_db, template, clone = f"{prefix}sqleq_reference", f"{prefix}sqleq_empty", f"{prefix}sqleq_service"
    output = tmp_path_factory.mktemp("sql_reference") / "statements.json"
    with shadow_server.admin_connect() as conn:
        for name in (reference_db, template, clone):
            provision.drop_database(conn, name)
        conn.execute(provision.create_empty_database_sql(reference_db, tablespace=shadow_server.tablespace))
    admin = shadow_server.admin_conninfo()
    database = {"NAME": reference_db, "HOST": admin["host"] or "", "PORT": str(admin["port"]), "USER": admin["user"] or ""}
    if admin["password"]:
        database["PASSWORD"] = str(admin["password"])
    environment = {
        **os.environ,
        "SQL_REFERENCE_DATABASE": json.dumps(database),
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
        with django_db_blocker.unblock():
            provision.template_ensure(shadow_server, template, lambda dbname: None)
            provision.clone_create(shadow_server, template=template, name=clone)
            with shadow_connection(shadow_server, clone) as connection:
                service = apply_plan_traced(connection, history, ProjectState())
        _, errors = migrate.communicate(timeout=300)
        assert migrate.returncode == 0, errors
        recorded = json.loads(output.read_text(encoding="utf-8"))
        reference = ReferenceRun(
            applied=[r["applied"] for r in recorded if "applied" in r],
            statements=[r for r in recorded if "sql" in r],
        )
        yield reference, service
    finally:
        if migrate.poll() is None:
            migrate.kill()
        with shadow_server.admin_connect() as conn:
            for name in (reference_db, clone, template):
                provision.drop_database(conn, name)
            provision.job_role_drop(conn, shadow_server, clone)


def _service_by_migration(run: PlanRun, value: Callable[[StatementTrace], Any]) -> dict[str, list[Any]]:
    by_migration: dict[str, list[Any]] = defaultdict(list)
    for statement in run.statements:
        by_migration[statement.migration].append(value(statement))
    return dict(by_migration)


def _service_schema_sql(run: PlanRun) -> SqlByMigration:
    return _service_by_migration(run, lambda s: _comparable(s.sql))


def test_the_service_applies_the_whole_history_without_error(runs: tuple[ReferenceRun, PlanRun]) -> None:
    _, service = runs
    assert service.error is None


def test_the_service_applies_the_migrations_in_the_order_django_migrate_applies_them(
    history: Plan, runs: tuple[ReferenceRun, PlanRun]
) -> None:
    reference, _ = runs
    assert [f"{m.app_label}.{m.name}" for m in history.migrations] == reference.applied


def test_every_schema_changing_migration_runs_the_sql_django_migrate_runs(runs: tuple[ReferenceRun, PlanRun]) -> None:
    reference, service = runs
    expected, actual = reference.schema_sql(), _service_schema_sql(service)
    differing = {
        label: {"django": expected.get(label, []), "service": actual.get(label, [])}
        for label in sorted(set(expected) | set(actual))
        if expected.get(label) != actual.get(label)
    }
    assert differing == {}


def test_every_schema_statement_runs_inside_or_outside_a_transaction_as_under_django_migrate(
    runs: tuple[ReferenceRun, PlanRun],
) -> None:
    reference, service = runs
    assert _service_by_migration(service, lambda s: s.transactional) == reference.transactions()


def test_the_compared_migrations_span_contrib_and_third_party_apps(runs: tuple[ReferenceRun, PlanRun]) -> None:
    reference, _ = runs
    schema_changing = reference.schema_sql()
    app_labels = {label.partition(".")[0] for label in schema_changing}
    assert CONTRIB_APPS | THIRD_PARTY_APPS <= app_labels
    assert len(schema_changing) >= 250
    assert sum(len(statements) for statements in schema_changing.values()) >= 1300


def test_django_migrate_changes_the_schema_only_through_the_schema_editor(runs: tuple[ReferenceRun, PlanRun]) -> None:
    """The comparison's premise: outside the schema editor, migrate only introspects, keeps its
    own bookkeeping, or runs RunPython code (which the service reports and never runs)."""
    reference, _ = runs
    elsewhere = [
        s["sql"]
        for s in reference.statements
        if s["migration"] and not s["by_schema_editor"] and not s["in_data_step"] and '"django_migrations"' not in s["sql"]
    ]
    assert elsewhere
    assert [text for text in elsewhere if not text.lstrip().upper().startswith("SELECT")] == []
