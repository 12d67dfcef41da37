"""Benchmark: a 5-operation dry-run, POST to finished report, against replaying the baseline with `migrate`.

Two baselines: 200 generated models with foreign keys and indexes (20 migrations of 10 apps),
and a real history of 400+ migrations (django.contrib, django-celery-beat, django-oauth-toolkit,
django-allauth, django-taggit, and two generated apps). Each is uploaded as migration files
through the API; its template database is built once. Then the same change is:

- submitted through the API (test client, Celery eager in-process), timed from POST until the
  dry-run's finished report is read back, cold (parse caches cleared) and warm;
- provisioned the obvious way: CREATE DATABASE, then Django's `migrate` in a fresh process over
  the baseline's migration files plus the change as one more migration file.

Warm runs follow each other at once: the chores of one dry-run (making the next spare clone,
dropping the used clone) overlap the next, as they would on a busy server.

Run: DATABASE_URL=postgres://postgres@127.0.0.1:5432/sg_bench SHADOW_DATABASE_PREFIX=sgbench_ \
     .venv/bin/python -m tests.bench.bench_dry_run [--runs 5] [--replays 1]
"""

from __future__ import annotations

import argparse
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
    timed,
)


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
        response = api.post("/api/v1/change-requests/", {"project": slug, "title": "bench", "migrations": change}, format="json")
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


def run_case(
    title: str, slug: str, history: History, change: list[dict[str, Any]], change_file: MigrationText, args: Any
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
        elapsed, dry_run = _dry_run_via_api(api, slug, change)
        warm.append(elapsed)
    figure(f"dry-run, POST -> finished report, warm (median of {args.runs})", median(warm))
    report = dry_run["report"]
    figure("  of which clone (a spare's rename, else CREATE DATABASE ... TEMPLATE)", report["clone_ms"])
    print(f"  statements traced: {len(report['statements'])}")
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
    ratio("replay / dry-run (warm)", replay_ms / median(warm), ">= 20x")
    ratio("replay / dry-run (cold caches)", replay_ms / cold_ms, "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="warm dry-runs per baseline")
    parser.add_argument("--replays", type=int, default=1, help="`migrate` replays per baseline")
    args = parser.parse_args()
    django_setup(eager=True)
    from tests.bench.support import (
        history_change_documents,
        real_history,
        synthetic_baseline,
        synthetic_change_documents,
        synthetic_change_file,
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
