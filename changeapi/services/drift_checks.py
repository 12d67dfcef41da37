"""Scheduled drift checks: the latest schema snapshot a CI job uploaded, compared with the
current baseline on the project's schedule; the outcome kept, audited, and announced when the
drift appears, changes or goes away."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from changeapi.audit import AuditContext, audit_record
from changeapi.dryrun.drift import DriftReport, catalog_from_json, drift_compare
from changeapi.errors import InvalidState
from changeapi.models import Baseline, DriftCheck, Project, SchemaSnapshot
from changeapi.services.access_patterns import ShadowUnavailable
from changeapi.services.schema_snapshots import baseline_catalog, catalog_read_errors, snapshot_catalog
from changeapi.services.webhooks import webhooks_emit

logger = logging.getLogger(__name__)

SCHEDULE = AuditContext(via="schedule")
MAX_DUE_PER_SWEEP = 200
# What identifies a drifted object and how it differs: a changed default of the same column is
# new drift, the same INVALID index found again is not.
FINGERPRINT_KEYS = ("kind", "status", "name", "table", "detail")


def drift_fingerprint(items: list[dict[str, Any]]) -> str:
    """The same drifted objects, differing in the same way, in any order: the same digest."""
    keys = sorted(json.dumps([item[k] for k in FINGERPRINT_KEYS]) for item in items)
    return hashlib.sha256("\n".join(keys).encode()).hexdigest()


def drift_schedule_next(*, minutes: int | None, now: dt.datetime | None = None) -> dt.datetime | None:
    """When a schedule set now is first due: at once, so setting one shows where production stands."""
    return None if minutes is None else (now or timezone.now())


def drift_checks_due(*, now: dt.datetime | None = None) -> list[int]:
    """Claim the projects whose scheduled drift check is due, moving each one's next check an
    interval on in the same transaction.

    Rows are locked with SKIP LOCKED, so two beat processes (or a sweep that overlaps the last)
    never claim a project twice; a claimed check whose worker dies is simply made at the next due time.
    """
    now = now or timezone.now()
    with transaction.atomic():
        due = list(
            Project.objects.select_for_update(skip_locked=True)
            .filter(drift_check_due_at__lte=now, drift_check_interval_minutes__isnull=False)
            .order_by("drift_check_due_at")
            .values_list("pk", "drift_check_interval_minutes")[:MAX_DUE_PER_SWEEP]
        )
        for pk, minutes in due:
            # The filter left only scheduled projects; the column is nullable for those without one.
            Project.objects.filter(pk=pk).update(drift_check_due_at=now + dt.timedelta(minutes=minutes or 0))
    return [pk for pk, _ in due]


def schema_drift_check(*, project_id: int, context: AuditContext = SCHEDULE) -> DriftCheck | None:
    """Compare the project's latest snapshot with its current baseline, once per such pair.

    None when there is nothing to compare (no snapshot, no ready baseline) or the shadow server
    cannot be reached now (logged; the next due time tries again). The baseline's catalog is
    read on a shadow clone first, outside any transaction of the service database.
    """
    project = Project.objects.select_related("current_baseline").get(pk=project_id)
    snapshot = project.schema_snapshots.order_by("-id").first()
    baseline = project.current_baseline
    if snapshot is None or baseline is None:
        return None
    existing = DriftCheck.objects.filter(snapshot=snapshot, baseline=baseline).first()
    if existing is not None:
        return existing
    passing: tuple[type[Exception], ...] = (ShadowUnavailable, InvalidState, *catalog_read_errors())
    try:
        actual = snapshot_catalog(snapshot=snapshot)
        expected = catalog_from_json(baseline_catalog(project=project, baseline=baseline))
    except passing as exc:
        logger.warning("project %s: scheduled drift check not made: %s", project.slug, exc)
        return None
    report = drift_compare(expected=expected, actual=actual)
    return _record(project=project, snapshot=snapshot, baseline=baseline, report=report, context=context)


@transaction.atomic
def _record(
    *, project: Project, snapshot: SchemaSnapshot, baseline: Baseline, report: DriftReport, context: AuditContext
) -> DriftCheck:
    # The project's row is held, so checks of one project are recorded one after the other and
    # each is compared with the one really before it.
    locked = Project.objects.select_for_update().get(pk=project.pk)
    existing = DriftCheck.objects.filter(snapshot=snapshot, baseline=baseline).first()
    if existing is not None:
        return existing
    body = report.as_dict()
    items: list[dict[str, Any]] = body["items"]
    fingerprint = drift_fingerprint(items)
    previous = DriftCheck.objects.filter(project=locked).order_by("-id").first()
    changed = fingerprint != previous.fingerprint if previous is not None else bool(items)
    try:
        with transaction.atomic():
            check = DriftCheck.objects.create(
                project=locked,
                snapshot=snapshot,
                baseline=baseline,
                status=DriftCheck.Status.DRIFTED if items else DriftCheck.Status.CLEAN,
                drifted_objects=len(items),
                counts=body["counts"],
                items=items,
                fingerprint=fingerprint,
                changed=changed,
            )
    except IntegrityError:  # the same pair recorded by a concurrent check that did not lock first
        return DriftCheck.objects.get(snapshot=snapshot, baseline=baseline)
    audit_record(
        context=context,
        action="schema_drift.checked",
        target=check,
        project=locked,
        before={"check": previous.pk, "status": previous.status, "drifted_objects": previous.drifted_objects}
        if previous is not None
        else None,
        after={
            "status": check.status,
            "snapshot": snapshot.pk,
            "baseline_version": baseline.version,
            "drifted_objects": check.drifted_objects,
            "changed": changed,
        },
    )
    if changed:
        webhooks_emit(project=locked, event="schema_drift.detected" if items else "schema_drift.resolved", subject=check)
    return check
