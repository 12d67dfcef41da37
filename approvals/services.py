"""Review decisions and bundle sealing: the two ways a change request moves toward production."""

from __future__ import annotations

import hashlib
import json

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Max

from approvals.audit import AuditContext, audit_record
from approvals.bundles.archive import archive_build
from approvals.bundles.contents import BundleEntry, bundle_files
from approvals.models import BundleItem, ReleaseBundle, Review
from changeapi.errors import DomainError, InvalidState, PermissionDenied, StaleRevision
from changeapi.models import ChangeRequest, DryRun, Project, Revision
from changeapi.permissions import RELEASE, REVIEW, has_project_perm
from changeapi.selectors import baseline_plan, latest_dry_run, latest_revision, revision_plan

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


def _entry(change_request: ChangeRequest) -> tuple[BundleEntry, Revision]:
    revision = latest_revision(change_request)
    dry_run = latest_dry_run(revision)
    if change_request.status != ChangeRequest.Status.APPROVED:
        raise InvalidState(f"change request #{change_request.number} is {change_request.status}, not approved")
    if dry_run is None or dry_run.status != DryRun.Status.SUCCEEDED or dry_run.report is None:
        raise InvalidState(f"change request #{change_request.number} has no successful dry-run")
    if dry_run.baseline_id != change_request.project.current_baseline_id:
        raise InvalidState(f"change request #{change_request.number} was dry-run on an older baseline")
    reviews = [
        {"reviewer": r.reviewer.get_username(), "decision": r.decision, "at": r.created_at.isoformat()}
        for r in revision.reviews.select_related("reviewer").order_by("id")
    ]
    entry = BundleEntry(
        number=change_request.number,
        title=change_request.title,
        author=change_request.author.get_username(),
        revision=revision.number,
        revision_sha256=revision.sha256,
        plan=revision_plan(revision),
        report=dry_run.report,
        dry_run_id=dry_run.pk,
        reviews=reviews,
    )
    return entry, revision


@transaction.atomic
def bundle_seal(
    *, project: Project, change_requests: list[ChangeRequest], actor: AbstractBaseUser, context: AuditContext
) -> ReleaseBundle:
    """Pack approved change requests, in the given order, into a signed archive."""
    if not has_project_perm(actor, project, RELEASE):
        raise PermissionDenied("releasing needs the release_bundle permission on this project")
    if not change_requests:
        raise DomainError("a bundle needs at least one change request")
    if len({cr.pk for cr in change_requests}) != len(change_requests):
        raise DomainError("a change request appears twice in the bundle")
    project = Project.objects.select_for_update().get(pk=project.pk)
    locked = {
        cr.pk: cr
        for cr in ChangeRequest.objects.select_for_update()
        .select_related("project", "author")
        .filter(pk__in=[cr.pk for cr in change_requests])
    }
    ordered = [locked[cr.pk] for cr in change_requests]
    for cr in ordered:
        if cr.project_id != project.pk:
            raise DomainError(f"change request #{cr.number} belongs to another project")
    prepared = [_entry(cr) for cr in ordered]
    baseline = project.current_baseline
    assert baseline is not None
    number = (project.bundles.aggregate(n=Max("number"))["n"] or 0) + 1
    files = bundle_files(
        project={
            "slug": project.slug,
            "engine": project.engine,
            "engine_version": project.engine_version,
            "baseline": baseline.version,
        },
        bundle_number=number,
        entries=[entry for entry, _ in prepared],
        leaves=baseline_plan(baseline).leaf_names(),
        lock_timeout_ms=project.lock_timeout_ms,
    )
    archive = archive_build(files)
    bundle = ReleaseBundle.objects.create(
        project=project,
        number=number,
        archive=archive,
        sha256=hashlib.sha256(archive).hexdigest(),
        manifest=json.loads(files["manifest.json"]),
        created_by=actor,
    )
    for position, (cr, (_entry_of_cr, revision)) in enumerate(zip(ordered, prepared, strict=True), start=1):
        BundleItem.objects.create(bundle=bundle, change_request=cr, revision=revision, position=position)
        before = cr.status
        cr.status = ChangeRequest.Status.RELEASED
        cr.save(update_fields=["status", "updated_at"])
        audit_record(
            context=context,
            action="change_request.released",
            target=cr,
            project=project,
            before={"status": before},
            after={"status": cr.status, "bundle": number},
        )
    audit_record(
        context=context,
        action="bundle.sealed",
        target=bundle,
        project=project,
        after={"number": number, "sha256": bundle.sha256, "change_requests": [cr.number for cr in ordered]},
    )
    return bundle
