"""Engine entry points: build a baseline's template, and dry-run a plan on a fresh clone.

Plain functions of (server, names, plans): callable from a Celery task, a test or a
management command alike. The caller records which databases exist; these functions create
and drop them.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from changeapi.dryrun.connection import shadow_connection
from changeapi.dryrun.engine import ProgressCallback, apply_plan_traced, apply_plan_untraced, plan_state
from changeapi.dryrun.report import build_report
from changeapi.intake.plan import Plan
from changeapi.shadow import provision
from changeapi.shadow.servers import ShadowServer


def template_build(*, server: ShadowServer, name: str, baseline: Plan) -> bool:
    """Ensure the template database for a baseline exists on `server`; True if built now.

    The baseline's migrations are applied by the runner role, which therefore owns every
    table, so the dry-runs (also the runner role) can alter them and nothing else.
    """

    def build(dbname: str) -> None:
        with shadow_connection(server, dbname) as connection:
            apply_plan_untraced(connection, baseline)

    return provision.template_ensure(server, name, build)


def dry_run_execute(
    *,
    server: ShadowServer,
    template: str,
    clone_name: str,
    baseline: Plan,
    change: Plan,
    on_progress: ProgressCallback | None = None,
) -> dict[str, Any]:
    """Clone the template, apply `change` traced, drop the clone; return the report.

    The clone is dropped whatever happens, including a failed statement or a lost
    connection; a database error in the change is a failed report, not an exception.
    """
    started_at = dt.datetime.now(dt.UTC)
    clone_started = time.perf_counter()
    provision.clone_create(server, template=template, name=clone_name)
    clone_ms = round((time.perf_counter() - clone_started) * 1000, 3)
    try:
        with shadow_connection(server, clone_name) as connection:
            server_version = connection.connection.info.parameter_status("server_version")
            run = apply_plan_traced(connection, change, plan_state(baseline), on_progress=on_progress)
    finally:
        provision.clone_drop(server, clone_name)
    meta = {
        "engine": "postgresql",
        "server": server.key,
        "server_version": server_version,
        "shadow_database": clone_name,
        "clone_ms": clone_ms,
        "started_at": started_at.isoformat(),
        "finished_at": dt.datetime.now(dt.UTC).isoformat(),
    }
    return build_report(run=run, meta=meta)
