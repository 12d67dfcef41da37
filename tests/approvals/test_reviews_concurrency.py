"""Decisions that meet at the same moment, in real concurrent transactions on PostgreSQL.

Each thread has its own database connection. The test holds the change request's row lock
while the threads start, so their requests really are in flight together when it lets go.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection, transaction

from changeapi.models import ChangeRequest
from tests.approvals.review_helpers import audit_of, create_policy, decide, fetch, reviewer, revise, submit

pytestmark = pytest.mark.django_db(transaction=True)


def _at_the_same_moment(change_request: dict[str, Any], *calls: Callable[[], Any]) -> list[Any]:
    results: list[Any] = [None] * len(calls)
    started = threading.Barrier(len(calls) + 1)

    def run(index: int) -> None:
        try:
            started.wait()
            results[index] = calls[index]()
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    with transaction.atomic():
        ChangeRequest.objects.select_for_update().get(pk=change_request["id"])
        for thread in threads:
            thread.start()
        started.wait()
        time.sleep(0.5)  # both requests reach the lock while it is held
    for thread in threads:
        thread.join(timeout=30)
    return results


def test_two_reviewers_approving_at_the_same_moment_both_count_and_approve_once(project_with_baseline):
    owner_api = project_with_baseline["api"]
    create_policy(owner_api, required_approvals=2)
    alice, bob = reviewer(owner_api, "alice"), reviewer(owner_api, "bob")
    change_request = submit(owner_api)

    responses = _at_the_same_moment(
        change_request,
        lambda: decide(alice, change_request, "approve"),
        lambda: decide(bob, change_request, "approve"),
    )

    assert [r.status_code for r in responses] == [201, 201]
    assert fetch(owner_api, change_request)["status"] == "approved"
    approvals = [e for e in audit_of(owner_api, change_request) if e["action"] == "review.approve"]
    assert sorted(e["actor"] for e in approvals) == ["alice", "bob"]
    assert [e["after"]["status"] for e in approvals] == ["ready_for_review", "approved"]
    assert len(owner_api.get(f"/api/v1/change-requests/{change_request['id']}/reviews/").json()) == 2


def test_approval_racing_a_new_revision_never_approves_the_new_revision(project_with_baseline):
    owner_api = project_with_baseline["api"]
    alice = reviewer(owner_api, "alice")
    change_request = submit(owner_api)

    approval, _ = _at_the_same_moment(
        change_request,
        lambda: decide(alice, change_request, "approve"),
        lambda: revise(owner_api, change_request),
    )

    assert approval.status_code in (201, 412)
    current = fetch(owner_api, change_request)
    assert current["latest_revision"]["number"] == 2
    assert current["status"] == "ready_for_review"
    assert owner_api.get(f"/api/v1/change-requests/{change_request['id']}/approval/").json()["approved_by"] == []
