"""The whole path over HTTP: baseline -> submit -> dry-run report -> review -> bundle."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile

import pytest

from tests.conftest import ADD_NOTE_AND_INDEX
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _submit(api, migrations=ADD_NOTE_AND_INDEX):  # noqa: ANN001
    response = api.post(
        "/api/v1/change-requests/",
        {"project": "shop", "title": "Order notes", "operations": migrations},
        format="json",
    )
    assert response.status_code == 202, response.content
    return response.json()


def test_submitted_change_gets_a_report_with_real_lock_modes(project_with_baseline):
    api = project_with_baseline["api"]
    change_request = _submit(api)

    dry_run = api.get(f"/api/v1/dry-runs/{change_request['latest_dry_run']}/").json()

    assert dry_run["status"] == "succeeded", dry_run["error"]
    statements = dry_run["report"]["statements"]
    add_column = next(s for s in statements if "ADD COLUMN" in s["sql"])
    create_index = next(s for s in statements if s["sql"].startswith("CREATE INDEX"))
    assert {"relation": "shop_order", "mode": "AccessExclusiveLock"}.items() <= next(
        lock for lock in add_column["locks"] if lock["relation"] == "shop_order"
    ).items()
    assert any(lock["relation"] == "shop_order" and lock["mode"] == "ShareLock" for lock in create_index["locks"])
    assert create_index["sequential_scans"] == [{"table": "shop_order", "count": 1}]
    assert api.get(f"/api/v1/change-requests/{change_request['id']}/").json()["status"] == "ready_for_review"


def test_author_cannot_approve_and_another_reviewer_releases_a_verifiable_bundle(project_with_baseline, client_for):
    owner_api = project_with_baseline["api"]
    reviewer = UserFactory(username="reviewer")
    response = owner_api.post(
        "/api/v1/projects/shop/members/", {"username": "reviewer", "permissions": ["review_change"]}, format="json"
    )
    assert response.status_code == 200, response.content
    change_request = _submit(owner_api)
    revision_id = change_request["latest_revision"]["id"]

    refused = owner_api.post(
        f"/api/v1/change-requests/{change_request['id']}/reviews/",
        {"decision": "approve", "revision": revision_id},
        format="json",
    )
    assert refused.status_code == 403
    assert refused["Content-Type"] == "application/problem+json"

    approved = client_for(reviewer).post(
        f"/api/v1/change-requests/{change_request['id']}/reviews/",
        {"decision": "approve", "revision": revision_id, "comment": "fine"},
        format="json",
    )
    assert approved.status_code == 201, approved.content
    assert owner_api.get(f"/api/v1/change-requests/{change_request['id']}/").json()["status"] == "approved"

    bundle = owner_api.post("/api/v1/bundles/", {"project": "shop", "change_requests": [change_request["id"]]}, format="json")
    assert bundle.status_code == 201, bundle.content
    archive = owner_api.get(bundle.json()["download_url"])
    assert archive.status_code == 200
    assert hashlib.sha256(archive.content).hexdigest() == bundle.json()["sha256"]

    with tarfile.open(fileobj=io.BytesIO(archive.content), mode="r:gz") as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}
    manifest = json.loads(files["manifest.json"])
    assert manifest["files"], "the manifest lists the bundle's files"
    for path, digest in manifest["files"].items():
        assert hashlib.sha256(files[path]).hexdigest() == digest
    migration = next(v for k, v in files.items() if k.endswith(".py")).decode()
    assert "migrations.AddField(" in migration and "('shop', '0001_initial')" in migration
    assert manifest["change_requests"][0]["reviews"][0]["reviewer"] == "reviewer"
    assert owner_api.get(f"/api/v1/change-requests/{change_request['id']}/").json()["status"] == "released"
