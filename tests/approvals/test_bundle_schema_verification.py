"""Post-deploy verification: a bundle's SQL applied to a copy of the baseline database, the
catalog query read there and uploaded as production's snapshot, then compared with the schema
the bundle leaves."""

from __future__ import annotations

import json
from typing import Any

import pytest
import sqlparse

from approvals.models import ReleaseBundle
from changeapi.models import AuditEvent, WebhookDelivery, WebhookSubscription
from changeapi.shadow.catalog import catalog_read
from tests.approvals.bundling import Release, admin_connect, archive_files, baseline_copy, shadow_server
from tests.conftest import ADD_NOTE_AND_INDEX
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def release(project_with_baseline, client_for):  # noqa: ANN001, ANN201
    return Release(project_with_baseline, client_for)


def _applied(release: Release) -> tuple[dict[str, Any], dict[str, bytes], dict[str, Any]]:
    bundle, archive = release.sealed(release.approved(ADD_NOTE_AND_INDEX))
    applied = release.api.post(f"/api/v1/bundles/{bundle['id']}/applied/", {}, format="json")
    assert applied.status_code == 200, applied.content
    files = archive_files(archive)
    return applied.json(), files, json.loads(files["manifest.json"])


def release_baseline_template(bundle: dict[str, Any]) -> str:
    """The template of the baseline the bundle was built on: production before the deploy."""
    return ReleaseBundle.objects.select_related("baseline").get(pk=bundle["id"]).baseline.template_name  # type: ignore[union-attr]


def bundle_project_id(bundle: dict[str, Any]) -> int:
    return ReleaseBundle.objects.get(pk=bundle["id"]).project_id


def _deploy(dbname: str, files: dict[str, bytes], manifest: dict[str, Any], skip: str | None = None) -> None:
    """Run the bundle's forward SQL as psql would, leaving out any statement containing `skip`."""
    with admin_connect(dbname) as conn:
        for path in manifest["apply_order"]:
            for statement in sqlparse.split(files[path].decode()):
                if not sqlparse.format(statement, strip_comments=True).strip():
                    continue
                if skip is not None and skip in statement:
                    continue
                conn.execute(statement.encode())


def _snapshot_of(release: Release, dbname: str) -> int:
    response = release.api.post("/api/v1/projects/shop/schema-snapshots/", catalog_read(shadow_server(), dbname), format="json")
    assert response.status_code == 201, response.content
    return int(response.json()["id"])


def _verify(release: Release, bundle: dict[str, Any], snapshot: int) -> Any:
    return release.api.post(f"/api/v1/bundles/{bundle['id']}/verify/", {"snapshot": snapshot}, format="json")


def test_a_bundle_applied_as_sealed_is_verified_against_the_snapshot_read_after_it(release):
    bundle, files, manifest = _applied(release)
    with baseline_copy(release_baseline_template(bundle)) as production:
        _deploy(production, files, manifest)
        snapshot = _snapshot_of(release, production)

    response = _verify(release, bundle, snapshot)

    assert response.status_code == 200, response.content
    verification = response.json()["verification"]
    assert (verification["status"], verification["snapshot"], verification["differences"]) == ("verified", snapshot, [])
    assert release.api.get(f"/api/v1/bundles/{bundle['id']}/").json()["verification"]["status"] == "verified"
    latest = AuditEvent.objects.filter(action="bundle.verified", target_id=str(bundle["id"])).order_by("id").last()
    assert latest is not None and latest.after["snapshot"] == snapshot


def test_a_statement_skipped_on_production_is_named_in_the_failed_verification(release):
    bundle, files, manifest = _applied(release)
    WebhookSubscription.objects.create(
        project_id=bundle_project_id(bundle),
        url="https://hooks.example.com/sg",
        event_types=["bundle.verification_failed"],
        created_by=UserFactory(),
    )
    with baseline_copy(release_baseline_template(bundle)) as production:
        _deploy(production, files, manifest, skip="order_total_idx")
        snapshot = _snapshot_of(release, production)

    response = _verify(release, bundle, snapshot)

    assert response.status_code == 200, response.content
    verification = response.json()["verification"]
    assert verification["status"] == "failed"
    assert [(d["kind"], d["status"], d["name"]) for d in verification["differences"]] == [("index", "missing", "order_total_idx")]
    event = AuditEvent.objects.filter(action="bundle.verification_failed", target_id=str(bundle["id"])).order_by("id").last()
    assert event is not None
    assert event.after["differences"] == [
        {"kind": "index", "status": "missing", "name": "order_total_idx", "table": "shop_order"}
    ]
    delivery = WebhookDelivery.objects.filter(event_type="bundle.verification_failed").order_by("id").last()
    assert delivery is not None
    assert delivery.payload["data"]["bundle"]["verification"]["differences"][0]["name"] == "order_total_idx"


def test_an_index_left_invalid_on_production_is_flagged_invalid(release):
    bundle, files, manifest = _applied(release)
    with baseline_copy(release_baseline_template(bundle)) as production:
        _deploy(production, files, manifest)
        with admin_connect(production) as conn:
            conn.execute("UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'order_total_idx'::regclass")
        snapshot = _snapshot_of(release, production)

    verification = _verify(release, bundle, snapshot).json()["verification"]

    assert [(d["status"], d["name"]) for d in verification["differences"]] == [("invalid", "order_total_idx")]


def test_verifying_needs_the_release_permission_and_an_applied_bundle(release, client_for):
    bundle, _ = release.sealed(release.approved(ADD_NOTE_AND_INDEX))
    with baseline_copy(release_baseline_template(bundle)) as production:
        snapshot = _snapshot_of(release, production)

    reviewer = release.reviewer_api.post(f"/api/v1/bundles/{bundle['id']}/verify/", {"snapshot": snapshot}, format="json")
    outsider = client_for(UserFactory(username="outsider")).post(
        f"/api/v1/bundles/{bundle['id']}/verify/", {"snapshot": snapshot}, format="json"
    )
    anonymous = client_for(None).post(f"/api/v1/bundles/{bundle['id']}/verify/", {"snapshot": snapshot}, format="json")
    not_applied = _verify(release, bundle, snapshot)

    assert (reviewer.status_code, outsider.status_code, anonymous.status_code) == (403, 404, 401)
    assert not_applied.status_code == 409
    assert not_applied["Content-Type"] == "application/problem+json"


def test_a_snapshot_of_another_project_or_none_is_refused_as_a_problem(release):
    bundle, _, _ = _applied(release)

    unknown = _verify(release, bundle, 999999)
    malformed = release.api.post(f"/api/v1/bundles/{bundle['id']}/verify/", {"snapshot": "x"}, format="json")

    assert (unknown.status_code, malformed.status_code) == (400, 400)
    assert unknown["Content-Type"] == malformed["Content-Type"] == "application/problem+json"
    assert unknown.json()["errors"] == [{"pointer": "/snapshot", "detail": "not found"}]


def test_the_next_snapshot_uploaded_after_the_deploy_verifies_the_applied_bundle(release):
    bundle, files, manifest = _applied(release)
    with baseline_copy(release_baseline_template(bundle)) as production:
        _deploy(production, files, manifest)
        snapshot = _snapshot_of(release, production)

    verification = release.api.get(f"/api/v1/bundles/{bundle['id']}/").json()["verification"]

    assert (verification["status"], verification["snapshot"]) == ("verified", snapshot)
    assert AuditEvent.objects.filter(action="bundle.verified", target_id=str(bundle["id"])).count() == 1
