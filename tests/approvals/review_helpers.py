"""Helpers for review and policy tests: members with permissions and groups, decisions, reads.

Users and groups are arranged with factories (the API has no group management: groups are
kept in the Django admin); everything else goes through the HTTP API.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import Group
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.conftest import ADD_NOTE_AND_INDEX
from tests.factories import UserFactory

# AlterField int -> bigint: PostgreSQL rewrites shop_order under an ACCESS EXCLUSIVE lock.
WIDEN_TOTAL: list[dict[str, Any]] = [
    {
        "app_label": "shop",
        "operations": [{"op": "AlterField", "model_name": "order", "name": "total", "field": {"type": "BigIntegerField"}}],
    }
]

# A new table only: the locks it takes are on a table nobody else uses yet.
ADD_COUPON: list[dict[str, Any]] = [
    {
        "app_label": "shop",
        "operations": [
            {
                "op": "CreateModel",
                "name": "Coupon",
                "fields": [
                    {"name": "id", "field": {"type": "BigAutoField", "primary_key": True}},
                    {"name": "code", "field": {"type": "CharField", "max_length": 20}},
                ],
            }
        ],
    }
]

FAILS_ON_SHADOW: list[dict[str, Any]] = [
    {
        "app_label": "shop",
        "operations": [{"op": "RunSQL", "sql": "ALTER TABLE shop_order ADD CONSTRAINT broken CHECK (no_such_column > 0)"}],
    }
]


def member(owner_api: APIClient, username: str, permissions: list[str], groups: tuple[str, ...] = ()) -> Any:
    """A user with the given permissions on project `shop` (granted over the API) and groups."""
    user = UserFactory(username=username)
    for name in groups:
        user.groups.add(Group.objects.get_or_create(name=name)[0])
    response = owner_api.post("/api/v1/projects/shop/members/", {"username": username, "permissions": permissions}, format="json")
    assert response.status_code == 200, response.content
    return user


def session_client(user: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(user=user)
    return client


def token_client(user: Any) -> APIClient:
    """A client authenticated as a CI bot would be: `Authorization: Bearer <token>`."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {Token.objects.create(user=user).key}")
    return client


def reviewer(owner_api: APIClient, username: str, groups: tuple[str, ...] = ()) -> APIClient:
    return session_client(member(owner_api, username, ["review_change"], groups))


def submit(api: APIClient, migrations: list[dict[str, Any]] = ADD_NOTE_AND_INDEX, title: str = "Order notes") -> dict[str, Any]:
    response = api.post("/api/v1/change-requests/", {"project": "shop", "title": title, "operations": migrations}, format="json")
    assert response.status_code == 202, response.content
    return response.json()


def revise(api: APIClient, change_request: dict[str, Any], migrations: list[dict[str, Any]] = ADD_NOTE_AND_INDEX) -> dict:
    response = api.post(f"/api/v1/change-requests/{change_request['id']}/revisions/", {"operations": migrations}, format="json")
    assert response.status_code == 202, response.content
    return response.json()


def decide(api: APIClient, change_request: dict[str, Any], decision: str, revision: int | None = None, **extra: Any) -> Any:
    """POST a decision on the change request's latest revision (as it was when fetched) unless told otherwise."""
    body = {"decision": decision, "revision": revision or change_request["latest_revision"]["id"], **extra}
    return api.post(f"/api/v1/change-requests/{change_request['id']}/reviews/", body, format="json")


def fetch(api: APIClient, change_request: dict[str, Any]) -> dict[str, Any]:
    response = api.get(f"/api/v1/change-requests/{change_request['id']}/")
    assert response.status_code == 200, response.content
    return response.json()


def status_of(api: APIClient, change_request: dict[str, Any]) -> str:
    return fetch(api, change_request)["status"]


def create_policy(api: APIClient, **policy: Any) -> Any:
    return api.post("/api/v1/approval-policies/", {"project": "shop", **policy}, format="json")


def audit_of(api: APIClient, change_request: dict[str, Any]) -> list[dict[str, Any]]:
    """The change request's audit events, oldest first."""
    response = api.get("/api/v1/audit-events/", {"change_request": change_request["id"], "page_size": 200})
    assert response.status_code == 200, response.content
    return list(reversed(response.json()["results"]))
