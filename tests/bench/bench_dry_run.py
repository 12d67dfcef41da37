"""Benchmark: a 5-operation dry-run, POST to finished report, against replaying the baseline with `migrate`.

Two baselines: 200 generated models with foreign keys and indexes (20 migrations of 10 apps),
and a real history of 400+ migrations (django.contrib, django-celery-beat, django-oauth-toolkit,
django-allauth, django-taggit, and two generated apps). Each is uploaded as migration files
through the API; its template database is built once. Then the same change is:

- submitted through the API (test client, Celery eager in-process), timed from POST until the
  dry-run's finished report is read back, cold (parse caches cleared) and warm;
- provisioned the obvious way: CREATE DATABASE, then Django's `migrate` in a fresh process over
  the baseline's migration files plus the change as one more migration file.

Each warm run starts once the chores of the one before (making the next spare clone, dropping
the used clone) are done, as they are on a server between two submissions: the figure is what a
dry-run that arrives to a ready spare costs. Beside it, in the same run:

- the floor: `CREATE DATABASE ... TEMPLATE` of the same template, which a dry-run without a
  spare pays and one with a spare replaces by a rename;
- the same warm dry-run through a real Celery worker (solo pool) and Redis (db 10), the client
  polling the dry-run every 20 ms;
- on the 200-model baseline, a 100-operation change (20 groups of the same 5 operations on
  distinct models): its time and report size against the 5-operation change's.

Run: DATABASE_URL=postgres://postgres@127.0.0.1:5432/sg_bench SHADOW_DATABASE_PREFIX=sgbench_ \
     .venv/bin/python -m tests.bench.bench_dry_run [--runs 5] [--replays 1] [--no-worker]
(BENCH_BROKER_URL names another Redis database for the worker than db 10.)
"""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import Any

from tests.bench.support import (
    History,
    MigrationText,
    django_setup,
    drop_shadow_databases,
    figure,
    heading,
    median,
    migrate_replay,
    project_on_disk,
    ratio,
    service_database,
    start_worker,
    stop_worker,
    timed,
    use_broker,
)

BROKER = os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/10")


def _api_for_owner() -> Any:
    from rest_framework.test import APIClient

    from tests.factories import UserFactory

    client = APIClient()
    client.force_authenticate(user=UserFactory(username="bench-owner"))
    return client


def _project_with_baseline(api: Any, slug: str, history: History) -> float:
    """Create the project, upload the baseline and wait for its template; the time of the upload."""
    from changeapi.models import Project

    response = api.post("/api/v1/projects/", {"slug": slug, "name": slug}, format="json")
    assert response.status_code == 201, response.content
    Project.objects.filter(slug=slug).update(intake_settings=history.intake_settings)
    upload = {"migration_files": [f.as_upload() for f in history.files]}
    elapsed, response = timed(lambda: api.post(f"/api/v1/projects/{slug}/baselines/", upload, format="json"))
    assert response.status_code == 202, response.content
    baseline = api.get(f"/api/v1/baselines/{response.json()['id']}/").json()
    assert baseline["status"] == "ready", baseline
    return elapsed


def _dry_run_via_api(api: Any, slug: str, change: list[dict[str, Any]]) -> tuple[float, dict[str, Any]]:
    """POST the change and read back its finished dry-run; (ms, dry-run)."""

    def submit_and_read() -> dict[str, Any]:
        response = api.post("/api/v1/change-requests/", {"project": slug, "title": "bench", "operations": change}, format="json")
        assert response.status_code == 202, response.content
        return api.get(f"/api/v1/dry-runs/{response.json()['latest_dry_run']}/").json()

    elapsed, dry_run = timed(submit_and_read)
    assert dry_run["status"] == "succeeded", dry_run["error"]
    return elapsed, dry_run


def _clear_parse_caches() -> None:
    from changeapi import selectors
    from changeapi.dryrun import engine

    selectors._baseline_plan_cached.cache_clear()
    engine._baselines.clear()


def _wait_for_shadow_chores() -> None:
    from changeapi.services.shadows import shadow_chores_wait

    shadow_chores_wait()


def _clone_floor_ms(slug: str, rounds: int = 5) -> float:
    """`CREATE DATABASE ... TEMPLATE` of the template the project's dry-runs clone: the floor a
    dry-run cannot beat without a spare. Median of `rounds`, each clone dropped untimed."""
    from django.conf import settings
    from psycopg import sql

    from changeapi.models import Project
    from changeapi.services.table_stats import production_profile, seeded_template_for
    from changeapi.shadow.provision import drop_database
    from changeapi.shadow.servers import configured_servers

    project = Project.objects.select_related("current_baseline").get(slug=slug)
    assert project.current_baseline is not None
    template = seeded_template_for(baseline=project.current_baseline, profile=production_profile(project=project))
    name = f"{settings.SHADOW_DATABASE_PREFIX}bench_floor"
    times = []
    with configured_servers()[0].admin_connect() as conn:
        for _ in range(rounds):
            drop_database(conn, name)
            elapsed, _ = timed(
                lambda: conn.execute(
                    sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(template))
                )
            )
            times.append(elapsed)
            drop_database(conn, name)
    return median(times)


def _report_bytes(dry_run: dict[str, Any]) -> int:
    return len(json.dumps(dry_run["report"], separators=(",", ":")).encode())


def _dry_run_via_worker(api: Any, slug: str, change: list[dict[str, Any]]) -> tuple[float, dict[str, Any]]:
    """POST the change with a real Celery worker behind the broker and poll the dry-run every
    20 ms until it is finished; (ms, dry-run)."""

    def submit_and_poll() -> dict[str, Any]:
        response = api.post("/api/v1/change-requests/", {"project": slug, "title": "bench", "operations": change}, format="json")
        assert response.status_code == 202, response.content
        url = f"/api/v1/dry-runs/{response.json()['latest_dry_run']}/"
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            dry_run = api.get(url).json()
            if dry_run["status"] in ("succeeded", "failed"):
                return dry_run
            time.sleep(0.02)
        raise TimeoutError(f"{url} did not finish")

    elapsed, dry_run = timed(submit_and_poll)
    assert dry_run["status"] == "succeeded", dry_run["error"]
    return elapsed, dry_run


def _warm_through_worker(api: Any, slug: str, change: list[dict[str, Any]], runs: int) -> float:
    """The same warm dry-run through a real worker process (solo pool) and Redis; the first
    run warms the worker's caches and is not counted."""
    from django.db import connection

    worker = start_worker(f"bench-{slug}", dbname=connection.settings_dict["NAME"], broker=BROKER)
    use_broker(BROKER)
    try:
        _dry_run_via_worker(api, slug, change)
        times = [_dry_run_via_worker(api, slug, change)[0] for _ in range(runs)]
    finally:
        use_broker(None)
        stop_worker(worker)
    return median(times)


def run_case(
    title: str,
    slug: str,
    history: History,
    change: list[dict[str, Any]],
    change_file: MigrationText,
    args: Any,
    wide_change: list[dict[str, Any]] | None = None,
) -> None:
    from django.conf import settings

    api = _api_for_owner()
    print(f"\n-- {title}: {len(history.files)} migrations --")
    build_ms = _project_with_baseline(api, slug, history)
    figure("baseline upload + template build (once per baseline)", build_ms)

    _clear_parse_caches()
    cold_ms, dry_run = _dry_run_via_api(api, slug, change)
    figure("dry-run, POST -> finished report, cold parse caches", cold_ms)
    warm = []
    for _ in range(args.runs):
        _wait_for_shadow_chores()
        elapsed, dry_run = _dry_run_via_api(api, slug, change)
        warm.append(elapsed)
    warm_ms = median(warm)
    figure(f"dry-run, POST -> finished report, warm (median of {args.runs})", warm_ms)
    report = dry_run["report"]
    figure("  of which clone (a spare's rename, else CREATE DATABASE ... TEMPLATE)", report["clone_ms"])
    print(f"  statements traced: {len(report['statements'])}, report {_report_bytes(dry_run) / 1024:.1f} KiB")
    _wait_for_shadow_chores()
    floor_ms = _clone_floor_ms(slug)
    figure("floor: CREATE DATABASE ... TEMPLATE of the same template (median of 5)", floor_ms)
    ratio("dry-run (warm) / floor", warm_ms / floor_ms, "<= 5x")

    if not args.no_worker:
        _wait_for_shadow_chores()
        worker_ms = _warm_through_worker(api, slug, change, args.runs)
        figure(f"dry-run through a Celery worker + polling, warm (median of {args.runs})", worker_ms)
        ratio("dry-run via worker / floor", worker_ms / floor_ms, "<= 5x")

    if wide_change is not None:
        operations = sum(len(document["operations"]) for document in wide_change)
        _wait_for_shadow_chores()
        _dry_run_via_api(api, slug, wide_change)  # warms the caches of the wider change's models
        _wait_for_shadow_chores()
        wide_ms, wide = _dry_run_via_api(api, slug, wide_change)
        figure(f"{operations}-operation change, POST -> finished report, warm", wide_ms)
        print(f"  statements traced: {len(wide['report']['statements'])}, report {_report_bytes(wide) / 1024:.1f} KiB")
        ratio(f"{operations} operations / 5 operations (time)", wide_ms / warm_ms, "< 10x")
        ratio(f"{operations} operations / 5 operations (report bytes)", _report_bytes(wide) / _report_bytes(dry_run), "linear")

    # The chores after the last dry-run (next spare, dropping the used clone) end before the
    # replay starts, so they do not slow it down.
    _wait_for_shadow_chores()
    replays = []
    with project_on_disk(history, extra=[change_file]) as root:
        for _ in range(args.replays):
            replays.append(migrate_replay(root, f"{settings.SHADOW_DATABASE_PREFIX}bench_replay_{slug}"))
    replay_ms = median([r.total_ms for r in replays])
    figure(f"obvious way: createdb + `migrate` baseline + change (median of {args.replays})", replay_ms)
    figure("  of which CREATE DATABASE", median([r.create_ms for r in replays]))
    ratio("replay / dry-run (warm)", replay_ms / warm_ms, ">= 100x")
    ratio("replay / dry-run (cold caches)", replay_ms / cold_ms, "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="warm dry-runs per baseline")
    parser.add_argument("--replays", type=int, default=1, help="`migrate` replays per baseline")
    parser.add_argument("--no-worker", action="store_true", help="skip the runs through a Celery worker")
    args = parser.parse_args()
    django_setup(eager=True)
    from tests.bench.support import (
        history_change_documents,
        real_history,
        synthetic_baseline,
        synthetic_change_documents,
        synthetic_change_file,
        synthetic_wide_change_documents,
    )

    heading("dry-run vs `migrate` replay")
    synthetic = synthetic_baseline()
    history = real_history()
    last_ledger = [f.name for f in history.files if f.app_label == "ledger"][-1]
    with service_database("dry_run"):
        try:
            run_case(
                "200 generated models with foreign keys and indexes",
                "gen200",
                synthetic,
                synthetic_change_documents(),
                synthetic_change_file("app03", "0002_indexes", 65),
                args,
                wide_change=synthetic_wide_change_documents(20),
            )
            run_case(
                "real history (contrib, celery-beat, oauth-toolkit, allauth, taggit + 2 generated apps)",
                "hist400",
                history,
                history_change_documents(),
                synthetic_change_file("ledger", last_ledger, 300),
                args,
            )
        finally:
            _wait_for_shadow_chores()
            drop_shadow_databases()


if __name__ == "__main__":
    main()
