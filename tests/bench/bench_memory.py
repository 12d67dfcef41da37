"""Benchmark: peak RSS of a Celery worker dry-running a change on the 400+ migration baseline.

The baseline (installed packages' histories plus two generated apps) is uploaded through the
API; a first worker builds its template. A fresh worker (solo pool, so the dry-run runs in the
worker process itself) then dry-runs a 5-operation change: its resident set size is sampled
every 10 ms from before the job arrives until the report is recorded, so the peak includes
parsing the baseline (nothing is cached yet in that process) and the dry-run.

Run: DATABASE_URL=postgres://postgres@127.0.0.1:5432/sg_h9 SHADOW_DATABASE_PREFIX=sgh9_ \
     .venv/bin/python -m tests.bench.bench_memory
"""

from __future__ import annotations

import threading
import time
from typing import Any

from tests.bench.support import (
    django_setup,
    figure,
    heading,
    resident_bytes,
    service_database,
    start_worker,
    stop_worker,
    use_broker,
    wait_for,
)

BROKER = "redis://127.0.0.1:6379/13"


class RssSampler:
    """Peak resident set size of a process, sampled from a thread."""

    def __init__(self, pid: int, interval: float = 0.01) -> None:
        self.pid = pid
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def rss(self) -> int:
        return resident_bytes(self.pid)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, self.rss())

    def __enter__(self) -> RssSampler:
        self.peak = self.rss()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _worker_ready(worker: Any) -> None:
    """A worker has imported Django and connected to the broker once its RSS stops growing."""
    last = -1
    for _ in range(100):
        time.sleep(0.3)
        rss = resident_bytes(worker.pid)
        if rss == last:
            return
        last = rss


def main() -> None:
    django_setup(eager=True)
    import redis
    from rest_framework.test import APIClient

    from changeapi.models import Baseline, DryRun, Project
    from tests.bench.support import drop_shadow_databases, history_change_documents, real_history
    from tests.factories import UserFactory

    heading("peak RSS of a worker dry-running on the 400+ migration baseline")
    history = real_history()
    with service_database("memory") as dbname:
        redis.Redis.from_url(BROKER).flushdb()
        use_broker(BROKER)
        try:
            api = APIClient()
            api.force_authenticate(user=UserFactory(username="bench-owner"))
            assert api.post("/api/v1/projects/", {"slug": "hist", "name": "hist"}, format="json").status_code == 201
            Project.objects.filter(slug="hist").update(intake_settings=history.intake_settings)

            builder = start_worker("builder", dbname=dbname, broker=BROKER)
            try:
                _worker_ready(builder)
                with RssSampler(builder.pid) as build:
                    upload = {"migration_files": [f.as_upload() for f in history.files]}
                    response = api.post("/api/v1/projects/hist/baselines/", upload, format="json")
                    assert response.status_code == 202, response.content
                    baseline_id = response.json()["id"]
                    wait_for(lambda: Baseline.objects.get(pk=baseline_id).status != "building", 600, "the template build")
            finally:
                stop_worker(builder)
            assert Baseline.objects.get(pk=baseline_id).status == "ready", Baseline.objects.get(pk=baseline_id).error

            worker = start_worker("dry-runner", dbname=dbname, broker=BROKER)
            try:
                _worker_ready(worker)
                with RssSampler(worker.pid) as sampler:
                    idle = sampler.peak
                    response = api.post(
                        "/api/v1/change-requests/",
                        {"project": "hist", "title": "memory", "operations": history_change_documents()},
                        format="json",
                    )
                    assert response.status_code == 202, response.content
                    dry_run_id = response.json()["latest_dry_run"]
                    wait_for(lambda: DryRun.objects.get(pk=dry_run_id).finished_at is not None, 600, "the dry-run")
            finally:
                stop_worker(worker)
            dry_run = DryRun.objects.get(pk=dry_run_id)
            assert dry_run.status == "succeeded", dry_run.error
        finally:
            use_broker(None)
            redis.Redis.from_url(BROKER).flushdb()
            drop_shadow_databases()
    print(f"  baseline: {len(history.files)} migrations; change: 5 operations")
    figure("worker RSS, idle (Django + Celery loaded)", idle / 2**20, "MiB")
    figure("worker RSS, peak during the dry-run (cold caches)", sampler.peak / 2**20, "MiB")
    figure("  growth over idle", (sampler.peak - idle) / 2**20, "MiB")
    figure("builder worker RSS, peak during the template build", build.peak / 2**20, "MiB")


if __name__ == "__main__":
    main()
