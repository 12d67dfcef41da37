"""Approval policies read: what a revision needs, given its dry-run report, and what it has.

A review counts only for the revision and the dry-run it was made on, so a new revision, a
rerun on a moved baseline or a reopen starts the count over. Each reviewer's latest decision
is the one that counts; approvals are counted per distinct reviewer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

from approvals.models import ApprovalPolicy, ApprovalRule, Review
from changeapi.dryrun.contract import Report, StatementTrace
from changeapi.dryrun.tracing import LOCK_STRENGTH
from changeapi.models import ChangeRequest, DryRun, Revision
from changeapi.permissions import BOT_GROUP
from changeapi.selectors import dry_run_report, latest_dry_run, latest_revision

"""Members of this Django group are bot accounts: they approve only where a policy allows it."""

SEVERITIES = ("info", "low", "medium", "high", "critical")
SEVERITY_RANK = {severity: rank for rank, severity in enumerate(SEVERITIES)}
LOCK_MODES = tuple(LOCK_STRENGTH)


def is_bot(user: AbstractBaseUser | AnonymousUser) -> bool:
    """Whether the account is a bot (CI, integration) rather than a person."""
    groups = getattr(user, "groups", None)
    return bool(user.is_authenticated and groups is not None and groups.filter(name=BOT_GROUP).exists())


def _findings_at_least(report: Report, threshold: str) -> list[str]:
    reasons = []
    for finding in report.findings:
        rank = SEVERITY_RANK.get(finding.severity)
        if rank is None or rank < SEVERITY_RANK[threshold]:
            continue
        reason = f"{finding.severity} finding"
        if finding.code:
            reason += f" {finding.code}"
        if finding.statement_index is not None:
            reason += f" at statement {finding.statement_index + 1}"  # people count statements from 1
        if finding.title:
            reason += f": {finding.title}"
        reasons.append(reason)
    return reasons


def _created_by_change(report: Report) -> set[str]:
    """Tables the change itself creates: locking, scanning or rewriting them blocks nobody."""
    return {name for s in report.statements for name in s.created_relations}


def _locks_at_least(report: Report, threshold: str, table: str) -> list[str]:
    created = _created_by_change(report)
    seen: set[tuple[str, str]] = set()
    reasons = []
    for statement in report.statements:
        for lock in statement.locks or ():
            locked_table = lock.table or lock.relation
            if locked_table in created or (table and locked_table != table):
                continue
            if LOCK_STRENGTH.get(lock.mode, -1) < LOCK_STRENGTH[threshold] or (locked_table, lock.mode) in seen:
                continue
            seen.add((locked_table, lock.mode))
            reasons.append(f"statement {statement.index + 1} takes {lock.mode} on {locked_table}")
    return reasons


def _tables_touched(report: Report, tables_of: Callable[[StatementTrace], Iterable[str]], table: str, verb: str) -> list[str]:
    created = _created_by_change(report)
    reasons = []
    for statement in report.statements:
        for name in tables_of(statement):
            if name and name not in created and (not table or name == table):
                reasons.append(f"statement {statement.index + 1} {verb} {name}")
    return reasons


def rule_matches(*, kind: str, threshold: str, table: str, report: Report | None) -> list[str]:
    """Why a risk rule applies to a dry-run report, one reason per hit; empty when it does not.

    A report stored before a part existed reads as having none of it: nothing found, never an
    error.
    """
    if report is None:
        return []
    if kind == ApprovalRule.Kind.FINDING_SEVERITY_AT_LEAST:
        return _findings_at_least(report, threshold)
    if kind == ApprovalRule.Kind.LOCK_MODE_AT_LEAST:
        return _locks_at_least(report, threshold, table)
    if kind == ApprovalRule.Kind.REWRITES_TABLE:
        return _tables_touched(report, lambda s: s.rewrites, table, "rewrites")
    if kind == ApprovalRule.Kind.SCANS_TABLE:
        return _tables_touched(report, lambda s: (scan.table for scan in s.sequential_scans), table, "scans")
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
        report = dry_run_report(dry_run=dry_run) if dry_run is not None and dry_run.status == DryRun.Status.SUCCEEDED else None
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
