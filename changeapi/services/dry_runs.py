"""Dry-run jobs: queueing, claiming under a lease, running on a shadow clone, recording once.

The lease, the wall clock and the claim limits themselves are in `dry_run_guards`.

The DryRun row is the job's source of truth, not the broker: a worker claims it with a
compare-and-set and a lease it keeps renewing; a job whose lease ran out (worker killed,
machine lost) is requeued by `dry_runs_reclaim` and rerun from a fresh clone; only the lease
holder may write the result, so duplicate deliveries and presumed-dead workers change nothing.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import time
import uuid
from collections.abc import Callable, Sequence

import psycopg
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from changeapi import dispatch
from changeapi.audit import SYSTEM, AuditContext, audit_record
from changeapi.dryrun.as_production import explain_missing_objects
from changeapi.dryrun.contract import Report, SchemaDrift, StatementTrace, to_json
from changeapi.dryrun.engine import baseline_state
from changeapi.dryrun.mysql_run import dry_run_execute_mysql
from changeapi.dryrun.mysql_session import template_build as mysql_template_build
from changeapi.dryrun.run import dry_run_execute
from changeapi.dryrun.sqlite_run import dry_run_execute_sqlite
from changeapi.dryrun.sqlite_session import template_build as sqlite_template_build
from changeapi.errors import InvalidState
from changeapi.gc_pause import collect_now, collections_paused, freeze_long_lived
from changeapi.intake.plan import Plan
from changeapi.models import ChangeRequest, DryRun, Revision, ShadowDatabase
from changeapi.selectors import baseline_plan, dry_run_report_known, revision_plan
from changeapi.services.access_patterns import access_patterns_for_dry_run
from changeapi.services.dry_run_guards import (
    LeaseKeeper,
    ProjectBusy,
    ShadowServerBusy,
    WallClockGuard,
    claims_serialise,
    lease_duration,
)
from changeapi.services.dry_run_schemas import DryRunTemplate, baseline_template_ensure, dry_run_template_choose
from changeapi.services.schema_snapshots import dry_run_schema_drift
from changeapi.services.shadows import (
    clone_discard,
    clone_name_for,
    clone_retire,
    shadow_chores_run,
    spare_names_for,
    spare_taken,
    spares_replenish,
)
from changeapi.services.table_stats import production_profile, seeded_template_for
from changeapi.services.transitions import change_request_move
from changeapi.services.webhooks import webhooks_emit
from changeapi.shadow import sqlite_files
from changeapi.shadow.engine_servers import MySqlShadowServer, SqliteShadowServer
from changeapi.shadow.mysql_databases import spares_ensure, spares_ready
from changeapi.shadow.servers import (
    AnyShadowServer,
    ShadowServer,
    ShadowServerUnavailable,
    pick_server,
    shadow_servers,
)

DryRunServer = AnyShadowServer
"""A server dry-runs can run on: PostgreSQL, MySQL/MariaDB and SQLite."""

logger = logging.getLogger(__name__)

# How often a running dry-run writes its progress (operations done) for clients that poll.
PROGRESS_INTERVAL_SECONDS = 0.5


def dry_run_queue(*, revision: Revision, context: AuditContext) -> DryRun:
    """Create a queued dry-run of a revision; the task starts once the transaction commits."""
    project = revision.change_request.project
    dry_run = DryRun.objects.create(revision=revision, baseline=project.current_baseline or revision.baseline)
    audit_record(
        context=context,
        action="dry_run.queued",
        target=dry_run,
        project=project,
        after={"revision": revision.number, "baseline": dry_run.baseline_id},
    )
    dispatch.enqueue_on_commit(dispatch.DRY_RUN, dry_run.pk)
    return dry_run


def _claim(dry_run_id: int, *, owner: str, server: DryRunServer) -> DryRun | None:
    """Take a queued job (or one whose lease expired) if the limits allow; None if not ours to run."""
    now = timezone.now()
    with transaction.atomic():
        claims_serialise(server.key)
        dry_run = (
            DryRun.objects.select_for_update()
            .select_related("revision__change_request__project", "baseline")
            .defer("baseline__source")
            .filter(pk=dry_run_id)
            .filter(Q(status=DryRun.Status.QUEUED) | Q(status=DryRun.Status.RUNNING, lease_expires_at__lt=now))
            .first()
        )
        if dry_run is None:
            return None
        active = DryRun.objects.filter(status=DryRun.Status.RUNNING, lease_expires_at__gte=now).exclude(pk=dry_run.pk)
        if active.filter(server=server.key).count() >= settings.SHADOW_MAX_CONCURRENT_PER_SERVER:
            raise ShadowServerBusy(
                f"shadow server {server.key} is running its maximum of "
                f"{settings.SHADOW_MAX_CONCURRENT_PER_SERVER} dry-runs (SHADOW_MAX_CONCURRENT_PER_SERVER)"
            )
        project = dry_run.revision.change_request.project
        if active.filter(revision__change_request__project=project).count() >= settings.SCHEMAGATE_MAX_CONCURRENT_PER_PROJECT:
            raise ProjectBusy(
                f"project {project.slug} is running its maximum of "
                f"{settings.SCHEMAGATE_MAX_CONCURRENT_PER_PROJECT} dry-runs (SCHEMAGATE_MAX_CONCURRENT_PER_PROJECT)"
            )
        dry_run.status = DryRun.Status.RUNNING
        dry_run.lease_owner = owner
        dry_run.lease_expires_at = now + lease_duration()
        dry_run.server = server.key
        dry_run.attempts += 1
        dry_run.started_at = now
        dry_run.save(update_fields=["status", "lease_owner", "lease_expires_at", "server", "attempts", "started_at"])
        _set_change_request_status(dry_run, ChangeRequest.Status.DRY_RUNNING)
    return dry_run


def _is_latest(dry_run: DryRun) -> bool:
    revision = dry_run.revision
    return not revision.change_request.revisions.filter(number__gt=revision.number).exists()


ALLOWED_FROM: dict[str, set[str]] = {
    ChangeRequest.Status.DRY_RUNNING: {ChangeRequest.Status.SUBMITTED, ChangeRequest.Status.DRY_RUN_FAILED},
    ChangeRequest.Status.READY_FOR_REVIEW: {ChangeRequest.Status.DRY_RUNNING},
    ChangeRequest.Status.DRY_RUN_FAILED: {ChangeRequest.Status.DRY_RUNNING},
}


def _set_change_request_status(dry_run: DryRun, status: str) -> None:
    """Move the change request along, but only for its latest revision and from an open state."""
    if not _is_latest(dry_run):
        return
    change_request = ChangeRequest.objects.select_for_update().get(pk=dry_run.revision.change_request_id)
    if change_request.status not in ALLOWED_FROM[status]:
        return
    change_request_move(
        change_request=change_request,
        status=status,
        action="change_request.status_changed",
        context=SYSTEM,
        after={"dry_run": dry_run.pk},
    )


def dry_run_perform(*, dry_run_id: int) -> DryRun | None:
    """Run a dry-run job to completion and record its report exactly once.

    Returns None when there was nothing to do (already done, or held by a live worker).
    Raises ShadowServerBusy when limits say "later", for the task to retry.
    """
    pending = DryRun.objects.select_related("revision__change_request__project").filter(pk=dry_run_id).first()
    if pending is None:
        return None
    project = pending.revision.change_request.project
    owner = uuid.uuid4().hex
    try:
        server = pick_server(engine=project.engine, engine_version=project.engine_version)
    except ShadowServerUnavailable as exc:
        return _fail_unclaimed(dry_run_id, str(exc))
    dry_run, server = _claim_on_some_server(dry_run_id, owner=owner, first=server)
    if dry_run is None:
        return None
    report: Report | None = None
    error = ""
    template: str | None = None
    # Automatic collection stays off until the report is recorded and the clone moved aside:
    # turned on again earlier, it collected everything the run made, on the client's path.
    with collections_paused():
        with LeaseKeeper(dry_run.pk, owner):
            try:
                template, report = _execute(dry_run, server)
                if report.error is not None:
                    error = report.error.message
            except ShadowServerUnavailable as exc:
                error = str(exc)
            except Exception as exc:  # noqa: BLE001 - a crash must still leave a finished, explained job
                logger.exception("dry-run %s crashed", dry_run.pk)
                error = f"internal error while dry-running: {type(exc).__name__}: {exc}"
        finished = _finish(dry_run.pk, owner=owner, report=report, error=error)
        # A worker that took the job over (this one lost its lease) owns the clone's name now.
        if finished is not None or not DryRun.objects.filter(pk=dry_run.pk, status=DryRun.Status.RUNNING).exists():
            _after_run(dry_run, server, template)
        # Collected before collection is on again, so that no automatic one starts first.
        collect_now()
    return finished


def _claim_on_some_server(dry_run_id: int, *, owner: str, first: DryRunServer) -> tuple[DryRun | None, DryRunServer]:
    """Claim the job on `first`, or on another server of its engine when `first` is at its limit.

    Raises the last ShadowServerBusy when every server is busy, for the task to retry later.
    """
    others = [s for s in shadow_servers() if s.engine == first.engine]
    others = [s for s in others if s != first]
    busy: ShadowServerBusy | None = None
    for server in [first, *others]:
        try:
            return _claim(dry_run_id, owner=owner, server=server), server
        except ProjectBusy:
            raise  # the project's own limit: no other server changes that
        except ShadowServerBusy as exc:
            busy = exc
    assert busy is not None
    raise busy


def _after_run(dry_run: DryRun, server: DryRunServer, template: str | None) -> None:
    """With the report recorded, as chores off the client's path: move the used clone aside,
    make the template's next spare, drop the used clone and freeze what the process keeps
    (`freeze_long_lived`). The report is in before any of them, so a client waiting for it
    (a task run in the web process) does not wait for them either.

    On MySQL/MariaDB and SQLite the engine has dropped the clone already; the chore copies the
    next spare.
    """
    if isinstance(server, SqliteShadowServer):
        if template is not None:
            shadow_chores_run(
                f"dr_{dry_run.pk}",
                lambda: sqlite_files.spares_ensure(server, template, count=settings.SHADOW_SPARE_CLONES),
            )
        return
    if isinstance(server, MySqlShadowServer):
        if template is not None:
            shadow_chores_run(
                f"dr_{dry_run.pk}",
                lambda: spares_ensure(server, template, count=settings.SHADOW_SPARE_CLONES),
                *_freeze_chore(),
            )
        return
    clone = clone_name_for(dry_run.pk)
    # The retired clone's name (None: it was gone); nothing when the server did not answer.
    retired: list[str | None] = []

    def retire() -> None:
        try:
            retired.append(clone_retire(server=server, clone=clone, dry_run_id=dry_run.pk))
        except (ShadowServerUnavailable, psycopg.Error) as exc:
            # The registry keeps the clone live; the reaper drops it once the server answers again.
            logger.warning("dry-run %s: could not drop its clone %s on %s: %s", dry_run.pk, clone, server.key, exc)

    def replenish() -> None:
        if retired and template is not None:
            spares_replenish(server=server, template=template, baseline_id=dry_run.baseline_id)

    def discard() -> None:
        if retired and retired[0] is not None:
            clone_discard(server=server, name=retired[0])

    shadow_chores_run(f"dr_{dry_run.pk}", retire, replenish, discard, *_freeze_chore())


def _freeze_chore() -> list[Callable[[], object]]:
    """`freeze_long_lived`, where chores run off the client's path: its full collection would
    otherwise be in the request (SHADOW_CHORES_IN_BACKGROUND off)."""
    return [freeze_long_lived] if settings.SHADOW_CHORES_IN_BACKGROUND else []


def progress_writer(
    dry_run_id: int, *, interval: float = PROGRESS_INTERVAL_SECONDS, clock: Callable[[], float] = time.monotonic
) -> Callable[[int, int], None]:
    """The dry-run's progress callback: it writes operations done at most every `interval`
    seconds, and always the last one. A short dry-run is over before a client polls twice,
    and each write is a round trip on the job's path."""
    last_written: float | None = None

    def progress(done: int, total: int) -> None:
        nonlocal last_written
        now = clock()
        if done < total and last_written is not None and now - last_written < interval:
            return
        last_written = now
        DryRun.objects.filter(pk=dry_run_id).update(progress_done=done, progress_total=total)

    return progress


def _execute(dry_run: DryRun, server: DryRunServer) -> tuple[str, Report]:
    """Dry-run the revision on a clone of the template its project's `dry_run_schema` picks.

    On a snapshot's template the change is still made from the baseline's Django state, so a
    failure on a table or column production lacks is said to be that; drift warnings compare
    the snapshot with the baseline's own template either way.
    """
    if isinstance(server, MySqlShadowServer):
        return _execute_mysql(dry_run, server)
    if isinstance(server, SqliteShadowServer):
        return _execute_sqlite(dry_run, server)
    baseline = dry_run.baseline
    project = dry_run.revision.change_request.project
    base = baseline_plan(baseline)
    change = revision_plan(dry_run.revision, baseline)
    profile = production_profile(project=project)
    DryRun.objects.filter(pk=dry_run.pk).update(progress_total=change.operation_count, progress_done=0)
    chosen = dry_run_template_choose(project=project, baseline=baseline, base=base, profile=profile, server=server)
    template = chosen.name
    spares = spare_names_for(template)
    clone = clone_name_for(dry_run.pk)
    # A reclaimed job reuses its clone's name (and registry row); the clone itself is recreated.
    ShadowDatabase.objects.get_or_create(
        server=server.key, name=clone, dropped_at=None, defaults={"kind": ShadowDatabase.Kind.CLONE, "dry_run": dry_run}
    )

    progress = progress_writer(dry_run.pk)

    with WallClockGuard(server, clone) as guard:
        report = dry_run_execute(
            server=server,
            template=template,
            clone_name=clone,
            baseline=base,
            change=change,
            on_progress=progress,
            profile=profile,
            spares=spares,
            on_clone=lambda spare: spare_taken(server=server, name=spare) if spare else None,
            # Dropped once the report is recorded (`_after_run`); until then the registry
            # row keeps it live, so the reaper drops it if this worker dies in between.
            drop_clone=False,
            access_patterns=access_patterns_for_dry_run(project=project),
            backfill_sample_batches=settings.SCHEMAGATE_BACKFILL_SAMPLE_BATCHES,
            backfill_target_lock_ms=project.backfill_target_lock_ms,
        )
    if guard.fired and report.error is not None:
        limit = settings.SCHEMAGATE_DRY_RUN_WALL_SECONDS
        message = (
            f"the dry-run exceeded its wall-time limit of {limit} s (SCHEMAGATE_DRY_RUN_WALL_SECONDS) "
            f"and was stopped: {report.error.message}"
        )
        report = dataclasses.replace(report, error=dataclasses.replace(report.error, message=message))
    if chosen.catalog is not None:
        report = explain_missing_objects(
            report, state=baseline_state(base), catalog=chosen.catalog, snapshot=f"schema snapshot {chosen.source.snapshot}"
        )
    drift = _drift_of_run(dry_run, server=server, chosen=chosen, base=base, statements=report.statements)
    report = dataclasses.replace(report, schema_source=chosen.source)
    if drift is not None:
        report = dataclasses.replace(report, schema_drift=drift)
    return template, report


def _drift_of_run(
    dry_run: DryRun, *, server: ShadowServer, chosen: DryRunTemplate, base: Plan, statements: Sequence[StatementTrace]
) -> SchemaDrift | None:
    """The drift warnings of a run: the latest snapshot against the baseline's own template
    (the one the run cloned, unless it cloned the snapshot's). A shadow server failing here
    leaves the report without them, as the comparison itself does."""
    baseline = dry_run.baseline
    try:
        template = (
            chosen.name
            if chosen.catalog is None
            else baseline_template_ensure(server=server, baseline=baseline, base=base, profile=None)
        )
    except (ShadowServerUnavailable, psycopg.Error) as exc:
        logger.warning("dry-run %s: no drift check, the baseline's template could not be built: %s", dry_run.pk, exc)
        return None
    project = dry_run.revision.change_request.project
    return dry_run_schema_drift(project=project, baseline=baseline, server=server, template=template, statements=statements)


def _execute_mysql(dry_run: DryRun, server: MySqlShadowServer) -> tuple[str, Report]:
    """A MySQL/MariaDB project's dry-run: the template built (and registered) once, a ready
    spare taken or the template copied, the change traced, the clone dropped by the engine.

    The wall-clock guard is PostgreSQL's; here each statement is capped by the job user's
    MAX_STATEMENT_TIME. Drift warnings compare the latest snapshot with the template copied.
    """
    baseline = dry_run.baseline
    base = baseline_plan(baseline)
    change = revision_plan(dry_run.revision, baseline)
    profile = production_profile(project=dry_run.revision.change_request.project)
    template = seeded_template_for(baseline=baseline, profile=profile)
    DryRun.objects.filter(pk=dry_run.pk).update(progress_total=change.operation_count, progress_done=0)
    built = mysql_template_build(server=server, name=template, baseline=base, rows=profile.seed_rows())
    if built.built:
        ShadowDatabase.objects.create(server=server.key, name=template, kind=ShadowDatabase.Kind.TEMPLATE, baseline=baseline)
    report = dry_run_execute_mysql(
        server=server,
        template=template,
        clone_name=clone_name_for(dry_run.pk),
        baseline=base,
        change=change,
        on_progress=progress_writer(dry_run.pk),
        spares=spares_ready(server, template),
        profile=profile,
    )
    return template, _with_drift(dry_run, server=server, template=template, report=report)


def _execute_sqlite(dry_run: DryRun, server: SqliteShadowServer) -> tuple[str, Report]:
    """A SQLite project's dry-run: the template file built (and registered) once, a ready spare
    taken or the template copied, the change traced, the clone deleted by the engine; the
    watchdog there enforces the wall-time and statement limits. Drift warnings as on MySQL."""
    baseline = dry_run.baseline
    base = baseline_plan(baseline)
    change = revision_plan(dry_run.revision, baseline)
    profile = production_profile(project=dry_run.revision.change_request.project)
    template = seeded_template_for(baseline=baseline, profile=profile)
    DryRun.objects.filter(pk=dry_run.pk).update(progress_total=change.operation_count, progress_done=0)
    built = sqlite_template_build(server=server, name=template, baseline=base, rows=profile.seed_rows())
    if built.built:
        ShadowDatabase.objects.create(server=server.key, name=template, kind=ShadowDatabase.Kind.TEMPLATE, baseline=baseline)
    report = dry_run_execute_sqlite(
        server=server,
        template=template,
        clone_name=clone_name_for(dry_run.pk),
        baseline=base,
        change=change,
        on_progress=progress_writer(dry_run.pk),
        spares=sqlite_files.spares_ready(server, template),
        profile=profile,
    )
    return template, _with_drift(dry_run, server=server, template=template, report=report)


def _with_drift(dry_run: DryRun, *, server: MySqlShadowServer | SqliteShadowServer, template: str, report: Report) -> Report:
    """A MySQL/MariaDB or SQLite run's report with the drifted objects its statements touch,
    per the project's latest snapshot, read on a copy of the template the run copied (once per
    process and template); as it was when there is no snapshot or the comparison fails."""
    project = dry_run.revision.change_request.project
    drift = dry_run_schema_drift(
        project=project, baseline=dry_run.baseline, server=server, template=template, statements=report.statements
    )
    return report if drift is None else dataclasses.replace(report, schema_drift=drift)


@transaction.atomic
def _finish(dry_run_id: int, *, owner: str, report: Report | None, error: str) -> DryRun | None:
    """Write the result if this worker still holds the job; otherwise discard it."""
    dry_run = DryRun.objects.select_for_update().select_related("revision__change_request__project").get(pk=dry_run_id)
    if dry_run.status != DryRun.Status.RUNNING or dry_run.lease_owner != owner:
        logger.warning("dry-run %s: finished after losing its lease; result discarded", dry_run_id)
        return None
    failed = bool(error)
    dry_run.status = DryRun.Status.FAILED if failed else DryRun.Status.SUCCEEDED
    dry_run.report = to_json(report) if report is not None else None
    if report is not None:
        dry_run_report_known(dry_run, report)
    dry_run.error = error[:10000]
    dry_run.finished_at = timezone.now()
    dry_run.lease_expires_at = None
    if not failed:
        dry_run.progress_done = dry_run.progress_total
    dry_run.save()
    audit_record(
        context=SYSTEM,
        action="dry_run.finished",
        target=dry_run,
        project=dry_run.revision.change_request.project,
        after={"status": dry_run.status, "error": dry_run.error[:500], "attempts": dry_run.attempts},
    )
    _set_change_request_status(dry_run, ChangeRequest.Status.DRY_RUN_FAILED if failed else ChangeRequest.Status.READY_FOR_REVIEW)
    webhooks_emit(project=dry_run.revision.change_request.project, event="dry_run.finished", subject=dry_run)
    return dry_run


@transaction.atomic
def _fail_unclaimed(dry_run_id: int, reason: str) -> DryRun | None:
    """Fail a still-queued job that cannot run at all (no server for its engine)."""
    dry_run = DryRun.objects.select_for_update().select_related("revision__change_request__project").get(pk=dry_run_id)
    if dry_run.status != DryRun.Status.QUEUED:
        return None
    dry_run.status = DryRun.Status.RUNNING
    dry_run.lease_owner = "unclaimed"
    dry_run.lease_expires_at = timezone.now()
    dry_run.save(update_fields=["status", "lease_owner", "lease_expires_at"])
    _set_change_request_status(dry_run, ChangeRequest.Status.DRY_RUNNING)
    return _finish(dry_run_id, owner="unclaimed", report=None, error=reason)


def dry_run_fail_for_retries(*, dry_run_id: int, reason: str) -> None:
    """Give up on a job whose retries are exhausted (e.g. the server stayed down)."""
    with transaction.atomic():
        dry_run = DryRun.objects.select_for_update().filter(pk=dry_run_id, status=DryRun.Status.QUEUED).first()
        if dry_run is None:
            return
    _fail_unclaimed(dry_run_id, reason)


def dry_runs_reclaim(*, now: dt.datetime | None = None) -> list[int]:
    """Requeue running jobs whose lease expired, and re-send queued jobs nobody picked up.

    A job that has already been attempted `SCHEMAGATE_DRY_RUN_MAX_ATTEMPTS` times is failed
    with the reason instead of looping forever.
    """
    now = now or timezone.now()
    requeued: list[int] = []
    expired = DryRun.objects.filter(status=DryRun.Status.RUNNING, lease_expires_at__lt=now).values_list("pk", flat=True)
    for dry_run_id in list(expired):
        with transaction.atomic():
            dry_run = (
                DryRun.objects.select_for_update(skip_locked=True)
                .select_related("revision__change_request__project")
                .filter(pk=dry_run_id, status=DryRun.Status.RUNNING, lease_expires_at__lt=now)
                .first()
            )
            if dry_run is None:
                continue
            if dry_run.attempts >= settings.SCHEMAGATE_DRY_RUN_MAX_ATTEMPTS:
                reason = f"the worker running it was lost {dry_run.attempts} times; giving up"
                _finish(dry_run_id, owner=dry_run.lease_owner, report=None, error=reason)
                continue
            dry_run.status = DryRun.Status.QUEUED
            dry_run.lease_owner = ""
            dry_run.lease_expires_at = None
            dry_run.save(update_fields=["status", "lease_owner", "lease_expires_at"])
            audit_record(
                context=SYSTEM,
                action="dry_run.reclaimed",
                target=dry_run,
                project=dry_run.revision.change_request.project,
                after={"attempts": dry_run.attempts},
            )
            dispatch.enqueue_on_commit(dispatch.DRY_RUN, dry_run_id)
            requeued.append(dry_run_id)
    stale_queue = now - dt.timedelta(seconds=settings.SCHEMAGATE_DRY_RUN_REQUEUE_AFTER_SECONDS)
    for dry_run_id in DryRun.objects.filter(status=DryRun.Status.QUEUED, created_at__lt=stale_queue).values_list("pk", flat=True):
        dispatch.enqueue(dispatch.DRY_RUN, dry_run_id)
        requeued.append(dry_run_id)
    return requeued


RERUNNABLE = {ChangeRequest.Status.DRY_RUN_FAILED, ChangeRequest.Status.READY_FOR_REVIEW, ChangeRequest.Status.CHANGES_REQUESTED}


@transaction.atomic
def dry_run_rerun(*, dry_run: DryRun, context: AuditContext) -> DryRun:
    """Dry-run the latest revision again (after a server outage, or on a moved baseline).

    The change request returns to submitted: a review counts only for what the newest
    report shows. Refused for superseded revisions and for closed or approved requests.
    """
    change_request = (
        ChangeRequest.objects.select_for_update().select_related("project").get(pk=dry_run.revision.change_request_id)
    )
    if not _is_latest(dry_run):
        raise InvalidState("this dry-run is of a superseded revision; the latest revision has its own dry-runs")
    if change_request.status not in RERUNNABLE:
        raise InvalidState(f"change request is {change_request.status}: its dry-run cannot be rerun now")
    if DryRun.objects.filter(revision=dry_run.revision, status__in=[DryRun.Status.QUEUED, DryRun.Status.RUNNING]).exists():
        raise InvalidState("a dry-run of this revision is already queued or running")
    change_request_move(
        change_request=change_request,
        status=ChangeRequest.Status.SUBMITTED,
        action="change_request.rerun_requested",
        context=context,
        after={"previous_dry_run": dry_run.pk},
    )
    return dry_run_queue(revision=dry_run.revision, context=context)
