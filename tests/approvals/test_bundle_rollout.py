"""A bundle's backfills tracked while they run: the command reports progress with a project API
key, the bundle shows each backfill's rollout state, and the contract phase waits for parity."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from approvals.models import BackfillProgress, BackfillProgressReport, ReleaseBundle
from approvals.services.rollout import backfills_stalled_notify
from changeapi.models import AuditEvent, WebhookDelivery, WebhookSubscription
from tests.factories import ReleaseBundleFactory

pytestmark = pytest.mark.django_db

_sequences = itertools.count(1)


def _bearer(bundle: ReleaseBundle, owner: Any, permissions: list[str]) -> APIClient:
    """A client acting with a new API key of the bundle's project."""
    api = APIClient()
    api.force_authenticate(user=owner)
    response = api.post(
        f"/api/v1/projects/{bundle.project.slug}/api-keys/", {"name": "backfill", "permissions": permissions}, format="json"
    )
    assert response.status_code == 201, response.content
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {response.json()['key']}")
    return client


def _report(**overrides: Any) -> dict[str, Any]:
    return {
        "sequence": next(_sequences),
        "batches": 3,
        "rows": 1500,
        "errors": 0,
        "rate_rows_per_s": 250.0,
        "eta_s": 12.5,
        "finished": False,
        "parity_remaining": None,
        **overrides,
    }


@pytest.fixture
def bundle() -> ReleaseBundle:
    return ReleaseBundleFactory(backfills=2)


def _owner_of(bundle: ReleaseBundle) -> Any:
    event = AuditEvent.objects.filter(project=bundle.project, action="project.created").first()
    assert event is not None
    return event.actor


@pytest.fixture
def releaser(bundle: ReleaseBundle) -> APIClient:
    return _bearer(bundle, _owner_of(bundle), ["release_bundle"])


def _post(client: APIClient, bundle: ReleaseBundle, body: dict[str, Any], phase: int = 1) -> Any:
    return client.post(f"/api/v1/bundles/{bundle.pk}/phases/{phase}/progress/", body, format="json")


def _backfills(client: APIClient, bundle: ReleaseBundle) -> list[dict[str, Any]]:
    response = client.get(f"/api/v1/bundles/{bundle.pk}/")
    assert response.status_code == 200, response.content
    return response.json()["backfills"]


def test_a_reported_progress_is_shown_on_the_bundle(bundle, releaser):
    response = _post(releaser, bundle, _report(rows=1500, batches=3))
    assert response.status_code == 200, response.content
    first, second = _backfills(releaser, bundle)
    assert (first["phase"], first["state"], first["contract_ready"]) == (1, "running", False)
    assert first["command"] == "schemagate_backfill_1_1"
    assert (first["progress"]["rows"], first["progress"]["batches"], first["progress"]["eta_s"]) == (1500, 3, 12.5)
    assert (second["state"], second["progress"]) == ("pending", None)


def test_a_retried_report_is_stored_and_audited_once(bundle, releaser):
    body = _report(rows=1500)
    assert _post(releaser, bundle, body).status_code == 200
    assert _post(releaser, bundle, body).status_code == 200
    assert BackfillProgressReport.objects.filter(bundle=bundle, phase=1).count() == 1
    assert AuditEvent.objects.filter(action="bundle.backfill_progress", target_id=str(bundle.pk)).count() == 1


def test_a_late_report_joins_the_history_but_does_not_replace_the_latest(bundle, releaser):
    _post(releaser, bundle, _report(sequence=10, rows=2000))
    _post(releaser, bundle, _report(sequence=9, rows=1000))
    assert BackfillProgress.objects.get(bundle=bundle, phase=1).rows == 2000
    assert BackfillProgressReport.objects.filter(bundle=bundle, phase=1).count() == 2
    late = AuditEvent.objects.filter(action="bundle.backfill_progress").order_by("id").last()
    assert (late.after["superseded"], late.after["rows"]) == (True, 1000)


def test_each_report_is_audited_with_the_figures_before_and_after(bundle, releaser):
    _post(releaser, bundle, _report(rows=500))
    _post(releaser, bundle, _report(rows=900))
    event = AuditEvent.objects.filter(action="bundle.backfill_progress").order_by("id").last()
    assert event.before["rows"] == 500
    assert (event.after["rows"], event.after["phase"]) == (900, 1)
    assert event.actor.username.startswith("apikey-")


def test_a_key_of_another_project_finds_no_such_bundle(bundle):
    other = ReleaseBundleFactory()
    client = _bearer(other, _owner_of(other), ["release_bundle"])
    assert _post(client, bundle, _report()).status_code == 404
    assert not BackfillProgressReport.objects.exists()


def test_a_key_that_can_only_view_the_project_is_refused_with_403(bundle):
    client = _bearer(bundle, _owner_of(bundle), ["view_project"])
    assert _post(client, bundle, _report()).status_code == 403
    assert not BackfillProgressReport.objects.exists()


def test_anonymous_reports_are_refused_with_401(bundle):
    assert _post(APIClient(), bundle, _report()).status_code == 401


@pytest.mark.parametrize(
    "field,value",
    [("rows", -1), ("errors", -3), ("rate_rows_per_s", -0.5), ("batches", 10**16), ("eta_s", 10.0**10), ("sequence", -1)],
)
def test_figures_out_of_bounds_are_refused_and_nothing_is_stored(bundle, releaser, field, value):
    response = _post(releaser, bundle, _report(**{field: value}))
    assert response.status_code == 400, response.content
    assert not BackfillProgressReport.objects.exists()


def test_a_phase_the_bundle_does_not_have_is_refused(bundle, releaser):
    response = _post(releaser, bundle, _report(), phase=3)
    assert response.status_code == 400, response.content
    assert not BackfillProgressReport.objects.exists()


def test_a_backfill_whose_errors_grow_is_failing(bundle, releaser):
    _post(releaser, bundle, _report(errors=0))
    _post(releaser, bundle, _report(errors=2))
    assert _backfills(releaser, bundle)[0]["state"] == "failing"


@override_settings(SCHEMAGATE_BACKFILL_STALL_SECONDS=300)
def test_a_backfill_that_has_not_reported_for_the_stall_time_is_stalled(bundle, releaser):
    _post(releaser, bundle, _report())
    progress = BackfillProgress.objects.get(bundle=bundle, phase=1)
    BackfillProgress.objects.filter(pk=progress.pk).update(reported_at=progress.reported_at - dt.timedelta(seconds=301))
    assert _backfills(releaser, bundle)[0]["state"] == "stalled"


def test_the_contract_phase_is_ready_only_once_finished_at_parity_zero(bundle, releaser):
    _post(releaser, bundle, _report(finished=False, parity_remaining=40))
    assert _backfills(releaser, bundle)[0]["contract_ready"] is False
    _post(releaser, bundle, _report(finished=True, parity_remaining=3))
    finished = _backfills(releaser, bundle)[0]
    assert (finished["state"], finished["contract_ready"]) == ("finished", False)
    _post(releaser, bundle, _report(finished=True, parity_remaining=0))
    assert _backfills(releaser, bundle)[0]["contract_ready"] is True


def test_progress_webhooks_are_throttled_and_finished_is_sent_once(bundle, releaser):
    WebhookSubscription.objects.create(
        project=bundle.project,
        url="https://hooks.example.com/sg",
        secret="s" * 32,
        created_by=_owner_of(bundle),
        event_types=["bundle.backfill_progress", "bundle.backfill_finished"],
    )
    for _ in range(3):
        _post(releaser, bundle, _report())
    _post(releaser, bundle, _report(finished=True, parity_remaining=0))
    _post(releaser, bundle, _report(finished=True, parity_remaining=0))
    sent = list(WebhookDelivery.objects.order_by("id").values_list("event_type", flat=True))
    assert sent == ["bundle.backfill_progress", "bundle.backfill_finished"]
    assert WebhookDelivery.objects.get(event_type="bundle.backfill_finished").payload["data"]["backfill"]["contract_ready"]


@override_settings(SCHEMAGATE_BACKFILL_STALL_SECONDS=300)
def test_a_stalled_backfill_is_sent_once_per_silence(bundle, releaser):
    WebhookSubscription.objects.create(
        project=bundle.project,
        url="https://hooks.example.com/sg",
        secret="s" * 32,
        created_by=_owner_of(bundle),
        event_types=["bundle.backfill_stalled"],
    )
    _post(releaser, bundle, _report())
    reported_at = BackfillProgress.objects.get(bundle=bundle, phase=1).reported_at
    assert backfills_stalled_notify(now=reported_at + dt.timedelta(seconds=299)) == []
    assert len(backfills_stalled_notify(now=reported_at + dt.timedelta(seconds=301))) == 1
    assert backfills_stalled_notify(now=reported_at + dt.timedelta(seconds=900)) == []
    assert list(WebhookDelivery.objects.values_list("event_type", flat=True)) == ["bundle.backfill_stalled"]
