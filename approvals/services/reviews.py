"""Review decisions: who may decide what on which revision, and what each decision does."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from approvals.audit import AuditContext, audit_record
from approvals.models import Review
from changeapi.errors import DomainError, InvalidState, PermissionDenied, StaleRevision
from changeapi.models import ChangeRequest, DryRun, Revision
from changeapi.permissions import REVIEW, has_project_perm
from changeapi.selectors import latest_dry_run, latest_revision

DECIDABLE = {
    ChangeRequest.Status.READY_FOR_REVIEW,
    ChangeRequest.Status.CHANGES_REQUESTED,
    ChangeRequest.Status.APPROVED,
}


def approvals_count(revision: Revision) -> int:
    """Distinct reviewers whose latest decision on this revision is approve."""
    latest: dict[int, str] = {}
    for reviewer_id, decision in revision.reviews.order_by("id").values_list("reviewer_id", "decision"):
        latest[reviewer_id] = decision
    return sum(1 for decision in latest.values() if decision == Review.Decision.APPROVE)


@transaction.atomic
def review_decide(
    *,
    revision: Revision,
    reviewer: AbstractBaseUser,
    decision: str,
    comment: str = "",
    context: AuditContext,
) -> Review:
    """Record a decision on a revision and move the change request accordingly.

    The change request row is locked first, so two reviewers deciding at the same moment are
    serialised and both decisions count. A decision on a revision that is no longer the latest
    is refused: the reviewer did not see what would be released.
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
    if change_request.status not in DECIDABLE:
        raise InvalidState(f"change request is {change_request.status}: it cannot be reviewed now")
    if decision == Review.Decision.APPROVE:
        if change_request.author_id == reviewer.pk:
            raise PermissionDenied("the author of a change request cannot approve it")
        dry_run = latest_dry_run(revision)
        if dry_run is None or dry_run.status != DryRun.Status.SUCCEEDED:
            raise InvalidState("the latest dry-run of this revision has not succeeded")
        if dry_run.baseline_id != project.current_baseline_id:
            raise InvalidState("the latest dry-run ran on an older baseline: rerun it before approving")
    review = Review.objects.create(revision=revision, reviewer=reviewer, decision=decision, comment=comment)
    before = change_request.status
    if decision == Review.Decision.REJECT:
        change_request.status = ChangeRequest.Status.REJECTED
    elif decision == Review.Decision.REQUEST_CHANGES:
        change_request.status = ChangeRequest.Status.CHANGES_REQUESTED
    elif approvals_count(revision) >= project.required_approvals:
        change_request.status = ChangeRequest.Status.APPROVED
    else:
        change_request.status = ChangeRequest.Status.READY_FOR_REVIEW
    change_request.save(update_fields=["status", "updated_at"])
    audit_record(
        context=context,
        action=f"review.{decision}",
        target=change_request,
        project=project,
        before={"status": before},
        after={"status": change_request.status, "revision": revision.number, "review": review.pk, "comment": comment[:500]},
    )
    return review
