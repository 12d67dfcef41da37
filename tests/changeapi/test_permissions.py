"""A user of one project sees nothing of another's: every object is a 404, lists are empty."""

from __future__ import annotations

import pytest

from tests.approvals.test_release_flow import _submit
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_user_without_permission_gets_404_on_every_object_of_the_project(project_with_baseline, client_for):
    owner_api = project_with_baseline["api"]
    change_request = _submit(owner_api)
    revision = change_request["latest_revision"]["id"]
    dry_run = change_request["latest_dry_run"]
    baseline = owner_api.get("/api/v1/projects/shop/baselines/").json()[0]["id"]
    outsider = client_for(UserFactory(username="outsider"))

    for url in [
        "/api/v1/projects/shop/",
        "/api/v1/projects/shop/members/",
        "/api/v1/projects/shop/baselines/",
        f"/api/v1/baselines/{baseline}/",
        f"/api/v1/change-requests/{change_request['id']}/",
        f"/api/v1/change-requests/{change_request['id']}/revisions/",
        f"/api/v1/change-requests/{change_request['id']}/reviews/",
        f"/api/v1/revisions/{revision}/",
        f"/api/v1/dry-runs/{dry_run}/",
    ]:
        response = outsider.get(url)
        assert response.status_code == 404, url
        assert response["Content-Type"] == "application/problem+json"

    for url in [
        "/api/v1/projects/",
        "/api/v1/change-requests/",
        "/api/v1/dry-runs/",
        "/api/v1/audit-events/",
        "/api/v1/bundles/",
    ]:
        assert outsider.get(url).json()["results"] == [], url


def test_user_without_permission_cannot_act_on_the_project(project_with_baseline, client_for):
    change_request = _submit(project_with_baseline["api"])
    outsider = client_for(UserFactory(username="outsider"))

    attempts = [
        (
            "/api/v1/change-requests/",
            {
                "project": "shop",
                "title": "x",
                "operations": [{"app_label": "shop", "operations": [{"op": "DeleteModel", "name": "Order"}]}],
            },
        ),
        (
            f"/api/v1/change-requests/{change_request['id']}/reviews/",
            {"decision": "approve", "revision": change_request["latest_revision"]["id"]},
        ),
        (f"/api/v1/change-requests/{change_request['id']}/withdraw/", {}),
        ("/api/v1/projects/shop/members/", {"username": "outsider", "permissions": ["manage_project"]}),
        ("/api/v1/bundles/", {"project": "shop", "change_requests": [change_request["id"]]}),
    ]
    for url, body in attempts:
        assert outsider.post(url, body, format="json").status_code == 404, url


def test_viewer_without_review_permission_gets_403_on_decisions(project_with_baseline, client_for):
    owner_api = project_with_baseline["api"]
    UserFactory(username="viewer")
    owner_api.post("/api/v1/projects/shop/members/", {"username": "viewer", "permissions": ["view_project"]}, format="json")
    change_request = _submit(owner_api)
    viewer = client_for(UserFactory(username="viewer"))

    response = viewer.post(
        f"/api/v1/change-requests/{change_request['id']}/reviews/",
        {"decision": "approve", "revision": change_request["latest_revision"]["id"]},
        format="json",
    )

    assert response.status_code == 403
    assert viewer.get(f"/api/v1/change-requests/{change_request['id']}/").status_code == 200


def test_anonymous_requests_get_401(client_for):
    response = client_for(None).get("/api/v1/projects/")
    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"


def test_setting_a_members_permissions_again_replaces_them_and_none_removes_the_member(project_with_baseline):
    owner_api = project_with_baseline["api"]
    UserFactory(username="member")

    def members() -> dict[str, list[str]]:
        listed = owner_api.get("/api/v1/projects/shop/members/").json()
        return {entry["username"]: entry["permissions"] for entry in listed}

    def set_to(permissions: list[str]) -> None:
        response = owner_api.post(
            "/api/v1/projects/shop/members/", {"username": "member", "permissions": permissions}, format="json"
        )
        assert response.status_code == 200, response.content

    set_to(["review_change", "release_bundle"])
    assert members()["member"] == ["release_bundle", "review_change", "view_project"]
    set_to(["submit_change"])
    assert members()["member"] == ["submit_change", "view_project"]
    set_to([])
    assert "member" not in members()
