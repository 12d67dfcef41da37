"""Benchmark: 20 change requests submitted at once, dry-run by 2 Celery workers over Redis.

Phase 1 has one shadow server, phase 2 adds a second (an embedded PostgreSQL 16 from the
`pgserver` package). Each server takes at most SHADOW_MAX_CONCURRENT_PER_SERVER dry-runs at a
time (1 here, so the limit binds with 2 workers); a worker that finds the server busy retries
the job later. The baseline (40 generated models) has its template on both servers before the
clock starts, and each worker has done one dry-run, so both phases measure steady state.

Printed per phase: wall time from the first submission to the last finished report, dry-runs
per minute, failures, the most clones seen at once on each server (sampled every 50 ms), and
the shadow databases left afterwards. The ratio is phase 2 throughput over phase 1.

Run: DATABASE_URL=postgres://postgres@127.0.0.1:5432/sg_h9 SHADOW_DATABASE_PREFIX=sgh9_ \
     .venv/bin/python -m tests.bench.bench_concurrency [--requests 20] [--limit 1]
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import quote

from tests.bench.support import (
    django_setup,
    figure,
    heading,
    ratio,
    service_database,
    start_worker,
    stop_worker,
    use_broker,
    wait_for,
)

BROKER = "redis://127.0.0.1:6379/12"


def _second_server(directory: Path) -> tuple[Any, str]:
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
    logging.getLogger("pgserver").setLevel(logging.WARNING)
    import pgserver

    server = pgserver.get_server(directory, cleanup_mode="stop")
    socket_dir = Path(server.get_postmaster_info().socket_dir)
    return server, f"postgres://postgres@/{quote(str(socket_dir), safe='')}/postgres"


def _submit_all(owner: Any, count: int, change: list[dict[str, Any]], tag: str) -> list[int]:
    """`count` submissions from as many threads at once; the ids of their dry-runs."""
    from django.db import connection
    from rest_framework.test import APIClient

    def submit(n: int) -> int:
        api = APIClient()
        api.force_authenticate(user=owner)
        try:
            response = api.post(
                "/api/v1/change-requests/", {"project": "gen", "title": f"{tag} {n}", "operations": change}, format="json"
            )
            assert response.status_code == 202, response.content
            return int(response.json()["latest_dry_run"])
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(submit, range(count)))


class CloneSampler:
    """Counts the dry-run clones on each server every 50 ms; keeps the maximum per server."""

    def __init__(self, servers: list[Any], prefix: str) -> None:
        self.servers = servers
        self.prefix = prefix
        self.most: dict[str, int] = {s.key: 0 for s in servers}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        from changeapi.shadow.provision import databases_with_prefix

        while not self._stop.wait(0.05):
            for server in self.servers:
                self.most[server.key] = max(self.most[server.key], len(databases_with_prefix(server, self.prefix)))

    def __enter__(self) -> CloneSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def run_phase(title: str, *, owner: Any, dbname: str, servers: list[Any], args: Any, change: list[dict[str, Any]]) -> float:
    from django.conf import settings

    from changeapi.models import DryRun
    from changeapi.shadow.provision import databases_with_prefix

    env = {
        "SHADOW_SERVERS": ",".join(s.url for s in servers),
        "SHADOW_MAX_CONCURRENT_PER_SERVER": str(args.limit),
    }
    workers = [start_worker(f"bench{n}", dbname=dbname, broker=BROKER, extra_env=env) for n in range(2)]
    clone_prefix = f"{settings.SHADOW_DATABASE_PREFIX}dr_"
    try:
        warm = _submit_all(owner, 2, change, "warm-up")
        wait_for(lambda: DryRun.objects.filter(pk__in=warm, finished_at__isnull=False).count() == len(warm), 300, "the warm-up")
        with CloneSampler(servers, clone_prefix) as sampler:
            started = time.perf_counter()
            ids = _submit_all(owner, args.requests, change, title)
            wait_for(
                lambda: DryRun.objects.filter(pk__in=ids, finished_at__isnull=False).count() == len(ids),
                args.timeout,
                "every dry-run to finish",
                interval=0.05,
            )
            elapsed = time.perf_counter() - started
    finally:
        for worker in workers:
            stop_worker(worker)
    runs = DryRun.objects.filter(pk__in=ids)
    failed = runs.exclude(status=DryRun.Status.SUCCEEDED)
    left = [name for s in servers for name in databases_with_prefix(s, clone_prefix)]
    per_server = {key: runs.filter(server=key).count() for key in sampler.most}
    print(f"\n  {title}")
    figure(f"wall time, {args.requests} submissions -> last report", elapsed * 1000)
    figure("throughput", args.requests / elapsed * 60, "dry-runs/min")
    print(f"  failed: {failed.count()} {list(failed.values_list('error', flat=True))[:3]}")
    print(f"  dry-runs per server: {per_server}")
    print(f"  most clones at once per server: {sampler.most} (limit {args.limit})")
    print(f"  shadow clones left: {len(left)}")
    return args.requests / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--limit", type=int, default=1, help="SHADOW_MAX_CONCURRENT_PER_SERVER for the workers")
    parser.add_argument("--models", type=int, default=40, help="models in the generated baseline")
    parser.add_argument("--timeout", type=float, default=600)
    args = parser.parse_args()
    django_setup(eager=True)
    import redis
    from django.conf import settings
    from django.contrib.auth import get_user_model

    from changeapi.dryrun.run import template_build
    from changeapi.models import Baseline
    from changeapi.selectors import baseline_plan
    from changeapi.shadow.provision import databases_with_prefix, drop_database
    from changeapi.shadow.servers import ShadowServer, configured_servers
    from tests.bench.bench_dry_run import _api_for_owner, _project_with_baseline
    from tests.bench.support import drop_shadow_databases, synthetic_baseline, synthetic_change_documents

    heading("20 dry-runs at once, 2 Celery workers, 1 then 2 shadow servers")
    first = configured_servers()[0]
    with tempfile.TemporaryDirectory(prefix="sgh9_pg_") as pgdata, service_database("concurrency") as dbname:
        pg16, url = _second_server(Path(pgdata) / "data")
        second = ShadowServer(url)
        try:
            api = _api_for_owner()
            history = synthetic_baseline(models_count=args.models, apps=4)
            _project_with_baseline(api, "gen", history)
            baseline = Baseline.objects.get(project__slug="gen")
            template_build(server=second, name=baseline.template_name, baseline=baseline_plan(baseline))
            change = synthetic_change_documents("app01", args.models // 4 + 2)
            owner = get_user_model().objects.get(username="bench-owner")
            redis.Redis.from_url(BROKER).flushdb()
            use_broker(BROKER)
            one = run_phase("one shadow server", owner=owner, dbname=dbname, servers=[first], args=args, change=change)
            two = run_phase("two shadow servers", owner=owner, dbname=dbname, servers=[first, second], args=args, change=change)
            print()
            ratio("throughput, two servers / one server", two / one, "> 1")
        finally:
            use_broker(None)
            redis.Redis.from_url(BROKER).flushdb()
            drop_shadow_databases()
            with second.admin_connect() as conn:
                for name in databases_with_prefix(second, settings.SHADOW_DATABASE_PREFIX):
                    drop_database(conn, name)
            pg16.cleanup()


if __name__ == "__main__":
    main()
