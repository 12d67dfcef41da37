"""Idempotency-Key on POST: retries replay the first response and never act twice."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from changeapi.api.idempotency import idempotency_begin
from changeapi.models import ChangeRequest, IdempotencyRecord
from tests.conftest import ADD_NOTE_AND_INDEX
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

BODY = {"project": "shop", "title": "Order notes", "operations": ADD_NOTE_AND_INDEX}


def _post(api, body=BODY, key="retry-1"):  # noqa: ANN001, ANN202
    return api.post("/api/v1/change-requests/", body, format="json", HTTP_IDEMPOTENCY_KEY=key)


def test_the_same_key_and_body_replay_the_first_response(project_with_baseline):
    api = project_with_baseline["api"]
    first = _post(api)
    second = _post(api)

    assert first.status_code == second.status_code == 202
    assert second.content == first.content
    assert second["Location"] == first["Location"]
    assert second["Idempotent-Replayed"] == "true"
    assert ChangeRequest.objects.count() == 1


def test_the_same_key_with_another_body_is_a_422(project_with_baseline):
    api = project_with_baseline["api"]
    assert _post(api).status_code == 202

    response = _post(api, body={**BODY, "title": "Something else"})

    assert response.status_code == 422
    assert response["Content-Type"] == "application/problem+json"
    assert ChangeRequest.objects.count() == 1


def test_a_key_whose_first_request_is_in_flight_is_a_409(project_with_baseline):
    owner = project_with_baseline["owner"]
    idempotency_begin(owner=f"user:{owner.pk}", key="retry-1", method="POST", path="/api/v1/change-requests/", fingerprint="x")

    response = _post(project_with_baseline["api"])

    assert response.status_code == 409
    assert ChangeRequest.objects.count() == 0


def test_keys_are_scoped_per_caller(project_with_baseline, client_for):
    api = project_with_baseline["api"]
    other = UserFactory(username="colleague")
    api.post("/api/v1/projects/shop/members/", {"username": "colleague", "permissions": ["submit_change"]}, format="json")

    assert _post(api).status_code == 202
    assert _post(client_for(other)).status_code == 202
    assert ChangeRequest.objects.count() == 2


def test_an_expired_key_can_be_used_again(project_with_baseline):
    api = project_with_baseline["api"]
    assert _post(api).status_code == 202
    IdempotencyRecord.objects.update(expires_at=timezone.now() - dt.timedelta(seconds=1))

    response = _post(api)

    assert response.status_code == 202
    assert not response.has_header("Idempotent-Replayed")
    assert ChangeRequest.objects.count() == 2


def test_a_refusal_that_may_change_is_not_remembered(project_with_baseline, client_for):
    api = project_with_baseline["api"]
    member = UserFactory(username="member")
    api.post("/api/v1/projects/shop/members/", {"username": "member", "permissions": ["view_project"]}, format="json")
    member_api = client_for(member)
    assert _post(member_api).status_code == 403
    api.post("/api/v1/projects/shop/members/", {"username": "member", "permissions": ["submit_change"]}, format="json")

    assert _post(member_api).status_code == 202


def test_posts_without_a_key_are_not_deduplicated(project_with_baseline):
    api = project_with_baseline["api"]
    api.post("/api/v1/change-requests/", BODY, format="json")
    api.post("/api/v1/change-requests/", BODY, format="json")

    assert ChangeRequest.objects.count() == 2
