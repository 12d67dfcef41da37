"""Django admin for projects and change requests; baselines, revisions and dry-runs are read-only.

States move only through the services (the API), never through a form: the admin edits a
project's settings and a change request's wording, audited, and shows the rest as history.
Projects are created and members managed through the API, where the creator's permissions
are granted and every change is audited.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from approvals.admin import AuditedChangeAdmin, ReadOnlyAdmin, ReadOnlyInline
from changeapi.models import Baseline, ChangeRequest, DryRun, Project, Revision


@admin.register(Project)
class ProjectAdmin(AuditedChangeAdmin):
    list_display = ["slug", "name", "engine", "engine_version", "required_approvals", "current_baseline", "created_at"]
    list_select_related = ["current_baseline"]
    search_fields = ["slug", "name"]
    fields = [
        "slug",
        "name",
        "engine",
        "engine_version",
        "required_approvals",
        "lock_timeout_ms",
        "current_baseline",
        "created_by",
        "created_at",
    ]
    readonly_fields = ["slug", "engine", "engine_version", "current_baseline", "created_by", "created_at"]
    actions = None

    def audit_project(self, obj: Any) -> Project:
        return obj

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class RevisionInline(ReadOnlyInline):
    model = Revision
    fields = ["number", "form", "sha256", "baseline", "created_by", "created_at"]
    readonly_fields = ["number", "form", "sha256", "baseline", "created_by", "created_at"]


@admin.register(ChangeRequest)
class ChangeRequestAdmin(AuditedChangeAdmin):
    list_display = ["__str__", "title", "status", "author", "updated_at"]
    list_filter = ["status", "project"]
    list_select_related = ["project", "author"]
    search_fields = ["title", "project__slug"]
    fields = ["project", "number", "title", "description", "author", "status", "created_at", "updated_at"]
    readonly_fields = ["project", "number", "author", "status", "created_at", "updated_at"]
    inlines = [RevisionInline]
    actions = None

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Baseline)
class BaselineAdmin(ReadOnlyAdmin):
    list_display = ["__str__", "status", "sha256", "migration_count", "operation_count", "created_at"]
    list_filter = ["status"]
    list_select_related = ["project"]
    exclude = ["source"]


@admin.register(Revision)
class RevisionAdmin(ReadOnlyAdmin):
    list_display = ["__str__", "form", "sha256", "baseline", "created_by", "created_at"]
    list_select_related = ["change_request__project", "baseline__project", "created_by"]
    search_fields = ["change_request__project__slug", "sha256"]


@admin.register(DryRun)
class DryRunAdmin(ReadOnlyAdmin):
    list_display = ["id", "revision", "baseline", "status", "server", "attempts", "created_at", "finished_at"]
    list_filter = ["status"]
    list_select_related = ["revision__change_request__project", "baseline__project"]
