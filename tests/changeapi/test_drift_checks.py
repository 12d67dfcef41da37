"""Scheduled drift checks on the real PostgreSQL: the project's schedule compares the latest
snapshot a CI job uploaded with the current baseline, keeps the outcome, audits it, and
announces drift when it appears, changes or goes away; a pair is checked once."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from celery import current_app
from django.conf import settings as django_settings
from django.utils import timezone

from changeapi.models import AuditEvent, DriftCheck, Project, WebhookDelivery, WebhookSubscription
from changeapi.services.drift_checks import drift_checks_due, schema_drift_check
from changeapi.tasks import drift_checks_due_task
from tests.changeapi.test_schema_drift import QUERY, _production
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

PROJECT = "/api/v1/projects/shop/"
CHECKS = "/api/v1/projects/shop/drift-checks/"
EXTRA_INDEX = "CREATE INDEX order_total_idx ON shop_order (total)"


def _upload(api, *statements: str) -> int:  # noqa: ANN001
    """Production drifted by `statements`, read by the documented query and uploaded as a CI job would."""
    with _production() as conn:
        for statement in statements:
            conn.execute(statement)
        snapshot = conn.execute(QUERY).fetchone()[0]
    response = api.post("/api/v1/projects/shop/schema-snapshots/", snapshot, format="json")
    assert response.status_code == 201, response.content
    return int(response.json()["id"])


def _schedule(api, minutes: int | None) -> Any:  # noqa: ANN001
    return api.patch(PROJECT, {"drift_check_interval_minutes": minutes}, format="json")


def _subscribe() -> None:
    project = Project.objects.get(slug="shop")
    WebhookSubscription.objects.create(
        project=project,
        url="https://hooks.example.com/sg",
        event_types=["schema_drift.detected", "schema_drift.resolved"],
        created_by=UserFactory(),
    )


def _events() -> list[str]:
    return list(WebhookDelivery.objects.order_by("id").values_list("event_type", flat=True))


def _due_again() -> None:
    Project.objects.filter(slug="shop").update(drift_check_due_at=timezone.now() - dt.timedelta(seconds=1))


def test_setting_a_schedule_makes_its_first_check_due_at_once_and_is_audited(project_with_baseline):
    response = _schedule(project_with_baseline["api"], 60)

    assert response.status_code == 200, response.content
    assert response.json()["drift_check_interval_minutes"] == 60
    project = Project.objects.get(slug="shop")
    assert project.drift_check_due_at is not None and project.drift_check_due_at <= timezone.now()
    event = AuditEvent.objects.filter(action="project.updated").latest("id")
    assert (event.before, event.after) == ({"drift_check_interval_minutes": None}, {"drift_check_interval_minutes": 60})


@pytest.mark.parametrize("minutes", [5, 7 * 24 * 60 + 1, "hourly"])
def test_a_schedule_out_of_bounds_is_refused_at_its_field_and_changes_nothing(project_with_baseline, minutes):
    response = _schedule(project_with_baseline["api"], minutes)

    assert response.status_code == 400
    assert [e["pointer"] for e in response.json()["errors"]] == ["/drift_check_interval_minutes"]
    assert Project.objects.get(slug="shop").drift_check_interval_minutes is None


def test_only_a_manager_sets_the_schedule(project_with_baseline, client_for):
    api = project_with_baseline["api"]
    viewer = UserFactory(username="viewer")
    api.post(f"{PROJECT}members/", {"username": "viewer", "permissions": ["view_project"]}, format="json")
    outsider = UserFactory(username="outsider")

    refused = [_schedule(client, 60).status_code for client in (client_for(None), client_for(outsider), client_for(viewer))]

    assert refused == [401, 404, 403]
    assert Project.objects.get(slug="shop").drift_check_due_at is None


def test_a_due_check_records_the_drift_of_the_latest_snapshot_and_announces_it(project_with_baseline):
    api = project_with_baseline["api"]
    _subscribe()
    _upload(api)
    latest = _upload(api, EXTRA_INDEX)
    _schedule(api, 60)

    drift_checks_due_task()

    check = DriftCheck.objects.get()
    assert (check.snapshot_id, check.status, check.drifted_objects, check.changed) == (latest, "drifted", 1, True)
    assert _events() == ["schema_drift.detected"]
    payload = WebhookDelivery.objects.get().payload["data"]["drift_check"]
    assert [(i["kind"], i["status"], i["name"]) for i in payload["items"]] == [("index", "extra", "order_total_idx")]
    audited = AuditEvent.objects.get(action="schema_drift.checked")
    assert audited.after == {
        "status": "drifted",
        "snapshot": latest,
        "baseline_version": 1,
        "drifted_objects": 1,
        "changed": True,
    }


def test_the_checks_are_listed_under_the_project_with_their_items(project_with_baseline):
    api = project_with_baseline["api"]
    _upload(api, EXTRA_INDEX)
    _schedule(api, 60)
    drift_checks_due_task()

    listed = api.get(CHECKS).json()["results"]
    detail = api.get(f"{CHECKS}{listed[0]['id']}/").json()

    assert [(c["status"], c["drifted_objects"], c["baseline_version"]) for c in listed] == [("drifted", 1, 1)]
    assert detail["counts"]["medium"] == 1
    assert [(i["status"], i["name"]) for i in detail["items"]] == [("extra", "order_total_idx")]


def test_a_sweep_before_the_next_due_time_claims_nothing(project_with_baseline):
    _schedule(project_with_baseline["api"], 60)

    first, second = drift_checks_due(), drift_checks_due()

    assert (len(first), second) == (1, [])
    project = Project.objects.get(slug="shop")
    assert project.drift_check_due_at is not None
    assert project.drift_check_due_at > timezone.now() + dt.timedelta(minutes=59)


def test_the_same_snapshot_against_the_same_baseline_is_checked_once(project_with_baseline):
    api = project_with_baseline["api"]
    _subscribe()
    _upload(api, EXTRA_INDEX)
    project = Project.objects.get(slug="shop")

    first = schema_drift_check(project_id=project.pk)
    again = schema_drift_check(project_id=project.pk)

    assert first is not None and again is not None and first.pk == again.pk
    assert DriftCheck.objects.count() == 1
    assert AuditEvent.objects.filter(action="schema_drift.checked").count() == 1
    assert _events() == ["schema_drift.detected"]


def test_the_same_drift_in_a_new_snapshot_is_recorded_but_not_announced_again(project_with_baseline):
    api = project_with_baseline["api"]
    _subscribe()
    _schedule(api, 60)
    _upload(api, EXTRA_INDEX)
    drift_checks_due_task()
    _upload(api, EXTRA_INDEX)
    _due_again()

    drift_checks_due_task()

    assert list(DriftCheck.objects.order_by("id").values_list("status", "changed")) == [("drifted", True), ("drifted", False)]
    assert _events() == ["schema_drift.detected"]


def test_new_drift_is_announced_again(project_with_baseline):
    api = project_with_baseline["api"]
    _subscribe()
    _schedule(api, 60)
    _upload(api, EXTRA_INDEX)
    drift_checks_due_task()
    _upload(api, EXTRA_INDEX, "ALTER TABLE shop_order ALTER COLUMN total SET DEFAULT 0")
    _due_again()

    drift_checks_due_task()

    assert _events() == ["schema_drift.detected", "schema_drift.detected"]
    assert DriftCheck.objects.latest("id").drifted_objects == 2


def test_drift_that_goes_away_is_announced_as_resolved(project_with_baseline):
    api = project_with_baseline["api"]
    _subscribe()
    _schedule(api, 60)
    _upload(api, EXTRA_INDEX)
    drift_checks_due_task()
    _upload(api)
    _due_again()

    drift_checks_due_task()

    assert DriftCheck.objects.latest("id").status == "clean"
    assert _events() == ["schema_drift.detected", "schema_drift.resolved"]


def test_a_first_check_without_drift_is_recorded_and_announces_nothing(project_with_baseline):
    api = project_with_baseline["api"]
    _subscribe()
    _upload(api)
    _schedule(api, 60)

    drift_checks_due_task()

    assert list(DriftCheck.objects.values_list("status", "changed")) == [("clean", False)]
    assert _events() == []


def test_a_project_without_a_snapshot_has_nothing_to_check(project_with_baseline):
    _schedule(project_with_baseline["api"], 60)

    drift_checks_due_task()

    assert DriftCheck.objects.count() == 0
    assert not AuditEvent.objects.filter(action="schema_drift.checked").exists()


def test_clearing_the_schedule_stops_the_checks(project_with_baseline):
    api = project_with_baseline["api"]
    _upload(api, EXTRA_INDEX)
    _schedule(api, 60)
    _schedule(api, None)

    drift_checks_due_task()

    assert Project.objects.get(slug="shop").drift_check_due_at is None
    assert DriftCheck.objects.count() == 0


def test_drift_checks_are_hidden_from_those_who_cannot_see_the_project(project_with_baseline, client_for):
    api = project_with_baseline["api"]
    _upload(api, EXTRA_INDEX)
    check = schema_drift_check(project_id=Project.objects.get(slug="shop").pk)
    assert check is not None
    outsider = client_for(UserFactory(username="outsider"))

    assert (outsider.get(CHECKS).status_code, outsider.get(f"{CHECKS}{check.pk}/").status_code) == (404, 404)
    assert client_for(None).get(CHECKS).status_code == 401


def test_an_unreachable_shadow_server_leaves_no_check_and_the_next_due_time_tries_again(project_with_baseline, settings):
    api = project_with_baseline["api"]
    _upload(api, EXTRA_INDEX)
    _schedule(api, 60)
    working = list(settings.SHADOW_SERVERS)
    settings.SHADOW_SERVERS = ["postgres://postgres@127.0.0.1:9/postgres"]  # nothing listens on port 9

    claimed = drift_checks_due_task()
    assert (len(claimed), DriftCheck.objects.count()) == (1, 0)
    settings.SHADOW_SERVERS = working
    _due_again()
    drift_checks_due_task()

    assert DriftCheck.objects.get().status == "drifted"


def test_beat_claims_due_drift_checks_every_minute():
    schedule = {entry["task"]: entry["schedule"] for entry in django_settings.CELERY_BEAT_SCHEDULE.values()}

    assert schedule["changeapi.tasks.drift_checks_due_task"] == 60.0
    assert "changeapi.tasks.drift_checks_due_task" in current_app.tasks
