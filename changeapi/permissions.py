"""Object permissions on projects (django-guardian), from which all access is derived.

A user's rights on a change request, dry-run, review or bundle are their rights on its
project. Lists use `accept_global_perms=False`, so a global model permission can never turn
into "sees every project".
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, Permission
from django.contrib.contenttypes.models import ContentType
from django.db.models import QuerySet
from guardian.shortcuts import get_objects_for_user, get_perms

from changeapi.models import Project, ProjectUserObjectPermission

VIEW = "view_project"
SUBMIT = "submit_change"
REVIEW = "review_change"
RELEASE = "release_bundle"
MANAGE = "manage_project"
PROJECT_PERMISSIONS = (VIEW, SUBMIT, REVIEW, RELEASE, MANAGE)
# Members of this group are bots (API keys act as one): approval rules never count them as people.
BOT_GROUP = "bots"

User = AbstractBaseUser | AnonymousUser


def projects_with_perm(user: User, perm: str = VIEW) -> QuerySet[Project]:
    if not user.is_authenticated:
        return Project.objects.none()
    return get_objects_for_user(user, f"changeapi.{perm}", klass=Project, accept_global_perms=False)


def project_perms(user: User, project: Project) -> set[str]:
    if not user.is_authenticated:
        return set()
    return set(get_perms(user, project)) & set(PROJECT_PERMISSIONS)


def has_project_perm(user: User, project: Project, perm: str) -> bool:
    return perm in project_perms(user, project)


def project_perms_set(*, project: Project, user: AbstractBaseUser, permissions: list[str]) -> None:
    """Replace the user's permissions on the project; view is implied by any other, and only
    the project permissions are set (never Django's add/change/delete model permissions).

    Written as the difference with what the user holds: one read, one insert of the missing
    rows, one delete of the others (guardian's `assign_perm` costs a lookup and a
    get-or-create per permission)."""
    wanted = set(permissions) & set(PROJECT_PERMISSIONS)
    if wanted:
        wanted.add(VIEW)
    rows = ProjectUserObjectPermission.objects.filter(user_id=user.pk, content_object=project)
    held = set(rows.values_list("permission__codename", flat=True))
    missing = wanted - held
    if missing:
        ProjectUserObjectPermission.objects.bulk_create(
            [
                ProjectUserObjectPermission(user_id=user.pk, content_object=project, permission=permission)
                for permission in _project_permissions(missing)
            ],
            ignore_conflicts=True,
        )
    extra = (held - wanted) & set(PROJECT_PERMISSIONS)
    if extra:
        rows.filter(permission__codename__in=extra).delete()


def _project_permissions(codenames: set[str]) -> QuerySet[Permission]:
    return Permission.objects.filter(content_type=ContentType.objects.get_for_model(Project), codename__in=codenames)
