"""SQLite engine helpers: a shadow directory per test, the shop baseline, plans of operations,
and templates built in that directory."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import models
from django.db.migrations import operations as ops
from django.db.migrations.operations.base import Operation

from changeapi.dryrun.contract import Report
from changeapi.dryrun.profile import ProductionProfile
from changeapi.dryrun.sqlite_run import dry_run_execute_sqlite
from changeapi.dryrun.sqlite_session import SqliteTemplate, template_build
from changeapi.dryrun.sqlite_tables import SqliteTableFacts, sqlite_table_facts
from changeapi.intake.plan import Plan, PlannedMigration
from changeapi.shadow.engine_servers import SqliteShadowServer, sqlite_server
from changeapi.shadow.sqlite_files import shadow_path


def shop_baseline() -> list[Operation]:
    """Customer and Order: an integer total, a short code, a JSON field, a foreign key."""
    return [
        ops.CreateModel(
            "Customer",
            [
                ("id", models.BigAutoField(primary_key=True)),
                ("email", models.EmailField(max_length=254, unique=True)),
                ("joined", models.DateTimeField()),
            ],
        ),
        ops.CreateModel(
            "Order",
            [
                ("id", models.BigAutoField(primary_key=True)),
                ("total", models.IntegerField()),
                ("code", models.CharField(max_length=20, db_index=True)),
                ("paid", models.BooleanField(default=False)),
                ("amount", models.DecimalField(max_digits=10, decimal_places=2)),
                ("meta", models.JSONField(default=dict)),
                ("note", models.TextField(null=True)),
                ("customer", models.ForeignKey("shop.Customer", models.CASCADE)),
            ],
        ),
    ]


def plan_of(*migrations: list[Operation], start: int = 1) -> Plan:
    return Plan([PlannedMigration("shop", f"{start + i:04d}_step", list(operations)) for i, operations in enumerate(migrations)])


@pytest.fixture(autouse=True)
def _sqlite_allowed(django_db_blocker: Any) -> Iterator[None]:
    """The SQLite connections are the engine's, not the service's test database."""
    with django_db_blocker.unblock():
        yield


@pytest.fixture
def server(tmp_path: Path) -> SqliteShadowServer:
    directory = tmp_path / "shadows"
    directory.mkdir()
    return sqlite_server(f"sqlite://{directory}")


TemplateFactory = Callable[..., SqliteTemplate]


@pytest.fixture
def shop_template(server: SqliteShadowServer, settings: Any) -> TemplateFactory:
    """Build the shop baseline's template in the test's directory, seeded with `orders` orders."""

    def make(orders: int = 1000, customers: int = 100) -> SqliteTemplate:
        return template_build(
            server=server,
            name=f"{settings.SHADOW_DATABASE_PREFIX}tpl_shop_{orders}",
            baseline=plan_of(shop_baseline()),
            rows={"shop_customer": customers, "shop_order": orders},
        )

    return make


def dry_run_of(
    server: SqliteShadowServer, template: str, operations: list[Operation], profile: ProductionProfile | None = None
) -> Report:
    """A succeeded dry-run of one migration of `operations` on a clone of `template`."""
    report = dry_run_execute_sqlite(
        server=server,
        template=template,
        clone_name=f"{settings.SHADOW_DATABASE_PREFIX}dr_of",
        baseline=plan_of(shop_baseline()),
        change=plan_of(operations, start=2),
        profile=profile,
    )
    assert report.status == "succeeded", report.error
    return report


def file_facts(server: SqliteShadowServer, name: str) -> SqliteTableFacts:
    """The rows and bytes of a database of the directory, read from its file read-only."""
    raw = sqlite3.connect(f"file:{shadow_path(server, name)}?mode=ro", uri=True)
    try:
        return sqlite_table_facts(raw)
    finally:
        raw.close()
