"""Engine helpers: baselines as Django operations, and a dry-run of a change on a real shadow.

Each helper call builds (or reuses) a template seeded per the given table sizes and runs the
change on a fresh clone of it, exactly as a dry-run job would; templates made here are dropped
at the end of the session.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.conf import settings
from django.db import models
from django.db.migrations import operations as ops
from django.db.migrations.operations.base import Operation

from changeapi.dryrun.contract import to_json
from changeapi.dryrun.profile import ProductionProfile, TableFigures, seeded_template_name
from changeapi.dryrun.run import dry_run_execute, template_build
from changeapi.intake.plan import Plan, PlannedMigration
from changeapi.shadow import provision
from changeapi.shadow.servers import ShadowServer, configured_servers


def shop_baseline() -> list[Operation]:
    """Customer and Order: an integer total, a nullable note, a foreign key."""
    return [
        ops.CreateModel(
            "Customer",
            [
                ("id", models.BigAutoField(primary_key=True)),
                ("email", models.EmailField(max_length=254, unique=True)),
            ],
        ),
        ops.CreateModel(
            "Order",
            [
                ("id", models.BigAutoField(primary_key=True)),
                ("total", models.IntegerField()),
                ("note", models.TextField(null=True)),
                ("customer", models.ForeignKey("shop.Customer", models.CASCADE)),
            ],
        ),
    ]


def plan_of(*migrations: list[Operation], atomic: bool | list[bool] = True, start: int = 1) -> Plan:
    flags = atomic if isinstance(atomic, list) else [atomic] * len(migrations)
    return Plan(
        [
            PlannedMigration("shop", f"{start + i:04d}_step", list(operations), atomic=flag)
            for i, (operations, flag) in enumerate(zip(migrations, flags, strict=True))
        ]
    )


def sizes(**tables: int) -> ProductionProfile:
    """A profile seeding each table at its production row count; production bytes ~160 a row."""
    return ProductionProfile(
        {name: TableFigures(rows=rows, total_bytes=rows * 160) for name, rows in tables.items()},
        seed_max_rows=max(tables.values()),
    )


@pytest.fixture(scope="session")
def shadow_server() -> ShadowServer:
    return configured_servers()[0]


@pytest.fixture(scope="session")
def templates_made(shadow_server: ShadowServer) -> Iterator[set[str]]:
    made: set[str] = set()
    yield made
    for name in made:
        provision.template_drop(shadow_server, name)


DryRun = Callable[..., dict[str, Any]]


@pytest.fixture(scope="session")
def dry_run(shadow_server: ShadowServer, templates_made: set[str], django_db_blocker: Any) -> DryRun:
    """dry_run(change_plan, profile=None, baseline=shop_baseline(), **options) -> the report, as JSON;
    `options` go to `dry_run_execute` (e.g. backfill_target_lock_ms).

    The engine talks to the shadow server only, never to the service's database, so the
    test needs no database of its own: the blocker is lifted for the shadow connections.
    """

    def run(
        change: Plan, *, profile: ProductionProfile | None = None, baseline: list[Operation] | None = None, **options: Any
    ) -> dict[str, Any]:
        base = plan_of(baseline if baseline is not None else shop_baseline())
        digest = hashlib.sha256(repr([op.deconstruct() for op in base.migrations[0].operations]).encode()).hexdigest()
        name = seeded_template_name(f"{settings.SHADOW_DATABASE_PREFIX}tpl_t{digest[:16]}", profile)
        with django_db_blocker.unblock():
            template_build(server=shadow_server, name=name, baseline=base, profile=profile)
            templates_made.add(name)
            report = dry_run_execute(
                server=shadow_server,
                template=name,
                clone_name=f"{settings.SHADOW_DATABASE_PREFIX}dr_engine",
                baseline=base,
                change=plan_of(*[m.operations for m in change.migrations], atomic=[m.atomic for m in change.migrations], start=2),
                profile=profile,
                **options,
            )
        return to_json(report)

    return run


def statement(report: dict[str, Any], fragment: str) -> dict[str, Any]:
    """The first statement whose SQL contains `fragment`."""
    return next(s for s in report["statements"] if fragment in s["sql"])


def codes(report: dict[str, Any]) -> list[str]:
    return [f["code"] for f in report["findings"]]


def finding(report: dict[str, Any], code: str) -> dict[str, Any]:
    return next(f for f in report["findings"] if f["code"] == code)


# One small seeded size shared by most tests, so they share one template.
SMALL = {"shop_order": 2_000, "shop_customer": 200}


def small(**activity: float) -> ProductionProfile:
    """The small profile; traffic figures (not part of the seed) may be added for shop_order."""
    profile = sizes(**SMALL)
    if activity:
        order = profile.tables["shop_order"]
        profile.tables["shop_order"] = TableFigures(order.rows, order.total_bytes, **activity)
    return profile


def held_at(report: dict[str, Any], statement: dict[str, Any]) -> list[dict[str, Any]]:
    """The locks held while `statement` ran (the strongest per existing table), as the report derives them."""
    from dataclasses import asdict

    from changeapi.dryrun.analysis.held import held_by_statement
    from changeapi.dryrun.contract import report_from_json

    held = held_by_statement(report_from_json(report).statements)[statement["index"]]
    return [asdict(lock) for lock in held]
