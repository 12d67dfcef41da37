"""A bundle's verification where people look: a check run on the pull requests its change
requests came from, its Markdown, and a failed one checked again by a new snapshot or on request."""

from __future__ import annotations

import json
from typing import Any

import pytest

from approvals.models import BundleVerification
from changeapi.models import AuditEvent, ChangeRequest, PullRequestLink
from tests.approvals.bundling import Release, admin_connect, archive_files, baseline_copy
from tests.approvals.test_bundle_schema_verification import _applied, _deploy, _snapshot_of, _verify, release_baseline_template
from tests.conftest import ADD_NOTE_AND_INDEX
from tests.factories import UserFactory
from tests.support.fake_http import Canned, fake_http  # noqa: F401 - fixture

pytestmark = pytest.mark.django_db(transaction=True)

REPO = "acme/shop"
HEAD = "c" * 40


@pytest.fixture
def release(project_with_baseline, client_for):  # noqa: ANN001, ANN201
    return Release(project_with_baseline, client_for)


@pytest.fixture
def github(release, fake_http, settings):  # noqa: ANN001, ANN201, F811
    """The project connected to a repository whose API is the fake server."""
    settings.GITHUB_API_URL = fake_http.url
    settings.GITHUB_TOKEN = "ghp_test_token"
    response = release.api.put(
        "/api/v1/projects/shop/integrations/github/", {"repository": REPO, "webhook_secret": "s" * 24}, format="json"
    )
    assert response.status_code == 200, response.content
    fake_http.respond("POST", f"/repos/{REPO}/check-runs", Canned(201, {"id": 1}))
    return fake_http


def _from_pull_request(change_request: dict[str, Any], number: int = 7) -> None:
    """As the GitHub channel records a change request it made from a pull request."""
    cr = ChangeRequest.objects.get(pk=change_request["id"])
    PullRequestLink.objects.create(
        project=cr.project, repository=REPO, number=number, change_request=cr, head_sha=HEAD, revision=cr.revisions.get()
    )


def _verification_check_runs(github) -> list[dict[str, Any]]:  # noqa: ANN001
    return [r.json() for r in github.sent("POST", f"/repos/{REPO}/check-runs") if r.json()["name"] == "Schemagate verification"]


def _applied_from(release: Release, change_request: dict[str, Any]) -> tuple[dict[str, Any], dict[str, bytes], dict[str, Any]]:
    """The bundle of an approved change request, sealed and marked applied."""
    bundle, archive = release.sealed(change_request)
    applied = release.api.post(f"/api/v1/bundles/{bundle['id']}/applied/", {}, format="json")
    assert applied.status_code == 200, applied.content
    files = archive_files(archive)
    return applied.json(), files, json.loads(files["manifest.json"])


def test_a_verified_bundle_from_a_pull_request_gets_a_successful_check_run(release, github):
    change_request = release.approved(ADD_NOTE_AND_INDEX)
    _from_pull_request(change_request)
    bundle, files, manifest = _applied_from(release, change_request)
    with baseline_copy(release_baseline_template(bundle)) as production:
        _deploy(production, files, manifest)
        _snapshot_of(release, production)

    (check_run,) = _verification_check_runs(github)
    assert (check_run["head_sha"], check_run["conclusion"]) == (HEAD, "success")
    assert check_run["output"]["title"] == f"Bundle {bundle['number']} verified in production"
    assert check_run["details_url"].endswith(f"/api/v1/bundles/{bundle['id']}/")


def test_a_failed_verification_names_the_difference_in_its_check_run(release, github):
    change_request = release.approved(ADD_NOTE_AND_INDEX)
    _from_pull_request(change_request)
    bundle, files, manifest = _applied_from(release, change_request)
    with baseline_copy(release_baseline_template(bundle)) as production:
        _deploy(production, files, manifest, skip="order_total_idx")
        _snapshot_of(release, production)

    (check_run,) = _verification_check_runs(github)
    assert check_run["conclusion"] == "failure"
    assert check_run["output"]["title"] == f"Bundle {bundle['number']}: production differs in 1 object"
    assert "index `order_total_idx` | missing" in check_run["output"]["summary"]


def test_a_bundle_of_change_requests_not_from_github_posts_no_check_run(release, github):
    bundle, files, manifest = _applied(release)
    with baseline_copy(release_baseline_template(bundle)) as production:
        _deploy(production, files, manifest)
        _snapshot_of(release, production)

    assert BundleVerification.objects.get().status == "verified"
    assert _verification_check_runs(github) == []


def test_github_refusing_the_check_run_leaves_the_verification_recorded(release, github):
    github.respond("POST", f"/repos/{REPO}/check-runs", Canned(500, {"message": "down"}))
    change_request = release.approved(ADD_NOTE_AND_INDEX)
    _from_pull_request(change_request)
    bundle, files, manifest = _applied_from(release, change_request)
    with baseline_copy(release_baseline_template(bundle)) as production:
        _deploy(production, files, manifest)
        _snapshot_of(release, production)

    assert release.api.get(f"/api/v1/bundles/{bundle['id']}/").json()["verification"]["status"] == "verified"


def test_a_failed_verification_is_checked_again_by_the_next_snapshot(release):
    bundle, files, manifest = _applied(release)
    with baseline_copy(release_baseline_template(bundle)) as production:
        _deploy(production, files, manifest, skip="order_total_idx")
        first = _snapshot_of(release, production)
        with admin_connect(production) as conn:  # the fix on production: the skipped index, built by hand
            conn.execute('CREATE INDEX "order_total_idx" ON "shop_order" ("total")')
        second = _snapshot_of(release, production)

    verification = release.api.get(f"/api/v1/bundles/{bundle['id']}/").json()["verification"]
    assert (verification["status"], verification["snapshot"]) == ("verified", second)
    events = AuditEvent.objects.filter(target_id=str(bundle["id"]), action__startswith="bundle.verif").order_by("id")
    assert [(e.action, e.after["snapshot"]) for e in events] == [
        ("bundle.verification_failed", first),
        ("bundle.verified", second),
    ]


def test_a_verified_bundle_is_not_compared_again_by_later_snapshots(release):
    bundle, files, manifest = _applied(release)
    with baseline_copy(release_baseline_template(bundle)) as production:
        _deploy(production, files, manifest)
        first = _snapshot_of(release, production)
        _snapshot_of(release, production)

    assert BundleVerification.objects.get().snapshot_id == first
    assert AuditEvent.objects.filter(action="bundle.verified").count() == 1


def test_a_failed_verification_is_checked_again_on_request_and_posts_a_new_check_run(release, github):
    change_request = release.approved(ADD_NOTE_AND_INDEX)
    _from_pull_request(change_request)
    bundle, files, manifest = _applied_from(release, change_request)
    with baseline_copy(release_baseline_template(bundle)) as production:
        _deploy(production, files, manifest, skip="order_total_idx")
        failed = _snapshot_of(release, production)

    response = _verify(release, bundle, failed)

    assert response.status_code == 200, response.content
    assert response.json()["verification"]["status"] == "failed"
    assert [c["conclusion"] for c in _verification_check_runs(github)] == ["failure", "failure"]


def test_the_markdown_of_a_failed_verification_lists_the_differences_and_how_to_check_again(release):
    bundle, files, manifest = _applied(release)
    with baseline_copy(release_baseline_template(bundle)) as production:
        _deploy(production, files, manifest, skip="order_total_idx")
        _snapshot_of(release, production)

    response = release.api.get(f"/api/v1/bundles/{bundle['id']}/verification.md")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/markdown")
    text = response.content.decode()
    assert "❌ production differs" in text
    assert "| index `order_total_idx` | missing |" in text
    assert f"/api/v1/bundles/{bundle['id']}/verify/" in text


def test_the_markdown_of_a_bundle_not_verified_yet_says_so(release):
    bundle, _ = release.sealed(release.approved(ADD_NOTE_AND_INDEX))

    text = release.api.get(f"/api/v1/bundles/{bundle['id']}/verification.md").content.decode()

    assert "not verified" in text and "not marked applied yet" in text


def test_the_markdown_of_a_bundle_the_user_cannot_see_is_not_found(release, client_for):
    bundle, _ = release.sealed(release.approved(ADD_NOTE_AND_INDEX))

    outsider = client_for(UserFactory(username="outsider")).get(f"/api/v1/bundles/{bundle['id']}/verification.md")
    anonymous = client_for(None).get(f"/api/v1/bundles/{bundle['id']}/verification.md")

    assert (outsider.status_code, anonymous.status_code) == (404, 401)
    assert outsider["Content-Type"] == "application/problem+json"
