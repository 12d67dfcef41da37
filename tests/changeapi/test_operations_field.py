"""The operations form is sent as `operations`; `migrations`, its old name, is a deprecated alias."""

from __future__ import annotations

import pytest

from changeapi.models import ChangeRequest
from tests.conftest import ADD_NOTE_AND_INDEX, SHOP_BASELINE

pytestmark = pytest.mark.django_db(transaction=True)


def _submit(api, **form):  # noqa: ANN001, ANN003
    return api.post("/api/v1/change-requests/", {"project": "shop", "title": "Order notes", **form}, format="json")


def _operations_submitted(revision):  # noqa: ANN001, ANN202
    """The `op` of each operation in the revision's source, which must hold only `operations`."""
    assert list(revision["source"]) == ["operations"], revision["source"]
    return [op["op"] for document in revision["source"]["operations"] for op in document["operations"]]


def test_operations_field_submits_the_operations_form_without_a_warning(project_with_baseline):
    response = _submit(project_with_baseline["api"], operations=ADD_NOTE_AND_INDEX)

    assert response.status_code == 202, response.content
    assert not response.has_header("Warning")
    revision = response.json()["latest_revision"]
    assert revision["form"] == "operations"
    assert _operations_submitted(revision) == ["AddField", "AddIndex"]


def test_deprecated_migrations_field_is_accepted_with_a_warning_header(project_with_baseline):
    response = _submit(project_with_baseline["api"], migrations=ADD_NOTE_AND_INDEX)

    assert response.status_code == 202, response.content
    assert response["Warning"].startswith('299 - "the field migrations is deprecated')
    assert response["Warning"].endswith('"')


def test_a_revision_sent_under_the_deprecated_name_is_stored_as_operations(project_with_baseline):
    api = project_with_baseline["api"]
    _submit(api, migrations=ADD_NOTE_AND_INDEX)

    stored = api.get(f"/api/v1/change-requests/{ChangeRequest.objects.get().pk}/").json()["latest_revision"]

    assert _operations_submitted(stored) == ["AddField", "AddIndex"]


def test_a_new_revision_under_the_deprecated_name_is_answered_with_a_warning(project_with_baseline):
    api = project_with_baseline["api"]
    change_request = _submit(api, operations=ADD_NOTE_AND_INDEX).json()

    response = api.post(
        f"/api/v1/change-requests/{change_request['id']}/revisions/", {"migrations": ADD_NOTE_AND_INDEX}, format="json"
    )

    assert response.status_code == 202, response.content
    assert response["Warning"].startswith("299 - ")
    assert _operations_submitted(response.json()) == ["AddField", "AddIndex"]


def test_a_baseline_under_the_deprecated_name_is_answered_with_a_warning(project_with_baseline):
    response = project_with_baseline["api"].post("/api/v1/projects/shop/baselines/", {"migrations": SHOP_BASELINE}, format="json")

    assert response.status_code == 202, response.content
    assert response["Warning"].startswith("299 - ")


def test_operations_and_its_deprecated_name_together_are_refused(project_with_baseline):
    response = _submit(project_with_baseline["api"], operations=ADD_NOTE_AND_INDEX, migrations=ADD_NOTE_AND_INDEX)

    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["errors"] == [{"pointer": "/migrations", "detail": "give operations or its deprecated name migrations, not both"}]
    assert not ChangeRequest.objects.exists()


def test_a_replayed_submission_under_the_deprecated_name_repeats_the_warning(project_with_baseline):
    api = project_with_baseline["api"]
    body = {"project": "shop", "title": "Order notes", "migrations": ADD_NOTE_AND_INDEX}

    first = api.post("/api/v1/change-requests/", body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    replay = api.post("/api/v1/change-requests/", body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")

    assert first.status_code == replay.status_code == 202
    assert replay["Warning"] == first["Warning"]
    assert ChangeRequest.objects.count() == 1
