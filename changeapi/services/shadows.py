"""Keeping shadow servers clean and knowing whether they are up.

The reaper drops only databases that carry the service's prefix AND are in its registry
(or are an interrupted template build of its own), never anything else on the server.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

import psycopg
from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from changeapi.models import Baseline, DryRun, Project, ShadowDatabase
from changeapi.shadow import provision
from changeapi.shadow.servers import ShadowServer, ShadowServerUnavailable, configured_servers

logger = logging.getLogger(__name__)


@dataclass
class ReapResult:
    server: str
    dropped: list[str]
    kept: list[str]
    error: str = ""


def _clone_in_use(row: ShadowDatabase) -> bool:
    """A clone is in use while its job runs under a live lease."""
    if row.dry_run_id is None:
        # A bundle being sealed works on a clone of its own: in use for as long as a lease lasts.
        lease = dt.timedelta(seconds=settings.SCHEMAGATE_DRY_RUN_LEASE_SECONDS)
        return row.created_at > timezone.now() - lease
    return DryRun.objects.filter(pk=row.dry_run_id, status=DryRun.Status.RUNNING, lease_expires_at__gte=timezone.now()).exists()


def _template_in_use(row: ShadowDatabase) -> bool:
    """Templates of current baselines, and of baselines with pending jobs, are kept."""
    if row.baseline_id is None:
        return False
    baseline = Baseline.objects.filter(pk=row.baseline_id).first()
    if baseline is None:
        return False
    same_content = Baseline.objects.filter(sha256=baseline.sha256)
    if Project.objects.filter(current_baseline__in=same_content).exists():
        return True
    return DryRun.objects.filter(baseline__in=same_content, status__in=[DryRun.Status.QUEUED, DryRun.Status.RUNNING]).exists()


def shadows_reap_server(server: ShadowServer) -> ReapResult:
    prefix = settings.SHADOW_DATABASE_PREFIX
    result = ReapResult(server=server.key, dropped=[], kept=[])
    try:
        names = provision.databases_with_prefix(server, prefix)
    except ShadowServerUnavailable as exc:
        result.error = str(exc)
        return result
    registry = {
        row.name: row
        for row in ShadowDatabase.objects.filter(server=server.key).filter(Q(dropped_at__isnull=True) | Q(name__in=names))
    }
    for name in names:
        row = registry.get(name)
        if row is None:
            if name.endswith("_building") and provision.build_abandoned(server, name.removesuffix("_building")):
                provision.clone_drop(server, name)
                result.dropped.append(name)
            else:
                result.kept.append(name)  # not ours by the registry: never touched
            continue
        busy = _clone_in_use(row) if row.kind == ShadowDatabase.Kind.CLONE else _template_in_use(row)
        if busy:
            result.kept.append(name)
            continue
        try:
            provision.clone_drop(server, name)
        except psycopg.Error as exc:
            logger.warning("could not drop %s on %s: %s", name, server.key, exc)
            result.kept.append(name)
            continue
        ShadowDatabase.objects.filter(server=server.key, name=name, dropped_at__isnull=True).update(dropped_at=timezone.now())
        result.dropped.append(name)
    return result


def shadows_reap() -> list[ReapResult]:
    """Reap every configured shadow server."""
    return [shadows_reap_server(server) for server in configured_servers()]


@dataclass
class ServerHealth:
    server: str
    available: bool
    version: int | None
    shadow_databases: int | None
    error: str = ""


def shadow_servers_health() -> list[ServerHealth]:
    health = []
    for server in configured_servers():
        try:
            version = server.server_version()
            count = len(provision.databases_with_prefix(server, settings.SHADOW_DATABASE_PREFIX))
            health.append(ServerHealth(server=server.key, available=True, version=version, shadow_databases=count))
        except (ShadowServerUnavailable, psycopg.Error) as exc:
            health.append(ServerHealth(server=server.key, available=False, version=None, shadow_databases=None, error=str(exc)))
    return health
