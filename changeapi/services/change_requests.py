"""Submitting change requests and their revisions, withdrawing and reopening them.

The state machine is drawn in docs/state-machine.md; review decisions live in
approvals/services/reviews.py and release in approvals/services/bundles.py.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from django.db import transaction
from django.db.models import Max

from changeapi.audit import AuditContext, audit_record
from changeapi.errors import InvalidState
from changeapi.intake.submission import describe_intake, parse_submission
from changeapi.models import Baseline, ChangeRequest, Project, Revision
from changeapi.selectors import accountable_people, baseline_plan, baseline_state, latest_revision
from changeapi.services.baselines import content_sha256
from changeapi.services.dry_runs import dry_run_queue
from changeapi.services.transitions import change_request_move
from changeapi.services.webhooks import webhooks_emit
from changeapi.types import User

OPEN_STATES = {
    ChangeRequest.Status.SUBMITTED,
    ChangeRequest.Status.DRY_RUNNING,
    ChangeRequest.Status.READY_FOR_REVIEW,
    ChangeRequest.Status.DRY_RUN_FAILED,
    ChangeRequest.Status.APPROVED,
    ChangeRequest.Status.CHANGES_REQUESTED,
}


def _current_baseline(project: Project) -> Baseline:
    baseline = project.current_baseline
    if baseline is None or baseline.status != Baseline.Status.READY:
        raise InvalidState("the project has no ready baseline yet: upload one and wait for its template to build")
    return baseline


def _new_revision(
    *,
    change_request: ChangeRequest,
    author: User,
    form: str,
    source: Any,
    number: int,
    contributors: Collection[User] = (),
    external_authors: Collection[str] = (),
) -> Revision:
    baseline = _current_baseline(change_request.project)
    intake = parse_submission(
        form=form,
        source=source,
        baseline=baseline_plan(baseline),
        base_state=baseline_state(baseline),
        engine=change_request.project.engine,
        project_settings=change_request.project.intake_settings,
    )
    revision = Revision.objects.create(
        change_request=change_request,
        number=number,
        form=form,
        source=source,
        sha256=content_sha256({"form": form, "source": source}),
        operations=describe_intake(intake),
        baseline=baseline,
        created_by=author,
        external_authors=sorted(set(external_authors)),
    )
    people = {user.pk for user in contributors} | accountable_people({author.pk})
    revision.contributors.set(sorted(people - {author.pk}))
    return revision


@transaction.atomic
def change_request_submit(
    *,
    project: Project,
    author: User,
    title: str,
    description: str = "",
    form: str,
    source: Any,
    context: AuditContext,
    contributors: Collection[User] = (),
    external_authors: Collection[str] = (),
) -> ChangeRequest:
    """Create a change request with its first revision and queue its dry-run.

    `contributors` and `external_authors` name who else wrote it (a pull request's author and
    pushers), so that none of them can approve it.

    The submission is parsed against the project's current baseline before anything is
    stored: a malformed one is refused with its location and leaves no trace.
    """
    Project.objects.select_for_update().get(pk=project.pk)  # serialises numbering per project
    number = (project.change_requests.aggregate(n=Max("number"))["n"] or 0) + 1
    change_request = ChangeRequest.objects.create(
        project=project, number=number, title=title, description=description, author=author
    )
    revision = _new_revision(
        change_request=change_request,
        author=author,
        form=form,
        source=source,
        number=1,
        contributors=contributors,
        external_authors=external_authors,
    )
    audit_record(
        context=context,
        action="change_request.submitted",
        target=change_request,
        project=project,
        after={"number": number, "status": change_request.status, "revision": revision.number, "sha256": revision.sha256},
    )
    dry_run_queue(revision=revision, context=context)
    webhooks_emit(project=project, event="change_request.submitted", subject=change_request)
    return change_request


@transaction.atomic
def revision_submit(
    *,
    change_request: ChangeRequest,
    author: User,
    form: str,
    source: Any,
    context: AuditContext,
    contributors: Collection[User] = (),
    external_authors: Collection[str] = (),
) -> Revision:
    """Add a revision: reviews of earlier revisions stop counting, and review starts over."""
    change_request = ChangeRequest.objects.select_for_update().get(pk=change_request.pk)
    if change_request.status not in OPEN_STATES:
        raise InvalidState(f"change request is {change_request.status}: it takes no new revisions")
    number = (change_request.revisions.aggregate(n=Max("number"))["n"] or 0) + 1
    revision = _new_revision(
        change_request=change_request,
        author=author,
        form=form,
        source=source,
        number=number,
        contributors=contributors,
        external_authors=external_authors,
    )
    change_request_move(
        change_request=change_request,
        status=ChangeRequest.Status.SUBMITTED,
        action="change_request.revised",
        context=context,
        after={"revision": number, "sha256": revision.sha256},
    )
    dry_run_queue(revision=revision, context=context)
    webhooks_emit(project=change_request.project, event="change_request.revised", subject=revision)
    return revision


@transaction.atomic
def change_request_withdraw(*, change_request: ChangeRequest, actor: User, context: AuditContext) -> ChangeRequest:
    """Take an open change request out of review; it can be reopened later."""
    change_request = ChangeRequest.objects.select_for_update().get(pk=change_request.pk)
    if change_request.status not in OPEN_STATES:
        raise InvalidState(f"change request is {change_request.status}: only open requests can be withdrawn")
    return change_request_move(
        change_request=change_request, status=ChangeRequest.Status.WITHDRAWN, action="change_request.withdrawn", context=context
    )


def _dry_run_again(*, change_request: ChangeRequest, action: str, context: AuditContext) -> ChangeRequest:
    """Return a locked change request to submitted and dry-run its latest revision on the current baseline.

    Reviews are bound to the dry-run they were made on, so the decisions made before stop
    counting: the new report is what reviewers must look at.
    """
    _current_baseline(change_request.project)
    revision = latest_revision(change_request)
    change_request_move(
        change_request=change_request,
        status=ChangeRequest.Status.SUBMITTED,
        action=action,
        context=context,
        after={"revision": revision.number},
    )
    dry_run_queue(revision=revision, context=context)
    return change_request


@transaction.atomic
def change_request_reopen(*, change_request: ChangeRequest, actor: User, context: AuditContext) -> ChangeRequest:
    """Bring a withdrawn change request back to review with a fresh dry-run of its latest revision.

    Only withdrawn requests reopen: a rejection is the reviewers' final word, and a released
    change is in production.
    """
    change_request = ChangeRequest.objects.select_for_update().select_related("project").get(pk=change_request.pk)
    if change_request.status != ChangeRequest.Status.WITHDRAWN:
        raise InvalidState(f"change request is {change_request.status}: only withdrawn requests can be reopened")
    return _dry_run_again(change_request=change_request, action="change_request.reopened", context=context)
