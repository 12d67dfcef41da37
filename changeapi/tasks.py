"""Celery tasks: each takes an id, loads, and calls one service; safe to deliver twice."""

from __future__ import annotations

from celery import shared_task

from changeapi.services.baselines import baseline_build
from changeapi.services.drift_checks import drift_checks_due, schema_drift_check
from changeapi.services.dry_run_guards import ShadowServerBusy
from changeapi.services.dry_runs import dry_run_fail_for_retries, dry_run_perform, dry_runs_reclaim
from changeapi.services.shadows import shadows_reap


@shared_task(acks_late=True, reject_on_worker_lost=True)
def baseline_build_task(baseline_id: int) -> None:
    baseline_build(baseline_id=baseline_id)


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=60)
def dry_run_task(self, dry_run_id: int) -> None:  # type: ignore[no-untyped-def]
    """Idempotent: the job row is claimed with a compare-and-set, so redelivery is harmless.

    When the server or the project is at its concurrency limit, the task waits and retries
    with exponential backoff; when retries run out, the job fails with that reason.
    """
    try:
        dry_run_perform(dry_run_id=dry_run_id)
    except ShadowServerBusy as exc:
        if self.request.retries >= self.max_retries:
            dry_run_fail_for_retries(dry_run_id=dry_run_id, reason=f"gave up waiting: {exc}")
            return
        raise self.retry(exc=exc, countdown=min(60, 2 ** min(self.request.retries, 6))) from exc


@shared_task
def dry_runs_reclaim_task() -> list[int]:
    return dry_runs_reclaim()


@shared_task
def shadows_reap_task() -> list[dict[str, object]]:
    return [result.__dict__ for result in shadows_reap()]


@shared_task
def drift_checks_due_task() -> list[int]:
    """Beat (`check-schema-drift`): start the drift check of every project whose schedule is due."""
    due = drift_checks_due()
    for project_id in due:
        drift_check_task.delay(project_id)
    return due


@shared_task(acks_late=True, reject_on_worker_lost=True)
def drift_check_task(project_id: int) -> int | None:
    """Idempotent: a snapshot and baseline pair is checked once, so redelivery finds it done."""
    check = schema_drift_check(project_id=project_id)
    return check.pk if check is not None else None


# The integrations' tasks live in their own module; importing it here registers them with workers.
from changeapi import tasks_integrations  # noqa: E402,F401
