"""Who may approve what: authors, bots, revisions, stale dry-runs, and the audit of each decision."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from tests.approvals.review_helpers import (
    create_policy,
    decide,
    fetch,
    member,
    reviewer,
    revise,
    session_client,
    status_of,
    submit,
    token_client,
)
from tests.conftest import SHOP_BASELINE

pytestmark = pytest.mark.django_db(transaction=True)


def test_author_cannot_approve_own_change_request(project_with_baseline):
    owner_api = project_with_baseline["api"]
    change_request = submit(owner_api)

    response = decide(owner_api, change_request, "approve")

    assert response.status_code == 403
    assert response["Content-Type"] == "application/problem+json"
    assert "author" in response.json()["detail"]
    assert status_of(owner_api, change_request) == "ready_for_review"


def test_author_of_a_later_revision_cannot_approve_the_change_request(project_with_baseline):
    owner_api = project_with_baseline["api"]
    co_author = session_client(member(owner_api, "coauthor", ["submit_change", "review_change"]))
    change_request = submit(owner_api)
    revise(co_author, change_request)

    response = decide(co_author, change_request, "approve", revision=fetch(owner_api, change_request)["latest_revision"]["id"])

    assert response.status_code == 403


def test_bot_token_cannot_approve_by_default(project_with_baseline):
    owner_api = project_with_baseline["api"]
    bot = token_client(member(owner_api, "ci-bot", ["review_change"], groups=("bots",)))
    change_request = submit(owner_api)

    response = decide(bot, change_request, "approve")

    assert response.status_code == 403
    assert "bot" in response.json()["detail"]
    assert status_of(owner_api, change_request) == "ready_for_review"


def test_project_api_key_cannot_approve_by_default(project_with_baseline):
    owner_api = project_with_baseline["api"]
    issued = owner_api.post("/api/v1/projects/shop/api-keys/", {"name": "ci", "permissions": ["review_change"]}, format="json")
    assert issued.status_code == 201, issued.content
    ci = APIClient()
    ci.credentials(HTTP_AUTHORIZATION=f"Bearer {issued.json()['key']}")
    change_request = submit(owner_api)

    response = decide(ci, change_request, "approve")

    assert response.status_code == 403
    assert status_of(owner_api, change_request) == "ready_for_review"


def test_bot_token_can_approve_when_the_project_policy_allows_bots(project_with_baseline):
    owner_api = project_with_baseline["api"]
    bot = token_client(member(owner_api, "ci-bot", ["review_change"], groups=("bots",)))
    assert create_policy(owner_api, allow_bot_approvals=True).status_code == 201
    change_request = submit(owner_api)

    response = decide(bot, change_request, "approve")

    assert response.status_code == 201, response.content
    assert response.json()["via"] == "token"
    assert status_of(owner_api, change_request) == "approved"


def test_bot_cannot_approve_a_change_it_submitted_even_when_bots_may_approve(project_with_baseline):
    owner_api = project_with_baseline["api"]
    bot = token_client(member(owner_api, "ci-bot", ["submit_change", "review_change"], groups=("bots",)))
    create_policy(owner_api, allow_bot_approvals=True)
    change_request = submit(bot)

    assert decide(bot, change_request, "approve").status_code == 403


def test_bot_can_still_request_changes_by_default(project_with_baseline):
    owner_api = project_with_baseline["api"]
    bot = token_client(member(owner_api, "ci-bot", ["review_change"], groups=("bots",)))
    change_request = submit(owner_api)

    response = decide(bot, change_request, "request_changes", comment="lint: missing index name")

    assert response.status_code == 201, response.content
    assert status_of(owner_api, change_request) == "changes_requested"


def test_approval_of_a_revision_does_not_count_for_the_next_revision(project_with_baseline):
    owner_api = project_with_baseline["api"]
    alice = reviewer(owner_api, "alice")
    change_request = submit(owner_api)
    assert decide(alice, change_request, "approve").status_code == 201
    assert status_of(owner_api, change_request) == "approved"

    revise(owner_api, change_request)

    revised = fetch(owner_api, change_request)
    assert revised["status"] == "ready_for_review"
    approval = owner_api.get(f"/api/v1/change-requests/{change_request['id']}/approval/").json()
    assert approval["revision_number"] == 2
    assert approval["approved_by"] == []


def test_decision_on_a_superseded_revision_is_refused_with_412(project_with_baseline):
    owner_api = project_with_baseline["api"]
    alice = reviewer(owner_api, "alice")
    change_request = submit(owner_api)
    first_revision = change_request["latest_revision"]["id"]
    revise(owner_api, change_request)

    response = decide(alice, change_request, "approve", revision=first_revision)

    assert response.status_code == 412
    assert response.json()["type"].endswith("/stale-revision")
    assert status_of(owner_api, change_request) == "ready_for_review"


def test_decision_with_the_etag_of_a_superseded_revision_is_refused_with_412(project_with_baseline):
    owner_api = project_with_baseline["api"]
    alice = reviewer(owner_api, "alice")
    change_request = submit(owner_api)
    old_etag = owner_api.get(f"/api/v1/revisions/{change_request['latest_revision']['id']}/")["ETag"]
    revise(owner_api, change_request)

    response = alice.post(
        f"/api/v1/change-requests/{change_request['id']}/reviews/", {"decision": "approve"}, format="json", HTTP_IF_MATCH=old_etag
    )

    assert response.status_code == 412


def test_decision_with_the_etag_of_the_latest_revision_is_accepted(project_with_baseline):
    owner_api = project_with_baseline["api"]
    alice = reviewer(owner_api, "alice")
    change_request = submit(owner_api)
    etag = owner_api.get(f"/api/v1/revisions/{change_request['latest_revision']['id']}/")["ETag"]

    response = alice.post(
        f"/api/v1/change-requests/{change_request['id']}/reviews/", {"decision": "approve"}, format="json", HTTP_IF_MATCH=etag
    )

    assert response.status_code == 201, response.content
    assert response.json()["revision"] == change_request["latest_revision"]["id"]


@pytest.mark.parametrize("if_match", [None, "*"])
def test_decision_that_does_not_name_its_revision_is_refused_with_428(project_with_baseline, if_match):
    owner_api = project_with_baseline["api"]
    alice = reviewer(owner_api, "alice")
    change_request = submit(owner_api)
    headers = {"HTTP_IF_MATCH": if_match} if if_match else {}

    response = alice.post(
        f"/api/v1/change-requests/{change_request['id']}/reviews/", {"decision": "approve"}, format="json", **headers
    )

    assert response.status_code == 428
    assert response["Content-Type"] == "application/problem+json"


def test_approval_given_before_the_baseline_moved_does_not_count_after_the_rerun(project_with_baseline):
    owner_api = project_with_baseline["api"]
    owner_api.patch("/api/v1/projects/shop/", {"required_approvals": 2}, format="json")
    alice, bob = reviewer(owner_api, "alice"), reviewer(owner_api, "bob")
    change_request = submit(owner_api)
    assert decide(alice, change_request, "approve").status_code == 201
    moved = owner_api.post("/api/v1/projects/shop/baselines/", {"operations": SHOP_BASELINE}, format="json")
    assert moved.status_code == 202, moved.content
    rerun = fetch(owner_api, change_request)["latest_dry_run"]
    assert rerun != change_request["latest_dry_run"]

    assert decide(bob, change_request, "approve").status_code == 201

    approval = owner_api.get(f"/api/v1/change-requests/{change_request['id']}/approval/").json()
    assert (approval["dry_run"], approval["approved_by"]) == (rerun, ["bob"])
    assert status_of(owner_api, change_request) == "ready_for_review"


def test_reviewer_needs_the_review_permission_even_when_in_a_required_group(project_with_baseline):
    owner_api = project_with_baseline["api"]
    dba = session_client(member(owner_api, "dora", ["view_project"], groups=("dba",)))
    change_request = submit(owner_api)

    assert decide(dba, change_request, "approve").status_code == 403
