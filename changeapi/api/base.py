"""The one place where visibility and permissions of project-owned objects are enforced.

Every viewset of a project-owned object derives from `ProjectScopedViewSet`: its queryset is
cut down to projects the user may view (so anything else is a 404), and writes call
`require()` for the specific permission (a 403, since the object is visible).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from django.db.models import QuerySet
from django.http import Http404
from rest_framework import viewsets
from rest_framework.exceptions import NotAuthenticated
from rest_framework.request import Request

from changeapi.audit import AuditContext
from changeapi.errors import PermissionDenied
from changeapi.models import Project
from changeapi.permissions import VIEW, has_project_perm, projects_with_perm
from changeapi.types import User


def audit_context(request: Request) -> AuditContext:
    if request.auth is None:
        via = "session"
    else:
        via = "api_key" if type(request.auth).__name__ == "ApiKey" else "token"
    return AuditContext(user=request.user, via=via, source_ip=request.META.get("REMOTE_ADDR"))


def acting_user(request: Request) -> User:
    """The user a state-changing view acts as; such views run behind IsAuthenticated, so an
    anonymous user here never gets past the permission check (a 401 if it ever did)."""
    user = request.user
    if not user.is_authenticated:
        raise NotAuthenticated()
    return user


def require(request: Request, project: Project, perm: str) -> None:
    if not has_project_perm(request.user, project, perm):
        raise PermissionDenied(f"this needs the {perm} permission on project {project.slug}")


# Declared for a write action whose permission is checked by the service it calls (a review's
# reviewer rules, a bundle's release rules), or that needs no project permission at all.
CHECKED_BY_SERVICE = "checked by the service"
ANY_USER = "any signed-in user"
# Declared for an action the object's author may take, and otherwise a manager (the view checks).
AUTHOR_OR_MANAGE = "the author, or manage_project"


class ProjectScopedViewSet(viewsets.GenericViewSet):
    """Base for project-owned objects; `project_path` is the lookup from the object to its project.

    Reads need view_project, which the queryset enforces. Each state-changing action declares
    the permission it needs in `write_permissions` (action name -> permission), in one place per
    viewset; the action calls `require_write(project)` once it knows the project. A test checks
    that every routed write action has a declaration.
    """

    project_path = "project"
    write_permissions: ClassVar[Mapping[str, str]] = {}

    def require_write(self, project: Project) -> None:
        """Refuse (403) unless the user holds the permission this action declares on `project`."""
        permission = self.write_permissions[self.action or ""]
        if permission not in (CHECKED_BY_SERVICE, ANY_USER, AUTHOR_OR_MANAGE):
            require(self.request, project, permission)

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        """A NUL in a path segment names nothing (no slug or id holds one), and PostgreSQL would
        refuse the lookup with an error: it is a 404 before any query."""
        super().initial(request, *args, **kwargs)
        if any("\x00" in str(value) for value in kwargs.values()):
            raise Http404

    def get_queryset(self) -> QuerySet[Any]:
        queryset = super().get_queryset()
        visible = projects_with_perm(self.request.user, VIEW)
        return queryset.filter(**{f"{self.project_path}__in": visible})

    def visible_project(self, slug: str) -> Project:
        """A project by slug, or 404 when it does not exist or the user cannot see it."""
        project = (
            projects_with_perm(self.request.user, VIEW)
            .filter(slug=slug)
            .select_related("current_baseline")
            .defer("current_baseline__source")
            .first()
        )
        if project is None:
            raise Http404
        return project
