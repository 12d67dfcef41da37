"""Creating projects and managing who may do what on them."""

from __future__ import annotations

from django.db import IntegrityError, transaction

from changeapi.audit import AuditContext, audit_record
from changeapi.errors import DomainError, InvalidState
from changeapi.models import Project
from changeapi.permissions import PROJECT_PERMISSIONS, project_perms, project_perms_set
from changeapi.services.drift_checks import drift_schedule_next
from changeapi.types import User

# The major versions a project of each engine may name: dry-runs go to a shadow server of that
# version when one is configured, so a version no server can have is refused when it is given.
# MySQL is 5 to 9 and MariaDB 10 on; SQLite has been 3 since 2004.
ENGINE_VERSIONS: dict[str, range] = {
    Project.Engine.POSTGRESQL: range(9, 100),
    Project.Engine.MYSQL: range(5, 100),
    Project.Engine.SQLITE: range(3, 4),
}
DEFAULT_ENGINE_VERSIONS: dict[str, int] = {Project.Engine.POSTGRESQL: 15, Project.Engine.MYSQL: 10, Project.Engine.SQLITE: 3}


def _engine_version(engine: str, engine_version: int | None) -> int:
    if engine_version is None:
        return DEFAULT_ENGINE_VERSIONS.get(engine, 1)
    allowed = ENGINE_VERSIONS.get(engine)
    if allowed is not None and engine_version not in allowed:
        detail = f"{engine} has no major version {engine_version}: between {allowed.start} and {allowed.stop - 1}"
        raise DomainError(detail, errors=[{"pointer": "/engine_version", "detail": detail}])
    return engine_version


@transaction.atomic
def project_create(
    *,
    creator: User,
    slug: str,
    name: str,
    engine: str = Project.Engine.POSTGRESQL,
    engine_version: int | None = None,
    required_approvals: int = 1,
    lock_timeout_ms: int = 3000,
    context: AuditContext,
) -> Project:
    """Create a project; its creator manages it and holds every permission on it.

    `engine_version` is the production database's major version (default: PostgreSQL 15,
    MariaDB 10, SQLite 3), within what that engine has had.
    """
    engine_version = _engine_version(engine, engine_version)
    if Project.objects.filter(slug=slug).exists():
        raise InvalidState(f"a project with slug {slug!r} already exists")
    try:
        with transaction.atomic():
            project = Project.objects.create(
                slug=slug,
                name=name,
                engine=engine,
                engine_version=engine_version,
                required_approvals=required_approvals,
                lock_timeout_ms=lock_timeout_ms,
                created_by=creator,
            )
    except IntegrityError as exc:
        raise InvalidState(f"a project with slug {slug!r} already exists") from exc
    project_perms_set(project=project, user=creator, permissions=list(PROJECT_PERMISSIONS))
    audit_record(
        context=context,
        action="project.created",
        target=project,
        project=project,
        after={"slug": slug, "engine": engine, "engine_version": engine_version, "required_approvals": required_approvals},
    )
    return project


# The settings a project's managers may change after creation (slug and engine are fixed).
PROJECT_SETTINGS = ("name", "required_approvals", "lock_timeout_ms", "intake_settings", "drift_check_interval_minutes")


@transaction.atomic
def project_settings_update(*, project: Project, changes: dict[str, object], context: AuditContext) -> Project:
    """Change a project's settings, audited with each changed field's value before and after.

    Setting a drift check schedule makes its first check due at once; clearing it stops them.

    The row is locked for the change, so two managers' updates are applied one after the other
    and each audit event shows what that update really replaced.
    """
    unknown = set(changes) - set(PROJECT_SETTINGS)
    if unknown:
        raise DomainError(f"not a project setting: {', '.join(sorted(unknown))}")
    locked = Project.objects.select_for_update().get(pk=project.pk)
    changed = {name: value for name, value in changes.items() if getattr(locked, name) != value}
    if not changed:
        return locked
    before = {name: getattr(locked, name) for name in changed}
    for name, value in changed.items():
        setattr(locked, name, value)
    fields = list(changed)
    if "drift_check_interval_minutes" in changed:
        locked.drift_check_due_at = drift_schedule_next(minutes=locked.drift_check_interval_minutes)
        fields.append("drift_check_due_at")
    locked.save(update_fields=fields)
    audit_record(context=context, action="project.updated", target=locked, project=locked, before=before, after=changed)
    return locked


@transaction.atomic
def project_member_set(*, project: Project, user: User, permissions: list[str], context: AuditContext) -> set[str]:
    """Set a user's permissions on a project (an empty list removes them from it)."""
    unknown = set(permissions) - set(PROJECT_PERMISSIONS)
    if unknown:
        raise DomainError(f"unknown permissions: {', '.join(sorted(unknown))}")
    before = sorted(project_perms(user, project))
    project_perms_set(project=project, user=user, permissions=permissions)
    after = sorted(project_perms(user, project))
    audit_record(
        context=context,
        action="project.member_permissions_set",
        target=project,
        project=project,
        before={"user": user.get_username(), "permissions": before},
        after={"user": user.get_username(), "permissions": after},
    )
    return set(after)
