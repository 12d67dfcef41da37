"""Sealing release bundles from approved change requests."""

from __future__ import annotations

import hashlib
import json

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Max

from approvals.audit import AuditContext, audit_record
from approvals.bundles.archive import archive_build
from approvals.bundles.contents import BundleEntry, bundle_files
from approvals.models import BundleItem, ReleaseBundle
from changeapi.errors import DomainError, InvalidState, PermissionDenied
from changeapi.models import ChangeRequest, DryRun, Project, Revision
from changeapi.permissions import RELEASE, has_project_perm
from changeapi.selectors import baseline_plan, latest_dry_run, latest_revision, revision_plan


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
