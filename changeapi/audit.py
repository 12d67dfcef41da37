"""Writing the append-only audit trail: one event per state change, in the same transaction."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AnonymousUser
from django.db import models

from changeapi.models import AuditEvent, Project
from changeapi.types import User


@dataclass(frozen=True)
class AuditContext:
    """Who is acting and from where; built by the HTTP layer, a task or an integration."""

    user: User | AnonymousUser | None = None
    via: str = ""
    source_ip: str | None = None


SYSTEM = AuditContext(via="worker")


def audit_record(
    *,
    context: AuditContext,
    action: str,
    target: models.Model,
    project: Project | None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditEvent:
    user = context.user if context.user is not None and context.user.is_authenticated else None
    return AuditEvent.objects.create(
        project=project,
        actor=user,
        via=context.via,
        action=action,
        target_type=target._meta.label_lower,
        target_id=str(target.pk),
        before=before,
        after=after,
        source_ip=context.source_ip,
    )
