"""Post-deploy verification of a bundle: production's schema snapshot against the schema the
bundle was meant to leave, object by object."""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from approvals.models import BundleVerification, ReleaseBundle
from changeapi.audit import AuditContext, audit_record
from changeapi.dryrun.drift import catalog_from_json, drift_compare
from changeapi.errors import DomainError, InvalidState, PermissionDenied
from changeapi.models import SchemaSnapshot
from changeapi.permissions import RELEASE, has_project_perm
from changeapi.services.schema_snapshots import baseline_catalog, snapshot_catalog
from changeapi.services.webhooks import webhooks_emit
from changeapi.shadow.servers import ShadowServerUnavailable
from changeapi.types import User

logger = logging.getLogger(__name__)


def bundle_expected_catalog(*, bundle: ReleaseBundle) -> dict[str, Any]:
    """The catalog the bundle leaves: that of the baseline sealing it created.

    That baseline is the previous one's migrations plus exactly the bundle's files, and its
    template is built by the same apply path as every dry-run, so it is the reliable picture
    of "after the bundle" (read on a clone; built first if this server lacks it).
    """
    if bundle.advanced_baseline is None:
        raise InvalidState(f"bundle {bundle.number} predates verification: the baseline it created is not recorded")
    return baseline_catalog(project=bundle.project, baseline=bundle.advanced_baseline)


def bundle_verify_schema(
    *, bundle: ReleaseBundle, snapshot: SchemaSnapshot, actor: User, context: AuditContext
) -> BundleVerification:
    """Compare a snapshot of production, read after the bundle was applied, with what the
    bundle was meant to leave, and record the outcome on the bundle.

    The expected catalog is read on a shadow clone first, outside any transaction of the
    service database; the outcome, its audit event and its webhook are then written in one.
    """
    if not has_project_perm(actor, bundle.project, RELEASE):
        raise PermissionDenied("verifying a bundle needs the release_bundle permission on this project")
    if snapshot.project_id != bundle.project_id:
        raise DomainError(f"schema snapshot {snapshot.pk} belongs to another project")
    if bundle.applied_at is None:
        raise InvalidState(f"bundle {bundle.number} is not marked applied yet")
    if snapshot.created_at < bundle.applied_at:
        raise InvalidState(f"schema snapshot {snapshot.pk} was uploaded before bundle {bundle.number} was applied")
    actual = snapshot_catalog(snapshot=snapshot)
    expected = bundle_expected_catalog(bundle=bundle)
    report = drift_compare(expected=catalog_from_json(expected), actual=actual)
    return _record(
        bundle=bundle, snapshot=snapshot, expected=expected, differences=report.as_dict()["items"], actor=actor, context=context
    )


@transaction.atomic
def _record(
    *,
    bundle: ReleaseBundle,
    snapshot: SchemaSnapshot,
    expected: dict[str, Any],
    differences: list[dict[str, Any]],
    actor: User,
    context: AuditContext,
) -> BundleVerification:
    locked = ReleaseBundle.objects.select_for_update(of=("self",)).select_related("project").defer("archive").get(pk=bundle.pk)
    previous = BundleVerification.objects.filter(bundle=locked).first()
    status = BundleVerification.Status.FAILED if differences else BundleVerification.Status.VERIFIED
    verification, _ = BundleVerification.objects.update_or_create(
        bundle=locked,
        defaults={
            "snapshot": snapshot,
            "status": status,
            "expected": expected,
            "differences": differences,
            "verified_by": actor,
            "verified_at": timezone.now(),
        },
    )
    event = "bundle.verified" if status == BundleVerification.Status.VERIFIED else "bundle.verification_failed"
    audit_record(
        context=context,
        action=event,
        target=locked,
        project=locked.project,
        before={"status": previous.status, "snapshot": previous.snapshot_id} if previous else None,
        after={
            "status": status,
            "snapshot": snapshot.pk,
            "differences": [{k: d[k] for k in ("kind", "status", "name", "table")} for d in differences][:100],
        },
    )
    webhooks_emit(project=locked.project, event=event, subject=locked)
    return verification


def bundles_verify_pending(*, snapshot: SchemaSnapshot, context: AuditContext) -> list[BundleVerification]:
    """Verify, against a newly uploaded snapshot, the project's bundles applied before it that
    are not verified yet or whose verification failed: the first snapshot after a deploy is the
    one that shows its outcome, and one after production was fixed is the re-check.

    A bundle already compared with this snapshot or a later one is left as it is, so a repeated
    delivery, or a late one overtaken by a newer upload, changes nothing. Acts as the uploader,
    who must hold release_bundle; otherwise the bundles wait for an explicit verification. A
    bundle that cannot be verified now (no shadow server, say) is logged and left for an
    explicit verification rather than failing the upload's task.
    """
    if not has_project_perm(snapshot.created_by, snapshot.project, RELEASE):
        return []
    pending = (
        ReleaseBundle.objects.filter(project=snapshot.project, applied_at__lte=snapshot.created_at)
        .filter(Q(verification__isnull=True) | Q(verification__status=BundleVerification.Status.FAILED))
        .exclude(verification__snapshot_id__gte=snapshot.pk)
        .select_related("project", "advanced_baseline")
        .defer("archive", "advanced_baseline__source")
        .order_by("number")
    )
    verified = []
    for bundle in pending:
        try:
            verified.append(bundle_verify_schema(bundle=bundle, snapshot=snapshot, actor=snapshot.created_by, context=context))
        except (ShadowServerUnavailable, DomainError) as exc:
            logger.warning("bundle %s: not verified against snapshot %s: %s", bundle.pk, snapshot.pk, exc)
    return verified
