"""Linking GitHub and Slack user ids to the users they act as, per project, once confirmed."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets

from django.db import IntegrityError, transaction
from django.utils import timezone

from changeapi.audit import AuditContext, audit_record
from changeapi.errors import DomainError, InvalidState, PermissionDenied
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


CONFIRMATION_LIFETIME = dt.timedelta(hours=1)


def _digest(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


@transaction.atomic
def external_identity_confirmation_code(*, identity: ExternalIdentity, requester: User, context: AuditContext) -> str:
    """A one-time code for the mapped user to send from the linked account; shown once, stored hashed.

    Only the mapped user may ask: the code proves that whoever controls the GitHub or Slack
    account also controls this Schemagate account.
    """
    if requester.pk != identity.user_id:
        raise PermissionDenied("only the user an identity is linked to can confirm it")
    code = secrets.token_hex(8)
    identity.confirmation_code_sha256 = _digest(code)
    identity.confirmation_expires_at = timezone.now() + CONFIRMATION_LIFETIME
    identity.save(update_fields=["confirmation_code_sha256", "confirmation_expires_at"])
    audit_record(context=context, action="external_identity.code_issued", target=identity, project=identity.project)
    return code


@transaction.atomic
def external_identity_confirm(
    *, provider: str, external_id: str, code: str, context: AuditContext, project: Project | None = None
) -> ExternalIdentity | None:
    """Confirm the link of `external_id` (in `project`, or whichever project issued the code)
    when it sends its current code; None if no pending code matches."""
    pending = ExternalIdentity.objects.select_for_update().filter(
        provider=provider, external_id=external_id, confirmation_expires_at__gt=timezone.now()
    )
    if project is not None:
        pending = pending.filter(project=project)
    digest = _digest(code.strip())
    identity = next((i for i in pending if hmac.compare_digest(i.confirmation_code_sha256, digest)), None)
    if identity is None:
        return None
    identity.confirmed_at = timezone.now()
    identity.confirmation_code_sha256 = ""
    identity.confirmation_expires_at = None
    identity.save(update_fields=["confirmed_at", "confirmation_code_sha256", "confirmation_expires_at"])
    audit_record(
        context=context,
        action="external_identity.confirmed",
        target=identity,
        project=identity.project,
        after={"provider": provider, "external_id": external_id, "user": identity.user.get_username()},
    )
    return identity


def confirmed_identity_user(*, project: Project, provider: str, external_id: str) -> User | None:
    """The active user a confirmed link maps `external_id` to, or None."""
    identity = (
        ExternalIdentity.objects.select_related("user")
        .filter(project=project, provider=provider, external_id=external_id, confirmed_at__isnull=False)
        .first()
    )
    return identity.user if identity is not None and identity.user.is_active else None
