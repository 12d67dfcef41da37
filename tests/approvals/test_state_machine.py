"""Every transition of a change request (docs/state-machine.md), and the refused ones, over HTTP."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from rest_framework.test import APIClient

from config.celery import app as celery_app
from tests.approvals.review_helpers import (
    FAILS_ON_SHADOW,
    audit_of,
    create_policy,
    decide,
    fetch,
    member,
    reviewer,
    revise,
    session_client,
    status_of,
    submit,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def no_worker_yet() -> Iterator[None]:
    """Dry-runs stay queued, as they are until a worker picks them up."""
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = False
    yield
    celery_app.conf.task_always_eager = previous


@pytest.fixture
def crew(project_with_baseline) -> dict[str, APIClient]:
    owner_api = project_with_baseline["api"]
    return {"owner": owner_api, "alice": reviewer(owner_api, "alice"), "bob": reviewer(owner_api, "bob")}


def _post(api: APIClient, change_request: dict[str, Any], verb: str) -> Any:
    return api.post(f"/api/v1/change-requests/{change_request['id']}/{verb}/", format="json")


def _released(crew: dict[str, APIClient]) -> dict[str, Any]:
    change_request = submit(crew["owner"])
    decide(crew["alice"], change_request, "approve")
    bundle = crew["owner"].post("/api/v1/bundles/", {"project": "shop", "change_requests": [change_request["id"]]}, format="json")
    assert bundle.status_code == 201, bundle.content
    return change_request


def _withdrawn(crew: dict[str, APIClient]) -> dict[str, Any]:
    change_request = submit(crew["owner"])
    assert _post(crew["owner"], change_request, "withdraw").status_code == 200
    return change_request


SETUPS: dict[str, Callable[[dict[str, APIClient]], dict[str, Any]]] = {
    "ready_for_review": lambda crew: submit(crew["owner"]),
    "dry_run_failed": lambda crew: submit(crew["owner"], FAILS_ON_SHADOW),
    "approved": lambda crew: (cr := submit(crew["owner"]), decide(crew["alice"], cr, "approve"))[0],
    "changes_requested": lambda crew: (cr := submit(crew["owner"]), decide(crew["alice"], cr, "request_changes"))[0],
    "rejected": lambda crew: (cr := submit(crew["owner"]), decide(crew["alice"], cr, "reject"))[0],
    "withdrawn": _withdrawn,
    "released": _released,
}


def _in_state(crew: dict[str, APIClient], state: str) -> dict[str, Any]:
    change_request = SETUPS[state](crew)
    assert status_of(crew["owner"], change_request) == state
    return fetch(crew["owner"], change_request)


# --- dry-run: submitted -> dry_running -> ready_for_review | dry_run_failed


def test_submitted_change_request_is_dry_run_and_becomes_ready_for_review(crew):
    change_request = submit(crew["owner"])

    transitions = [
        (e["before"] or {}).get("status", "-") + " -> " + e["after"]["status"]
        for e in audit_of(crew["owner"], change_request)
        if e["target_type"] == "changeapi.changerequest"
    ]
    assert transitions == ["- -> submitted", "submitted -> dry_running", "dry_running -> ready_for_review"]


def test_change_request_whose_dry_run_fails_becomes_dry_run_failed(crew):
    change_request = submit(crew["owner"], FAILS_ON_SHADOW)

    assert status_of(crew["owner"], change_request) == "dry_run_failed"


def test_change_request_stays_submitted_until_a_worker_dry_runs_it(crew, no_worker_yet):
    change_request = submit(crew["owner"])

    assert status_of(crew["owner"], change_request) == "submitted"
    assert crew["owner"].get(f"/api/v1/dry-runs/{change_request['latest_dry_run']}/").json()["status"] == "queued"


@pytest.mark.parametrize("decision", ["approve", "reject", "request_changes"])
def test_change_request_cannot_be_decided_before_its_dry_run_ran(crew, no_worker_yet, decision):
    change_request = submit(crew["owner"])

    response = decide(crew["alice"], change_request, decision)

    assert response.status_code == 409
    assert status_of(crew["owner"], change_request) == "submitted"


# --- review decisions


def test_approval_meeting_the_policy_approves_the_change_request(crew):
    change_request = _in_state(crew, "ready_for_review")

    assert decide(crew["alice"], change_request, "approve").status_code == 201

    assert status_of(crew["owner"], change_request) == "approved"


def test_approval_short_of_the_policy_keeps_the_change_request_ready_for_review(crew):
    create_policy(crew["owner"], required_approvals=2)
    change_request = _in_state(crew, "ready_for_review")

    assert decide(crew["alice"], change_request, "approve").status_code == 201

    assert status_of(crew["owner"], change_request) == "ready_for_review"


def test_request_for_changes_moves_the_change_request_to_changes_requested(crew):
    change_request = _in_state(crew, "ready_for_review")

    assert decide(crew["alice"], change_request, "request_changes", comment="name the index").status_code == 201

    assert status_of(crew["owner"], change_request) == "changes_requested"


def test_rejection_closes_the_change_request(crew):
    change_request = _in_state(crew, "ready_for_review")

    assert decide(crew["alice"], change_request, "reject", comment="not this quarter").status_code == 201

    assert status_of(crew["owner"], change_request) == "rejected"


def test_reviewer_who_requested_changes_can_approve_the_same_revision_after_all(crew):
    change_request = _in_state(crew, "changes_requested")

    assert decide(crew["alice"], change_request, "approve").status_code == 201

    assert status_of(crew["owner"], change_request) == "approved"


def test_outstanding_request_for_changes_holds_back_approval_by_another_reviewer(crew):
    change_request = _in_state(crew, "changes_requested")

    assert decide(crew["bob"], change_request, "approve").status_code == 201

    assert status_of(crew["owner"], change_request) == "changes_requested"


def test_request_for_changes_after_approval_takes_the_approval_back(crew):
    change_request = _in_state(crew, "approved")

    assert decide(crew["bob"], change_request, "request_changes").status_code == 201

    assert status_of(crew["owner"], change_request) == "changes_requested"


def test_approved_change_request_can_still_be_rejected(crew):
    change_request = _in_state(crew, "approved")

    assert decide(crew["bob"], change_request, "reject").status_code == 201

    assert status_of(crew["owner"], change_request) == "rejected"


@pytest.mark.parametrize("decision", ["request_changes", "reject"])
def test_failed_dry_run_can_be_sent_back_or_rejected(crew, decision):
    change_request = _in_state(crew, "dry_run_failed")

    assert decide(crew["alice"], change_request, decision).status_code == 201

    assert status_of(crew["owner"], change_request) == {"request_changes": "changes_requested", "reject": "rejected"}[decision]


def test_failed_dry_run_cannot_be_approved(crew):
    change_request = _in_state(crew, "dry_run_failed")

    response = decide(crew["alice"], change_request, "approve")

    assert response.status_code == 409
    assert status_of(crew["owner"], change_request) == "dry_run_failed"


# --- new revisions: any open state -> submitted (-> dry-run -> ready_for_review)


@pytest.mark.parametrize("state", ["ready_for_review", "dry_run_failed", "approved", "changes_requested"])
def test_new_revision_returns_an_open_change_request_to_review(crew, state):
    change_request = _in_state(crew, state)

    revision = revise(crew["owner"], change_request)

    assert revision["number"] == 2
    assert status_of(crew["owner"], change_request) == "ready_for_review"
    resubmitted = [e for e in audit_of(crew["owner"], change_request) if e["action"] == "change_request.revised"]
    assert [(e["before"]["status"], e["after"]["status"]) for e in resubmitted] == [(state, "submitted")]


# --- release


def test_bundle_releases_an_approved_change_request(crew):
    change_request = _in_state(crew, "approved")

    bundle = crew["owner"].post("/api/v1/bundles/", {"project": "shop", "change_requests": [change_request["id"]]}, format="json")

    assert bundle.status_code == 201, bundle.content
    assert status_of(crew["owner"], change_request) == "released"


@pytest.mark.parametrize("state", ["ready_for_review", "changes_requested", "rejected"])
def test_bundle_refuses_a_change_request_that_is_not_approved(crew, state):
    change_request = _in_state(crew, state)

    bundle = crew["owner"].post("/api/v1/bundles/", {"project": "shop", "change_requests": [change_request["id"]]}, format="json")

    assert bundle.status_code == 409
    assert status_of(crew["owner"], change_request) == state


# --- withdraw and reopen


@pytest.mark.parametrize("state", ["ready_for_review", "dry_run_failed", "approved", "changes_requested"])
def test_author_withdraws_an_open_change_request(crew, state):
    change_request = _in_state(crew, state)

    response = _post(crew["owner"], change_request, "withdraw")

    assert response.status_code == 200, response.content
    assert response.json()["status"] == "withdrawn"


def test_submitted_change_request_can_be_withdrawn_before_its_dry_run(crew, no_worker_yet):
    change_request = submit(crew["owner"])

    assert _post(crew["owner"], change_request, "withdraw").json()["status"] == "withdrawn"


def test_author_reopens_a_withdrawn_change_request_with_a_fresh_dry_run(crew):
    change_request = _in_state(crew, "withdrawn")

    response = _post(crew["owner"], change_request, "reopen")

    assert response.status_code == 202, response.content
    reopened = fetch(crew["owner"], change_request)
    assert reopened["status"] == "ready_for_review"
    assert reopened["latest_dry_run"] != change_request["latest_dry_run"]
    assert reopened["latest_revision"]["id"] == change_request["latest_revision"]["id"]


def test_approvals_given_before_a_withdrawal_do_not_count_after_reopening(crew):
    change_request = _in_state(crew, "approved")
    _post(crew["owner"], change_request, "withdraw")

    _post(crew["owner"], change_request, "reopen")

    assert status_of(crew["owner"], change_request) == "ready_for_review"
    approval = crew["owner"].get(f"/api/v1/change-requests/{change_request['id']}/approval/").json()
    assert approval["approved_by"] == []


def test_project_manager_may_withdraw_and_reopen_another_authors_change_request(crew):
    submitter = session_client(member(crew["owner"], "sue", ["submit_change"]))
    change_request = submit(submitter)

    assert _post(crew["owner"], change_request, "withdraw").status_code == 200
    assert _post(crew["owner"], change_request, "reopen").status_code == 202


def test_reviewer_who_is_not_the_author_can_neither_withdraw_nor_reopen(crew):
    change_request = _in_state(crew, "ready_for_review")
    assert _post(crew["alice"], change_request, "withdraw").status_code == 403

    _post(crew["owner"], change_request, "withdraw")

    assert _post(crew["alice"], change_request, "reopen").status_code == 403
    assert status_of(crew["owner"], change_request) == "withdrawn"


# --- refused transitions out of closed states


CLOSED = ["rejected", "withdrawn", "released"]


@pytest.mark.parametrize("state", CLOSED)
@pytest.mark.parametrize("decision", ["approve", "reject", "request_changes"])
def test_closed_change_request_takes_no_decisions(crew, state, decision):
    change_request = _in_state(crew, state)

    response = decide(crew["bob"], change_request, decision)

    assert response.status_code == 409
    assert response.json()["type"].endswith("/invalid-state")
    assert status_of(crew["owner"], change_request) == state


@pytest.mark.parametrize("state", CLOSED)
def test_closed_change_request_takes_no_new_revision(crew, state):
    change_request = _in_state(crew, state)

    response = crew["owner"].post(
        f"/api/v1/change-requests/{change_request['id']}/revisions/", {"operations": FAILS_ON_SHADOW}, format="json"
    )

    assert response.status_code == 409
    assert status_of(crew["owner"], change_request) == state


@pytest.mark.parametrize("state", CLOSED)
def test_closed_change_request_cannot_be_withdrawn(crew, state):
    change_request = _in_state(crew, state)

    assert _post(crew["owner"], change_request, "withdraw").status_code == 409
    assert status_of(crew["owner"], change_request) == state


@pytest.mark.parametrize("state", ["ready_for_review", "dry_run_failed", "approved", "changes_requested", "rejected", "released"])
def test_only_a_withdrawn_change_request_can_be_reopened(crew, state):
    change_request = _in_state(crew, state)

    response = _post(crew["owner"], change_request, "reopen")

    assert response.status_code == 409
    assert status_of(crew["owner"], change_request) == state
