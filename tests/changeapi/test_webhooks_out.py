"""Outbound webhooks: signed per Standard Webhooks, retried with backoff, logged, never sent inward.

A submission makes at most one attempt (after its commit); retries are made by the periodic
task when they are due, never inside a request.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import ipaddress
import time

import pytest
from django.conf import settings as django_settings
from django.utils import timezone

from changeapi.integrations.ssrf import UnsafeDestination, address_refused, destination_resolve
from changeapi.models import WebhookDelivery
from changeapi.tasks_integrations import webhook_deliveries_due_task, webhook_delivery_task
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
        "/api/v1/change-requests/", {"project": "shop", "title": "Notes", "operations": ADD_NOTE_AND_INDEX}, format="json"
    )
    assert response.status_code == 202, response.content
    return response.json()


def _time_passes() -> None:
    """As if every pending delivery's backoff had elapsed: its next attempt is due now."""
    WebhookDelivery.objects.filter(status=WebhookDelivery.Status.PENDING).update(next_attempt_at=timezone.now())


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
    for _ in range(2):
        _time_passes()
        webhook_deliveries_due_task()

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


def test_a_submission_makes_one_attempt_and_leaves_the_retries_to_the_periodic_task(
    project_with_baseline,
    fake_http,  # noqa: F811
    loopback_allowed,
):
    api = project_with_baseline["api"]
    fake_http.respond("POST", "/hooks", Canned(503, "down"))
    _subscribe(api, f"{fake_http.url}/hooks")

    started = time.monotonic()
    _submit(api)

    assert time.monotonic() - started < 10
    assert len(fake_http.sent("POST", "/hooks")) == 1
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("pending", 1)
    assert delivery.next_attempt_at is not None
    assert delivery.next_attempt_at - timezone.now() > dt.timedelta(seconds=25)


def test_the_periodic_task_attempts_a_delivery_only_once_its_backoff_has_passed(
    project_with_baseline,
    fake_http,  # noqa: F811
    loopback_allowed,
):
    api = project_with_baseline["api"]
    fake_http.respond("POST", "/hooks", Canned(503, "down"), Canned(200, "ok"))
    _subscribe(api, f"{fake_http.url}/hooks")
    _submit(api)

    early = webhook_deliveries_due_task()
    _time_passes()
    due = webhook_deliveries_due_task()

    assert early == []
    assert due == [WebhookDelivery.objects.get().pk]
    assert len(fake_http.sent("POST", "/hooks")) == 2
    assert WebhookDelivery.objects.get().status == "succeeded"


def test_a_retry_message_that_comes_before_the_delivery_is_due_attempts_nothing(
    project_with_baseline,
    fake_http,  # noqa: F811
    loopback_allowed,
):
    api = project_with_baseline["api"]
    fake_http.respond("POST", "/hooks", Canned(503, "down"))
    _subscribe(api, f"{fake_http.url}/hooks")
    _submit(api)

    webhook_delivery_task.delay(WebhookDelivery.objects.get().pk)

    assert len(fake_http.sent("POST", "/hooks")) == 1
    assert WebhookDelivery.objects.get().attempts == 1


def test_beat_retries_due_deliveries_every_minute():
    schedule = {entry["task"]: entry["schedule"] for entry in django_settings.CELERY_BEAT_SCHEDULE.values()}

    assert schedule["changeapi.tasks_integrations.webhook_deliveries_due_task"] == 60.0


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
        "http://[::ffff:127.0.0.1]/hooks",
        "http://[2002:7f00:1::1]/hooks",  # 6to4 of 127.0.0.1
        "http://[2002:a9fe:a9fe::]/latest/meta-data/",  # 6to4 of 169.254.169.254
        "http://[64:ff9b::a00:1]/hooks",  # NAT64 of 10.0.0.1
        "http://[64:ff9b:1:a00:0:100::]/hooks",  # local-use NAT64 (/48) of 10.0.0.1
        "http://[::c0a8:1]/hooks",  # IPv4-compatible 192.168.0.1
        "http://[2001:0:4136:e378:8000:63bf:3f57:fefe]/hooks",  # Teredo, client 192.168.1.1
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


EMBEDDING_REFUSED = {
    "IPv4-mapped loopback": "::ffff:127.0.0.1",
    "IPv4-mapped private": "::ffff:10.0.0.1",
    "6to4 of loopback": "2002:7f00:1::1",
    "6to4 of link-local": "2002:a9fe:a9fe::1",
    "6to4 of private": "2002:c0a8:1::1",
    "NAT64 of loopback": "64:ff9b::7f00:1",
    "NAT64 of link-local": "64:ff9b::a9fe:a9fe",
    "local-use NAT64 /96 of loopback": "64:ff9b:1::7f00:1",
    "local-use NAT64 /48 of private": "64:ff9b:1:a00:0:100::",
    "IPv4-compatible loopback": "::7f00:1",
    "IPv4-compatible private": "::a00:1",
    "Teredo, client loopback": "2001:0:4136:e378:8000:63bf:80ff:fffe",
    "Teredo, client private": "2001:0:4136:e378:8000:63bf:3f57:fefe",
}


@pytest.mark.parametrize("address", list(EMBEDDING_REFUSED.values()), ids=list(EMBEDDING_REFUSED))
def test_an_ipv6_address_leading_to_an_internal_ipv4_address_is_refused(address):
    assert address_refused(ipaddress.ip_address(address), [])


@pytest.mark.parametrize(
    "address",
    ["2002:808:808::1", "::ffff:8.8.8.8", "2606:4700:4700::1111", "8.8.8.8"],
    ids=["6to4 of a public address", "IPv4-mapped public", "public IPv6", "public IPv4"],
)
def test_a_public_destination_is_not_refused(address):
    assert not address_refused(ipaddress.ip_address(address), [])


def test_an_allowed_network_lets_an_embedding_address_through(settings):
    settings.SCHEMAGATE_WEBHOOK_ALLOWED_NETWORKS = ["2002:7f00:1::/48"]

    destination = destination_resolve("http://[2002:7f00:1::1]/hooks")

    assert destination.address == "2002:7f00:1::1"


def test_an_ipv4_mapped_address_is_allowed_as_its_ipv4_address(settings):
    settings.SCHEMAGATE_WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.1/32"]

    assert destination_resolve("http://[::ffff:127.0.0.1]/hooks").port == 80
    with pytest.raises(UnsafeDestination):
        destination_resolve("http://[2002:7f00:1::1]/hooks")
