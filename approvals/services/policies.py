"""Writing approval policies: create, replace and delete a project's policy, audited."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import Group
from django.db import transaction

from approvals.models import ApprovalPolicy, ApprovalPolicyGroup, ApprovalRule
from approvals.policies import LOCK_MODES, SEVERITIES
from changeapi.audit import AuditContext, audit_record
from changeapi.errors import DomainError, InvalidState, PermissionDenied
from changeapi.models import Project
from changeapi.permissions import MANAGE, has_project_perm
from changeapi.types import User

THRESHOLDS: dict[str, tuple[str, ...]] = {
    ApprovalRule.Kind.FINDING_SEVERITY_AT_LEAST: SEVERITIES,
    ApprovalRule.Kind.LOCK_MODE_AT_LEAST: LOCK_MODES,
    ApprovalRule.Kind.REWRITES_TABLE: ("",),
    ApprovalRule.Kind.SCANS_TABLE: ("",),
}


def policy_snapshot(policy: ApprovalPolicy | None, project: Project) -> dict[str, Any]:
    """The policy as plain JSON, for before/after in the audit trail."""
    if policy is None:
        return {"required_approvals": project.required_approvals, "policy": None}
    return {
        "required_approvals": project.required_approvals,
        "required_groups": sorted(policy.group_requirements.values_list("group__name", flat=True)),
        "allow_bot_approvals": policy.allow_bot_approvals,
        "rules": [
            {
                "kind": r.kind,
                "threshold": r.threshold,
                "table": r.table,
                "group": r.group.name,
                "approvals": r.approvals,
            }
            for r in policy.rules.select_related("group").order_by("position")
        ],
    }


def _groups_by_name(names: list[str], pointer: str) -> dict[str, Group]:
    found = {g.name: g for g in Group.objects.filter(name__in=names)}
    missing = [(i, n) for i, n in enumerate(names) if n not in found]
    if missing:
        raise DomainError(
            f"no such group: {missing[0][1]}",
            errors=[{"pointer": pointer.format(i), "detail": f"no group named {n!r}"} for i, n in missing],
        )
    return found


def _check_rules(rules: list[dict[str, Any]]) -> dict[str, Group]:
    errors = []
    for index, rule in enumerate(rules):
        allowed = THRESHOLDS[rule["kind"]]
        if rule.get("threshold", "") not in allowed:
            expected = "empty" if allowed == ("",) else "one of " + ", ".join(allowed)
            errors.append({"pointer": f"/rules/{index}/threshold", "detail": f"for {rule['kind']} it must be {expected}"})
    if errors:
        raise DomainError(errors[0]["detail"], errors=errors)
    return _groups_by_name([rule["group"] for rule in rules], "/rules/{}/group")


def _write(
    *,
    policy: ApprovalPolicy,
    project: Project,
    required_approvals: int | None,
    required_groups: list[str] | None,
    allow_bot_approvals: bool | None,
    rules: list[dict[str, Any]] | None,
) -> None:
    if required_approvals is not None and required_approvals != project.required_approvals:
        project.required_approvals = required_approvals
        project.save(update_fields=["required_approvals"])
    if allow_bot_approvals is not None:
        policy.allow_bot_approvals = allow_bot_approvals
    policy.save()
    if required_groups is not None:
        groups = _groups_by_name(list(dict.fromkeys(required_groups)), "/required_groups/{}")
        policy.group_requirements.all().delete()
        ApprovalPolicyGroup.objects.bulk_create([ApprovalPolicyGroup(policy=policy, group=g) for g in groups.values()])
    if rules is not None:
        rule_groups = _check_rules(rules)
        policy.rules.all().delete()
        ApprovalRule.objects.bulk_create(
            [
                ApprovalRule(
                    policy=policy,
                    position=position,
                    kind=rule["kind"],
                    threshold=rule.get("threshold", ""),
                    table=rule.get("table", ""),
                    group=rule_groups[rule["group"]],
                    approvals=rule.get("approvals", 1),
                )
                for position, rule in enumerate(rules, start=1)
            ]
        )


def _require_manage(actor: User, project: Project) -> None:
    if not has_project_perm(actor, project, MANAGE):
        raise PermissionDenied("approval policies need the manage_project permission on this project")


@transaction.atomic
def policy_create(
    *,
    project: Project,
    actor: User,
    required_approvals: int | None = None,
    required_groups: list[str] | None = None,
    allow_bot_approvals: bool = False,
    rules: list[dict[str, Any]] | None = None,
    context: AuditContext,
) -> ApprovalPolicy:
    """Give a project its approval policy; a project has at most one."""
    _require_manage(actor, project)
    project = Project.objects.select_for_update().get(pk=project.pk)
    if ApprovalPolicy.objects.filter(project=project).exists():
        raise InvalidState(f"project {project.slug} already has an approval policy: update it instead")
    before = policy_snapshot(None, project)
    policy = ApprovalPolicy(project=project, created_by=actor)
    _write(
        policy=policy,
        project=project,
        required_approvals=required_approvals,
        required_groups=required_groups or [],
        allow_bot_approvals=allow_bot_approvals,
        rules=rules or [],
    )
    audit_record(
        context=context,
        action="approval_policy.created",
        target=policy,
        project=project,
        before=before,
        after=policy_snapshot(policy, project),
    )
    return policy


@transaction.atomic
def policy_update(
    *,
    policy: ApprovalPolicy,
    actor: User,
    required_approvals: int | None = None,
    required_groups: list[str] | None = None,
    allow_bot_approvals: bool | None = None,
    rules: list[dict[str, Any]] | None = None,
    context: AuditContext,
) -> ApprovalPolicy:
    """Change a policy; what is given replaces what was there (rules and groups as a whole).

    It applies to decisions from now on: a change request already approved stays approved.
    """
    project = Project.objects.select_for_update().get(pk=policy.project_id)
    _require_manage(actor, project)
    policy = ApprovalPolicy.objects.select_for_update().get(pk=policy.pk)
    before = policy_snapshot(policy, project)
    _write(
        policy=policy,
        project=project,
        required_approvals=required_approvals,
        required_groups=required_groups,
        allow_bot_approvals=allow_bot_approvals,
        rules=rules,
    )
    audit_record(
        context=context,
        action="approval_policy.updated",
        target=policy,
        project=project,
        before=before,
        after=policy_snapshot(policy, project),
    )
    return policy


@transaction.atomic
def policy_delete(*, policy: ApprovalPolicy, actor: User, context: AuditContext) -> None:
    """Remove a policy: the project falls back to its approval count alone, and no bot approves."""
    project = Project.objects.select_for_update().get(pk=policy.project_id)
    _require_manage(actor, project)
    before = policy_snapshot(policy, project)
    audit_record(
        context=context,
        action="approval_policy.deleted",
        target=policy,
        project=project,
        before=before,
        after=policy_snapshot(None, project),
    )
    policy.delete()
