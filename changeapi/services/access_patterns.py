"""Access patterns: a project's key queries, checked on a clone of its baseline when saved, and
handed to every dry-run, which explains them before and after the change."""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from changeapi.audit import AuditContext, audit_record
from changeapi.dryrun.access_patterns import AccessPattern as PatternSpec
from changeapi.dryrun.access_patterns import PatternError, pattern_check
from changeapi.dryrun.run import template_build
from changeapi.dryrun.session import shadow_session
from changeapi.errors import DomainError, InvalidState, LimitExceeded
from changeapi.models import AccessPattern, Project, ShadowDatabase
from changeapi.selectors import baseline_plan
from changeapi.shadow.servers import ShadowServerUnavailable, pick_postgresql_server
from changeapi.types import User

DEFAULT_MAX_ACCESS_PATTERNS = 100


class AccessPatternInvalid(DomainError):
    """The pattern does not prepare on the baseline; `errors` say where (pointer, line, column)."""

    code = "invalid-access-pattern"
    title = "The access pattern does not prepare on the baseline"


class ShadowUnavailable(DomainError):
    status = 503
    code = "shadow-unavailable"
    title = "No shadow server is available"


def max_access_patterns() -> int:
    return int(getattr(settings, "SCHEMAGATE_MAX_ACCESS_PATTERNS", DEFAULT_MAX_ACCESS_PATTERNS))


def access_pattern_check(*, project: Project, sql: str, params: dict[str, Any]) -> int:
    """Prepare the query on a fresh clone of the project's current baseline; its version.

    The clone is registered before it exists and dropped afterwards, so a crash leaves
    nothing the reaper does not know about. Raises AccessPatternInvalid, located, when the
    SQL does not parse, names a missing table or column, or a sample value does not fit.
    """
    baseline = project.current_baseline
    if baseline is None:
        raise InvalidState("the project has no ready baseline yet: upload one before adding access patterns")
    try:
        server = pick_postgresql_server(engine=project.engine, engine_version=project.engine_version)
        if template_build(server=server, name=baseline.template_name, baseline=baseline_plan(baseline)):
            ShadowDatabase.objects.create(
                server=server.key, name=baseline.template_name, kind=ShadowDatabase.Kind.TEMPLATE, baseline=baseline
            )
        name = f"{settings.SHADOW_DATABASE_PREFIX}ap_{uuid.uuid4().hex[:16]}"
        row = ShadowDatabase.objects.create(server=server.key, name=name, kind=ShadowDatabase.Kind.CLONE, baseline=baseline)
        try:
            with shadow_session(server, template=baseline.template_name, name=name) as session:
                pattern_check(session.connection, PatternSpec(name="check", sql=sql, params=params))
        finally:
            ShadowDatabase.objects.filter(pk=row.pk).update(dropped_at=timezone.now())
    except ShadowServerUnavailable as exc:
        raise ShadowUnavailable(str(exc)) from exc
    except PatternError as exc:
        raise AccessPatternInvalid(f"{exc.pointer}: {exc.message}", errors=[exc.as_dict()]) from exc
    return baseline.version


def _snapshot(pattern: AccessPattern) -> dict[str, Any]:
    return {"name": pattern.name, "sql": pattern.sql, "params": pattern.params, "orm": pattern.orm, "weight": pattern.weight}


def access_pattern_create(
    *,
    project: Project,
    author: User,
    name: str,
    sql: str,
    params: dict[str, Any],
    orm: str = "",
    weight: float | None = None,
    context: AuditContext,
) -> AccessPattern:
    """Record a key query of the project once it prepares on the current baseline."""
    limit = max_access_patterns()
    if project.access_patterns.count() >= limit:
        raise LimitExceeded(
            f"the project has {limit} access patterns, the most it may have (SCHEMAGATE_MAX_ACCESS_PATTERNS)",
            setting="SCHEMAGATE_MAX_ACCESS_PATTERNS",
            value=limit,
        )
    if project.access_patterns.filter(name=name).exists():
        raise InvalidState(f"the project already has an access pattern named {name!r}")
    version = access_pattern_check(project=project, sql=sql, params=params)
    try:
        with transaction.atomic():
            pattern = AccessPattern.objects.create(
                project=project,
                name=name,
                sql=sql,
                params=params,
                orm=orm,
                weight=weight,
                checked_baseline_version=version,
                created_by=author,
            )
            audit_record(
                context=context, action="access_pattern.created", target=pattern, project=project, after=_snapshot(pattern)
            )
    except IntegrityError as exc:
        raise InvalidState(f"the project already has an access pattern named {name!r}") from exc
    return pattern


def access_pattern_update(*, pattern: AccessPattern, changes: dict[str, Any], context: AuditContext) -> AccessPattern:
    """Change a pattern; new SQL or sample values are checked on the current baseline first."""
    before = _snapshot(pattern)
    new_name = changes.get("name", pattern.name)
    if new_name != pattern.name and pattern.project.access_patterns.filter(name=new_name).exists():
        raise InvalidState(f"the project already has an access pattern named {new_name!r}")
    if "sql" in changes or "params" in changes:
        pattern.checked_baseline_version = access_pattern_check(
            project=pattern.project, sql=changes.get("sql", pattern.sql), params=changes.get("params", pattern.params)
        )
    for field in ("name", "sql", "params", "orm", "weight"):
        if field in changes:
            setattr(pattern, field, changes[field])
    try:
        with transaction.atomic():
            pattern.save()
            audit_record(
                context=context,
                action="access_pattern.updated",
                target=pattern,
                project=pattern.project,
                before=before,
                after=_snapshot(pattern),
            )
    except IntegrityError as exc:
        raise InvalidState(f"the project already has an access pattern named {new_name!r}") from exc
    return pattern


@transaction.atomic
def access_pattern_delete(*, pattern: AccessPattern, context: AuditContext) -> None:
    audit_record(
        context=context, action="access_pattern.deleted", target=pattern, project=pattern.project, before=_snapshot(pattern)
    )
    pattern.delete()


def access_patterns_for_dry_run(*, project: Project) -> list[PatternSpec]:
    """Every pattern of the project, as the engine explains them (an empty list still checks
    new foreign keys for a supporting index)."""
    return [
        PatternSpec(name=p.name, sql=p.sql, params=p.params, weight=p.weight, orm=p.orm)
        for p in project.access_patterns.order_by("name")
    ]
