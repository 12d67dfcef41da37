"""Engine entry points: build a template (a baseline's, or a snapshot's), and dry-run a plan on a fresh clone.

Plain functions of (server, names, plans): callable from a Celery task, a test or a
management command alike. The caller records which databases exist; these functions create
and drop them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Callable, Sequence

import psycopg

from changeapi.caches import BoundedCache
from changeapi.dryrun.access_patterns import AccessPattern, attach_access_patterns, explain_patterns
from changeapi.dryrun.access_patterns.explain import PatternsSnapshot
from changeapi.dryrun.analysis.backfill import DEFAULT_TARGET_LOCK_MS
from changeapi.dryrun.backfill import DEFAULT_SAMPLE_BATCHES
from changeapi.dryrun.calibration import (
    Calibration,
    calibrate,
    calibrate_catalog,
    calibration_sizes,
    maintenance_work_mem,
)
from changeapi.dryrun.connection import shadow_connection
from changeapi.dryrun.contract import Report, StatementTrace
from changeapi.dryrun.engine import ProgressCallback, apply_plan_traced, apply_plan_untraced, baseline_state
from changeapi.dryrun.profile import ProductionProfile
from changeapi.dryrun.report import RunFacts, build_report
from changeapi.dryrun.restore import RestoreNote, RestorePlan, restore_apply
from changeapi.dryrun.reversibility import reverse_plan
from changeapi.dryrun.session import shadow_session
from changeapi.dryrun.template_facts import TemplateFacts, facts_read, facts_write
from changeapi.intake.plan import Plan
from changeapi.shadow import provision
from changeapi.shadow.seed import seed_database
from changeapi.shadow.servers import ShadowServer


def template_build(*, server: ShadowServer, name: str, baseline: Plan, profile: ProductionProfile | None = None) -> bool:
    """Ensure the template database for a baseline exists on `server`; True if built now.

    The baseline's migrations are applied by the runner role, which therefore owns every
    table, so the dry-runs (also the runner role) can alter them and nothing else. With
    table sizes in `profile`, the tables are seeded and the time model calibrated here, once,
    so every clone starts seeded and no dry-run pays for either; name such a template with
    `seeded_template_name`, as its content depends on the sizes.
    """

    def build(dbname: str) -> None:
        with shadow_connection(server, dbname) as connection:
            apply_plan_untraced(connection, baseline)
        _template_seed(server, dbname, profile)

    return provision.template_ensure(server, name, build)


def snapshot_template_build(
    *, server: ShadowServer, name: str, plan: RestorePlan, profile: ProductionProfile | None = None
) -> tuple[bool, tuple[RestoreNote, ...]]:
    """Ensure a template holding production's schema, as a snapshot's `restore_plan` makes it,
    exists on `server`; the plan checked the snapshot whole before any database is made.

    The plan runs as the build's own role under the watchdog's limits, exactly as a legacy
    baseline's shadow is restored, and the template is seeded like a baseline's. Returns
    whether this call built it, and what of the plan the shadow could not have (empty when
    the template was there already). Name it by the snapshot's content and the profile's
    digest: its content depends on nothing else.
    """
    notes: list[RestoreNote] = []

    def build(dbname: str) -> None:
        with shadow_connection(server, dbname) as connection:
            notes.extend(restore_apply(connection.connection, plan))
        _template_seed(server, dbname, profile)

    return provision.template_ensure(server, name, build), tuple(notes)


def _template_seed(server: ShadowServer, dbname: str, profile: ProductionProfile | None) -> None:
    """Seed a template being built with rows per the profile's sizes, with the server's
    calibration of the time model (`_server_calibration`); nothing without sizes."""
    if profile is None or not profile.has_sizes:
        return
    with psycopg.connect(**server.runner_conninfo(dbname), autocommit=True) as conn:  # type: ignore[arg-type]
        conn.execute("SET statement_timeout = 0")  # seeding a large table is the point, not a runaway
        seeded = seed_database(conn, profile.seed_rows(), profile.seed_columns())
        calibration = _server_calibration(server, dbname, conn, seed_max_rows=profile.seed_max_rows)
        facts = TemplateFacts(
            seeded={t.table: {"rows": t.rows, "total_bytes": t.total_bytes} for t in seeded.tables},
            seed_warnings=seeded.warnings,
            seed_seconds=seeded.seconds,
            seed_max_rows=profile.seed_max_rows,
            calibration=calibration,
            seed_columns={t.table: {"stats": t.columns_from_stats, "defaults": t.columns_by_default} for t in seeded.tables},
        )
        facts_write(conn, dbname, facts)


# A server's speed is measured again once its last calibration is this old.
CALIBRATION_REUSE_SECONDS = 900.0

# By server and calibration sizes: when the calibration was made (time.monotonic) and it.
_calibrations: BoundedCache[tuple[str, tuple[int, int]], tuple[float, Calibration]] = BoundedCache(16)


def _server_calibration(server: ShadowServer, dbname: str, conn: psycopg.Connection, *, seed_max_rows: int) -> Calibration:
    """The time model's calibration on this server: measured on the template being built, or
    the one this process measured on the same server at the same two sizes (the seed cap
    decides them, `calibration_sizes`) in the last `CALIBRATION_REUSE_SECONDS`.

    A calibration times each class of work on scratch tables of its own (a few seconds): it
    measures the server, not the template, so templates built one after another (a baseline's,
    then one per uploaded set of table stats) would time the same thing again. A dry-run uses
    it at any time after the build anyway; a quarter of an hour old is no staler than that.
    What the server is configured with is read again each time (`maintenance_work_mem`).
    """
    key = (server.key, calibration_sizes(seed_max_rows))
    cached = _calibrations.get(key)
    if cached is not None and time.monotonic() - cached[0] < CALIBRATION_REUSE_SECONDS:
        return dataclasses.replace(cached[1], maintenance_work_mem_bytes=maintenance_work_mem(conn))
    # Catalog-only statements are timed through Django's schema editor, as a dry-run times them.
    with shadow_connection(server, dbname) as connection:
        catalog = calibrate_catalog(connection)
    calibration = dataclasses.replace(calibrate(conn, seed_max_rows=seed_max_rows), catalog=catalog)
    _calibrations.put(key, (time.monotonic(), calibration))
    return calibration


# By server, template and patterns; a snapshot, or None when the patterns were None.
_patterns_cache: BoundedCache[tuple[str, str, str], tuple[PatternsSnapshot | None]] = BoundedCache(32)


def _patterns_before(
    server: ShadowServer,
    template: str,
    patterns: list[AccessPattern] | None,
    explain: Callable[[], PatternsSnapshot | None],
) -> PatternsSnapshot | None:
    """The plans and catalog facts before the change, read once per process, template and patterns.

    A clone is a copy of its template, statistics included, so what a pattern's plan is
    before the change is the same for every dry-run of that template: later dry-runs reuse
    it and read nothing before their change.
    """
    if patterns is None:
        return None
    key = (server.key, template, repr(patterns))
    cached = _patterns_cache.get(key)
    if cached is not None:
        return cached[0]
    snapshot = explain()
    _patterns_cache.put(key, (snapshot,))
    return snapshot


def touched_tables(statements: Sequence[StatementTrace]) -> set[str] | None:
    """Every table (and relation) the statements created, dropped, locked or named; None when
    a statement's locks were not observed, so what it touched is not known."""
    touched: set[str] = set()
    for statement in statements:
        if statement.locks is None:
            return None
        touched.update(statement.target_tables, statement.work_tables, statement.created_relations)
        touched.update(statement.dropped_relations, statement.rewrites)
        for lock in statement.locks:
            touched.add(lock.relation)
            if lock.table:
                touched.add(lock.table)
    return touched


def dry_run_execute(
    *,
    server: ShadowServer,
    template: str,
    clone_name: str,
    baseline: Plan,
    change: Plan,
    on_progress: ProgressCallback | None = None,
    profile: ProductionProfile | None = None,
    spares: Sequence[str] = (),
    on_clone: Callable[[str], None] | None = None,
    drop_clone: bool = True,
    access_patterns: list[AccessPattern] | None = None,
    backfill_sample_batches: int = DEFAULT_SAMPLE_BATCHES,
    backfill_target_lock_ms: int = DEFAULT_TARGET_LOCK_MS,
) -> Report:
    """Clone the template, apply `change` traced, reverse it, drop the clone; return the report.

    The clone is a claimed spare of the template when one of `spares` is there (a rename),
    else a `CREATE DATABASE ... TEMPLATE`; `on_clone` is told which spare was taken ("" for
    none) as soon as the clone exists. The clone is dropped whatever happens, including a
    failed statement or a lost connection, unless `drop_clone` is False: then the caller
    drops it, e.g. after recording the report. A database error in the change is a failed
    report, not an exception. After a successful run the change is reversed on the same
    clone, from the states the forwards run rendered, which yields the backwards SQL for the
    schema the change actually left. Each of `access_patterns` is explained before and after
    the change (never run), for the report's `access_patterns` block and findings. Each
    Backfill step is sampled in up to `backfill_sample_batches` batches and its batch size
    recommended for `backfill_target_lock_ms` (the project's target lock time per batch).
    """
    facts = facts_read(server, template) if profile is not None and profile.has_sizes else TemplateFacts()
    started_at = dt.datetime.now(dt.UTC)
    with shadow_session(server, template=template, name=clone_name, spares=spares, on_clone=on_clone, drop=drop_clone) as session:
        connection = session.connection
        server_version = connection.connection.info.parameter_status("server_version")
        base_state = baseline_state(baseline)
        patterns_before = _patterns_before(
            server, template, access_patterns, lambda: explain_patterns(connection, access_patterns)
        )
        run = apply_plan_traced(
            connection,
            change,
            base_state,
            on_progress=on_progress,
            seeded_tables={table for table, sizes in facts.seeded.items() if sizes.get("rows")},
            production=profile.seed_columns() if profile else None,
            backfill_sample_batches=backfill_sample_batches,
        )
        patterns_after = (
            None
            if run.error
            else explain_patterns(connection, access_patterns, since=patterns_before, touched=touched_tables(run.statements))
        )
        reversibility = [] if run.error else reverse_plan(connection, change, base_state, forwards_states=run.states)
    facts_of_run = RunFacts(
        engine="postgresql",
        server=server.key,
        server_version=server_version,
        shadow_database=clone_name,
        clone_ms=session.clone_ms,
        started_at=started_at.isoformat(),
        finished_at=dt.datetime.now(dt.UTC).isoformat(),
    )
    report = build_report(
        run=run,
        facts_of_run=facts_of_run,
        plan=change,
        profile=profile,
        facts=facts,
        reversibility=reversibility,
        backfill_target_lock_ms=backfill_target_lock_ms,
    )
    return attach_access_patterns(report, patterns=access_patterns, before=patterns_before, after=patterns_after, profile=profile)
