"""Keeping shadow servers clean and knowing whether they are up; spare clones and chores.

The reaper drops only databases that carry the service's prefix AND are in its registry
(or are an interrupted template build of its own), never anything else on the server.
Spare clones of current templates are kept ready, so a dry-run takes one by a rename; the
chores that follow a dry-run (making the next spare, dropping the used clone) run after its
report is recorded, off the path the client waits on.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import psycopg
from django.conf import settings
from django.db import DatabaseError, IntegrityError, connection
from django.db.models import OuterRef, Q, Subquery
from django.utils import timezone

from changeapi.errors import DomainError
from changeapi.models import Baseline, DryRun, DryRunSchema, Project, SchemaSnapshot, ShadowDatabase
from changeapi.services.access_patterns import ShadowUnavailable
from changeapi.shadow import provision, sqlite_files
from changeapi.shadow.engine_servers import MySqlShadowServer, SqliteShadowServer
from changeapi.shadow.mysql_databases import database_drop, databases_named, job_users_drop, orphaned_job_users, spare_prefix
from changeapi.shadow.servers import ShadowServer, ShadowServerUnavailable, configured_servers, shadow_servers

logger = logging.getLogger(__name__)


@dataclass
class ReapResult:
    server: str
    dropped: list[str]
    kept: list[str]
    error: str = ""
    # Job roles whose database was already gone (a worker died between the two drops).
    dropped_roles: list[str] = field(default_factory=list)


def _clone_in_use(row: ShadowDatabase) -> bool:
    """A clone is in use while its job runs under a live lease."""
    if row.dry_run_id is None:
        # A bundle being sealed works on a clone of its own: in use for as long as a lease lasts.
        lease = dt.timedelta(seconds=settings.SCHEMAGATE_DRY_RUN_LEASE_SECONDS)
        return row.created_at > timezone.now() - lease
    return DryRun.objects.filter(pk=row.dry_run_id, status=DryRun.Status.RUNNING, lease_expires_at__gte=timezone.now()).exists()


def spare_names_for(template: str, count: int | None = None) -> list[str]:
    """The names of a template's first `count` spare clones (all it may have when None):
    `<prefix>sp_<template without prefix>_<n>`."""
    prefix = settings.SHADOW_DATABASE_PREFIX
    if count is None:
        count = max(int(settings.SHADOW_SPARE_CLONES), int(settings.SHADOW_SPARE_CLONES_MAX))
    return [f"{prefix}sp_{template.removeprefix(prefix)}_{n}" for n in range(count)]


def peak_concurrency(intervals: Sequence[tuple[dt.datetime, dt.datetime | None]]) -> int:
    """The most intervals open at one instant; one with no end is open until now."""
    events: list[tuple[dt.datetime, int]] = []
    now = timezone.now()
    for start, end in intervals:
        events.append((start, 1))
        events.append((end or now, -1))
    # At equal instants an end sorts before a start: back-to-back runs never overlap.
    events.sort(key=lambda event: (event[0], event[1]))
    peak = running = 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    return peak


def spare_demand(baseline_id: int | None) -> int:
    """How many spares the baseline's template should have ready: as many dry-runs of it as
    ran at the same time lately, so the next burst of the same size finds a spare for each;
    never fewer than SHADOW_SPARE_CLONES, never more than SHADOW_SPARE_CLONES_MAX."""
    floor = int(settings.SHADOW_SPARE_CLONES)
    ceiling = max(floor, int(settings.SHADOW_SPARE_CLONES_MAX))
    if baseline_id is None:
        return floor
    since = timezone.now() - dt.timedelta(seconds=int(settings.SHADOW_SPARE_DEMAND_WINDOW_SECONDS))
    rows = DryRun.objects.filter(baseline_id=baseline_id, started_at__gte=since).values_list("started_at", "finished_at")
    intervals = [(started, finished) for started, finished in rows if started is not None]
    return max(floor, min(ceiling, peak_concurrency(intervals)))


def template_of_spare(name: str) -> str:
    """The template a spare was cloned from (the inverse of `spare_names_for`)."""
    prefix = settings.SHADOW_DATABASE_PREFIX
    return prefix + name.removeprefix(f"{prefix}sp_").rsplit("_", 1)[0]


def retired_name_for(clone: str) -> str:
    """Where a used clone waits for its drop: `<prefix>rt_...`, out of the dry-run clones' names."""
    prefix = settings.SHADOW_DATABASE_PREFIX
    return f"{prefix}rt_{clone.removeprefix(prefix)}"


def _template_in_use(row: ShadowDatabase) -> bool:
    """Templates of current baselines, and of baselines with pending jobs, are kept; a
    snapshot's template while it is the latest snapshot of a project that dry-runs "as
    production is", or while jobs of its baseline are pending."""
    if row.schema_snapshot_id is not None and _snapshot_in_use(row.schema_snapshot_id):
        return True
    if row.baseline_id is None:
        return False
    if row.schema_snapshot_id is not None:
        return DryRun.objects.filter(
            baseline_id=row.baseline_id, status__in=[DryRun.Status.QUEUED, DryRun.Status.RUNNING]
        ).exists()
    baseline = Baseline.objects.filter(pk=row.baseline_id).first()
    if baseline is None:
        return False
    same_content = Baseline.objects.filter(sha256=baseline.sha256)
    if Project.objects.filter(current_baseline__in=same_content).exists():
        return True
    return DryRun.objects.filter(baseline__in=same_content, status__in=[DryRun.Status.QUEUED, DryRun.Status.RUNNING]).exists()


def _snapshot_in_use(snapshot_id: int) -> bool:
    """Whether a project dry-running "as production is" has a latest snapshot of this content."""
    sha256 = SchemaSnapshot.objects.filter(pk=snapshot_id).values_list("sha256", flat=True).first()
    if sha256 is None:
        return False
    latest = SchemaSnapshot.objects.filter(project=OuterRef("pk")).order_by("-id").values("sha256")[:1]
    projects = Project.objects.filter(dry_run_schema=DryRunSchema.SNAPSHOT).annotate(latest=Subquery(latest))
    return projects.filter(latest=sha256).exists()


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
        if row.kind == ShadowDatabase.Kind.CLONE:
            busy = _clone_in_use(row)
        elif row.kind == ShadowDatabase.Kind.SPARE:
            # A spare is worth keeping while its template is kept and still there.
            busy = template_of_spare(name) in names and _template_in_use(row)
        else:
            busy = _template_in_use(row)
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
    try:
        result.dropped_roles = provision.orphaned_job_roles(server, prefix)
        provision.job_roles_drop(server, result.dropped_roles)
    except (ShadowServerUnavailable, psycopg.Error) as exc:
        logger.warning("could not drop orphaned job roles on %s: %s", server.key, exc)
    return result


def _copies_doomed(server_key: str, names: list[str], spare_prefix_of: Callable[[str], str]) -> Callable[[str], bool | None]:
    """Of the databases of the run's prefix on a MySQL/MariaDB server or a SQLite directory:
    whether the reaper drops one, for the kinds both engines have (registered templates no
    longer in use, clones of dry-runs not running, spares of templates that are gone,
    registered clones of bundle builds and catalog reads past a lease); None for a name of none
    of these."""
    prefix = settings.SHADOW_DATABASE_PREFIX
    templates = {
        row.name: row
        for row in ShadowDatabase.objects.filter(server=server_key, kind=ShadowDatabase.Kind.TEMPLATE, dropped_at=None)
    }
    kept_templates = {name for name, row in templates.items() if name in names and _template_in_use(row)}
    running = {clone_name_for(pk) for pk in DryRun.objects.filter(status=DryRun.Status.RUNNING).values_list("pk", flat=True)}
    bundle_clones = {
        row.name: row
        for row in ShadowDatabase.objects.filter(
            server=server_key,
            kind=ShadowDatabase.Kind.CLONE,
            dry_run=None,
            # A bundle build's clone, or the copy a catalog was read on (`schema_snapshots`).
            name__in=[name for name in names if name.startswith((f"{prefix}bd_", f"{prefix}snap_"))],
        )
    }

    def doomed(name: str) -> bool | None:
        if name in templates:
            return name not in kept_templates
        if name.startswith(f"{prefix}dr_"):
            return name not in running
        if name.startswith(f"{prefix}sp_"):
            return not any(name.startswith(spare_prefix_of(template)) for template in kept_templates)
        if name in bundle_clones:
            return not _clone_in_use(bundle_clones[name])
        return None

    return doomed


def shadows_reap_mysql_server(server: MySqlShadowServer) -> ReapResult:
    """Reap a MySQL/MariaDB server: registered templates no longer in use, the clones of dry-runs
    that are not running (a worker died before dropping its clone), registered clones of bundle
    builds past a lease, spares of templates that are gone (`_copies_doomed`), and job users whose
    database is gone. Databases of the prefix that are none of these (a template being built) are
    left alone."""
    prefix = settings.SHADOW_DATABASE_PREFIX
    result = ReapResult(server=server.key, dropped=[], kept=[])
    try:
        names = databases_named(server, prefix)
        doomed = _copies_doomed(server.key, names, spare_prefix)
        for name in names:
            drop = bool(doomed(name))
            if not drop:
                result.kept.append(name)
                continue
            database_drop(server, name)
            ShadowDatabase.objects.filter(server=server.key, name=name, dropped_at=None).update(dropped_at=timezone.now())
            result.dropped.append(name)
        result.dropped_roles = orphaned_job_users(server, prefix)
        job_users_drop(server, result.dropped_roles)
    except ShadowServerUnavailable as exc:
        result.error = str(exc)
    return result


def shadows_reap_sqlite_server(server: SqliteShadowServer) -> ReapResult:
    """Reap a SQLite shadow directory as a MySQL/MariaDB server is reaped: registered templates
    no longer in use, clones of dry-runs that are not running, registered clones of bundle builds
    past a lease, spares of templates that are gone (`_copies_doomed`), and a template build or a
    spare's copy that a dead worker left half-made. Files of the prefix that are none of these (a
    template being built) are left alone, and so is every file without the prefix."""
    prefix = settings.SHADOW_DATABASE_PREFIX
    result = ReapResult(server=server.key, dropped=[], kept=[])
    try:
        names = sqlite_files.databases_named(server, prefix)
    except ShadowServerUnavailable as exc:
        result.error = str(exc)
        return result
    doomed = _copies_doomed(server.key, names, sqlite_files.spare_prefix)
    for name in names:
        drop = doomed(name)
        if drop is None and name.endswith(sqlite_files.BUILDING_SUFFIX):
            drop = sqlite_files.build_abandoned(server, name.removesuffix(sqlite_files.BUILDING_SUFFIX))
        elif drop is None and name.startswith(f"{prefix}{sqlite_files.COPYING}"):
            drop = sqlite_files.copy_abandoned(server, name)
        if not drop:
            result.kept.append(name)
            continue
        sqlite_files.database_drop(server, name)
        ShadowDatabase.objects.filter(server=server.key, name=name, dropped_at=None).update(dropped_at=timezone.now())
        result.dropped.append(name)
    return result


def clone_name_for(dry_run_id: int) -> str:
    """The clone of a dry-run: its database, whichever engine."""
    return f"{settings.SHADOW_DATABASE_PREFIX}dr_{dry_run_id}"


def shadows_reap() -> list[ReapResult]:
    """Reap every configured shadow server, of every engine."""
    results = [shadows_reap_server(server) for server in configured_servers()]
    results += [shadows_reap_mysql_server(s) for s in shadow_servers() if isinstance(s, MySqlShadowServer)]
    return results + [shadows_reap_sqlite_server(s) for s in shadow_servers() if isinstance(s, SqliteShadowServer)]


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


# --- spare clones and the chores after a dry-run -------------------------------------------------


def _register(server: ShadowServer, name: str, **fields: object) -> ShadowDatabase:
    """The live registry row of a database about to be made (made before the database, so a
    crash in between leaves a row the reaper acts on, never an unknown database)."""
    try:
        row, _ = ShadowDatabase.objects.get_or_create(server=server.key, name=name, dropped_at=None, defaults=fields)
    except IntegrityError:  # another process registered it at the same instant
        row = ShadowDatabase.objects.get(server=server.key, name=name, dropped_at=None)
    return row


def _mark_dropped(server: ShadowServer, name: str) -> None:
    ShadowDatabase.objects.filter(server=server.key, name=name, dropped_at__isnull=True).update(dropped_at=timezone.now())


def spare_taken(*, server: ShadowServer, name: str) -> None:
    """A dry-run renamed the spare `name` to its clone: the spare's row is closed."""
    _mark_dropped(server, name)


def spares_replenish(*, server: ShadowServer, template: str, baseline_id: int | None) -> list[str]:
    """Make the missing spare clones of `template` on `server`, as many as recent demand asks
    (`spare_demand`); the names made."""
    made = []
    for name in spare_names_for(template, spare_demand(baseline_id)):
        # Registered even when it exists already (the registry may have lost it): what is
        # registered, the reaper can drop once the template is stale.
        row = _register(server, name, kind=ShadowDatabase.Kind.SPARE, baseline_id=baseline_id)
        with server.admin_connect() as conn:
            if provision.database_exists(conn, name):
                continue
        try:
            if provision.spare_create(server, template=template, name=name):
                made.append(name)
        except psycopg.Error:
            ShadowDatabase.objects.filter(pk=row.pk).update(dropped_at=timezone.now())
            raise
    return made


def clone_retire(*, server: ShadowServer, clone: str, dry_run_id: int | None) -> str | None:
    """Move a used clone out of the dry-run clones' names at once; its new name, to drop later.

    Renaming is a catalog change of milliseconds, where a DROP DATABASE takes up to seconds;
    the drop then runs as a chore. Returns None when the clone is already gone (or had to be
    dropped here after all).
    """
    retired = retired_name_for(clone)
    _register(server, retired, kind=ShadowDatabase.Kind.CLONE, dry_run_id=dry_run_id)
    moved = provision.clone_retire(server, name=clone, retired=retired)
    _mark_dropped(server, clone)
    if not moved:
        _mark_dropped(server, retired)
        return None
    return retired


def clone_discard(*, server: ShadowServer, name: str) -> None:
    """Drop a retired clone and close its registry row."""
    provision.clone_drop(server, name)
    _mark_dropped(server, name)


_chores_lock = threading.Lock()
_chores: list[threading.Thread] = []


def _run_chores(name: str, chores: tuple[Callable[[], object], ...]) -> None:
    for chore in chores:
        try:
            chore()
        except Exception:  # noqa: BLE001 - a chore's failure is the reaper's to repair
            logger.warning("shadow chore %s failed", name, exc_info=True)


def shadow_chores_run(name: str, *chores: Callable[[], object]) -> threading.Thread | None:
    """Run `chores` in order on a thread of their own, one batch at a time per process.

    A failed chore is logged and the next one still runs: whatever it left behind is in the
    registry for the reaper. The thread is not a daemon, so a worker shutting down finishes
    the batch, and it closes its database connection when done. With
    SHADOW_CHORES_IN_BACKGROUND off, the chores run in the caller, before it returns.
    """
    if not settings.SHADOW_CHORES_IN_BACKGROUND:
        _run_chores(name, chores)
        return None

    def run() -> None:
        with _chores_lock:
            try:
                _run_chores(name, chores)
            finally:
                connection.close()

    thread = threading.Thread(target=run, name=f"shadow-chores-{name}")
    _chores[:] = [t for t in _chores if t.is_alive()]
    _chores.append(thread)
    thread.start()
    return thread


def shadow_chores_wait(timeout: float = 120.0) -> None:
    """Wait for this process's pending chores (tests, benchmarks, a clean shutdown)."""
    for thread in list(_chores):
        thread.join(timeout)


def shadow_restore_failure(exc: BaseException, *, refusal: type[DomainError], what: str) -> DomainError:
    """A database error while `what` (a snapshot, a dump) was restored on a shadow, as the
    refusal it means.

    Django wraps psycopg's errors, so the cause is looked at too: a statement the watchdog
    cancelled is the upload's size or shape (`refusal`, naming the limit), a lost connection
    an outage (a 503), anything else the upload's (`refusal`).
    """
    cause = exc.__cause__ if isinstance(exc, DatabaseError) and exc.__cause__ is not None else exc
    message = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
    if isinstance(cause, psycopg.errors.QueryCanceled):
        return refusal(f"restoring {what} on the shadow ran past its limits (SHADOW_STATEMENT_TIMEOUT_MS): {message}")
    if isinstance(cause, psycopg.OperationalError):
        return ShadowUnavailable(f"the shadow server failed while {what} was restored: {message}")
    return refusal(f"{what} cannot be restored on the shadow: {message}")
