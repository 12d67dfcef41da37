"""Recording the progress a bundle's running backfill reports, and telling subscribers."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from approvals.models import BackfillProgress, BackfillProgressReport, ReleaseBundle
from approvals.rollout import backfill_steps_of
from changeapi.audit import AuditContext, audit_record
from changeapi.errors import DomainError, PermissionDenied
from changeapi.permissions import RELEASE, has_project_perm
from changeapi.services.webhooks import webhooks_emit
from changeapi.types import User


@dataclass(frozen=True)
class ProgressFigures:
    """One report as the backfill sends it: totals since its first batch."""

    sequence: int
    batches: int
    rows: int
    errors: int
    rate_rows_per_s: float
    eta_s: float | None
    finished: bool
    parity_remaining: int | None


@transaction.atomic
def backfill_progress_report(
    *, bundle: ReleaseBundle, phase: int, figures: ProgressFigures, actor: User, context: AuditContext
) -> BackfillProgress:
    """Store a backfill's report as its phase's latest progress and in the history, audited.

    Idempotent on the client's `sequence`: a retried report (the same sequence) changes nothing
    and is not audited again; a late one (lower than the latest) joins the history and the audit
    trail (marked `superseded`) but does not replace the latest. Needs
    `release_bundle`, the permission of whoever runs the bundle.
    """
    bundle = ReleaseBundle.objects.select_for_update(of=("self",)).select_related("project").defer("archive").get(pk=bundle.pk)
    if not has_project_perm(actor, bundle.project, RELEASE):
        raise PermissionDenied("reporting a backfill's progress needs the release_bundle permission on this project")
    if not 1 <= phase <= len(backfill_steps_of(bundle)):
        raise DomainError(
            f"bundle {bundle.number} has no backfill {phase}", errors=[{"pointer": "/phase", "detail": "not found"}]
        )
    now = timezone.now()
    _, created = BackfillProgressReport.objects.get_or_create(
        bundle=bundle,
        phase=phase,
        sequence=figures.sequence,
        defaults={**_columns(figures), "reported_at": now, "reported_by": actor},
    )
    progress = BackfillProgress.objects.filter(bundle=bundle, phase=phase).first()
    if not created:
        return progress if progress is not None else BackfillProgress.objects.get(bundle=bundle, phase=phase)
    if progress is not None and figures.sequence < progress.sequence:
        audit_record(
            context=context,
            action="bundle.backfill_progress",
            target=bundle,
            project=bundle.project,
            after={"phase": phase, "superseded": True, "sequence": figures.sequence, **_columns(figures)},
        )
        return progress
    before = _audited(progress)
    was_finished = progress is not None and progress.finished
    if progress is None:
        progress = BackfillProgress(bundle=bundle, phase=phase, first_reported_at=now)
    progress.errors_grew = progress.pk is not None and figures.errors > progress.errors
    for name, value in _columns(figures).items():
        setattr(progress, name, value)
    progress.sequence, progress.reported_at, progress.reported_by = figures.sequence, now, actor
    events = _events(progress, was_finished=was_finished, now=now)
    if "bundle.backfill_progress" in events:
        progress.progress_notified_at = now
    progress.save()
    audit_record(
        context=context,
        action="bundle.backfill_progress",
        target=bundle,
        project=bundle.project,
        before=before,
        after={"phase": phase, **(_audited(progress) or {})},
    )
    for event in events:
        webhooks_emit(project=bundle.project, event=event, subject=progress)
    return progress


def backfills_stalled_notify(*, now: dt.datetime | None = None) -> list[BackfillProgress]:
    """Send bundle.backfill_stalled, once per silence, for every unfinished backfill that has not
    reported for SCHEMAGATE_BACKFILL_STALL_SECONDS (the state on read says so without this; the
    sweep only tells subscribers). A later report starts a new silence."""
    now = now or timezone.now()
    cutoff = now - dt.timedelta(seconds=settings.SCHEMAGATE_BACKFILL_STALL_SECONDS)
    notified = []
    with transaction.atomic():
        silent = (
            BackfillProgress.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("bundle__project")
            .filter(finished=False, reported_at__lt=cutoff)
            .filter(Q(stalled_notified_at__isnull=True) | Q(stalled_notified_at__lt=F("reported_at")))
        )
        for progress in silent:
            progress.stalled_notified_at = now
            progress.save(update_fields=["stalled_notified_at"])
            webhooks_emit(project=progress.bundle.project, event="bundle.backfill_stalled", subject=progress)
            notified.append(progress)
    return notified


def _columns(figures: ProgressFigures) -> dict[str, object]:
    return {
        "batches": figures.batches,
        "rows": figures.rows,
        "errors": figures.errors,
        "rate_rows_per_s": figures.rate_rows_per_s,
        "eta_s": figures.eta_s,
        "finished": figures.finished,
        "parity_remaining": figures.parity_remaining,
    }


def _audited(progress: BackfillProgress | None) -> dict[str, object] | None:
    if progress is None:
        return None
    return {
        "sequence": progress.sequence,
        "batches": progress.batches,
        "rows": progress.rows,
        "errors": progress.errors,
        "finished": progress.finished,
        "parity_remaining": progress.parity_remaining,
    }


def _events(progress: BackfillProgress, *, was_finished: bool, now: dt.datetime) -> list[str]:
    """finished once; failing whenever the errors grew; progress at most once per throttle period."""
    if progress.finished:
        return [] if was_finished else ["bundle.backfill_finished"]
    if progress.errors_grew:
        return ["bundle.backfill_failing"]
    throttle = dt.timedelta(seconds=settings.SCHEMAGATE_BACKFILL_PROGRESS_WEBHOOK_SECONDS)
    if progress.progress_notified_at is None or now - progress.progress_notified_at >= throttle:
        return ["bundle.backfill_progress"]
    return []
