"""On SQLite, a dry-run runs exactly the SQL Django's own `migrate` runs, statement by statement.

A small app's migration history (the shop baseline, then changes of the kinds teams make: a
column added plainly and one added with a default, which Django makes by remaking the table,
a column's type altered, which remakes it too, an index and a unique constraint added, a field
and a model renamed, a column dropped) is written out as migration files with Django's
`MigrationWriter`, and a subprocess runs the real `manage.py migrate` of it with Django's SQLite
backend on an empty file, recording every statement SQLite received (reference_settings.py).
The service dry-runs the same changes on a clone of the baseline's template; per migration,
the statements of its report must be the same text in the same order.

A remake lays out the new table's columns in the order of the model's fields, which Django
orders by when each field object was made: this holds only because the service renders the
states around an operation in the executor's order and keeps an altered field in its place
(`dryrun.apply`, `intake.state_closure.state_forwards`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from django.db import migrations, models
from django.db.migrations import operations as ops
from django.db.migrations.operations.base import Operation
from django.db.migrations.writer import MigrationWriter

from changeapi.dryrun.contract import Report
from changeapi.dryrun.sqlite_run import dry_run_execute_sqlite
from changeapi.dryrun.sqlite_session import template_build
from changeapi.intake.plan import Plan, PlannedMigration
from changeapi.shadow.engine_servers import sqlite_server

REPOSITORY = Path(__file__).resolve().parents[3]


def history() -> list[tuple[str, list[Operation]]]:
    """The migrations, built afresh for each use (an operation is not shared between runs)."""
    return [
        (
            "0001_initial",
            [
                ops.CreateModel(
                    "Customer",
                    [("id", models.BigAutoField(primary_key=True)), ("email", models.EmailField(max_length=254, unique=True))],
                ),
                ops.CreateModel(
                    "Order",
                    [
                        ("id", models.BigAutoField(primary_key=True)),
                        ("total", models.IntegerField()),
                        ("code", models.CharField(max_length=20, db_index=True)),
                        ("note", models.TextField(null=True)),
                        ("meta", models.JSONField(default=dict)),
                        ("customer", models.ForeignKey("shop.Customer", models.CASCADE)),
                    ],
                ),
            ],
        ),
        (
            "0002_add_fields",
            [
                ops.AddField("order", "comment", models.TextField(null=True)),
                ops.AddField("order", "paid", models.BooleanField(default=False)),
            ],
        ),
        ("0003_alter_total", [ops.AlterField("order", "total", models.BigIntegerField())]),
        (
            "0004_index_and_unique",
            [
                ops.AddIndex("order", models.Index(fields=["total"], name="order_total_idx")),
                ops.AddConstraint("order", models.UniqueConstraint(fields=["code", "customer"], name="order_code_customer_uniq")),
            ],
        ),
        ("0005_renames", [ops.RenameField("order", "comment", "remark"), ops.RenameModel("Customer", "Client")]),
        ("0006_drop_note", [ops.RemoveField("order", "note")]),
    ]


def _write_app(root: Path) -> None:
    package = root / "shop"
    (package / "migrations").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "migrations" / "__init__.py").write_text("")
    previous: str | None = None
    for name, operations in history():
        migration = migrations.Migration(name, "shop")
        migration.operations = operations
        migration.dependencies = [("shop", previous)] if previous else []
        migration.initial = previous is None
        (package / "migrations" / f"{name}.py").write_text(MigrationWriter(migration).as_string())
        previous = name


def _reference(tmp_path: Path) -> dict[str, list[str]]:
    """The statements `manage.py migrate` sends per migration, by its schema editor."""
    app_root = tmp_path / "app"
    _write_app(app_root)
    output = tmp_path / "statements.json"
    environment = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(app_root), str(REPOSITORY)]),
        "SQL_REFERENCE_ENGINE": "django.db.backends.sqlite3",
        "SQL_REFERENCE_DATABASE": json.dumps({"NAME": str(tmp_path / "reference.sqlite3")}),
        "SQL_REFERENCE_APPS": "shop",
        "SQL_REFERENCE_OUTPUT": str(output),
    }
    done = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "migrate",
            "shop",
            "--settings=tests.engine.intake.reference_settings",
            "--skip-checks",
            "--no-input",
            "--verbosity=0",
        ],
        cwd=REPOSITORY,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    by_migration: dict[str, list[str]] = defaultdict(list)
    for record in json.loads(output.read_text(encoding="utf-8")):
        if "sql" in record and record["migration"] and record["by_schema_editor"] and '"django_migrations"' not in record["sql"]:
            by_migration[record["migration"]].append(record["sql"])
    return dict(by_migration)


def _service(tmp_path: Path, settings: Any) -> Report:
    directory = tmp_path / "shadows"
    directory.mkdir()
    server = sqlite_server(f"sqlite://{directory}")
    planned = [PlannedMigration("shop", name, operations) for name, operations in history()]
    baseline, change = Plan(planned[:1]), Plan(planned[1:])
    template = template_build(server=server, name=f"{settings.SHADOW_DATABASE_PREFIX}tpl_eq", baseline=baseline, default_rows=50)
    return dry_run_execute_sqlite(
        server=server,
        template=template.name,
        clone_name=f"{settings.SHADOW_DATABASE_PREFIX}dr_eq",
        baseline=baseline,
        change=change,
    )


@pytest.fixture
def runs(tmp_path: Path, settings: Any, django_db_blocker: Any) -> tuple[dict[str, list[str]], Report]:
    with django_db_blocker.unblock():
        return _reference(tmp_path), _service(tmp_path, settings)


def test_every_changing_migration_runs_the_sql_django_migrate_runs_on_sqlite(runs):
    reference, report = runs
    assert report.status == "succeeded", report.error
    service: dict[str, list[str]] = defaultdict(list)
    for statement in report.statements:
        service[statement.migration].append(statement.sql)
    expected = {label: statements for label, statements in reference.items() if label != "shop.0001_initial"}

    assert dict(service) == expected


def test_the_compared_changes_include_remakes_and_in_place_alters(runs):
    reference, report = runs
    remade = {(r.migration, r.table) for r in report.remakes}
    # A column with a default, a type change, a unique constraint, and the foreign key to a renamed model.
    assert remade == {
        (f"shop.{name}", "shop_order")
        for name in ("0002_add_fields", "0003_alter_total", "0004_index_and_unique", "0005_renames")
    }
    assert 'ALTER TABLE "shop_order" RENAME COLUMN "comment" TO "remark"' in reference["shop.0005_renames"]
    assert 'ALTER TABLE "shop_order" DROP COLUMN "note"' in reference["shop.0006_drop_note"]
