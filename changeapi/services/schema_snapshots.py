"""Schema snapshots: uploading production's catalog, and its drift from the baseline's template."""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import sqlite3
import uuid
from collections.abc import Sequence
from typing import Any

import psycopg
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from changeapi import dispatch
from changeapi.audit import AuditContext, audit_record
from changeapi.caches import BoundedCache
from changeapi.dryrun.contract import SchemaDrift, StatementTrace
from changeapi.dryrun.drift import Catalog, DriftReport, catalog_from_json, drift_compare, drift_warnings
from changeapi.dryrun.templates import baseline_template_build
from changeapi.errors import DomainError, InvalidState
from changeapi.models import Baseline, Project, SchemaSnapshot, ShadowDatabase
from changeapi.selectors import baseline_plan
from changeapi.services.access_patterns import ShadowUnavailable
from changeapi.shadow.engine_catalogs import engine_template_catalog
from changeapi.shadow.servers import ENGINE_NAMES, AnyShadowServer, ShadowServerUnavailable, pick_server
from changeapi.types import User

logger = logging.getLogger(__name__)


class SnapshotEngineMismatch(DomainError):
    """A snapshot read on another engine than the project's: its catalog cannot be compared."""

    status = 422
    code = "snapshot-engine-mismatch"
    title = "The snapshot is of another engine"


def _sha256(content: dict[str, Any]) -> str:
    """As baselines are hashed (sorted keys, no whitespace): equal snapshots, equal digests."""
    return hashlib.sha256(json.dumps(content, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


@transaction.atomic
def schema_snapshot_upload(*, project: Project, content: dict[str, Any], author: User, context: AuditContext) -> SchemaSnapshot:
    """Record production's schema as the catalog query read it (validated by the caller).

    Only the catalog is stored, never data; the drift report is made from it on request,
    against whatever baseline is current then.
    """
    snapshot = SchemaSnapshot.objects.create(
        project=project,
        content=content,
        server_version=content["server_version"],
        server_version_num=content["server_version_num"],
        sha256=_sha256(content),
        table_count=len(content["tables"]),
        created_by=author,
    )
    audit_record(
        context=context,
        action="schema_snapshot.uploaded",
        target=snapshot,
        project=project,
        after={"sha256": snapshot.sha256, "tables": snapshot.table_count, "server_version": snapshot.server_version},
    )
    # The first snapshot after a deploy is what verifies the bundles applied before it.
    dispatch.enqueue_on_commit(dispatch.BUNDLES_VERIFY_SCHEMA, snapshot.pk)
    return snapshot


def catalog_read_errors() -> tuple[type[Exception], ...]:
    """The errors a shadow server of any engine raises while a catalog is read there: a server
    that fails then leaves the comparison undone, as an unreachable one does. MySQL's driver is
    an optional extra, so its error is named only when it is installed."""
    try:
        mysql_error: tuple[type[Exception], ...] = (importlib.import_module("MySQLdb").Error,)
    except ImportError:
        mysql_error = ()
    return (psycopg.Error, sqlite3.Error, *mysql_error)


# A template never changes under its name (the name comes from what it was built from), so its
# catalog is read once per process and server; callers only read the value.
_template_catalogs: BoundedCache[tuple[str, str], dict[str, Any]] = BoundedCache(32)


def _catalog_on_clone(*, server: AnyShadowServer, template: str, baseline: Baseline) -> dict[str, Any]:
    """The catalog of `template`, read on a clone of it as the admin connection, by the
    documented query of the server's engine.

    The clone is registered before it exists and marked dropped afterwards, so a crash leaves
    nothing the reaper does not know about. Read once per process for each template, so a
    dry-run of a project with a snapshot does not clone its template a second time.
    """
    cached = _template_catalogs.get((server.key, template))
    if cached is not None:
        return cached
    name = f"{settings.SHADOW_DATABASE_PREFIX}snap_{uuid.uuid4().hex[:16]}"
    row = ShadowDatabase.objects.create(server=server.key, name=name, kind=ShadowDatabase.Kind.CLONE, baseline=baseline)
    try:
        catalog = engine_template_catalog(server, template=template, name=name)
    finally:
        ShadowDatabase.objects.filter(pk=row.pk).update(dropped_at=timezone.now())
    _template_catalogs.put((server.key, template), catalog)
    return catalog


def baseline_catalog(*, project: Project, baseline: Baseline) -> dict[str, Any]:
    """The catalog of the baseline's template on a shadow server of the project's engine
    (built first if this server lacks it)."""
    try:
        server = pick_server(engine=project.engine, engine_version=project.engine_version)
        if baseline_template_build(server=server, name=baseline.template_name, baseline=baseline_plan(baseline)):
            ShadowDatabase.objects.create(
                server=server.key, name=baseline.template_name, kind=ShadowDatabase.Kind.TEMPLATE, baseline=baseline
            )
        return _catalog_on_clone(server=server, template=baseline.template_name, baseline=baseline)
    except ShadowServerUnavailable as exc:
        raise ShadowUnavailable(str(exc)) from exc


def schema_snapshot_drift(*, snapshot: SchemaSnapshot) -> tuple[Baseline, DriftReport]:
    """The snapshot against the project's current baseline, object by object."""
    baseline = snapshot.project.current_baseline
    if baseline is None:
        raise InvalidState("the project has no ready baseline yet: upload one before asking for drift")
    actual = snapshot_catalog(snapshot=snapshot)
    expected = catalog_from_json(baseline_catalog(project=snapshot.project, baseline=baseline))
    return baseline, drift_compare(expected=expected, actual=actual)


def snapshot_catalog(*, snapshot: SchemaSnapshot) -> Catalog:
    """The snapshot's catalog, refused when it was read on another engine than the project's
    is now (its engine was changed since): two engines' catalogs do not compare."""
    actual = catalog_from_json(snapshot.content)
    if actual.engine != snapshot.project.engine:
        raise InvalidState(
            f"schema snapshot {snapshot.pk} was read on {ENGINE_NAMES.get(actual.engine, actual.engine)}, and the project's "
            f"engine is {ENGINE_NAMES.get(snapshot.project.engine, snapshot.project.engine)}: upload a snapshot of its engine"
        )
    return actual


def dry_run_schema_drift(
    *, project: Project, baseline: Baseline, server: AnyShadowServer, template: str, statements: Sequence[StatementTrace]
) -> SchemaDrift | None:
    """The drifted objects a dry-run's statements touch, per the project's latest snapshot.

    `template` is the one the dry-run cloned: seeded or not, it has the baseline's schema, and
    it exists already, so no other template is built for the comparison. None when the
    project has no snapshot. A shadow server that cannot be reached for the comparison leaves
    the report without it (and logs why) rather than failing a dry-run that itself succeeded.
    """
    snapshot = project.schema_snapshots.order_by("-id").first()
    if snapshot is None:
        return None
    passing: tuple[type[Exception], ...] = (ShadowServerUnavailable, InvalidState, *catalog_read_errors())
    try:
        actual = snapshot_catalog(snapshot=snapshot)
        expected = catalog_from_json(_catalog_on_clone(server=server, template=template, baseline=baseline))
    except passing as exc:
        logger.warning("no drift check for project %s: %s", project.slug, exc)
        return None
    report = drift_compare(expected=expected, actual=actual)
    return SchemaDrift(
        snapshot=snapshot.pk,
        snapshot_uploaded_at=snapshot.created_at.isoformat(),
        baseline_version=baseline.version,
        drifted_objects=len(report.items),
        touched=drift_warnings(report, statements),
    )
