"""Outbound webhooks: signed per Standard Webhooks, retried with backoff, logged, never sent inward."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from tests.conftest import ADD_NOTE_AND_INDEX
from tests.support.fake_http import Canned, fake_http  # noqa: F401 - fixture

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def loopback_allowed(settings):  # noqa: ANN001, ANN201
    settings.SCHEMAGATE_WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    settings.SCHEMAGATE_WEBHOOK_BACKOFF_SECONDS = 30
    return settings


def _subscribe(api, url, event_types=("change_request.submitted",)):  # noqa: ANN001, ANN202
    return api.post("/api/v1/projects/shop/webhooks/", {"url": url, "event_types": list(event_types)}, format="json")


def _submit(api):  # noqa: ANN001, ANN202
    response = api.post(
        "/api/v1/change-requests/", {"project": "shop", "title": "Notes", "migrations": ADD_NOTE_AND_INDEX}, format="json"
    )
    assert response.status_code == 202, response.content
    return response.json()


def _verify(secret: str, request) -> bool:  # noqa: ANN001
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{request.headers['webhook-id']}.{request.headers['webhook-timestamp']}.".encode() + request.body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return request.headers["webhook-signature"] == f"v1,{expected}"


def test_events_are_delivered_signed_per_standard_webhooks(project_with_baseline, fake_http, loopback_allowed):  # noqa: F811
    api = project_with_baseline["api"]
    fake_http.respond("POST", "/hooks", Canned(204, b""))
    subscription = _subscribe(api, f"{fake_http.url}/hooks").json()
    assert subscription["secret"].startswith("whsec_")

    change = _submit(api)

    [request] = fake_http.sent("POST", "/hooks")
    assert _verify(subscription["secret"], request)
    event = request.json()
    assert event["type"] == "change_request.submitted"
    assert event["data"]["change_request"]["id"] == change["id"]
    assert request.headers["webhook-id"].startswith("msg_")


def test_a_subscriber_failing_twice_gets_retried_with_backoff_until_it_succeeds(
    project_with_baseline,
    fake_http,  # noqa: F811
    loopback_allowed,
):
    api = project_with_baseline["api"]
    fake_http.respond("POST", "/hooks", Canned(500, "down"), Canned(502, "still down"), Canned(200, "ok"))
    subscription = _subscribe(api, f"{fake_http.url}/hooks").json()

    _submit(api)

    sent = fake_http.sent("POST", "/hooks")
    assert len(sent) == 3
    assert len({r.headers["webhook-id"] for r in sent}) == 1, "every attempt carries the same webhook-id"
    [delivery] = api.get(f"/api/v1/projects/shop/webhooks/{subscription['id']}/deliveries/").json()
    assert delivery["status"] == "succeeded"
    assert delivery["attempts"] == 3
    log = delivery["attempt_log"]
    assert [a["status_code"] for a in log] == [500, 502, 200]
    assert [a["response_excerpt"] for a in log] == ["down", "still down", "ok"]
    waits = [
        (_at(a["next_attempt_at"]) - _at(a["attempted_at"])).total_seconds() for a in log if a["next_attempt_at"] is not None
    ]
    assert [round(w) for w in waits] == [30, 60]
    assert log[-1]["next_attempt_at"] is None


def _at(value: str):  # noqa: ANN202
    import datetime as dt

    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/hooks",
        "http://localhost/hooks",
        "http://10.1.2.3/hooks",
        "http://192.168.0.10/hooks",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/hooks",
        "http://0.0.0.0/hooks",
        "ftp://example.com/hooks",
    ],
)
def test_subscriptions_to_internal_addresses_are_refused(project_with_baseline, url):
    response = _subscribe(project_with_baseline["api"], url)

    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["type"].endswith("/unsafe-destination")


def test_a_destination_that_became_internal_is_refused_when_sending(project_with_baseline, fake_http, settings):  # noqa: F811
    api = project_with_baseline["api"]
    settings.SCHEMAGATE_WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    fake_http.respond("POST", "/hooks", Canned(200, "ok"))
    subscription = _subscribe(api, f"{fake_http.url}/hooks").json()
    settings.SCHEMAGATE_WEBHOOK_ALLOWED_NETWORKS = []

    _submit(api)

    assert fake_http.sent("POST", "/hooks") == []
    [delivery] = api.get(f"/api/v1/projects/shop/webhooks/{subscription['id']}/deliveries/").json()
    assert delivery["status"] == "failed"
    assert "destination refused" in delivery["attempt_log"][0]["error"]


def test_dry_run_results_are_announced_to_subscribers(project_with_baseline, fake_http, loopback_allowed):  # noqa: F811
    api = project_with_baseline["api"]
    fake_http.respond("POST", "/hooks", Canned(200, "ok"))
    _subscribe(api, f"{fake_http.url}/hooks", event_types=["dry_run.finished"])

    change = _submit(api)

    [request] = fake_http.sent("POST", "/hooks")
    event = request.json()
    assert event["type"] == "dry_run.finished"
    assert event["data"]["dry_run"]["id"] == change["latest_dry_run"]
    assert event["data"]["dry_run"]["status"] == "succeeded"


def test_webhook_subscriptions_need_manage_project(project_with_baseline, client_for):
    from tests.factories import UserFactory

    api = project_with_baseline["api"]
    UserFactory(username="viewer")
    api.post("/api/v1/projects/shop/members/", {"username": "viewer", "permissions": ["view_project"]}, format="json")
    viewer = client_for(UserFactory(username="viewer"))

    assert _subscribe(viewer, "https://example.com/hooks").status_code == 403
    assert viewer.get("/api/v1/projects/shop/webhooks/").status_code == 403
