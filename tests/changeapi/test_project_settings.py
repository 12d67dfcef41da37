"""A project's settings change only through the audited service, field by field."""

from __future__ import annotations

import pytest

from changeapi.models import AuditEvent, Project
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _project(client_for):  # noqa: ANN001, ANN202
    api = client_for(UserFactory(username="owner"))
    assert api.post("/api/v1/projects/", {"slug": "shop", "name": "Shop"}, format="json").status_code == 201
    return api


def test_changing_a_setting_is_audited_with_its_value_before_and_after(client_for):
    api = _project(client_for)

    response = api.patch("/api/v1/projects/shop/", {"required_approvals": 2, "name": "Shop"}, format="json")

    assert response.status_code == 200, response.content
    assert Project.objects.get(slug="shop").required_approvals == 2
    event = AuditEvent.objects.get(action="project.updated")
    assert (event.before, event.after, event.actor.username) == ({"required_approvals": 1}, {"required_approvals": 2}, "owner")


def test_an_update_that_changes_nothing_writes_no_event(client_for):
    api = _project(client_for)

    response = api.patch("/api/v1/projects/shop/", {"name": "Shop"}, format="json")

    assert response.status_code == 200, response.content
    assert not AuditEvent.objects.filter(action="project.updated").exists()
