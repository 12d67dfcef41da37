"""The Django admin: policies and projects are editable and audited; history is read-only."""

from __future__ import annotations

import pytest
from django.test import Client

from changeapi.models import AuditEvent
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client_for_shop(client_for) -> Client:
    staff = UserFactory(username="root", is_staff=True, is_superuser=True)
    assert client_for(staff).post("/api/v1/projects/", {"slug": "shop", "name": "Shop"}, format="json").status_code == 201
    client = Client()
    client.force_login(staff)
    return client


def test_admin_shows_audit_events_but_refuses_to_change_them(admin_client_for_shop):
    event = AuditEvent.objects.get(action="project.created")
    url = f"/admin/changeapi/auditevent/{event.pk}/change/"

    assert admin_client_for_shop.get("/admin/changeapi/auditevent/").status_code == 200
    assert admin_client_for_shop.get(url).status_code == 200
    assert admin_client_for_shop.post(url, {"action": "rewritten"}).status_code == 403
    assert admin_client_for_shop.post(f"/admin/changeapi/auditevent/{event.pk}/delete/", {"post": "yes"}).status_code == 403
    assert AuditEvent.objects.get(pk=event.pk).action == "project.created"


@pytest.mark.parametrize("model", ["approvals/review", "changeapi/revision", "changeapi/dryrun", "changeapi/baseline"])
def test_admin_offers_no_way_to_add_history(admin_client_for_shop, model):
    assert admin_client_for_shop.get(f"/admin/{model}/").status_code == 200
    assert admin_client_for_shop.get(f"/admin/{model}/add/").status_code == 403


def test_project_settings_changed_in_the_admin_are_audited(admin_client_for_shop):
    from changeapi.models import Project

    project = Project.objects.get(slug="shop")

    response = admin_client_for_shop.post(
        f"/admin/changeapi/project/{project.pk}/change/",
        {"name": "Shop", "required_approvals": 2, "lock_timeout_ms": 3000, "backfill_target_lock_ms": 200},
    )

    assert response.status_code == 302, response.content
    event = AuditEvent.objects.get(action="project.changed_in_admin")
    assert (event.actor.username, event.via) == ("root", "admin")
    assert (event.before, event.after) == ({"required_approvals": 1}, {"required_approvals": 2})


@pytest.mark.parametrize(
    "url", ["/admin/approvals/approvalpolicy/add/", "/admin/changeapi/changerequest/", "/admin/changeapi/project/"]
)
def test_admin_opens_the_editable_pages(admin_client_for_shop, url):
    assert admin_client_for_shop.get(url).status_code == 200
