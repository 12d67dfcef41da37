"""Django admin for approval policies, and read-only views of the history (reviews, bundles).

History is never edited: those admins refuse add, change and delete. What the admin may
change (policies here, projects and change request titles in changeapi/admin.py) is written
to the audit trail like any other change, with via="admin".
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.forms import ModelForm
from django.http import HttpRequest

from approvals.models import ApprovalPolicy, ApprovalPolicyGroup, ApprovalRule, ReleaseBundle, Review
from approvals.services.policies import policy_snapshot
from changeapi.admin import ReadOnlyAdmin, admin_context
from changeapi.audit import audit_record


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
