"""Real migration histories read as text equal what Django's loader imports from disk.

The installed packages are trusted, so Django's own MigrationLoader may import them; the
intake reads the same files only as text. Plans, operations and states must agree.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.loader import MigrationLoader
from django.test.utils import override_settings

from changeapi.intake.plan import Plan
from changeapi.intake.python_source.history import plan_history, plan_state
from changeapi.intake.python_source.migration_files import MigrationFile, read_migration_file
from tests.engine.intake.intake_support import (
    INSTALLED_HISTORY_APPS,
    INSTALLED_HISTORY_MIDDLEWARE,
    INSTALLED_HISTORY_SETTINGS,
    canonical,
)
from tests.support.signals import receivers_restored


@pytest.fixture(scope="module")
def installed_loader() -> Iterator[MigrationLoader]:
    # allauth checks its middleware when its app is readied, so MIDDLEWARE goes first.
    with receivers_restored(), override_settings(MIDDLEWARE=INSTALLED_HISTORY_MIDDLEWARE, SITE_ID=1):
        with override_settings(INSTALLED_APPS=INSTALLED_HISTORY_APPS):
            yield MigrationLoader(None, ignore_no_migrations=True)


@pytest.fixture(scope="module")
def parsed_files(installed_loader: MigrationLoader) -> dict[tuple[str, str], MigrationFile]:
    parsed = {}
    for (app_label, name), migration in installed_loader.disk_migrations.items():
        path = Path(sys.modules[migration.__module__].__file__ or "")
        parsed[(app_label, name)] = read_migration_file(
            app_label=app_label,
            name=name,
            source=path.read_text(encoding="utf-8"),
            filename=str(path),
            settings=INSTALLED_HISTORY_SETTINGS,
            package=migration.__module__.rpartition(".")[0],
        )
    return parsed


@pytest.fixture(scope="module")
def parsed_plan(parsed_files: dict[tuple[str, str], MigrationFile]) -> Plan:
    return plan_history(parsed_files.values())


def test_the_installed_histories_are_large_and_span_many_apps(installed_loader: MigrationLoader) -> None:
    apps = {app_label for app_label, _ in installed_loader.disk_migrations}
    assert len(installed_loader.disk_migrations) >= 80
    assert {"auth", "contenttypes", "admin", "sessions", "sites"} <= apps
    assert {"django_celery_beat", "oauth2_provider", "account", "socialaccount"} <= apps


def test_every_installed_migration_file_parses_to_the_operations_django_loads(
    installed_loader: MigrationLoader, parsed_files: dict[tuple[str, str], MigrationFile]
) -> None:
    mismatches = []
    for key, migration in sorted(installed_loader.disk_migrations.items()):
        ours = parsed_files[key].migration
        if canonical(ours.operations) != canonical(migration.operations):
            mismatches.append(key)
    assert mismatches == []


def test_every_installed_migration_file_keeps_its_dependencies_and_flags(
    installed_loader: MigrationLoader, parsed_files: dict[tuple[str, str], MigrationFile]
) -> None:
    for key, migration in installed_loader.disk_migrations.items():
        ours = parsed_files[key].migration
        assert [tuple(d) for d in ours.dependencies] == [tuple(d) for d in migration.dependencies], key
        assert [tuple(r) for r in ours.replaces] == [tuple(r) for r in migration.replaces], key
        assert [tuple(r) for r in ours.run_before] == [tuple(r) for r in migration.run_before], key
        assert ours.atomic == migration.atomic, key
        assert ours.initial == bool(migration.initial), key


def test_the_plan_is_the_order_django_migrate_applies(installed_loader: MigrationLoader, parsed_plan: Plan) -> None:
    executor = MigrationExecutor(None)
    executor.loader = installed_loader
    expected = executor.migration_plan(installed_loader.graph.leaf_nodes(), clean_start=True)
    assert [m.key for m in parsed_plan.migrations] == [(m.app_label, m.name) for m, _ in expected]


def test_the_replayed_state_equals_the_state_django_builds(installed_loader: MigrationLoader, parsed_plan: Plan) -> None:
    expected = installed_loader.project_state()
    state = plan_state(parsed_plan)
    assert sorted(state.models) == sorted(expected.models)
    unequal = [key for key, model in expected.models.items() if state.models[key] != model]
    assert unequal == []


def test_replaying_the_state_renders_no_models(parsed_plan: Plan) -> None:
    state = plan_state(parsed_plan)
    assert "apps" not in state.__dict__


def test_data_migrations_in_installed_histories_become_steps_that_are_not_run(parsed_plan: Plan) -> None:
    steps = [
        operation
        for migration in parsed_plan.migrations
        for operation in migration.operations
        if type(operation).__name__ == "DataMigrationStep"
    ]
    assert steps, "contrib and allauth ship RunPython migrations"
    assert all("(not executed)" in step.describe() for step in steps)
