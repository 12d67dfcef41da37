"""Baselines: recording a project's production schema and building its template database."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Max

from approvals.audit import SYSTEM, AuditContext, audit_record
from changeapi.dryrun.run import template_build
from changeapi.intake.submission import plan_from_source
from changeapi.models import Baseline, Project, ShadowDatabase
from changeapi.selectors import baseline_plan
from changeapi.shadow.servers import ShadowServerUnavailable, pick_server


def content_sha256(source: Any) -> str:
    """A stable hash of a JSON submission (sorted keys, no whitespace)."""
    return hashlib.sha256(json.dumps(source, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


@transaction.atomic
def baseline_create(*, project: Project, author: AbstractBaseUser, form: str, source: Any, context: AuditContext) -> Baseline:
    """Record a new baseline version; its template database is built by a queued task.

    The source is parsed here, so a malformed baseline is refused before anything is stored.
    """
    plan = plan_from_source(form=form, source=source, base_state=None, leaves=None)
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
        action="baseline.created",
        target=baseline,
        project=project,
        after={"version": version, "sha256": baseline.sha256, "migrations": len(plan.migrations)},
    )
    from changeapi.tasks import baseline_build_task

    transaction.on_commit(lambda: baseline_build_task.delay(baseline.pk))
    return baseline


def baseline_build(*, baseline_id: int) -> Baseline:
    """Build the template database of a baseline and make it the project's current one.

    Safe to run twice: the template is built once (advisory lock + final-name check), and a
    ready baseline is left as it is.
    """
    baseline = Baseline.objects.select_related("project").get(pk=baseline_id)
    if baseline.status == Baseline.Status.READY:
        return baseline
    project = baseline.project
    try:
        server = pick_server(engine=project.engine, engine_version=project.engine_version)
        built = template_build(server=server, name=baseline.template_name, baseline=baseline_plan(baseline))
    except ShadowServerUnavailable as exc:
        return _baseline_failed(baseline, str(exc))
    except Exception as exc:  # noqa: BLE001 - a baseline that does not apply is a user-facing failure
        return _baseline_failed(baseline, f"the baseline does not apply on PostgreSQL: {exc}")
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
    return baseline


def _baseline_failed(baseline: Baseline, reason: str) -> Baseline:
    with transaction.atomic():
        baseline.status = Baseline.Status.FAILED
        baseline.error = reason[:5000]
        baseline.save(update_fields=["status", "error"])
        audit_record(
            context=SYSTEM, action="baseline.failed", target=baseline, project=baseline.project, after={"error": baseline.error}
        )
    return baseline
