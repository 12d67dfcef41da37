"""Dry-run jobs: queueing, claiming, running on a shadow clone, and recording the result."""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from approvals.audit import SYSTEM, AuditContext, audit_record
from changeapi.dryrun.run import dry_run_execute, template_build
from changeapi.models import ChangeRequest, DryRun, Revision, ShadowDatabase
from changeapi.selectors import baseline_plan, revision_plan
from changeapi.shadow.servers import ShadowServerUnavailable, pick_server

logger = logging.getLogger(__name__)


def dry_run_queue(*, revision: Revision, context: AuditContext) -> DryRun:
    """Create a queued dry-run of a revision; the task starts once the transaction commits."""
    dry_run = DryRun.objects.create(
        revision=revision, baseline=revision.change_request.project.current_baseline or revision.baseline
    )
    audit_record(
        context=context,
        action="dry_run.queued",
        target=dry_run,
        project=revision.change_request.project,
        after={"revision": revision.number, "baseline": dry_run.baseline_id},
    )
    from changeapi.tasks import dry_run_task

    transaction.on_commit(lambda: dry_run_task.delay(dry_run.pk))
    return dry_run


def _claim(dry_run_id: int) -> DryRun | None:
    """Compare-and-set queued -> running: a second delivery of the same job claims nothing."""
    with transaction.atomic():
        claimed = DryRun.objects.filter(pk=dry_run_id, status=DryRun.Status.QUEUED).update(
            status=DryRun.Status.RUNNING, started_at=timezone.now()
        )
        if not claimed:
            return None
        dry_run = DryRun.objects.select_related("revision__change_request__project", "baseline").get(pk=dry_run_id)
        DryRun.objects.filter(pk=dry_run_id).update(attempts=dry_run.attempts + 1)
        _set_change_request_status(dry_run, ChangeRequest.Status.DRY_RUNNING)
    return dry_run


def _is_latest(dry_run: DryRun) -> bool:
    revision = dry_run.revision
    return not revision.change_request.revisions.filter(number__gt=revision.number).exists()


def _set_change_request_status(dry_run: DryRun, status: str) -> None:
    """Move the change request along, but only for the latest revision and from an open state."""
    if not _is_latest(dry_run):
        return
    change_request = ChangeRequest.objects.select_for_update().get(pk=dry_run.revision.change_request_id)
    allowed_from = {
        ChangeRequest.Status.DRY_RUNNING: {ChangeRequest.Status.SUBMITTED, ChangeRequest.Status.DRY_RUN_FAILED},
        ChangeRequest.Status.READY_FOR_REVIEW: {ChangeRequest.Status.DRY_RUNNING},
        ChangeRequest.Status.DRY_RUN_FAILED: {ChangeRequest.Status.DRY_RUNNING},
    }[status]
    if change_request.status not in allowed_from:
        return
    before = change_request.status
    change_request.status = status
    change_request.save(update_fields=["status", "updated_at"])
    audit_record(
        context=SYSTEM,
        action="change_request.status_changed",
        target=change_request,
        project=change_request.project,
        before={"status": before},
        after={"status": status, "dry_run": dry_run.pk},
    )


def dry_run_perform(*, dry_run_id: int) -> DryRun | None:
    """Run a queued dry-run to completion and record its report exactly once."""
    dry_run = _claim(dry_run_id)
    if dry_run is None:
        return None
    project = dry_run.revision.change_request.project
    baseline = dry_run.baseline
    clone_name = _clone_name(dry_run)
    report = None
    error = ""
    server_key = ""
    try:
        server = pick_server(engine=project.engine, engine_version=project.engine_version)
        server_key = server.key
        base = baseline_plan(baseline)
        change = revision_plan(dry_run.revision)
        DryRun.objects.filter(pk=dry_run.pk).update(server=server_key, progress_total=change.operation_count)
        if template_build(server=server, name=baseline.template_name, baseline=base):
            ShadowDatabase.objects.create(
                server=server_key, name=baseline.template_name, kind=ShadowDatabase.Kind.TEMPLATE, baseline=baseline
            )
        registry = ShadowDatabase.objects.create(
            server=server_key, name=clone_name, kind=ShadowDatabase.Kind.CLONE, dry_run=dry_run
        )

        def progress(done: int, total: int) -> None:
            DryRun.objects.filter(pk=dry_run.pk).update(progress_done=done, progress_total=total)

        try:
            report = dry_run_execute(
                server=server,
                template=baseline.template_name,
                clone_name=clone_name,
                baseline=base,
                change=change,
                on_progress=progress,
            )
        finally:
            ShadowDatabase.objects.filter(pk=registry.pk).update(dropped_at=timezone.now())
        if report["error"]:
            error = report["error"]["message"]
    except ShadowServerUnavailable as exc:
        error = str(exc)
    except Exception as exc:  # noqa: BLE001 - a crash must still leave a finished, explained job
        logger.exception("dry-run %s crashed", dry_run.pk)
        error = f"internal error while dry-running: {type(exc).__name__}: {exc}"
    return _finish(dry_run, report=report, error=error, server_key=server_key)


def _clone_name(dry_run: DryRun) -> str:
    return f"{settings.SHADOW_DATABASE_PREFIX}dr_{dry_run.pk}"


@transaction.atomic
def _finish(dry_run: DryRun, *, report: dict | None, error: str, server_key: str) -> DryRun:
    dry_run = DryRun.objects.select_for_update().get(pk=dry_run.pk)
    failed = bool(error)
    dry_run.status = DryRun.Status.FAILED if failed else DryRun.Status.SUCCEEDED
    dry_run.report = report
    dry_run.error = error[:10000]
    dry_run.server = server_key
    dry_run.finished_at = timezone.now()
    if not failed:
        dry_run.progress_done = dry_run.progress_total
    dry_run.save()
    audit_record(
        context=SYSTEM,
        action="dry_run.finished",
        target=dry_run,
        project=dry_run.revision.change_request.project,
        after={"status": dry_run.status, "error": dry_run.error[:500]},
    )
    _set_change_request_status(dry_run, ChangeRequest.Status.DRY_RUN_FAILED if failed else ChangeRequest.Status.READY_FOR_REVIEW)
    return dry_run
