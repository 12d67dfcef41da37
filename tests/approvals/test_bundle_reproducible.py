"""Same inputs, same bytes: a sealed bundle rebuilt from what it was sealed from is identical,
and migration numbering continues each app's history whatever the mix of requests and apps."""

from __future__ import annotations

import pytest

from approvals.bundles.contents import BundleEntry, renumber
from approvals.models import ReleaseBundle
from approvals.services.bundles import bundle_rebuild
from changeapi.intake.plan import Plan, PlannedMigration
from tests.approvals.bundling import ADD_INVOICE_APP, ADD_STATUS_CONCURRENTLY, Release
from tests.conftest import ADD_NOTE_AND_INDEX


@pytest.fixture
def release(project_with_baseline, client_for):  # noqa: ANN001, ANN201
    return Release(project_with_baseline, client_for)


@pytest.mark.django_db(transaction=True)
def test_building_the_same_bundle_twice_gives_identical_bytes(release):
    change_requests = [release.approved(m) for m in (ADD_NOTE_AND_INDEX, ADD_STATUS_CONCURRENTLY, ADD_INVOICE_APP)]
    sealed, archive = release.sealed(*change_requests)

    rebuilt = bundle_rebuild(bundle=ReleaseBundle.objects.get(pk=sealed["id"]))

    assert rebuilt.archive == archive
    assert rebuilt.sha256 == sealed["sha256"]


def _entry(number: int, *migrations: PlannedMigration) -> BundleEntry:
    return BundleEntry(
        number=number,
        title="",
        author="",
        revision=1,
        revision_sha256="",
        plan=Plan(list(migrations)),
        report={},
        dry_run_id=0,
        reviews=[],
    )


def test_numbering_continues_each_apps_history_across_requests_and_apps():
    history = [("shop", "0001_initial"), ("shop", "0002_order_note"), ("billing", "0001_initial")]
    first = _entry(
        1,
        PlannedMigration("shop", "0003_order_status", [], dependencies=[("shop", "0002_order_note")]),
        PlannedMigration(
            "billing", "0002_invoice_order", [], dependencies=[("billing", "0001_initial"), ("shop", "0003_order_status")]
        ),
    )
    second = _entry(
        2,
        PlannedMigration("shop", "0003_order_total", [], dependencies=[("shop", "0002_order_note")]),
        PlannedMigration("ledger", "0001_initial", [], dependencies=[("shop", "__first__"), ("billing", "0001_initial")]),
    )

    bundled = renumber([first, second], history)

    assert [(b.entry.number, b.migration.app_label, b.migration.name, b.migration.dependencies) for b in bundled] == [
        (1, "shop", "0003_order_status", [("shop", "0002_order_note")]),
        (1, "billing", "0002_invoice_order", [("billing", "0001_initial"), ("shop", "0003_order_status")]),
        (2, "shop", "0004_order_total", [("shop", "0003_order_status")]),
        (2, "ledger", "0001_initial", [("shop", "0001_initial"), ("billing", "0001_initial")]),
    ]
    assert [b.migration.initial for b in bundled] == [False, False, False, True]


def test_clock_based_migration_names_do_not_reach_the_bundle():
    bundled = renumber([_entry(1, PlannedMigration("shop", "0002_auto_20260101_1200", []))], [("shop", "0001_initial")])

    assert bundled[0].migration.name == "0002_auto"
