"""Review decisions: who may decide what on which revision, and what each decision does."""

from __future__ import annotations

from django.db import transaction

from approvals.models import Review
from approvals.policies import ApprovalStatus, approval_status, bot_approvals_allowed, is_bot
from changeapi.audit import AuditContext, audit_record
from changeapi.errors import DomainError, InvalidState, PermissionDenied, StaleRevision
from changeapi.models import ChangeRequest, DryRun, Revision
from changeapi.permissions import REVIEW, has_project_perm
from changeapi.selectors import accountable_people, latest_dry_run, latest_revision
from changeapi.services.webhooks import webhooks_emit
from changeapi.types import User

Status = ChangeRequest.Status

# Where each decision may be made. Approving needs a successful dry-run; rejecting or asking
# for changes does not, so a reviewer can send back a change whose dry-run failed.
DECIDABLE: dict[str, frozenset[str]] = {
    Review.Decision.APPROVE: frozenset({Status.READY_FOR_REVIEW, Status.CHANGES_REQUESTED, Status.APPROVED}),
    Review.Decision.REJECT: frozenset(
        {Status.READY_FOR_REVIEW, Status.CHANGES_REQUESTED, Status.APPROVED, Status.DRY_RUN_FAILED}
    ),
    Review.Decision.REQUEST_CHANGES: frozenset(
        {Status.READY_FOR_REVIEW, Status.CHANGES_REQUESTED, Status.APPROVED, Status.DRY_RUN_FAILED}
    ),
}


class StaleDryRun(InvalidState):
    code = "stale-dry-run"
    title = "The dry-run ran on an older baseline"


def change_request_authors(change_request: ChangeRequest) -> set[int]:
    """Everyone who wrote part of the change, through any channel: its author, the authors and
    contributors of its revisions (pull request authors and pushers), and the people behind
    the bot accounts among them (an API key stands for whoever made it)."""
    revisions = change_request.revisions.all()
    accounts = {
        change_request.author_id,
        *revisions.values_list("created_by_id", flat=True),
        *Revision.contributors.through.objects.filter(revision__in=revisions).values_list("user_id", flat=True),
    }
    return accountable_people(accounts)


def _check_approver(*, change_request: ChangeRequest, revision: Revision, reviewer: User) -> DryRun:
    """Refuse an approval the policy does not allow; returns the dry-run being approved."""
    if is_bot(reviewer) and not bot_approvals_allowed(change_request=change_request):
        raise PermissionDenied("bot accounts cannot approve in this project: its approval policy does not allow it")
    if accountable_people({reviewer.pk}) & change_request_authors(change_request):
        raise PermissionDenied(
            "the author of a change request (or of one of its revisions, through any channel or API key) cannot approve it"
        )
    dry_run = latest_dry_run(revision)
    if dry_run is None or dry_run.status != DryRun.Status.SUCCEEDED:
        raise InvalidState("the latest dry-run of this revision has not succeeded")
    if dry_run.baseline_id != change_request.project.current_baseline_id:
        raise StaleDryRun("the latest dry-run ran on an older baseline: it must be rerun before anyone approves")
    return dry_run


def status_after_reviews(status: ApprovalStatus) -> str:
    """The open review state the effective decisions lead to (reject is handled apart)."""
    if status.changes_requested_by:
        return Status.CHANGES_REQUESTED
    if status.satisfied:
        return Status.APPROVED
    return Status.READY_FOR_REVIEW


def approval_summary(status: ApprovalStatus) -> dict[str, object]:
    return {
        "approved_by": list(status.approved_by),
        "required_approvals": status.required_approvals,
        "missing_groups": sorted({r.group for r in status.requirements if not r.satisfied}),
    }


@transaction.atomic
def review_decide(
    *,
    revision: Revision,
    reviewer: User,
    decision: str,
    comment: str = "",
    context: AuditContext,
) -> Review:
    """Record a decision on a revision and move the change request accordingly.

    The change request row is locked first, so two reviewers deciding at the same moment are
    serialised and both decisions count: the state is computed from every decision on record,
    not from the one at hand. A decision on a revision that is no longer the latest is
    refused: the reviewer did not see what would be released.
    """
    change_request = ChangeRequest.objects.select_for_update().select_related("project").get(pk=revision.change_request_id)
    project = change_request.project
    if not has_project_perm(reviewer, project, REVIEW):
        raise PermissionDenied("reviewing needs the review_change permission on this project")
    if decision not in Review.Decision.values:
        raise DomainError(f"decision must be one of {', '.join(Review.Decision.values)}")
    current = latest_revision(change_request)
    if current.pk != revision.pk:
        raise StaleRevision(f"revision {revision.number} was superseded by revision {current.number}")
    if change_request.status not in DECIDABLE[decision]:
        raise InvalidState(f"change request is {change_request.status}: it cannot be given '{decision}' now")
    dry_run: DryRun | None = latest_dry_run(revision)
    if decision == Review.Decision.APPROVE:
        dry_run = _check_approver(change_request=change_request, revision=revision, reviewer=reviewer)
    review = Review.objects.create(
        revision=revision, dry_run=dry_run, reviewer=reviewer, decision=decision, comment=comment, via=context.via
    )
    before = change_request.status
    status = approval_status(change_request=change_request)
    if decision == Review.Decision.REJECT:
        change_request.status = Status.REJECTED
    else:
        change_request.status = status_after_reviews(status)
    change_request.save(update_fields=["status", "updated_at"])
    audit_record(
        context=context,
        action=f"review.{decision}",
        target=change_request,
        project=project,
        before={"status": before},
        after={
            "status": change_request.status,
            "revision": revision.number,
            "dry_run": dry_run.pk if dry_run else None,
            "review": review.pk,
            "comment": comment[:500],
            **approval_summary(status),
        },
    )
    webhooks_emit(project=project, event="review.decided", subject=review)
    return review
