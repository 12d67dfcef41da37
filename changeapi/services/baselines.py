"""Baselines: recording a project's production schema, advancing it by a released bundle, and
building its template database (after which stale dry-runs of open change requests are rerun)."""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.migrations.writer import MigrationWriter
from django.db.models import Max

from changeapi import dispatch
from changeapi.audit import SYSTEM, AuditContext, audit_record
from changeapi.dryrun.run import template_build
from changeapi.dryrun.templates import baseline_template_build
from changeapi.errors import InvalidState
from changeapi.intake.plan import Plan
from changeapi.intake.submission import parse_submission
from changeapi.models import Baseline, ChangeRequest, DryRun, Project, ShadowDatabase
from changeapi.selectors import baseline_plan, latest_dry_run, latest_revision
from changeapi.services.dry_runs import dry_run_queue
from changeapi.services.shadows import shadow_chores_run, spares_replenish
from changeapi.services.transitions import change_request_move
from changeapi.shadow import sqlite_files
from changeapi.shadow.engine_servers import SqliteShadowServer
from changeapi.shadow.mysql_databases import spares_ensure
from changeapi.shadow.servers import (
    ENGINE_NAMES,
    ShadowServer,
    ShadowServerUnavailable,
    configured_servers,
    pick_server,
)
from changeapi.types import User

logger = logging.getLogger(__name__)


def content_sha256(source: Any) -> str:
    """A stable hash of a JSON submission (sorted keys, no whitespace)."""
    return hashlib.sha256(json.dumps(source, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


@transaction.atomic
def baseline_create(*, project: Project, author: User, form: str, source: Any, context: AuditContext) -> Baseline:
    """Record a new baseline version; its template database is built by a queued task.

    The source is parsed here, so a malformed baseline is refused before anything is stored.
    """
    return _baseline_record(project=project, author=author, form=form, source=source, context=context, action="baseline.created")


@transaction.atomic
def baseline_create_from_snapshot(
    *, project: Project, author: User, files: list[dict[str, str]], snapshot_id: int, review_points: int, context: AuditContext
) -> Baseline:
    """Record a baseline derived from a schema snapshot: its initial migration `files`, as a
    migrations-form history, so bundles advance it like any uploaded history.

    Audited as `baseline.created_from_snapshot`, naming the snapshot and how many review
    points the derivation left.
    """
    return _baseline_record(
        project=project,
        author=author,
        form="migrations",
        source={"files": files},
        context=context,
        action="baseline.created_from_snapshot",
        extra={"snapshot": snapshot_id, "review_points": review_points},
    )


@transaction.atomic
def baseline_advance(
    *,
    project: Project,
    migration_files: list[dict[str, str]],
    documents: list[dict[str, Any]] | None,
    author: User,
    bundle_number: int,
    context: AuditContext,
) -> Baseline:
    """The next baseline version: the current baseline's migrations followed by a bundle's.

    Called when a bundle is sealed, in its transaction. An operations-form baseline advanced
    by operations-form requests takes their `documents` (renamed to their final names); any
    other mix becomes a migrations-form baseline: the history as migration files (written
    with MigrationWriter where the baseline was JSON) plus the bundle's `migration_files`
    ({app_label, name, path, content}). The project's current baseline moves when the new
    template is built, and then open change requests are rerun on it (see `baseline_build`).
    """
    current = project.current_baseline
    if current is None:
        raise InvalidState("the project has no baseline to advance")
    source: Any
    if current.form == "operations" and documents is not None:
        form, source = "operations", [*current.source, *documents]
    elif current.form == "migrations":
        form, source = "migrations", {**current.source, "files": [*current.source["files"], *migration_files]}
    elif current.form == "operations":
        form, source = "migrations", {"files": [*_history_files(baseline_plan(current)), *migration_files]}
    else:
        raise InvalidState(f"a baseline of the {current.form!r} form cannot be advanced by a bundle")
    return _baseline_record(
        project=project,
        author=author,
        form=form,
        source=source,
        context=context,
        action="baseline.advanced",
        extra={"bundle": bundle_number, "previous_version": current.version},
    )


def _history_files(plan: Plan) -> list[dict[str, str]]:
    """A baseline's migrations as the files `makemigrations` would have written."""
    return [
        {
            "app_label": migration.app_label,
            "name": migration.name,
            "path": f"{migration.app_label}/migrations/{migration.name}.py",
            "content": MigrationWriter(migration.to_django(), include_header=False).as_string(),
        }
        for migration in plan.migrations
    ]


def _baseline_record(
    *,
    project: Project,
    author: User,
    form: str,
    source: Any,
    context: AuditContext,
    action: str,
    extra: dict[str, Any] | None = None,
) -> Baseline:
    plan = parse_submission(
        form=form,
        source=source,
        baseline=None,
        base_state=None,
        engine=project.engine,
        project_settings=project.intake_settings,
    ).plan
    Project.objects.select_for_update().get(pk=project.pk)
    version = (project.baselines.aggregate(v=Max("version"))["v"] or 0) + 1
    baseline = Baseline.objects.create(
        project=project,
        version=version,
        form=form,
        source=source,
        sha256=content_sha256(source),
        migration_count=len(plan.migrations),
        operation_count=plan.operation_count,
        created_by=author,
    )
    audit_record(
        context=context,
        action=action,
        target=baseline,
        project=project,
        after={"version": version, "sha256": baseline.sha256, "migrations": len(plan.migrations), **(extra or {})},
    )
    dispatch.enqueue_on_commit(dispatch.BASELINE_BUILD, baseline.pk)
    return baseline


def baseline_build(*, baseline_id: int) -> Baseline:
    """Build the template database of a baseline and make it the project's current one.

    The baseline is ready once its template is on one server; it is then built on every
    other configured server too, so the first dry-run sent to another server does not pay
    for the build, and a spare clone of it is made on each. Safe to run twice: the template
    is built once per server (advisory lock + final-name check), and a ready baseline is left
    as it is.
    """
    baseline = Baseline.objects.select_related("project").get(pk=baseline_id)
    if baseline.status == Baseline.Status.READY:
        return baseline
    project = baseline.project
    try:
        server = pick_server(engine=project.engine, engine_version=project.engine_version)
        built = baseline_template_build(server=server, name=baseline.template_name, baseline=baseline_plan(baseline))
    except ShadowServerUnavailable as exc:
        return _baseline_failed(baseline, str(exc))
    except Exception as exc:  # noqa: BLE001 - a baseline that does not apply is a user-facing failure
        return _baseline_failed(baseline, f"the baseline does not apply on {ENGINE_NAMES[project.engine]}: {exc}")
    with transaction.atomic():
        if built:
            ShadowDatabase.objects.create(
                server=server.key, name=baseline.template_name, kind=ShadowDatabase.Kind.TEMPLATE, baseline=baseline
            )
        baseline = Baseline.objects.select_for_update().get(pk=baseline_id)
        baseline.status = Baseline.Status.READY
        baseline.error = ""
        baseline.save(update_fields=["status", "error"])
        project = Project.objects.select_for_update().get(pk=project.pk)
        before = project.current_baseline_id
        if project.current_baseline is None or project.current_baseline.version < baseline.version:
            project.current_baseline = baseline
            project.save(update_fields=["current_baseline"])
        audit_record(
            context=SYSTEM,
            action="baseline.ready",
            target=baseline,
            project=project,
            before={"current_baseline": before},
            after={"current_baseline": project.current_baseline_id, "template": baseline.template_name, "server": server.key},
        )
    if project.current_baseline_id == baseline.pk:
        dry_runs_rerun_stale(project=project)
    if isinstance(server, ShadowServer):
        _templates_everywhere(baseline, first=server)
    elif isinstance(server, SqliteShadowServer):
        sqlite_directory = server
        shadow_chores_run(
            f"tpl_{baseline.pk}",
            lambda: sqlite_files.spares_ensure(sqlite_directory, baseline.template_name, count=settings.SHADOW_SPARE_CLONES),
        )
    else:
        mysql_server = server
        shadow_chores_run(
            f"tpl_{baseline.pk}",
            lambda: spares_ensure(mysql_server, baseline.template_name, count=settings.SHADOW_SPARE_CLONES),
        )
    return baseline


def _templates_everywhere(baseline: Baseline, *, first: ShadowServer) -> None:
    """Build the template on the other configured servers; then make spares on all of them.

    A server that is down or fails here only loses its head start: a dry-run sent there
    builds the template itself, as before.
    """
    ready = [first]
    for server in configured_servers():
        if server == first:
            continue
        try:
            if template_build(server=server, name=baseline.template_name, baseline=baseline_plan(baseline)):
                ShadowDatabase.objects.create(
                    server=server.key, name=baseline.template_name, kind=ShadowDatabase.Kind.TEMPLATE, baseline=baseline
                )
            ready.append(server)
        except Exception:  # noqa: BLE001 - the baseline is ready already; this server builds on first use
            logger.warning("baseline %s: template not built on %s", baseline.pk, server.key, exc_info=True)
    shadow_chores_run(
        f"tpl_{baseline.pk}",
        *[
            lambda server=server: spares_replenish(server=server, template=baseline.template_name, baseline_id=baseline.pk)
            for server in ready
        ],
    )


@transaction.atomic
def dry_runs_rerun_stale(*, project: Project, context: AuditContext = SYSTEM) -> list[DryRun]:
    """Mark and rerun open change requests whose latest dry-run is not on the current baseline.

    Runs once the new baseline's template is ready, so the reruns clone it at once. A change
    request without any dry-run is left alone: its first one is already queued.
    """
    project = Project.objects.select_for_update().get(pk=project.pk)
    current = project.current_baseline_id
    queued = []
    open_requests = (
        ChangeRequest.objects.select_for_update()
        .filter(project=project)
        .exclude(status__in=ChangeRequest.CLOSED_STATES)
        .order_by("number")
    )
    for change_request in open_requests:
        revision = latest_revision(change_request)
        dry_run = latest_dry_run(revision)
        if dry_run is None or dry_run.baseline_id == current:
            continue
        # Approvals were given on the old report: review starts over on the rerun's.
        change_request_move(
            change_request=change_request,
            status=ChangeRequest.Status.SUBMITTED,
            action="change_request.dry_run_stale",
            context=context,
            before={"baseline": dry_run.baseline_id, "dry_run": dry_run.pk},
            after={"baseline": current, "revision": revision.number},
        )
        queued.append(dry_run_queue(revision=revision, context=context))
    return queued


def _baseline_failed(baseline: Baseline, reason: str) -> Baseline:
    with transaction.atomic():
        baseline.status = Baseline.Status.FAILED
        baseline.error = reason[:5000]
        baseline.save(update_fields=["status", "error"])
        audit_record(
            context=SYSTEM, action="baseline.failed", target=baseline, project=baseline.project, after={"error": baseline.error}
        )
    return baseline
