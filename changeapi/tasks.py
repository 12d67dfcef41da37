"""Celery tasks: each takes an id, loads, and calls one service; safe to deliver twice."""

from __future__ import annotations

from celery import shared_task

from changeapi.services.baselines import baseline_build
from changeapi.services.dry_runs import dry_run_perform


@shared_task(acks_late=True, reject_on_worker_lost=False)
def baseline_build_task(baseline_id: int) -> None:
    baseline_build(baseline_id=baseline_id)


@shared_task(acks_late=True, reject_on_worker_lost=False)
def dry_run_task(dry_run_id: int) -> None:
    dry_run_perform(dry_run_id=dry_run_id)
