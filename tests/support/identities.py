"""Linking a GitHub or Slack id to a member, confirmed as the product requires: the member asks
for a one-time code and sends it from that account."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib.auth import get_user_model
from rest_framework.test import APIClient


def link_identity(owner_api: APIClient, *, provider: str, external_id: str, username: str) -> dict[str, Any]:
    """A manager links the id to the member; the link does nothing until confirmed."""
    linked = owner_api.post(
        "/api/v1/projects/shop/identities/",
        {"provider": provider, "external_id": external_id, "username": username},
        format="json",
    )
    assert linked.status_code == 201, linked.content
    return linked.json()


def confirmation_code(identity: dict[str, Any], *, username: str) -> str:
    """The code the linked member asks for, signed in as themselves."""
    member = APIClient()
    member.force_authenticate(user=get_user_model().objects.get(username=username))
    response = member.post(f"/api/v1/projects/shop/identities/{identity['id']}/confirmation-code/")
    assert response.status_code == 201, response.content
    return str(response.json()["code"])


def link_and_confirm(
    owner_api: APIClient, *, provider: str, external_id: str, username: str, send: Callable[[str], Any]
) -> dict[str, Any]:
    """Link the id and confirm it by sending the member's code through the channel with `send`."""
    identity = link_identity(owner_api, provider=provider, external_id=external_id, username=username)
    send(confirmation_code(identity, username=username))
    return identity
