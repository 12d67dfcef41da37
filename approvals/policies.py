"""Approval policies read: what a revision needs, given its dry-run report, and what it has.

A review counts only for the revision and the dry-run it was made on, so a new revision, a
rerun on a moved baseline or a reopen starts the count over. Each reviewer's latest decision
is the one that counts; approvals are counted per distinct reviewer.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

from approvals.models import ApprovalPolicy, ApprovalRule, Review
from changeapi.dryrun.tracing import LOCK_STRENGTH
from changeapi.models import ChangeRequest, DryRun, Revision
from changeapi.selectors import latest_dry_run, latest_revision

BOT_GROUP = "bots"
"""Members of this Django group are bot accounts: they approve only where a policy allows it."""

SEVERITIES = ("info", "low", "medium", "high", "critical")
SEVERITY_RANK = {severity: rank for rank, severity in enumerate(SEVERITIES)}
LOCK_MODES = tuple(LOCK_STRENGTH)


def is_bot(user: AbstractBaseUser | AnonymousUser) -> bool:
    """Whether the account is a bot (CI, integration) rather than a person."""
    groups = getattr(user, "groups", None)
    return bool(user.is_authenticated and groups is not None and groups.filter(name=BOT_GROUP).exists())


def _statements(report: dict[str, Any]) -> list[dict[str, Any]]:
    statements = report.get("statements")
    return [s for s in statements if isinstance(s, dict)] if isinstance(statements, list) else []


def _findings_at_least(report: dict[str, Any], threshold: str) -> list[str]:
    findings = report.get("findings")
    if not isinstance(findings, list):
        return []
    reasons = []
    for finding in findings:
        if not isinstance(finding, dict):
            continue
        rank = SEVERITY_RANK.get(str(finding.get("severity", "")))
        if rank is None or rank < SEVERITY_RANK[threshold]:
            continue
        reason = f"{finding['severity']} finding"
        if finding.get("code"):
            reason += f" {finding['code']}"
        if isinstance(finding.get("statement_index"), int):
            reason += f" at statement {finding['statement_index']}"
        if finding.get("title"):
            reason += f": {finding['title']}"
        reasons.append(reason)
    return reasons


def _created_by_change(statements: list[dict[str, Any]]) -> set[str]:
    """Tables the change itself creates: locking, scanning or rewriting them blocks nobody."""
    return {name for s in statements for name in s.get("created_relations") or [] if isinstance(name, str)}


def _locks_at_least(report: dict[str, Any], threshold: str, table: str) -> list[str]:
    statements = _statements(report)
    created = _created_by_change(statements)
    seen: set[tuple[str, str]] = set()
    reasons = []
    for statement in statements:
        for lock in statement.get("locks") or []:
            if not isinstance(lock, dict):
                continue
            locked_table = lock.get("table") or lock.get("relation") or ""
            mode = str(lock.get("mode", ""))
            if locked_table in created or (table and locked_table != table):
                continue
            if LOCK_STRENGTH.get(mode, -1) < LOCK_STRENGTH[threshold] or (locked_table, mode) in seen:
                continue
            seen.add((locked_table, mode))
            reasons.append(f"statement {statement.get('index')} takes {mode} on {locked_table}")
    return reasons


def _tables_touched(report: dict[str, Any], key: str, table: str, verb: str) -> list[str]:
    statements = _statements(report)
    created = _created_by_change(statements)
    reasons = []
    for statement in statements:
        entries = statement.get(key) or []
        names = [e.get("table") if isinstance(e, dict) else e for e in entries]
        for name in names:
            if name and name not in created and (not table or name == table):
                reasons.append(f"statement {statement.get('index')} {verb} {name}")
    return reasons


def rule_matches(*, kind: str, threshold: str, table: str, report: dict[str, Any] | None) -> list[str]:
    """Why a risk rule applies to a dry-run report, one reason per hit; empty when it does not.

    The report is read defensively: a key the engine does not (yet) write means nothing was
    found, never an error.
    """
    if not isinstance(report, dict):
        return []
    if kind == ApprovalRule.Kind.FINDING_SEVERITY_AT_LEAST:
        return _findings_at_least(report, threshold)
    if kind == ApprovalRule.Kind.LOCK_MODE_AT_LEAST:
        return _locks_at_least(report, threshold, table)
    if kind == ApprovalRule.Kind.REWRITES_TABLE:
        return _tables_touched(report, "rewrites", table, "rewrites")
    if kind == ApprovalRule.Kind.SCANS_TABLE:
        return _tables_touched(report, "sequential_scans", table, "scans")
    return []


@dataclass(frozen=True)
class Requirement:
    """Approvals needed from one group, and why."""

    group: str
    approvals_required: int
    reasons: tuple[str, ...]
    approved_by: tuple[str, ...]

    @property
    def satisfied(self) -> bool:
        return len(self.approved_by) >= self.approvals_required


@dataclass(frozen=True)
class ApprovalStatus:
    """Where the latest revision of a change request stands against its project's policy."""

    revision: Revision
    dry_run: DryRun | None
    required_approvals: int
    approved_by: tuple[str, ...]
    changes_requested_by: tuple[str, ...]
    requirements: tuple[Requirement, ...] = field(default_factory=tuple)

    @property
    def satisfied(self) -> bool:
        return len(self.approved_by) >= self.required_approvals and all(r.satisfied for r in self.requirements)


def effective_reviews(*, revision: Revision, dry_run: DryRun | None) -> list[Review]:
    """Each reviewer's latest decision on this revision, made on this dry-run."""
    if dry_run is None:
        return []
    latest: dict[int, Review] = {}
    for review in revision.reviews.filter(dry_run=dry_run).select_related("reviewer").order_by("id"):
        latest[review.reviewer_id] = review
    return list(latest.values())


def _group_members(reviews: Iterable[Review]) -> dict[str, set[str]]:
    """Group name -> usernames of the given approvers who belong to it (membership as of now)."""
    members: dict[str, set[str]] = {}
    for review in reviews:
        for name in review.reviewer.groups.values_list("name", flat=True):
            members.setdefault(name, set()).add(review.reviewer.get_username())
    return members


def approval_status(*, change_request: ChangeRequest) -> ApprovalStatus:
    """Evaluate the project's policy on the latest revision and its latest dry-run."""
    project = change_request.project
    revision = latest_revision(change_request)
    dry_run = latest_dry_run(revision)
    reviews = effective_reviews(revision=revision, dry_run=dry_run)
    approvals = [r for r in reviews if r.decision == Review.Decision.APPROVE]
    approved_by = tuple(sorted(r.reviewer.get_username() for r in approvals))
    changes_requested_by = tuple(
        sorted(r.reviewer.get_username() for r in reviews if r.decision == Review.Decision.REQUEST_CHANGES)
    )
    policy = ApprovalPolicy.objects.filter(project=project).prefetch_related("group_requirements__group").first()
    requirements: list[Requirement] = []
    if policy is not None:
        members = _group_members(approvals)
        report = dry_run.report if dry_run is not None and dry_run.status == DryRun.Status.SUCCEEDED else None
        for requirement in policy.group_requirements.all():
            name = requirement.group.name
            requirements.append(
                Requirement(
                    group=name,
                    approvals_required=1,
                    reasons=("required reviewer group",),
                    approved_by=tuple(sorted(members.get(name, set()))),
                )
            )
        for rule in policy.rules.select_related("group").order_by("position"):
            reasons = rule_matches(kind=rule.kind, threshold=rule.threshold, table=rule.table, report=report)
            if reasons:
                requirements.append(
                    Requirement(
                        group=rule.group.name,
                        approvals_required=rule.approvals,
                        reasons=tuple(reasons),
                        approved_by=tuple(sorted(members.get(rule.group.name, set()))),
                    )
                )
    return ApprovalStatus(
        revision=revision,
        dry_run=dry_run,
        required_approvals=project.required_approvals,
        approved_by=approved_by,
        changes_requested_by=changes_requested_by,
        requirements=tuple(requirements),
    )


def bot_approvals_allowed(*, change_request: ChangeRequest) -> bool:
    return ApprovalPolicy.objects.filter(project_id=change_request.project_id, allow_bot_approvals=True).exists()
