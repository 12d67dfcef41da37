"""Release bundles: sealing approved change requests into a signed archive, rebuilding one to
prove it reproducible, and marking one applied by a deploy pipeline.

Sealing runs the whole bundle on shadow clones first (the combined dry-run, then the rollback
trace), outside any transaction of the service database; only then, in one transaction, it
re-checks that nothing moved meanwhile and writes the bundle, the released statuses, the
next baseline and the audit events.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from approvals.bundles.archive import archive_build
from approvals.bundles.contents import BundledMigration, BundleEntry, RollbackStep, bundle_files, bundle_plan, renumber
from approvals.bundles.rollback import rollback_trace
from approvals.models import BundleItem, ReleaseBundle, Review
from approvals.policies import approval_status
from changeapi.audit import AuditContext, audit_record
from changeapi.dryrun.contract import Report, ReportError, to_json
from changeapi.dryrun.mysql_run import dry_run_execute_mysql
from changeapi.dryrun.mysql_session import template_build as mysql_template_build
from changeapi.dryrun.run import dry_run_execute, template_build
from changeapi.dryrun.sqlite_run import dry_run_execute_sqlite
from changeapi.dryrun.sqlite_session import template_build as sqlite_template_build
from changeapi.errors import DomainError, InvalidState, PermissionDenied
from changeapi.intake.plan import Plan
from changeapi.models import Baseline, ChangeRequest, DryRun, Project, Revision, ShadowDatabase
from changeapi.permissions import RELEASE, has_project_perm
from changeapi.selectors import baseline_plan, dry_run_report, latest_dry_run, latest_revision, revision_plan
from changeapi.services.baselines import baseline_advance
from changeapi.services.transitions import change_request_move
from changeapi.services.webhooks import webhooks_emit
from changeapi.shadow.engine_servers import MySqlShadowServer, SqliteShadowServer
from changeapi.shadow.servers import AnyShadowServer, ShadowServerUnavailable, pick_server
from changeapi.types import User

T = TypeVar("T")


class ShadowUnavailable(DomainError):
    status = 503
    code = "shadow-unavailable"
    title = "No shadow server is available"


class BundleDoesNotApply(InvalidState):
    code = "bundle-does-not-apply"
    title = "The bundle does not apply as a whole"


@dataclass
class Releasable:
    """A change request checked for release: the revision approved and the dry-run it passed."""

    change_request: ChangeRequest
    revision: Revision
    dry_run: DryRun
    entry: BundleEntry


@dataclass
class BuiltBundle:
    files: dict[str, bytes]
    archive: bytes
    bundled: list[BundledMigration]
    dry_run_report: Report

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.archive).hexdigest()


def _entry(change_request: ChangeRequest, *, revision: Revision, dry_run: DryRun, reviewed_until: Any = None) -> BundleEntry:
    reviews = Review.objects.filter(revision=revision).select_related("reviewer").order_by("id")
    if reviewed_until is not None:
        reviews = reviews.filter(created_at__lte=reviewed_until)
    report = dry_run_report(dry_run=dry_run)
    assert report is not None
    return BundleEntry(
        number=change_request.number,
        title=change_request.title,
        author=change_request.author.get_username(),
        revision=revision.number,
        revision_sha256=revision.sha256,
        plan=revision_plan(revision, dry_run.baseline),
        report=report,
        dry_run_id=dry_run.pk,
        reviews=[
            {
                "reviewer": review.reviewer.get_username(),
                "decision": review.decision,
                "at": review.created_at.isoformat(),
                "dry_run": review.dry_run_id,
            }
            for review in reviews
        ],
    )


def _releasable(change_request: ChangeRequest, project: Project) -> Releasable:
    """Approved on its latest revision, whose latest dry-run succeeded on the current baseline."""
    label = f"change request #{change_request.number}"
    revision = latest_revision(change_request)
    dry_run = latest_dry_run(revision)
    if change_request.status != ChangeRequest.Status.APPROVED:
        raise InvalidState(f"{label} is {change_request.status}, not approved")
    if not approval_status(change_request=change_request).satisfied:
        raise InvalidState(f"{label} lacks the approvals its policy requires on its latest dry-run")
    if dry_run is None or dry_run.status != DryRun.Status.SUCCEEDED or dry_run.report is None:
        raise InvalidState(f"{label} has no successful dry-run of its latest revision")
    if dry_run.baseline_id != project.current_baseline_id:
        raise InvalidState(f"{label} was dry-run on an older baseline: wait for its rerun on the current one")
    return Releasable(
        change_request=change_request,
        revision=revision,
        dry_run=dry_run,
        entry=_entry(change_request, revision=revision, dry_run=dry_run),
    )


def _baseline_settled(project: Project) -> Baseline:
    """The current baseline, provided no newer one is still building (or failed to build):
    a bundle sealed then would continue an outdated history."""
    baseline = project.current_baseline
    if baseline is None:
        raise InvalidState("the project has no ready baseline")
    newer = project.baselines.filter(version__gt=baseline.version).order_by("version").first()
    if newer is not None:
        raise InvalidState(f"baseline v{newer.version} is {newer.status}: bundles can be sealed once it is the current baseline")
    return baseline


def _on_clone(server: AnyShadowServer, baseline: Baseline, run: Callable[[str], T]) -> T:
    """Run `run(clone_name)` with the clone in the shadow registry, so a crash leaves no orphan."""
    name = f"{settings.SHADOW_DATABASE_PREFIX}bd_{uuid.uuid4().hex[:16]}"
    row = ShadowDatabase.objects.create(server=server.key, name=name, kind=ShadowDatabase.Kind.CLONE, baseline=baseline)
    try:
        return run(name)
    finally:
        ShadowDatabase.objects.filter(pk=row.pk).update(dropped_at=timezone.now())


def bundle_build(
    *, project: Project, baseline: Baseline, entries: list[BundleEntry], number: int, lock_timeout_ms: int
) -> BuiltBundle:
    """Dry-run the bundle as a whole on the baseline, trace its rollback, and pack the archive.

    Writes nothing but the shadow registry. The same inputs give the same archive, byte for
    byte. Raises BundleDoesNotApply (409) with the database's error when the combined plan
    fails, and ShadowUnavailable (503) when no shadow server can take it.
    """
    base = baseline_plan(baseline)
    bundled = renumber(entries, [(m.app_label, m.name) for m in base.migrations])
    plan = bundle_plan(bundled)
    try:
        server = pick_server(engine=project.engine, engine_version=project.engine_version)
        report, rollback = _runs(project, server, baseline=baseline, base=base, plan=plan, bundled=bundled)
    except ShadowServerUnavailable as exc:
        raise ShadowUnavailable(str(exc)) from exc
    files = bundle_files(
        project={
            "slug": project.slug,
            "engine": project.engine,
            "engine_version": project.engine_version,
            "baseline": {"version": baseline.version, "sha256": baseline.sha256},
        },
        bundle_number=number,
        bundled=bundled,
        combined_report=report,
        rollback=rollback,
        lock_timeout_ms=lock_timeout_ms,
    )
    return BuiltBundle(files=files, archive=archive_build(files), bundled=bundled, dry_run_report=report)


def _engine_runs(
    project: Project, server: AnyShadowServer, *, baseline: Baseline, base: Plan, plan: Plan
) -> tuple[Callable[[], bool], Callable[[str], Report]]:
    """For the server's engine: how to make sure the baseline's (unseeded) template is there
    (true when this call built it), and the combined dry-run on a clone of it. The forward SQL
    is what that engine's Django schema editor ran there, statement by statement (on SQLite,
    table remakes included)."""
    template = baseline.template_name
    if isinstance(server, MySqlShadowServer):
        return (
            lambda: mysql_template_build(server=server, name=template, baseline=base).built,
            lambda name: dry_run_execute_mysql(server=server, template=template, clone_name=name, baseline=base, change=plan),
        )
    if isinstance(server, SqliteShadowServer):
        return (
            lambda: sqlite_template_build(server=server, name=template, baseline=base).built,
            lambda name: dry_run_execute_sqlite(server=server, template=template, clone_name=name, baseline=base, change=plan),
        )
    return (
        lambda: template_build(server=server, name=template, baseline=base),
        lambda name: dry_run_execute(
            server=server,
            template=template,
            clone_name=name,
            baseline=base,
            change=plan,
            backfill_target_lock_ms=project.backfill_target_lock_ms,
        ),
    )


def _runs(
    project: Project, server: AnyShadowServer, *, baseline: Baseline, base: Plan, plan: Plan, bundled: list[BundledMigration]
) -> tuple[Report, list[RollbackStep]]:
    """The combined dry-run and the rollback trace, each on its own clone of the baseline's template."""
    template_ensure, forward = _engine_runs(project, server, baseline=baseline, base=base, plan=plan)
    if template_ensure():
        ShadowDatabase.objects.create(
            server=server.key, name=baseline.template_name, kind=ShadowDatabase.Kind.TEMPLATE, baseline=baseline
        )
    report = _on_clone(server, baseline, forward)
    if report.error is not None:
        raise _does_not_apply(report.error, bundled)
    rollback = _on_clone(
        server,
        baseline,
        lambda name: rollback_trace(server=server, template=baseline.template_name, clone_name=name, baseline=base, bundle=plan),
    )
    return report, rollback


def _does_not_apply(error: ReportError, bundled: list[BundledMigration]) -> BundleDoesNotApply:
    item = next((i for i in bundled if i.label == error.migration), None)
    where = f"{error.migration}" + (f" (change request #{item.entry.number})" if item else "")
    return BundleDoesNotApply(
        f"the change requests do not apply together on the current baseline: {where} fails: {error.message}",
        errors=[
            {
                "detail": error.message,
                "migration": error.migration,
                "change_request": item.entry.number if item else None,
                "operation_index": error.operation_index,
                "sqlstate": error.sqlstate,
            }
        ],
    )


def bundle_seal(*, project: Project, change_requests: list[ChangeRequest], actor: User, context: AuditContext) -> ReleaseBundle:
    """Pack approved change requests, in the given order, into a signed, reproducible archive.

    Each must be approved on its latest revision and dry-run on the current baseline; the
    bundle is then dry-run as a whole. Sealing releases the change requests and advances the
    baseline by the bundle's migrations (its template is rebuilt, and open change requests
    are rerun on it, once the transaction commits).
    """
    if not has_project_perm(actor, project, RELEASE):
        raise PermissionDenied("releasing needs the release_bundle permission on this project")
    if not change_requests:
        raise DomainError("a bundle needs at least one change request")
    if len({cr.pk for cr in change_requests}) != len(change_requests):
        raise DomainError("a change request appears twice in the bundle")
    for cr in change_requests:
        if cr.project_id != project.pk:
            raise DomainError(f"change request #{cr.number} belongs to another project")
    project = Project.objects.select_related("current_baseline").defer("current_baseline__source").get(pk=project.pk)
    baseline = _baseline_settled(project)
    fresh = ChangeRequest.objects.select_related("author").in_bulk([cr.pk for cr in change_requests])
    prepared = [_releasable(fresh[cr.pk], project) for cr in change_requests]
    number = (project.bundles.aggregate(n=Max("number"))["n"] or 0) + 1
    built = bundle_build(
        project=project,
        baseline=baseline,
        entries=[p.entry for p in prepared],
        number=number,
        lock_timeout_ms=project.lock_timeout_ms,
    )
    return _seal(project=project, baseline=baseline, prepared=prepared, built=built, number=number, actor=actor, context=context)


@transaction.atomic
def _seal(
    *,
    project: Project,
    baseline: Baseline,
    prepared: list[Releasable],
    built: BuiltBundle,
    number: int,
    actor: User,
    context: AuditContext,
) -> ReleaseBundle:
    """Write the bundle if nothing it was built from moved while it was being built."""
    project = (
        Project.objects.select_for_update(of=("self",))
        .select_related("current_baseline")
        .defer("current_baseline__source")
        .get(pk=project.pk)
    )
    if project.current_baseline_id != baseline.pk or _baseline_settled(project).pk != baseline.pk:
        raise InvalidState("the baseline moved while the bundle was being built: seal it again")
    if project.bundles.filter(number=number).exists():
        raise InvalidState(f"bundle {number} was sealed meanwhile: seal again")
    locked = ChangeRequest.objects.select_for_update().select_related("author").in_bulk([p.change_request.pk for p in prepared])
    for item in prepared:
        again = _releasable(locked[item.change_request.pk], project)
        if (again.revision.pk, again.dry_run.pk) != (item.revision.pk, item.dry_run.pk):
            raise InvalidState(f"change request #{item.change_request.number} changed while the bundle was being built")
    advanced = baseline_advance(
        project=project,
        migration_files=_baseline_files(built),
        documents=_baseline_documents(prepared, built.bundled),
        author=actor,
        bundle_number=number,
        context=context,
    )
    bundle = ReleaseBundle.objects.create(
        project=project,
        number=number,
        archive=built.archive,
        sha256=built.sha256,
        manifest=json.loads(built.files["manifest.json"]),
        baseline=baseline,
        advanced_baseline=advanced,
        dry_run_report=to_json(built.dry_run_report),
        created_by=actor,
    )
    for position, item in enumerate(prepared, start=1):
        cr = locked[item.change_request.pk]
        BundleItem.objects.create(
            bundle=bundle, change_request=cr, revision=item.revision, dry_run=item.dry_run, position=position
        )
        change_request_move(
            change_request=cr,
            status=ChangeRequest.Status.RELEASED,
            action="change_request.released",
            context=context,
            after={"bundle": number, "revision": item.revision.number},
        )
    audit_record(
        context=context,
        action="bundle.sealed",
        target=bundle,
        project=project,
        after={
            "number": number,
            "sha256": bundle.sha256,
            "change_requests": [p.change_request.number for p in prepared],
            "baseline": baseline.version,
            "advanced_baseline": advanced.version,
        },
    )
    webhooks_emit(project=project, event="bundle.sealed", subject=bundle)
    return bundle


def _baseline_files(built: BuiltBundle) -> list[dict[str, str]]:
    """The bundle's migration files, as a migrations-form baseline holds its history."""
    files = []
    for item in built.bundled:
        app_label, name = item.migration.app_label, item.migration.name
        content = built.files[f"migrations/{app_label}/{name}.py"].decode()
        files.append({"app_label": app_label, "name": name, "path": f"{app_label}/migrations/{name}.py", "content": content})
    return files


def _baseline_documents(prepared: list[Releasable], bundled: list[BundledMigration]) -> list[dict[str, Any]] | None:
    """The requests' migration documents, in bundle order, each under its final name; None
    unless every request was submitted as operations."""
    if any(item.revision.form != "operations" or not isinstance(item.revision.source, list) for item in prepared):
        return None
    documents = []
    for item in prepared:
        finals = [b.migration.name for b in bundled if b.entry is item.entry]
        sources = item.revision.source
        if len(sources) != len(finals):
            raise InvalidState(f"change request #{item.change_request.number}: its documents do not match its plan")
        documents += [{**document, "name": name} for document, name in zip(sources, finals, strict=True)]
    return documents


def bundle_rebuild(*, bundle: ReleaseBundle) -> BuiltBundle:
    """Build a sealed bundle again from what it was sealed from; the archive must be identical.

    The revisions, the dry-runs they passed, the reviews up to sealing, the baseline and the
    lock timeout are the inputs; the shadow runs are repeated. Nothing is written but the
    shadow registry.
    """
    if bundle.baseline is None:
        raise InvalidState("this bundle predates rebuilding: its baseline is not recorded")
    items = BundleItem.objects.filter(bundle=bundle).select_related("change_request__author", "revision", "dry_run")
    entries = []
    for item in items.order_by("position"):
        if item.dry_run is None:
            raise InvalidState("this bundle predates rebuilding: its dry-runs are not recorded")
        entries.append(
            _entry(item.change_request, revision=item.revision, dry_run=item.dry_run, reviewed_until=bundle.created_at)
        )
    return bundle_build(
        project=bundle.project,
        baseline=bundle.baseline,
        entries=entries,
        number=bundle.number,
        lock_timeout_ms=int(bundle.manifest.get("lock_timeout_ms", bundle.project.lock_timeout_ms)),
    )


@transaction.atomic
def bundle_mark_applied(*, bundle: ReleaseBundle, actor: User, context: AuditContext, note: str = "") -> ReleaseBundle:
    """Record that a deploy pipeline applied the bundle; once only, and in the audit trail."""
    bundle = ReleaseBundle.objects.select_for_update(of=("self",)).select_related("project").defer("archive").get(pk=bundle.pk)
    if not has_project_perm(actor, bundle.project, RELEASE):
        raise PermissionDenied("marking a bundle applied needs the release_bundle permission on this project")
    if bundle.applied_at is not None:
        raise InvalidState(f"bundle {bundle.number} was already marked applied at {bundle.applied_at.isoformat()}")
    bundle.applied_at = timezone.now()
    bundle.applied_by = actor
    bundle.save(update_fields=["applied_at", "applied_by"])
    audit_record(
        context=context,
        action="bundle.applied",
        target=bundle,
        project=bundle.project,
        before={"applied_at": None},
        after={"applied_at": bundle.applied_at.isoformat(), "sha256": bundle.sha256, "note": note[:500]},
    )
    return bundle
