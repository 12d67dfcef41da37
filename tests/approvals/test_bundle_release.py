"""Sealing bundles over HTTP: what may be bundled, the combined dry-run, the baseline it advances,
and the applied mark."""

from __future__ import annotations

import json

import pytest
from django.db import DatabaseError, transaction

from approvals.models import ReleaseBundle
from changeapi.models import AuditEvent, Baseline, ChangeRequest, DryRun, Project
from tests.approvals.bundling import (
    ADD_NOTE_AGAIN,
    ADD_STATUS_CONCURRENTLY,
    DROP_CUSTOMER_EMAIL,
    FLAG_WITH_DATA_STEP_FILE,
    Release,
    archive_files,
)
from tests.conftest import ADD_NOTE_AND_INDEX
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def release(project_with_baseline, client_for):  # noqa: ANN001, ANN201
    return Release(project_with_baseline, client_for)


def test_two_requests_touching_one_table_are_bundled_in_order_with_the_combined_dry_run_in_the_manifest(release):
    first = release.approved(ADD_NOTE_AND_INDEX, "Order notes")
    second = release.approved(ADD_STATUS_CONCURRENTLY, "Order status")

    bundle, archive = release.sealed(first, second)

    manifest = json.loads(archive_files(archive)["manifest.json"])
    assert [cr["number"] for cr in manifest["change_requests"]] == [first["number"], second["number"]]
    assert [m["name"] for cr in manifest["change_requests"] for m in cr["migrations"]] == [
        "0002_order_note_order_order_total_idx",
        "0003_order_status_alter_order_total_and_more",
    ]
    assert manifest["dry_run"]["scope"] == "bundle"
    assert manifest["dry_run"]["status"] == "succeeded"
    assert manifest["dry_run"]["summary"]["migrations"] == 2
    assert manifest["dry_run"]["summary"]["rewrites"] == ["shop_order"]
    assert [item["number"] for item in bundle["items"]] == [first["number"], second["number"]]


def test_second_request_on_the_same_app_depends_on_the_first_in_the_bundle(release):
    first = release.approved(ADD_NOTE_AND_INDEX)
    second = release.approved(ADD_STATUS_CONCURRENTLY)

    _, archive = release.sealed(first, second)

    files = archive_files(archive)
    later = files["migrations/shop/0003_order_status_alter_order_total_and_more.py"].decode()
    assert "('shop', '0002_order_note_order_order_total_idx')," in later
    assert "atomic = False" in later


def test_a_drop_found_by_the_analysis_waits_for_the_second_phase_of_a_phased_plan(release):
    first = release.approved(ADD_NOTE_AND_INDEX)
    second = release.approved(DROP_CUSTOMER_EMAIL)

    _, archive = release.sealed(first, second)

    files = archive_files(archive)
    phases = json.loads(files["manifest.json"])["phases"]
    assert (phases["expand"], phases["contract"]) == (
        ["shop.0002_order_note_order_order_total_idx"],
        ["shop.0003_remove_customer_email"],
    )
    assert [(f["code"], f["phase"]) for f in phases["findings"]] == [("SG201", "contract")]
    plan = files["PHASES.md"].decode()
    assert plan.index("## Phase 2: contract") < plan.index("sql/forward/002_shop_0003_remove_customer_email.sql")


def test_requests_that_conflict_as_a_whole_are_refused_with_the_database_error_and_nothing_is_sealed(release):
    first = release.approved(ADD_NOTE_AND_INDEX)
    second = release.approved(ADD_NOTE_AGAIN)

    response = release.bundle(first, second)

    assert response.status_code == 409, response.content
    assert response["Content-Type"] == "application/problem+json"
    problem = response.json()
    assert 'column "note" of relation "shop_order" already exists' in problem["detail"]
    assert problem["errors"][0]["change_request"] == second["number"]
    assert problem["errors"][0]["sqlstate"] == "42701"
    assert not ReleaseBundle.objects.exists()
    assert Baseline.objects.count() == 1
    assert release.api.get(f"/api/v1/change-requests/{first['id']}/").json()["status"] == "approved"


def test_a_request_that_is_not_approved_cannot_be_bundled(release):
    change_request = release.submit(ADD_NOTE_AND_INDEX)

    response = release.bundle(change_request)

    assert response.status_code == 409
    assert "not approved" in response.json()["detail"]


def test_bundling_needs_the_release_permission(release):
    change_request = release.approved(ADD_NOTE_AND_INDEX)

    response = release.reviewer_api.post(
        "/api/v1/bundles/", {"project": "shop", "change_requests": [change_request["id"]]}, format="json"
    )

    assert response.status_code == 403


def test_sealing_advances_the_baseline_by_the_bundled_migrations(release):
    change_request = release.approved(ADD_NOTE_AND_INDEX)

    bundle, _ = release.sealed(change_request)

    project = Project.objects.select_related("current_baseline").get(slug="shop")
    baseline = project.current_baseline
    assert (bundle["baseline_version"], bundle["advanced_baseline_version"]) == (1, 2)
    assert baseline.version == 2 and baseline.status == Baseline.Status.READY
    assert [doc.get("name") for doc in baseline.source] == [None, "0002_order_note_order_order_total_idx"]


def test_a_data_step_from_migration_files_keeps_its_reviewed_code_and_the_baseline_becomes_migration_files(release):
    first = release.approved(ADD_NOTE_AND_INDEX)
    second = release.approved(FLAG_WITH_DATA_STEP_FILE, form="migration_files")

    _, archive = release.sealed(first, second)

    files = archive_files(archive)
    written = files["migrations/shop/0003_order_flag.py"].decode()
    manifest = json.loads(files["manifest.json"])
    assert "def flag_big_orders(apps, schema_editor):" in written
    assert "code=flag_big_orders," in written
    assert "reverse_code=django.db.migrations.operations.special.RunPython.noop," in written
    assert [step["migration"] for step in manifest["data_steps"]] == ["shop.0003_order_flag"]
    baseline = Project.objects.select_related("current_baseline").get(slug="shop").current_baseline
    assert (baseline.version, baseline.form, baseline.status) == (2, "migrations", Baseline.Status.READY)
    assert [f["path"] for f in baseline.source["files"]][-2:] == [
        "shop/migrations/0002_order_note_order_order_total_idx.py",
        "shop/migrations/0003_order_flag.py",
    ]


def test_open_change_requests_are_marked_stale_and_rerun_on_the_advanced_baseline(release):
    released = release.approved(ADD_NOTE_AND_INDEX)
    still_open = release.submit(ADD_STATUS_CONCURRENTLY)

    release.sealed(released)

    current = Project.objects.get(slug="shop").current_baseline_id
    latest = DryRun.objects.filter(revision__change_request_id=still_open["id"]).order_by("-id").first()
    assert latest.baseline_id == current
    assert latest.status == DryRun.Status.SUCCEEDED
    assert AuditEvent.objects.filter(action="change_request.dry_run_stale", target_id=str(still_open["id"])).exists()


def test_a_request_approved_on_an_older_baseline_must_be_reviewed_again(release):
    first = release.approved(ADD_NOTE_AND_INDEX)
    second = release.approved(ADD_STATUS_CONCURRENTLY)
    release.sealed(first)

    response = release.bundle(second)

    assert response.status_code == 409
    assert "not approved" in response.json()["detail"]
    assert ChangeRequest.objects.get(pk=second["id"]).status == "ready_for_review"


def test_marking_a_bundle_applied_is_recorded_in_the_audit_trail_once(release):
    bundle, _ = release.sealed(release.approved(ADD_NOTE_AND_INDEX))

    applied = release.api.post(f"/api/v1/bundles/{bundle['id']}/applied/", {"note": "deploy #42"}, format="json")
    again = release.api.post(f"/api/v1/bundles/{bundle['id']}/applied/", {}, format="json")

    assert applied.status_code == 200, applied.content
    assert applied.json()["applied_by"] == "owner" and applied.json()["applied_at"]
    assert again.status_code == 409
    assert again["Content-Type"] == "application/problem+json"
    events = AuditEvent.objects.filter(action="bundle.applied", target_id=str(bundle["id"]))
    assert [(e.actor.username, e.after["note"]) for e in events] == [("owner", "deploy #42")]


def test_marking_applied_needs_the_release_permission(release, client_for):
    bundle, _ = release.sealed(release.approved(ADD_NOTE_AND_INDEX))

    reviewer = release.reviewer_api.post(f"/api/v1/bundles/{bundle['id']}/applied/", {}, format="json")
    outsider = client_for(UserFactory(username="outsider")).post(f"/api/v1/bundles/{bundle['id']}/applied/", {}, format="json")
    anonymous = client_for(None).post(f"/api/v1/bundles/{bundle['id']}/applied/", {}, format="json")

    assert (reviewer.status_code, outsider.status_code, anonymous.status_code) == (403, 404, 401)
    assert ReleaseBundle.objects.get(pk=bundle["id"]).applied_at is None


def test_a_sealed_bundle_cannot_be_altered_even_in_the_database(release):
    bundle, _ = release.sealed(release.approved(ADD_NOTE_AND_INDEX))

    with pytest.raises(DatabaseError, match="immutable"), transaction.atomic():
        ReleaseBundle.objects.filter(pk=bundle["id"]).update(archive=b"something else")
    with pytest.raises(DatabaseError, match="immutable"), transaction.atomic():
        ReleaseBundle.objects.filter(pk=bundle["id"]).delete()
