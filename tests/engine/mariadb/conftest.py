"""MariaDB engine helpers: the shop baseline, plans of operations, and templates on the local
MariaDB that are dropped at the end of the session (every name has this run's prefix)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.conf import settings
from django.db import models
from django.db.migrations import operations as ops
from django.db.migrations.operations.base import Operation

from changeapi.dryrun.mysql_session import MySqlTemplate, template_build
from changeapi.intake.plan import Plan, PlannedMigration
from changeapi.shadow.engine_servers import MySqlShadowServer
from changeapi.shadow.mysql_databases import database_drop, database_exists, databases_named
from tests.support.mariadb import MARIADB


def shop_baseline() -> list[Operation]:
    """Customer and Order: an integer total, a short code, a nullable note, a foreign key."""
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
                ("code", models.CharField(max_length=20)),
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
def _mariadb_allowed(django_db_blocker: Any) -> Iterator[None]:
    """The MariaDB connections are the engine's, not the service's test database."""
    with django_db_blocker.unblock():
        yield


@pytest.fixture(scope="session")
def mariadb(django_db_blocker: Any) -> Iterator[MySqlShadowServer]:
    """The local MariaDB; whatever this run's prefix left on it is dropped at the end."""
    yield MARIADB
    with django_db_blocker.unblock():
        _drop_this_runs_databases()


def _drop_this_runs_databases() -> None:
    for name in databases_named(MARIADB, f"{settings.SHADOW_DATABASE_PREFIX}t_"):
        database_drop(MARIADB, name)
    for name in databases_named(MARIADB, f"{settings.SHADOW_DATABASE_PREFIX}sp_"):
        database_drop(MARIADB, name)


TemplateFactory = Callable[..., MySqlTemplate]


@pytest.fixture(scope="session")
def shop_template(mariadb: MySqlShadowServer, django_db_blocker: Any) -> TemplateFactory:
    """Build (once per row count) the shop baseline's template, seeded with `orders` orders."""
    built: dict[int, MySqlTemplate] = {}

    def make(orders: int = 1000, customers: int = 100) -> MySqlTemplate:
        with django_db_blocker.unblock():
            # A test of the service drops every database of the run's prefix when it ends: a
            # template built before it is built again.
            if orders not in built or not database_exists(mariadb, built[orders].name):
                built[orders] = _build(orders, customers)
        return built[orders]

    def _build(orders: int, customers: int) -> MySqlTemplate:
        return template_build(
            server=mariadb,
            name=f"{settings.SHADOW_DATABASE_PREFIX}t_{uuid.uuid4().hex[:12]}",
            baseline=plan_of(shop_baseline()),
            rows={"shop_customer": customers, "shop_order": orders},
        )

    return make
