"""A running dry-run writes its progress for polling clients, but not on every operation."""

from __future__ import annotations

import pytest

from changeapi.models import DryRun
from changeapi.services.dry_runs import progress_writer
from tests.conftest import ADD_NOTE_AND_INDEX

pytestmark = pytest.mark.django_db(transaction=True)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _dry_run(project_with_baseline) -> DryRun:  # noqa: ANN001
    response = project_with_baseline["api"].post(
        "/api/v1/change-requests/", {"project": "shop", "title": "t", "operations": ADD_NOTE_AND_INDEX}, format="json"
    )
    assert response.status_code == 202, response.content
    dry_run = DryRun.objects.get(pk=response.json()["latest_dry_run"])
    DryRun.objects.filter(pk=dry_run.pk).update(progress_done=0, progress_total=10)
    return dry_run


def _progress(dry_run: DryRun) -> tuple[int, int]:
    dry_run.refresh_from_db()
    return dry_run.progress_done, dry_run.progress_total


def test_progress_is_written_at_most_once_per_interval(project_with_baseline):
    dry_run, clock = _dry_run(project_with_baseline), Clock()
    progress = progress_writer(dry_run.pk, interval=0.5, clock=clock)

    progress(1, 10)
    assert _progress(dry_run) == (1, 10)
    clock.now += 0.1
    progress(2, 10)
    assert _progress(dry_run) == (1, 10), "within the interval: not written"
    clock.now += 0.5
    progress(3, 10)
    assert _progress(dry_run) == (3, 10)


def test_the_last_operation_is_always_written(project_with_baseline):
    dry_run, clock = _dry_run(project_with_baseline), Clock()
    progress = progress_writer(dry_run.pk, interval=60, clock=clock)

    progress(1, 10)
    progress(10, 10)

    assert _progress(dry_run) == (10, 10)
