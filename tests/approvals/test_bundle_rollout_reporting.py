"""A bundle's backfills where people look: its Markdown (`rollout.md`) and a "Schemagate rollout"
check run on the pull requests its change requests came from, each backfill's reported progress
beside the dry-run's estimate, and the contract phase named ready only at parity."""

from __future__ import annotations

from typing import Any

import pytest

from approvals.models import ReleaseBundle
from tests.approvals.bundling import Release
from tests.approvals.test_bundle_backfill import ADD_CENTS_AND_BACKFILL
from tests.approvals.test_bundle_rollout import _bearer, _report
from tests.approvals.test_bundle_verification_reporting import HEAD, REPO, _from_pull_request
from tests.factories import UserFactory
from tests.support.fake_http import Canned, fake_http  # noqa: F401 - fixture

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def release(project_with_baseline, client_for):  # noqa: ANN001, ANN201
    return Release(project_with_baseline, client_for)


@pytest.fixture
def github(release, fake_http, settings):  # noqa: ANN001, ANN201, F811
    settings.GITHUB_API_URL = fake_http.url
    settings.GITHUB_TOKEN = "ghp_test_token"
    response = release.api.put(
        "/api/v1/projects/shop/integrations/github/", {"repository": REPO, "webhook_secret": "s" * 24}, format="json"
    )
    assert response.status_code == 200, response.content
    fake_http.respond("POST", f"/repos/{REPO}/check-runs", Canned(201, {"id": 1}))
    return fake_http


@pytest.fixture
def bundle(release: Release) -> ReleaseBundle:
    change_request = release.approved(ADD_CENTS_AND_BACKFILL)
    _from_pull_request(change_request)
    sealed, _ = release.sealed(change_request)
    return ReleaseBundle.objects.get(pk=sealed["id"])


def _rollout_check_runs(github) -> list[dict[str, Any]]:  # noqa: ANN001
    return [r.json() for r in github.sent("POST", f"/repos/{REPO}/check-runs") if r.json()["name"] == "Schemagate rollout"]


def _post(bundle: ReleaseBundle, body: dict[str, Any]) -> None:
    owner = bundle.created_by
    response = _bearer(bundle, owner, ["release_bundle"]).post(
        f"/api/v1/bundles/{bundle.pk}/phases/1/progress/", body, format="json"
    )
    assert response.status_code == 200, response.content


def test_a_running_backfill_shows_as_a_check_run_in_progress_with_its_figures(bundle, github):
    _post(bundle, _report(batches=3, rows=1500, rate_rows_per_s=250.0, eta_s=90.0))

    (check_run,) = _rollout_check_runs(github)
    assert (check_run["head_sha"], check_run["status"]) == (HEAD, "in_progress")
    assert "conclusion" not in check_run
    assert check_run["output"]["title"] == f"Bundle {bundle.number}: 0 of 1 backfills finished, 0 at parity"
    summary = check_run["output"]["summary"]
    assert "| 1 | `shop.0002_order_cents_backfill_order` | `schemagate_backfill_1_1` | 🔄 running |" in summary
    assert "1,500 rows, 3 batches | 250 rows/s | 90 s |" in summary
    assert check_run["details_url"].endswith(f"/api/v1/bundles/{bundle.pk}/rollout.md")


def test_a_backfill_at_parity_makes_the_check_run_a_success_and_the_contract_ready(bundle, github):
    _post(bundle, _report(batches=12, rows=5000, finished=True, parity_remaining=0, eta_s=0.0))

    check_run = _rollout_check_runs(github)[-1]
    assert (check_run["status"], check_run["conclusion"]) == ("completed", "success")
    assert "every backfill reached parity" in check_run["output"]["title"]
    assert "✅ finished" in check_run["output"]["summary"] and "| done |" in check_run["output"]["summary"]
    assert check_run["output"]["summary"].rstrip().splitlines()[4].endswith("| 0 | ready |")


def test_a_failing_backfill_fails_the_check_run(bundle, github):
    _post(bundle, _report(errors=0))
    _post(bundle, _report(errors=1))

    check_run = _rollout_check_runs(github)[-1]
    assert (check_run["status"], check_run["conclusion"]) == ("completed", "failure")
    assert check_run["output"]["title"] == f"Bundle {bundle.number}: backfill 1 (failing)"


def test_the_rollout_markdown_sets_the_progress_beside_the_dry_runs_estimate(bundle, release):
    before = release.api.get(f"/api/v1/bundles/{bundle.pk}/rollout.md")
    assert before.status_code == 200
    assert before["Content-Type"].startswith("text/markdown")
    text = before.content.decode()
    assert "⏳ pending" in text and "| waits |" in text
    timing = bundle.dry_run_report["backfills"][0]
    assert f"on the shadow's {timing['rows_total']:,} rows" in text

    _post(bundle, _report(batches=3, rows=1500))

    assert "🔄 running" in release.api.get(f"/api/v1/bundles/{bundle.pk}/rollout.md").content.decode()


def test_the_rollout_markdown_is_hidden_from_who_cannot_view_the_project(bundle, client_for):
    assert client_for(UserFactory()).get(f"/api/v1/bundles/{bundle.pk}/rollout.md").status_code == 404
    assert client_for(None).get(f"/api/v1/bundles/{bundle.pk}/rollout.md").status_code == 401
