"""Benchmark: a MariaDB dry-run of a 5-operation change, POST to finished report, against replaying the baseline with `migrate` on MariaDB.

The baseline is `bench_dry_run`'s 200 generated models with foreign keys and indexes (20
migrations of 10 apps), uploaded as migration files to a MySQL project; its template is built
once on the local MariaDB, and a warm spare copied ahead. Then, side by side in one run:

- the change submitted through the API (test client, Celery eager in-process), timed from
  POST until the dry-run's finished report is read back, cold (parse caches cleared) and warm.
  Each warm run starts once the chores of the one before (copying the next spare) are done,
  as they are on a server between two submissions;
- the obvious way on the same server: CREATE DATABASE, then Django's `migrate` in a fresh
  process over the baseline's migration files plus the change as one more file.

Neither side has rows: the project uploads no table stats, and `migrate` makes empty tables.

Run: DATABASE_URL=postgres://postgres@127.0.0.1:5432/sg_bench SHADOW_DATABASE_PREFIX=sgbench_ \
     .venv/bin/python -m tests.bench.bench_mariadb_dry_run [--runs 5] [--replays 1]
(BENCH_MARIADB_URL names another MariaDB admin URL than mysql://root@127.0.0.1:3306/.)
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.bench.support import (
    REPO,
    History,
    ReplayTiming,
    django_setup,
    figure,
    heading,
    median,
    project_on_disk,
    ratio,
    service_database,
    timed,
)

MARIADB_URL = os.environ.get("BENCH_MARIADB_URL", "mysql://root@127.0.0.1:3306/")


def _api_for_owner() -> Any:
    from rest_framework.test import APIClient

    from tests.factories import UserFactory

    client = APIClient()
    client.force_authenticate(user=UserFactory(username="bench-owner"))
    return client


def _wait_for_shadow_chores() -> None:
    from changeapi.services.shadows import shadow_chores_wait

    shadow_chores_wait()


def _mysql_project_with_baseline(api: Any, slug: str, history: History) -> float:
    """A MySQL project (MariaDB 10) with the baseline uploaded and its template built; the upload's time."""
    project = {"slug": slug, "name": slug, "engine": "mysql", "engine_version": 10}
    response = api.post("/api/v1/projects/", project, format="json")
    assert response.status_code == 201, response.content
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
    assert dry_run["report"]["engine"] == "mariadb", dry_run["report"]["engine"]
    return elapsed, dry_run


def _clear_parse_caches() -> None:
    from changeapi import selectors
    from changeapi.dryrun import engine

    selectors._baseline_plan_cached.cache_clear()
    engine._baselines.clear()


def mariadb_migrate_replay(root: Path, dbname: str) -> ReplayTiming:
    """CREATE DATABASE on MariaDB, then `django-admin migrate` in a fresh process, then drop: timed."""
    from changeapi.shadow.engine_servers import MySqlShadowServer
    from changeapi.shadow.mysql_databases import admin_cursor, quote

    server = MySqlShadowServer(MARIADB_URL)
    with admin_cursor(server) as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS {quote(dbname)}")
        started = time.perf_counter()
        cursor.execute(f"CREATE DATABASE {quote(dbname)} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        created = time.perf_counter()
        url = f"mysql://{server.user}:{server.password}@{server.host}:{server.port}/{dbname}"
        env = {**os.environ, "PYTHONPATH": f"{root}{os.pathsep}{REPO}", "BENCH_DATABASE_URL": url}
        env.pop("DJANGO_SETTINGS_MODULE", None)
        result = subprocess.run(
            [sys.executable, "-m", "django", "migrate", "--settings=bench_settings", "--no-input", "-v", "0"],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        migrated = time.perf_counter()
        if result.returncode != 0:
            raise RuntimeError(f"migrate failed:\n{result.stderr[-3000:]}")
        cursor.execute(f"DROP DATABASE {quote(dbname)}")
        dropped = time.perf_counter()
    return ReplayTiming(
        create_ms=(created - started) * 1000, migrate_ms=(migrated - created) * 1000, drop_ms=(dropped - migrated) * 1000
    )


def _drop_mariadb_databases() -> list[str]:
    """Every database (and job user) of this run's prefix on the MariaDB server."""
    from django.conf import settings

    from changeapi.shadow.engine_servers import MySqlShadowServer
    from changeapi.shadow.mysql_databases import database_drop, databases_named

    server = MySqlShadowServer(MARIADB_URL)
    names = databases_named(server, settings.SHADOW_DATABASE_PREFIX)
    for name in names:
        database_drop(server, name)
    return names


def run_case(args: Any) -> None:
    from django.conf import settings

    from tests.bench.support import synthetic_baseline, synthetic_change_documents, synthetic_change_file

    history = synthetic_baseline()
    change = synthetic_change_documents()
    change_file = synthetic_change_file("app03", "0002_indexes", 65)
    api = _api_for_owner()
    print(f"\n-- 200 generated models with foreign keys and indexes: {len(history.files)} migrations, on MariaDB --")
    build_ms = _mysql_project_with_baseline(api, "gen200my", history)
    figure("baseline upload + template build (once per baseline)", build_ms)

    _wait_for_shadow_chores()
    _clear_parse_caches()
    cold_ms, dry_run = _dry_run_via_api(api, "gen200my", change)
    figure("dry-run, POST -> finished report, cold parse caches", cold_ms)
    warm = []
    for _ in range(args.runs):
        _wait_for_shadow_chores()
        elapsed, dry_run = _dry_run_via_api(api, "gen200my", change)
        warm.append(elapsed)
    warm_ms = median(warm)
    report = dry_run["report"]
    figure(f"dry-run, POST -> finished report, warm (median of {args.runs})", warm_ms)
    print(f"  warm runs: {', '.join(f'{t:.0f}' for t in warm)} ms")
    figure("  of which clone (claiming a warm spare)", report["clone_ms"])
    figure("  of which the statements, probes and tracing", report["total_ms"])
    figure("  of which the reversal (backwards SQL on the clone)", sum(r["backwards_ms"] or 0 for r in report["reversibility"]))
    print(f"  statements traced: {len(report['statements'])}, server {report['server_version']}")

    _wait_for_shadow_chores()
    replays = []
    with project_on_disk(history, extra=[change_file]) as root:
        for _ in range(args.replays):
            replays.append(mariadb_migrate_replay(root, f"{settings.SHADOW_DATABASE_PREFIX}bench_replay"))
    replay_ms = median([r.total_ms for r in replays])
    figure(f"obvious way: CREATE DATABASE + `migrate` baseline + change (median of {args.replays})", replay_ms)
    figure("  of which CREATE DATABASE", median([r.create_ms for r in replays]))
    ratio("replay / dry-run (warm)", replay_ms / warm_ms, ">= 20x")
    ratio("replay / dry-run (cold caches)", replay_ms / cold_ms, "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="warm dry-runs")
    parser.add_argument("--replays", type=int, default=1, help="`migrate` replays")
    args = parser.parse_args()
    django_setup(eager=True)
    from django.conf import settings

    settings.SHADOW_SERVERS = [*settings.SHADOW_SERVERS, MARIADB_URL]
    heading("MariaDB dry-run vs `migrate` replay on MariaDB")
    with service_database("mariadb_dry_run"):
        try:
            run_case(args)
        finally:
            _wait_for_shadow_chores()
            _drop_mariadb_databases()


if __name__ == "__main__":
    main()
