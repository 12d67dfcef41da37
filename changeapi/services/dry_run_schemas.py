"""Which schema a dry-run starts from: the replay of the baseline's migrations ("as the
migrations say"), or the project's latest schema snapshot restored ("as production is").

A project chooses with its `dry_run_schema` setting. A snapshot's template is named by the
snapshot's content and the seeding profile, built once per server like a baseline's and
registered the same way, so spares and the reaper treat both alike.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.conf import settings

from changeapi.caches import BoundedCache
from changeapi.dryrun.contract import SCHEMA_MIGRATIONS, SCHEMA_SNAPSHOT, SchemaSource
from changeapi.dryrun.drift import Catalog, catalog_from_json
from changeapi.dryrun.profile import ProductionProfile, seeded_template_name
from changeapi.dryrun.restore import RestorePlan, SnapshotNotRestorable, restore_plan
from changeapi.dryrun.run import snapshot_template_build, template_build
from changeapi.intake.plan import Plan
from changeapi.models import Baseline, DryRunSchema, Project, SchemaSnapshot, ShadowDatabase
from changeapi.services.table_stats import seeded_template_for
from changeapi.shadow.servers import ShadowServer

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DryRunTemplate:
    """The template a dry-run clones, what the report says of it, and, when it is a snapshot's,
    the snapshot's catalog (to name what production lacks)."""

    name: str
    source: SchemaSource
    catalog: Catalog | None = None


def snapshot_template_name(*, snapshot: SchemaSnapshot, profile: ProductionProfile | None) -> str:
    """The template restored from `snapshot` and seeded per `profile`: equal content, one template."""
    return seeded_template_name(f"{settings.SHADOW_DATABASE_PREFIX}snp_{snapshot.sha256[:24]}", profile)


def baseline_template_ensure(*, server: ShadowServer, baseline: Baseline, base: Plan, profile: ProductionProfile | None) -> str:
    """The baseline's template seeded per `profile`, built and registered if `server` lacks it."""
    name = seeded_template_for(baseline=baseline, profile=profile) if profile is not None else baseline.template_name
    if template_build(server=server, name=name, baseline=base, profile=profile):
        ShadowDatabase.objects.create(server=server.key, name=name, kind=ShadowDatabase.Kind.TEMPLATE, baseline=baseline)
    return name


def dry_run_template_choose(
    *, project: Project, baseline: Baseline, base: Plan, profile: ProductionProfile, server: ShadowServer
) -> DryRunTemplate:
    """The template for a dry-run of `project` on `server`, built if it is not there yet.

    With `dry_run_schema` "snapshot", the latest snapshot's template; a project without a
    snapshot, or whose snapshot the shadow cannot restore, falls back to the migrations and
    the report's `schema_source.fallback` says why. A shadow server failing while the
    template is restored is the dry-run's failure, as a baseline's template build is.
    """
    requested = project.dry_run_schema
    fallback = None
    if requested == DryRunSchema.SNAPSHOT:
        snapshot = project.schema_snapshots.order_by("-id").first()
        if snapshot is None:
            fallback = "it has no schema snapshot yet"
        else:
            try:
                return _snapshot_template(snapshot=snapshot, baseline=baseline, profile=profile, server=server)
            except SnapshotNotRestorable as exc:
                logger.warning("project %s: snapshot %s not restorable: %s", project.slug, snapshot.pk, exc.message)
                fallback = f"schema snapshot {snapshot.pk} cannot be restored on the shadow ({exc.message}, at {exc.pointer})"
    name = baseline_template_ensure(server=server, baseline=baseline, base=base, profile=profile)
    return DryRunTemplate(name=name, source=SchemaSource(schema=SCHEMA_MIGRATIONS, requested=requested, fallback=fallback))


# A snapshot's catalog and restore plan, by content: parsing every type, default and
# definition is done once per process, not on every dry-run of the same snapshot.
_restorable: BoundedCache[str, tuple[Catalog, RestorePlan]] = BoundedCache(8)


def _restorable_snapshot(snapshot: SchemaSnapshot) -> tuple[Catalog, RestorePlan]:
    """The snapshot's catalog and the plan that restores it; SnapshotNotRestorable if it cannot be."""
    cached = _restorable.get(snapshot.sha256)
    if cached is not None:
        return cached
    catalog = catalog_from_json(snapshot.content)
    value = (catalog, restore_plan(catalog))
    _restorable.put(snapshot.sha256, value)
    return value


def _snapshot_template(
    *, snapshot: SchemaSnapshot, baseline: Baseline, profile: ProductionProfile, server: ShadowServer
) -> DryRunTemplate:
    catalog, plan = _restorable_snapshot(snapshot)
    name = snapshot_template_name(snapshot=snapshot, profile=profile)
    built, notes = snapshot_template_build(server=server, name=name, plan=plan, profile=profile)
    if built:
        ShadowDatabase.objects.create(
            server=server.key, name=name, kind=ShadowDatabase.Kind.TEMPLATE, baseline=baseline, schema_snapshot=snapshot
        )
        for note in notes:
            logger.info("template %s: %s %s not restored: %s", name, note.kind.value, note.name, note.detail)
    # What the snapshot holds that no shadow restores is known from the plan alone, so every
    # dry-run of the template lists the same, whether it built the template or not.
    not_restored = tuple(f"{note.kind.value} {note.name}: {note.detail}" for note in plan.notes)
    source = SchemaSource(
        schema=SCHEMA_SNAPSHOT,
        requested=SCHEMA_SNAPSHOT,
        snapshot=snapshot.pk,
        snapshot_sha256=snapshot.sha256,
        snapshot_uploaded_at=snapshot.created_at.isoformat(),
        not_restored=not_restored,
    )
    return DryRunTemplate(name=name, source=source, catalog=catalog)
