"""Project-scoped API keys for CI bots: creating, authenticating and revoking them.

A key acts through its own service account, a member of the "bots" group that holds the
key's permissions on the key's project and nothing else. Every check the API makes for people
(guardian object permissions, "bots approve only where the policy allows") therefore applies
to keys unchanged, and a key of one project finds nothing of another.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone

from changeapi.audit import AuditContext, audit_record
from changeapi.errors import DomainError, InvalidState, PermissionDenied
from changeapi.models import ApiKey, Project
from changeapi.permissions import BOT_GROUP, MANAGE, PROJECT_PERMISSIONS, VIEW, project_perms, project_perms_set
from changeapi.types import User

KEY_PREFIX = "sg_"
GRANTABLE = tuple(p for p in PROJECT_PERMISSIONS if p != MANAGE)
"""A key never manages its project: it cannot mint keys or change members."""

LAST_USED_RESOLUTION = dt.timedelta(seconds=60)


class ApiKeyInvalid(Exception):
    """The presented key is unknown, revoked or expired (the reason is in the message)."""


@dataclass(frozen=True)
class IssuedKey:
    api_key: ApiKey
    key: str  # shown once, never stored


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def bot_group() -> Group:
    group, _ = Group.objects.get_or_create(name=BOT_GROUP)
    return group


def service_account_create(*, username: str) -> User:
    """A user that cannot log in with a password and is marked as a bot."""
    user = get_user_model().objects.create(username=username)
    user.set_unusable_password()
    user.save(update_fields=["password"])
    user.groups.add(bot_group())
    return user


@transaction.atomic
def api_key_create(
    *,
    project: Project,
    creator: User,
    name: str,
    permissions: list[str],
    expires_at: dt.datetime | None,
    context: AuditContext,
) -> IssuedKey:
    """Issue a key with at most the creator's own permissions on the project (never manage)."""
    wanted = set(permissions) or {VIEW}
    unknown = wanted - set(GRANTABLE)
    if unknown:
        raise DomainError(f"a key cannot hold: {', '.join(sorted(unknown))}")
    beyond = wanted - project_perms(creator, project)
    if beyond:
        raise PermissionDenied(f"you cannot give a key permissions you do not hold: {', '.join(sorted(beyond))}")
    if expires_at is not None and expires_at <= timezone.now():
        raise DomainError("expires_at must be in the future")
    prefix = secrets.token_hex(6)
    key = f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    user = service_account_create(username=f"apikey-{prefix}")
    project_perms_set(project=project, user=user, permissions=sorted(wanted))
    ordered = [p for p in PROJECT_PERMISSIONS if p in project_perms(user, project)]
    api_key = ApiKey.objects.create(
        project=project,
        name=name,
        prefix=prefix,
        key_sha256=_digest(key),
        permissions=ordered,
        user=user,
        created_by=creator,
        expires_at=expires_at,
    )
    audit_record(
        context=context,
        action="api_key.created",
        target=api_key,
        project=project,
        after={
            "name": name,
            "prefix": prefix,
            "permissions": ordered,
            "expires_at": expires_at.isoformat() if expires_at else None,
        },
    )
    return IssuedKey(api_key=api_key, key=key)


@transaction.atomic
def api_key_revoke(*, api_key: ApiKey, actor: User, context: AuditContext) -> ApiKey:
    """Revoke a key: it stops authenticating at once and its account loses its permissions."""
    api_key = ApiKey.objects.select_for_update().select_related("project", "user").get(pk=api_key.pk)
    if api_key.revoked_at is not None:
        raise InvalidState("the key is already revoked")
    api_key.revoked_at = timezone.now()
    api_key.save(update_fields=["revoked_at"])
    api_key.user.is_active = False
    api_key.user.save(update_fields=["is_active"])
    project_perms_set(project=api_key.project, user=api_key.user, permissions=[])
    audit_record(
        context=context, action="api_key.revoked", target=api_key, project=api_key.project, after={"prefix": api_key.prefix}
    )
    return api_key


def api_key_authenticate(*, key: str) -> ApiKey:
    """The live key for a presented `sg_<prefix>_<secret>`; raises ApiKeyInvalid."""
    body = key.removeprefix(KEY_PREFIX)
    prefix, _, secret = body.partition("_")
    if not prefix or not secret:
        raise ApiKeyInvalid("malformed API key")
    api_key = ApiKey.objects.select_related("user").filter(prefix=prefix).first()
    # Compare digests even for an unknown prefix, so timing tells nothing about which exist.
    stored = api_key.key_sha256 if api_key is not None else "0" * 64
    if not hmac.compare_digest(stored, _digest(key)) or api_key is None:
        raise ApiKeyInvalid("invalid API key")
    now = timezone.now()
    if api_key.revoked_at is not None:
        raise ApiKeyInvalid("this API key was revoked")
    if api_key.expires_at is not None and api_key.expires_at <= now:
        raise ApiKeyInvalid("this API key has expired")
    if not api_key.user.is_active:
        raise ApiKeyInvalid("this API key's account is disabled")
    if api_key.last_used_at is None or now - api_key.last_used_at > LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
        api_key.last_used_at = now
    return api_key
