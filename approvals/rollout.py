"""The rollout state of a bundle's backfills, read from the last progress each one reported.

Nothing schedules it: `stalled` is computed on read from the time of the last report.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone

from approvals.models import BackfillProgress, ReleaseBundle
from changeapi.dryrun.contract import BackfillTiming, ReportFormatError, report_from_json


class BackfillState(models.TextChoices):
    PENDING = "pending", "No progress reported yet"
    RUNNING = "running", "Reporting progress"
    FAILING = "failing", "Its error count grew in the last report"
    STALLED = "stalled", "No report for longer than SCHEMAGATE_BACKFILL_STALL_SECONDS"
    FINISHED = "finished", "Every batch done"


@dataclass(frozen=True)
class BackfillRollout:
    """One Backfill step of a bundle (`phase`, 1-based in the manifest's `backfills`) and where
    its rollout stands. `contract_ready`: the migrations after it may be applied, because the
    backfill finished and its parity check counted zero."""

    phase: int
    migration: str
    command: str
    state: str
    contract_ready: bool
    progress: BackfillProgress | None


def backfill_state(*, progress: BackfillProgress | None, now: dt.datetime) -> BackfillState:
    """pending before the first report; finished once one says so; failing when the last report
    counted more errors than the one before; stalled when none came for the configured time."""
    if progress is None:
        return BackfillState.PENDING
    if progress.finished:
        return BackfillState.FINISHED
    if progress.errors_grew:
        return BackfillState.FAILING
    if now - progress.reported_at > dt.timedelta(seconds=settings.SCHEMAGATE_BACKFILL_STALL_SECONDS):
        return BackfillState.STALLED
    return BackfillState.RUNNING


def contract_ready(progress: BackfillProgress | None) -> bool:
    return progress is not None and progress.finished and progress.parity_remaining == 0


def backfill_steps_of(bundle: ReleaseBundle) -> list[dict[str, Any]]:
    """The manifest's Backfill steps, in apply order (phase n is the n-th)."""
    steps = (bundle.manifest or {}).get("backfills") or []
    return [step for step in steps if isinstance(step, dict)]


def bundle_backfill_rollout(*, bundle: ReleaseBundle, now: dt.datetime | None = None) -> list[BackfillRollout]:
    """Every Backfill step of the bundle with its state (reads `backfill_progress`, prefetched by the views)."""
    now = now or timezone.now()
    reported = {progress.phase: progress for progress in bundle.backfill_progress.all()}
    rollout = []
    for phase, step in enumerate(backfill_steps_of(bundle), start=1):
        progress = reported.get(phase)
        rollout.append(
            BackfillRollout(
                phase=phase,
                migration=str(step.get("migration", "")),
                command=str(step.get("command", "")),
                state=backfill_state(progress=progress, now=now).value,
                contract_ready=contract_ready(progress),
                progress=progress,
            )
        )
    return rollout


def bundle_backfill_timings(*, bundle: ReleaseBundle) -> dict[int, BackfillTiming]:
    """The combined dry-run's timing of each Backfill step (its sample and its estimate at
    production size), by phase, to set beside the progress the running backfill reports. A
    step the report lacks (or a report that no longer reads) has none."""
    try:
        timings = report_from_json(bundle.dry_run_report).backfills if bundle.dry_run_report else ()
    except ReportFormatError:
        return {}
    by_step = {(timing.migration, timing.operation_index): timing for timing in timings}
    found = {}
    for phase, step in enumerate(backfill_steps_of(bundle), start=1):
        timing = by_step.get((str(step.get("migration", "")), int(step.get("operation_index", -1))))
        if timing is not None:
            found[phase] = timing
    return found
