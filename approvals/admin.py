"""Django admin for approval policies, and read-only views of the history (reviews, bundles, audit).

History is never edited: those admins refuse add, change and delete. What the admin may
change (policies here, projects and change request titles in changeapi/admin.py) is written
to the audit trail like any other change, with via="admin".
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

from approvals.audit import AuditContext, audit_record
from approvals.models import ApprovalPolicy, ApprovalPolicyGroup, ApprovalRule, AuditEvent, ReleaseBundle, Review
from approvals.services.policies import policy_snapshot
from changeapi.models import Project


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


class ApprovalPolicyGroupInline(admin.TabularInline):
    model = ApprovalPolicyGroup
    extra = 0
    autocomplete_fields = ["group"]


class ApprovalRuleInline(admin.TabularInline):
    model = ApprovalRule
    extra = 0
    fields = ["position", "kind", "threshold", "table", "group", "approvals"]


@admin.register(ApprovalPolicy)
class ApprovalPolicyAdmin(admin.ModelAdmin):
    list_display = ["project", "allow_bot_approvals", "updated_at"]
    list_select_related = ["project"]
    search_fields = ["project__slug"]
    readonly_fields = ["created_by", "created_at", "updated_at"]
    inlines = [ApprovalPolicyGroupInline, ApprovalRuleInline]
    actions = None  # bulk delete would skip the audit trail

    def save_model(self, request: HttpRequest, obj: ApprovalPolicy, form: ModelForm, change: bool) -> None:
        previous = ApprovalPolicy.objects.filter(pk=obj.pk).first() if change else None
        request._policy_before = policy_snapshot(previous, obj.project)  # type: ignore[attr-defined]
        if not change:
            obj.created_by = request.user  # type: ignore[assignment]
        super().save_model(request, obj, form, change)

    def save_related(self, request: HttpRequest, form: ModelForm, formsets: Any, change: bool) -> None:
        """Inline groups and rules are saved here, so the 'after' snapshot is taken here too."""
        super().save_related(request, form, formsets, change)
        policy = form.instance
        audit_record(
            context=admin_context(request),
            action="approval_policy.updated" if change else "approval_policy.created",
            target=policy,
            project=policy.project,
            before=getattr(request, "_policy_before", None),
            after=policy_snapshot(policy, policy.project),
        )

    def delete_model(self, request: HttpRequest, obj: ApprovalPolicy) -> None:
        audit_record(
            context=admin_context(request),
            action="approval_policy.deleted",
            target=obj,
            project=obj.project,
            before=policy_snapshot(obj, obj.project),
            after=policy_snapshot(None, obj.project),
        )
        super().delete_model(request, obj)


@admin.register(Review)
class ReviewAdmin(ReadOnlyAdmin):
    list_display = ["id", "revision", "reviewer", "decision", "via", "created_at"]
    list_filter = ["decision"]
    list_select_related = ["revision__change_request__project", "reviewer"]
    search_fields = ["revision__change_request__project__slug", "reviewer__username"]


@admin.register(ReleaseBundle)
class ReleaseBundleAdmin(ReadOnlyAdmin):
    list_display = ["project", "number", "sha256", "created_by", "created_at"]
    list_select_related = ["project", "created_by"]
    exclude = ["archive"]


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ["id", "created_at", "project", "actor", "via", "action", "target_type", "target_id", "source_ip"]
    list_filter = ["action", "via"]
    list_select_related = ["project", "actor"]
    search_fields = ["action", "target_id", "actor__username", "project__slug"]
    date_hierarchy = "created_at"

    def get_queryset(self, request: HttpRequest) -> QuerySet[AuditEvent]:
        return super().get_queryset(request).order_by("-id")
