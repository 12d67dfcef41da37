"""Every decision and state change of a change request is in its audit trail, readable over the API."""

from __future__ import annotations

import pytest

from tests.approvals.review_helpers import audit_of, decide, reviewer, submit, token_client
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_decision_is_audited_with_actor_channel_source_ip_and_before_and_after(project_with_baseline):
    owner_api = project_with_baseline["api"]
    alice = reviewer(owner_api, "alice")
    change_request = submit(owner_api)

    decide(alice, change_request, "approve", comment="looks safe")

    event = next(e for e in audit_of(owner_api, change_request) if e["action"] == "review.approve")
    assert event["actor"] == "alice"
    assert event["via"] == "session"
    assert event["source_ip"] == "127.0.0.1"
    assert event["created_at"]
    assert event["before"] == {"status": "ready_for_review"}
    assert event["after"]["status"] == "approved"
    assert event["after"]["comment"] == "looks safe"
    assert event["after"]["approved_by"] == ["alice"]


def test_decision_made_with_a_token_is_audited_as_made_with_a_token(project_with_baseline):
    owner_api = project_with_baseline["api"]
    reviewer(owner_api, "alice")
    change_request = submit(owner_api)

    decide(token_client(UserFactory(username="alice")), change_request, "request_changes")

    event = next(e for e in audit_of(owner_api, change_request) if e["action"] == "review.request_changes")
    assert (event["actor"], event["via"]) == ("alice", "token")


def test_audit_trail_of_a_change_request_lists_every_state_change_in_order(project_with_baseline):
    owner_api = project_with_baseline["api"]
    alice = reviewer(owner_api, "alice")
    change_request = submit(owner_api)
    decide(alice, change_request, "reject", comment="not now")

    events = audit_of(owner_api, change_request)

    own = [e for e in events if e["target_type"] == "changeapi.changerequest"]
    assert [e["action"] for e in own] == [
        "change_request.submitted",
        "change_request.status_changed",
        "change_request.status_changed",
        "review.reject",
    ]
    assert [(e["before"] or {}).get("status") for e in own] == [None, "submitted", "dry_running", "ready_for_review"]
    assert [e["after"]["status"] for e in own] == ["submitted", "dry_running", "ready_for_review", "rejected"]
    assert {"dry_run.queued", "dry_run.finished"} <= {e["action"] for e in events if e["target_type"] == "changeapi.dryrun"}


def test_audit_trail_of_a_project_is_readable_by_its_viewers_only(project_with_baseline, client_for):
    owner_api = project_with_baseline["api"]
    submit(owner_api)
    outsider = client_for(UserFactory(username="outsider"))

    mine = owner_api.get("/api/v1/audit-events/", {"project": "shop"}).json()["results"]
    theirs = outsider.get("/api/v1/audit-events/", {"project": "shop"}).json()["results"]

    assert {"project.created", "baseline.created", "change_request.submitted"} <= {e["action"] for e in mine}
    assert theirs == []
