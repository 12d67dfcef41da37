"""A bundle with a Backfill step: its migration files name the step by the helper module the
bundle ships, the helper is listed and signed like every file, and the bytes stay reproducible."""

from __future__ import annotations

import ast
import json
import sys
from typing import Any

import pytest
from django.db.migrations.operations.base import Operation
from django.db.migrations.writer import OperationWriter

from approvals.bundles.backfills import BACKFILL_HELPER, backfill_helper
from approvals.bundles.verify import bundle_verify
from approvals.models import ReleaseBundle
from approvals.services.bundles import bundle_rebuild
from changeapi.intake.operations_json import parse_migration_documents
from changeapi.intake.python_source import parse_migration_file
from changeapi.models import Baseline, Project
from tests.approvals.bundling import ADD_NOTE_AGAIN, FLAG_WITH_DATA_STEP_FILE, Release, archive_files, repack

pytestmark = pytest.mark.django_db(transaction=True)

ADD_CENTS_AND_BACKFILL: list[dict[str, Any]] = [
    {
        "app_label": "shop",
        "operations": [
            {"op": "AddField", "model_name": "order", "name": "cents", "field": {"type": "BigIntegerField", "null": True}},
            {
                "op": "Backfill",
                "model": "shop.Order",
                "assignments": {"cents": {"*": [{"F": "total"}, 100]}},
                "filter": {"cents__isnull": True},
                "batch_size": 500,
                "pause_ms": 5,
                "parity": {"cents__isnull": True},
            },
        ],
    }
]


@pytest.fixture
def release(project_with_baseline, client_for):  # noqa: ANN001, ANN201
    return Release(project_with_baseline, client_for)


def test_a_bundles_migration_file_imports_the_backfill_step_from_the_helper_it_ships(release):
    _, archive = release.sealed(release.approved(ADD_CENTS_AND_BACKFILL))

    files = archive_files(archive)
    migration = files["migrations/shop/0002_order_cents_backfill_order.py"].decode()
    assert "import schemagate_backfill\n" in migration
    assert "schemagate_backfill.Backfill(" in migration
    assert "changeapi" not in migration
    assert files[BACKFILL_HELPER] == backfill_helper()
    manifest = json.loads(files["manifest.json"])
    assert manifest["backfills"] == [
        {
            "migration": "shop.0002_order_cents_backfill_order",
            "operation_index": 1,
            "model": "shop.Order",
            "description": "Backfill shop.Order: set cents in batches of 500 by primary key",
            "helper": BACKFILL_HELPER,
            "command": "schemagate_backfill_1_1",
            "command_file": "management/commands/schemagate_backfill_1_1.py",
            "task": "schemagate_backfill_1_1",
            "task_file": "tasks/schemagate_backfill_1_1.py",
            "change_request": 1,
        }
    ]
    command = files["management/commands/schemagate_backfill_1_1.py"].decode()
    assert "class Command(BackfillCommand):" in command
    assert 'migration = ("shop", "0002_order_cents_backfill_order")\n    operation_index = 1\n' in command


def test_a_bundles_backfill_task_names_its_step_and_imports_only_celery_and_the_helper(release):
    _, archive = release.sealed(release.approved(ADD_CENTS_AND_BACKFILL))

    task = archive_files(archive)["tasks/schemagate_backfill_1_1.py"].decode()

    tree = ast.parse(task)
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    assert imported == {"celery", "schemagate_backfill"}
    assert '@shared_task(bind=True, name="schemagate_backfill_1_1", acks_late=True, reject_on_worker_lost=True)' in task
    assert 'migration=("shop", "0002_order_cents_backfill_order"),\n        operation_index=1,' in task


def test_the_rollout_runs_each_backfill_between_its_migration_and_the_next(release):
    _, archive = release.sealed(release.approved(ADD_CENTS_AND_BACKFILL), release.approved(ADD_NOTE_AGAIN))

    files = archive_files(archive)
    phases = files["PHASES.md"].decode()
    assert "python manage.py migrate shop 0002_order_cents_backfill_order" in phases
    assert "`python manage.py schemagate_backfill_1_1 --check-parity` must succeed" in phases
    forward = files["sql/forward/001_shop_0002_order_cents_backfill_order.sql"].decode()
    assert "-- BACKFILL, operation 1: Backfill shop.Order" in forward
    assert "run `python manage.py schemagate_backfill_1_1`" in forward
    assert "BACKFILL" not in files["sql/forward/002_shop_0003_order_note.sql"].decode()


def test_the_migrations_after_a_backfill_start_with_its_parity_preflight(release):
    _, archive = release.sealed(release.approved(ADD_CENTS_AND_BACKFILL), release.approved(ADD_NOTE_AGAIN))

    files = archive_files(archive)
    later = files["sql/forward/002_shop_0003_order_note.sql"].decode()
    assert "-- PREFLIGHT: the backfill of shop.0002_order_cents_backfill_order (operation 1)" in later
    preflight = next(line for line in later.splitlines() if line.startswith("DO $preflight$"))
    count = 'SELECT count(*) FROM (SELECT "shop_order"."id" AS "pk" FROM "shop_order" WHERE "shop_order"."cents" IS NULL)'
    assert count in preflight
    assert "python manage.py schemagate_backfill_1_1" in preflight
    assert later.index("DO $preflight$") < later.index("BEGIN;")
    assert "PREFLIGHT" not in files["sql/forward/001_shop_0002_order_cents_backfill_order.sql"].decode()


def test_the_helper_is_signed_with_the_bundle_and_a_changed_helper_fails_verification(release, client_for):
    _, archive = release.sealed(release.approved(ADD_CENTS_AND_BACKFILL))
    key = client_for(None).get("/api/v1/signing-key/").json()["public_key_pem"]
    files = archive_files(archive)

    assert bundle_verify(archive, public_key_pem=key).valid
    files[BACKFILL_HELPER] += b"\nimport os\n"
    result = bundle_verify(repack(files), public_key_pem=key)
    assert not result.valid
    assert [problem["file"] for problem in result.problems] == [BACKFILL_HELPER]


def test_a_bundle_with_a_backfill_rebuilds_to_the_same_bytes(release):
    sealed, archive = release.sealed(release.approved(ADD_CENTS_AND_BACKFILL), release.approved(ADD_NOTE_AGAIN))

    rebuilt = bundle_rebuild(bundle=ReleaseBundle.objects.get(pk=sealed["id"]))

    assert rebuilt.archive == archive


def test_a_bundle_without_a_backfill_ships_no_helper(release):
    _, archive = release.sealed(release.approved(ADD_NOTE_AGAIN))

    files = archive_files(archive)
    assert BACKFILL_HELPER not in files
    assert "backfills" not in json.loads(files["manifest.json"])


def test_the_helper_imports_nothing_but_django_and_the_standard_library():
    tree = ast.parse(backfill_helper())
    modules = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    modules |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}

    assert {module.split(".")[0] for module in modules if module} - set(sys.stdlib_module_names) == {"django"}


def written(operation: Operation) -> str:
    """An operation as Django writes it into a migration file: equal text, the same step."""
    return OperationWriter(operation).serialize()[0]


def test_a_released_backfill_reads_back_through_the_migration_files_intake_as_the_same_step(release):
    _, archive = release.sealed(release.approved(ADD_CENTS_AND_BACKFILL))
    name = "0002_order_cents_backfill_order"
    source = archive_files(archive)[f"migrations/shop/{name}.py"].decode()

    read = parse_migration_file(app_label="shop", name=name, source=source, filename=f"shop/migrations/{name}.py")

    submitted = parse_migration_documents(ADD_CENTS_AND_BACKFILL, leaves={"shop": "0001_initial"}).migrations[0]
    assert [type(op) for op in read.operations] == [type(op) for op in submitted.operations]
    assert [written(op) for op in read.operations] == [written(op) for op in submitted.operations]
    assert read.dependencies == [("shop", "0001_initial")]


def test_a_migration_files_baseline_advanced_by_a_bundle_with_a_backfill_builds_and_takes_new_changes(release):
    first = release.approved(ADD_CENTS_AND_BACKFILL)
    second = release.approved(FLAG_WITH_DATA_STEP_FILE, form="migration_files")

    release.sealed(first, second)

    baseline = Project.objects.select_related("current_baseline").get(slug="shop").current_baseline
    assert (baseline.version, baseline.form, baseline.status) == (2, "migrations", Baseline.Status.READY)
    assert "shop/migrations/0002_order_cents_backfill_order.py" in [f["path"] for f in baseline.source["files"]]
    later = release.submit(ADD_NOTE_AGAIN)
    dry_run = release.api.get(f"/api/v1/dry-runs/{later['latest_dry_run']}/").json()
    assert dry_run["status"] == "succeeded", dry_run


CENTS_NOT_NULL: list[dict[str, Any]] = [
    *ADD_CENTS_AND_BACKFILL,
    {
        "app_label": "shop",
        "operations": [{"op": "AlterField", "model_name": "order", "name": "cents", "field": {"type": "BigIntegerField"}}],
    },
]


def test_expand_backfill_contract_are_three_phases_the_contract_depending_on_the_expand_and_waiting_for_parity(release):
    _, archive = release.sealed(release.approved(CENTS_NOT_NULL))

    files = archive_files(archive)
    phases = json.loads(files["manifest.json"])["phases"]
    assert phases["rollout"] == [
        {"phase": 1, "kind": "expand", "migrations": ["shop.0002_order_cents_backfill_order"], "backfills": [], "depends_on": []},
        {"phase": 2, "kind": "backfill", "migrations": [], "backfills": [1], "depends_on": [1]},
        {"phase": 3, "kind": "contract", "migrations": ["shop.0003_alter_order_cents"], "backfills": [1], "depends_on": [1, 2]},
    ]
    assert (phases["expand"], phases["contract"]) == (["shop.0002_order_cents_backfill_order"], ["shop.0003_alter_order_cents"])
    plan = files["PHASES.md"].decode()
    assert "## Phase 1: expand" in plan
    assert "## Phase 2: backfill (after phase 1, off the deploy path; resumable)" in plan
    assert "1. Backfill 1: `python manage.py schemagate_backfill_1_1`, or the Celery task `schemagate_backfill_1_1`" in plan
    assert (
        "## Phase 3: contract (after phases 1, 2; the bundle's preflight refuses it until the parity check of backfill 1" in plan
    )
    assert plan.index("## Phase 3") < plan.index("sql/forward/002_shop_0003_alter_order_cents.sql")


def test_a_phased_bundle_rebuilds_to_the_same_bytes_and_a_changed_task_or_preflight_fails_verification(release, client_for):
    sealed, archive = release.sealed(release.approved(CENTS_NOT_NULL))
    key = client_for(None).get("/api/v1/signing-key/").json()["public_key_pem"]

    assert bundle_rebuild(bundle=ReleaseBundle.objects.get(pk=sealed["id"])).archive == archive
    assert bundle_verify(archive, public_key_pem=key).valid
    for path in ("tasks/schemagate_backfill_1_1.py", "sql/forward/002_shop_0003_alter_order_cents.sql"):
        files = archive_files(archive)
        files[path] = files[path].replace(b"schemagate_backfill_1_1", b"schemagate_backfill_1_2")
        result = bundle_verify(repack(files), public_key_pem=key)
        assert [problem["file"] for problem in result.problems] == [path]
