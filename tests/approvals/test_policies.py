"""Approval policies over HTTP: who may read and change them, and what they demand of reviews."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from tests.approvals.review_helpers import (
    ADD_COUPON,
    WIDEN_TOTAL,
    create_policy,
    decide,
    member,
    reviewer,
    session_client,
    status_of,
    submit,
)
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

DBA_ON_EXCLUSIVE_LOCKS = {"kind": "lock_mode_at_least", "threshold": "AccessExclusiveLock", "group": "dba"}


@pytest.fixture
def dba_group():
    return Group.objects.create(name="dba")


def test_manager_creates_a_policy_that_reviewers_can_read(project_with_baseline, dba_group):
    owner_api = project_with_baseline["api"]
    alice = reviewer(owner_api, "alice")

    created = create_policy(owner_api, required_approvals=2, required_groups=["dba"], rules=[DBA_ON_EXCLUSIVE_LOCKS])

    assert created.status_code == 201, created.content
    policy = alice.get(f"/api/v1/approval-policies/{created.json()['id']}/").json()
    assert policy["project"] == "shop"
    assert policy["required_approvals"] == 2
    assert policy["required_groups"] == ["dba"]
    assert policy["allow_bot_approvals"] is False
    assert policy["rules"] == [{**DBA_ON_EXCLUSIVE_LOCKS, "table": "", "approvals": 1}]
    assert [p["id"] for p in alice.get("/api/v1/approval-policies/", {"project": "shop"}).json()["results"]] == [policy["id"]]


def test_reviewer_cannot_create_change_or_delete_the_policy(project_with_baseline):
    owner_api = project_with_baseline["api"]
    alice = reviewer(owner_api, "alice")
    policy = create_policy(owner_api).json()
    url = f"/api/v1/approval-policies/{policy['id']}/"

    assert create_policy(alice).status_code == 403
    assert alice.patch(url, {"allow_bot_approvals": True}, format="json").status_code == 403
    assert alice.delete(url).status_code == 403
    assert owner_api.get(url).json()["allow_bot_approvals"] is False


def test_outsider_cannot_see_or_touch_the_policy(project_with_baseline, client_for):
    owner_api = project_with_baseline["api"]
    policy = create_policy(owner_api).json()
    outsider = client_for(UserFactory(username="outsider"))
    url = f"/api/v1/approval-policies/{policy['id']}/"

    assert outsider.get(url).status_code == 404
    assert outsider.patch(url, {"allow_bot_approvals": True}, format="json").status_code == 404
    assert outsider.delete(url).status_code == 404
    assert create_policy(outsider).status_code == 404
    assert outsider.get("/api/v1/approval-policies/").json()["results"] == []


def test_a_project_has_at_most_one_policy(project_with_baseline):
    owner_api = project_with_baseline["api"]
    create_policy(owner_api)

    response = create_policy(owner_api)

    assert response.status_code == 409
    assert response["Content-Type"] == "application/problem+json"


def test_policy_naming_an_unknown_group_is_refused_with_the_location(project_with_baseline, dba_group):
    owner_api = project_with_baseline["api"]

    response = create_policy(owner_api, required_groups=["dba"], rules=[{**DBA_ON_EXCLUSIVE_LOCKS, "group": "dbas"}])

    assert response.status_code == 400
    assert response.json()["errors"] == [{"pointer": "/rules/0/group", "detail": "no group named 'dbas'"}]
    assert owner_api.get("/api/v1/approval-policies/").json()["results"] == []


@pytest.mark.parametrize(
    ("kind", "threshold"),
    [
        ("finding_severity_at_least", "severe"),
        ("lock_mode_at_least", "ExclusiveLocks"),
        ("lock_mode_at_least", ""),
        ("rewrites_table", "high"),
    ],
)
def test_rule_threshold_must_fit_its_kind(project_with_baseline, dba_group, kind, threshold):
    owner_api = project_with_baseline["api"]

    response = create_policy(owner_api, rules=[{"kind": kind, "threshold": threshold, "group": "dba"}])

    assert response.status_code == 400
    assert response.json()["errors"][0]["pointer"] == "/rules/0/threshold"


def test_policy_changes_are_audited_with_before_and_after(project_with_baseline, dba_group):
    owner_api = project_with_baseline["api"]
    policy = create_policy(owner_api).json()

    owner_api.patch(f"/api/v1/approval-policies/{policy['id']}/", {"required_groups": ["dba"]}, format="json")

    events = owner_api.get("/api/v1/audit-events/", {"project": "shop", "action": "approval_policy.updated"}).json()["results"]
    assert len(events) == 1
    assert events[0]["actor"] == "owner"
    assert events[0]["before"]["required_groups"] == []
    assert events[0]["after"]["required_groups"] == ["dba"]


def test_policy_sets_the_project_approval_count(project_with_baseline):
    owner_api = project_with_baseline["api"]
    policy = create_policy(owner_api).json()

    owner_api.patch(f"/api/v1/approval-policies/{policy['id']}/", {"required_approvals": 3}, format="json")

    assert owner_api.get("/api/v1/projects/shop/").json()["required_approvals"] == 3


def test_deleting_the_policy_leaves_only_the_approval_count(project_with_baseline, dba_group):
    owner_api = project_with_baseline["api"]
    policy = create_policy(owner_api, required_groups=["dba"]).json()
    alice = reviewer(owner_api, "alice")

    assert owner_api.delete(f"/api/v1/approval-policies/{policy['id']}/").status_code == 204

    change_request = submit(owner_api)
    decide(alice, change_request, "approve")
    assert status_of(owner_api, change_request) == "approved"


def test_approvals_count_distinct_reviewers(project_with_baseline):
    owner_api = project_with_baseline["api"]
    create_policy(owner_api, required_approvals=2)
    alice, bob = reviewer(owner_api, "alice"), reviewer(owner_api, "bob")
    change_request = submit(owner_api)

    decide(alice, change_request, "approve")
    decide(alice, change_request, "approve", comment="really")
    assert status_of(owner_api, change_request) == "ready_for_review"

    decide(bob, change_request, "approve")
    assert status_of(owner_api, change_request) == "approved"


def test_each_required_group_must_approve(project_with_baseline, dba_group):
    owner_api = project_with_baseline["api"]
    Group.objects.create(name="security")
    create_policy(owner_api, required_groups=["dba", "security"])
    dora = reviewer(owner_api, "dora", groups=("dba",))
    sam = reviewer(owner_api, "sam", groups=("security",))
    change_request = submit(owner_api)

    decide(dora, change_request, "approve")
    assert status_of(owner_api, change_request) == "ready_for_review"

    decide(sam, change_request, "approve")
    assert status_of(owner_api, change_request) == "approved"


def test_dba_approval_is_required_when_a_statement_takes_an_access_exclusive_lock(project_with_baseline, dba_group):
    owner_api = project_with_baseline["api"]
    create_policy(owner_api, rules=[DBA_ON_EXCLUSIVE_LOCKS])
    alice = reviewer(owner_api, "alice")
    dora = reviewer(owner_api, "dora", groups=("dba",))
    change_request = submit(owner_api)  # ADD COLUMN takes ACCESS EXCLUSIVE on shop_order

    decide(alice, change_request, "approve")
    assert status_of(owner_api, change_request) == "ready_for_review"

    decide(dora, change_request, "approve")
    assert status_of(owner_api, change_request) == "approved"


def test_dba_approval_is_required_when_the_change_rewrites_a_table(project_with_baseline, dba_group):
    owner_api = project_with_baseline["api"]
    create_policy(owner_api, rules=[{"kind": "rewrites_table", "table": "shop_order", "group": "dba"}])
    alice = reviewer(owner_api, "alice")
    change_request = submit(owner_api, WIDEN_TOTAL)

    decide(alice, change_request, "approve")

    approval = owner_api.get(f"/api/v1/change-requests/{change_request['id']}/approval/").json()
    assert approval["satisfied"] is False
    assert approval["requirements"] == [
        {
            "group": "dba",
            "approvals_required": 1,
            "approved_by": [],
            "reasons": ["statement 1 rewrites shop_order"],
            "satisfied": False,
        }
    ]
    assert status_of(owner_api, change_request) == "ready_for_review"


def test_risk_rule_that_does_not_match_the_report_requires_nothing_more(project_with_baseline, dba_group):
    owner_api = project_with_baseline["api"]
    create_policy(
        owner_api,
        rules=[DBA_ON_EXCLUSIVE_LOCKS, {"kind": "scans_table", "group": "dba"}, {"kind": "rewrites_table", "group": "dba"}],
    )
    alice = reviewer(owner_api, "alice")
    change_request = submit(owner_api, ADD_COUPON)  # a new table: its locks block nobody

    decide(alice, change_request, "approve")

    assert owner_api.get(f"/api/v1/change-requests/{change_request['id']}/approval/").json()["requirements"] == []
    assert status_of(owner_api, change_request) == "approved"


def test_rule_can_demand_several_approvals_from_its_group(project_with_baseline, dba_group):
    owner_api = project_with_baseline["api"]
    create_policy(owner_api, rules=[{"kind": "scans_table", "table": "shop_order", "group": "dba", "approvals": 2}])
    dora = reviewer(owner_api, "dora", groups=("dba",))
    dan = reviewer(owner_api, "dan", groups=("dba",))
    change_request = submit(owner_api)  # CREATE INDEX scans shop_order

    decide(dora, change_request, "approve")
    assert status_of(owner_api, change_request) == "ready_for_review"

    decide(dan, change_request, "approve")
    assert status_of(owner_api, change_request) == "approved"


def test_group_member_without_the_review_permission_cannot_satisfy_a_group(project_with_baseline, dba_group):
    owner_api = project_with_baseline["api"]
    create_policy(owner_api, required_groups=["dba"])
    viewer = session_client(member(owner_api, "vic", ["view_project"], groups=("dba",)))
    change_request = submit(owner_api)

    assert decide(viewer, change_request, "approve").status_code == 403
    assert status_of(owner_api, change_request) == "ready_for_review"


def test_group_used_by_a_policy_cannot_be_deleted(project_with_baseline, dba_group):
    from django.db.models import ProtectedError

    create_policy(project_with_baseline["api"], required_groups=["dba"])

    with pytest.raises(ProtectedError):
        dba_group.delete()
