"""The one place where visibility and permissions of project-owned objects are enforced.

Every viewset of a project-owned object derives from `ProjectScopedViewSet`: its queryset is
cut down to projects the user may view (so anything else is a 404), and writes call
`require()` for the specific permission (a 403, since the object is visible).
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.http import Http404
from rest_framework import viewsets
from rest_framework.exceptions import NotAuthenticated
from rest_framework.request import Request

from approvals.audit import AuditContext
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


class ProjectScopedViewSet(viewsets.GenericViewSet):
    """Base for project-owned objects; `project_path` is the lookup from the object to its project."""

    project_path = "project"

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
        project = projects_with_perm(self.request.user, VIEW).filter(slug=slug).select_related("current_baseline").first()
        if project is None:
            raise Http404
        return project
