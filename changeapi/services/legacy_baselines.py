"""Legacy baselines: a project's first baseline derived from a schema snapshot alone.

A database that never had Django migrations has a catalog and nothing else. The snapshot is
restored on a fresh shadow as the job's own role, Django's `inspectdb` derives models there,
the models source goes through the `models` intake form like any proposal (so the initial
migration is the one `makemigrations` would write, without importing anything), and the
result becomes an ordinary migrations-form baseline.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass

import psycopg
from django.conf import settings
from django.db import DatabaseError, transaction
from django.utils import timezone

from changeapi.audit import AuditContext
from changeapi.dryrun.drift import catalog_from_json
from changeapi.dryrun.legacy import ReviewPoint, SnapshotNotRestorable, legacy_models_derive
from changeapi.errors import DomainError, InvalidState
from changeapi.intake.errors import IntakeError
from changeapi.intake.submission import parse_submission
from changeapi.models import Baseline, DatabaseEngine, SchemaSnapshot, ShadowDatabase
from changeapi.services.access_patterns import ShadowUnavailable
from changeapi.services.baselines import baseline_create_from_snapshot
from changeapi.services.shadows import shadow_restore_failure
from changeapi.shadow.servers import ShadowServerUnavailable, pick_postgresql_server
from changeapi.types import User


class SnapshotNotDerivable(DomainError):
    """A snapshot that is stored but cannot become a baseline; `errors` locate the values."""

    status = 422
    code = "snapshot-not-derivable"
    title = "No baseline can be derived from this snapshot"


@dataclass(frozen=True)
class MigrationFileText:
    app_label: str
    name: str
    path: str
    content: str


@dataclass(frozen=True)
class LegacyBaseline:
    """The baseline made from a snapshot, and what a reviewer reads before trusting it."""

    baseline: Baseline
    app_label: str
    models_source: str
    migration: MigrationFileText
    review_points: tuple[ReviewPoint, ...]


def legacy_baseline_create(*, snapshot: SchemaSnapshot, app_label: str, author: User, context: AuditContext) -> LegacyBaseline:
    """Derive models and their initial migration from `snapshot`, and record them as the
    project's next baseline (its template is built by the queued task, as for any baseline).

    The shadow work happens before the transaction: a refusal at any step (a malformed value,
    a name Django cannot quote, models the intake cannot read) stores nothing.
    """
    project = snapshot.project
    if project.engine != DatabaseEngine.POSTGRESQL:
        raise InvalidState(f"legacy baselines are derived from PostgreSQL snapshots; project {project.slug} is {project.engine}")
    catalog = catalog_from_json(snapshot.content)
    if not catalog.tables:
        raise SnapshotNotDerivable("the snapshot lists no tables", errors=[{"detail": "no tables", "pointer": "/tables"}])
    try:
        server = pick_postgresql_server(engine=project.engine, engine_version=project.engine_version)
    except ShadowServerUnavailable as exc:
        raise ShadowUnavailable(str(exc)) from exc
    name = f"{settings.SHADOW_DATABASE_PREFIX}legacy_{uuid.uuid4().hex[:16]}"
    row = ShadowDatabase.objects.create(server=server.key, name=name, kind=ShadowDatabase.Kind.CLONE)
    try:
        derived = legacy_models_derive(server, catalog=catalog, name=name)
    except SnapshotNotRestorable as exc:
        raise SnapshotNotDerivable(exc.message, errors=[{"detail": exc.message, "pointer": exc.pointer}]) from None
    except ShadowServerUnavailable as exc:
        raise ShadowUnavailable(str(exc)) from exc
    except (psycopg.Error, DatabaseError) as exc:
        raise shadow_restore_failure(exc, refusal=SnapshotNotDerivable, what="the snapshot") from exc
    finally:
        ShadowDatabase.objects.filter(pk=row.pk).update(dropped_at=timezone.now())
    migration = _initial_migration(
        app_label=app_label, models_source=derived.source, engine=project.engine, intake_settings=project.intake_settings
    )
    with transaction.atomic():
        baseline = baseline_create_from_snapshot(
            project=project,
            author=author,
            files=[asdict(migration)],
            snapshot_id=snapshot.pk,
            review_points=len(derived.review_points),
            context=context,
        )
    return LegacyBaseline(
        baseline=baseline,
        app_label=app_label,
        models_source=derived.source,
        migration=migration,
        review_points=derived.review_points,
    )


def _initial_migration(
    *, app_label: str, models_source: str, engine: str, intake_settings: dict[str, object]
) -> MigrationFileText:
    """The migration `makemigrations` would write for the models, read by the models intake
    form against an empty state (the models are never imported)."""
    path = f"{app_label}/models.py"
    try:
        intake = parse_submission(
            form="models",
            source={"apps": [{"app_label": app_label, "content": models_source, "path": path}]},
            baseline=None,
            base_state=None,
            engine=engine,
            project_settings=intake_settings,
        )
    except IntakeError as exc:
        detail = f"the models inspectdb derived cannot be read: {exc.message}"
        raise SnapshotNotDerivable(detail, errors=[{"detail": exc.message, **exc.location.as_dict()}]) from None
    files = sorted(intake.files.items())
    if len(files) != 1:
        raise SnapshotNotDerivable(f"the derived models make {len(files)} migrations, not one initial migration")
    (label, name), content = files[0]
    return MigrationFileText(app_label=label, name=name, path=f"{label}/migrations/{name}.py", content=content)
