"""Linking GitHub and Slack user ids to the users they act as, per project."""

from __future__ import annotations

from django.db import IntegrityError, transaction

from approvals.audit import AuditContext, audit_record
from changeapi.errors import DomainError, InvalidState
from changeapi.models import ExternalIdentity, Project
from changeapi.permissions import project_perms
from changeapi.types import User


@transaction.atomic
def external_identity_create(
    *, project: Project, provider: str, external_id: str, user: User, creator: User, context: AuditContext
) -> ExternalIdentity:
    """Map an id to a member of the project; what they may do is still their own permissions."""
    if not project_perms(user, project):
        raise DomainError(f"{user.get_username()} is not a member of project {project.slug}")
    try:
        with transaction.atomic():
            identity = ExternalIdentity.objects.create(
                project=project, provider=provider, external_id=external_id, user=user, created_by=creator
            )
    except IntegrityError as exc:
        raise InvalidState(f"{provider} user {external_id} is already linked in this project") from exc
    audit_record(
        context=context,
        action="external_identity.created",
        target=identity,
        project=project,
        after={"provider": provider, "external_id": external_id, "user": user.get_username()},
    )
    return identity


@transaction.atomic
def external_identity_delete(*, identity: ExternalIdentity, context: AuditContext) -> None:
    audit_record(
        context=context,
        action="external_identity.deleted",
        target=identity,
        project=identity.project,
        before={"provider": identity.provider, "external_id": identity.external_id, "user": identity.user.get_username()},
    )
    identity.delete()
