"""Django admin for projects and change requests; baselines, revisions, dry-runs and the audit
trail are read-only.

States move only through the services (the API), never through a form: the admin edits a
project's settings and a change request's wording, audited, and shows the rest as history.
Projects are created and members managed through the API, where the creator's permissions
are granted and every change is audited.
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models import QuerySet
from django.forms import ModelForm
from django.http import HttpRequest

from changeapi.audit import AuditContext, audit_record
from changeapi.models import AuditEvent, Baseline, ChangeRequest, DryRun, Project, Revision


def admin_context(request: HttpRequest) -> AuditContext:
    return AuditContext(user=request.user, via="admin", source_ip=request.META.get("REMOTE_ADDR"))


def _plain(value: Any) -> Any:
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder, default=str))


class ReadOnlyAdmin(admin.ModelAdmin):
    """History: viewable by staff with the view permission, never added, changed or deleted."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class AuditedChangeAdmin(admin.ModelAdmin):
    """Changes made in the admin land in the audit trail with the fields' before and after values."""

    def audit_project(self, obj: models.Model) -> Project | None:
        return getattr(obj, "project", None)

    def save_model(self, request: HttpRequest, obj: Any, form: ModelForm, change: bool) -> None:
        fields = list(form.changed_data)
        before = {f: _plain(form.initial.get(f)) for f in fields} if change else None
        super().save_model(request, obj, form, change)
        if change and not fields:
            return
        audit_record(
            context=admin_context(request),
            action=f"{obj._meta.model_name}.{'changed' if change else 'created'}_in_admin",
            target=obj,
            project=self.audit_project(obj),
            before=before,
            after={f: _plain(form.cleaned_data.get(f)) for f in fields},
        )


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
        "backfill_target_lock_ms",
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


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ["id", "created_at", "project", "actor", "via", "action", "target_type", "target_id", "source_ip"]
    list_filter = ["action", "via"]
    list_select_related = ["project", "actor"]
    search_fields = ["action", "target_id", "actor__username", "project__slug"]
    date_hierarchy = "created_at"

    def get_queryset(self, request: HttpRequest) -> QuerySet[AuditEvent]:
        return super().get_queryset(request).order_by("-id")
