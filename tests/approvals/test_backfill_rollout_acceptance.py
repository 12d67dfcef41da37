"""Issue 20's acceptance, end to end on the real PostgreSQL: a NOT NULL column added by
expand/contract on a table of 200,000 rows. The dry-run estimates the backfill from a sample;
the bundle's generated command runs it on a copy of the seeded clone, stopped, SIGKILLed half-way
and restarted, and every row is done exactly once; the service shows its progress at each step;
the contract migration is refused (by `migrate` and by its SQL file) until the parity check
counts zero, and applies after.

The estimate is compared with the command's measured run side by side: the dry-run engine (what
the service's dry-run runs, on a clone of the same seeded template) estimates the backfill right
before and right after the command's last, uninterrupted run, and the run is measured as the work
of every batch it committed (the checkpoint's sum, across the three runs), so neither a load spike
during a few batches nor the load moving between the dry-run and the run on a shared machine
decides the comparison. The
estimate of the change request's own dry-run is printed beside them. Every figure excludes pauses.
"""

from __future__ import annotations

import math
import re
import signal
import statistics
import subprocess
import sys
import time
import uuid
from typing import Any

import psycopg
import pytest
from django.conf import settings as django_settings

from approvals.models import ReleaseBundle
from changeapi.dryrun.contract import to_json
from changeapi.dryrun.run import dry_run_execute
from changeapi.models import Project, Revision
from changeapi.selectors import baseline_plan, revision_plan
from changeapi.services.table_stats import production_profile, seeded_template_for
from tests.approvals.bundling import Release, admin_connect, archive_files, baseline_copy, run_sql_files, shadow_server
from tests.approvals.team import checkpoint, counts, manage, project_from_bundle, work_ms

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

ROWS = 200_000
BATCH = 2_000
BATCHES = ROWS // BATCH
COMMAND = "schemagate_backfill_1_1"
EXPAND = "0002_order_cents_backfill_order"
SAMPLE_BATCHES = 10
# Production is the seeded clone: its bytes per row are the seeder's (17,235,968 bytes for 200,000
# orders), so the estimate is not scaled for wider rows than the command meets.
STATS = {
    "project": "shop",
    "tables": [
        {"table": "shop_order", "rows": ROWS, "total_bytes": ROWS * 86},
        {"table": "shop_customer", "rows": 1_000, "total_bytes": 1_000 * 100},
    ],
}
# Phase 1 adds the column nullable and declares the backfill; phase 3 makes it NOT NULL.
# `cents = coalesce(cents, 0) + 1`: a row done twice would read 2, a row missed NULL.
EXPAND_BACKFILL_CONTRACT: list[dict[str, Any]] = [
    {
        "app_label": "shop",
        "operations": [
            {"op": "AddField", "model_name": "order", "name": "cents", "field": {"type": "BigIntegerField", "null": True}},
            {
                "op": "Backfill",
                "model": "shop.Order",
                "assignments": {"cents": {"+": [{"Coalesce": [{"F": "cents"}, 0]}, 1]}},
                "batch_size": BATCH,
                "parity": {"cents__isnull": True},
            },
        ],
    },
    {
        "app_label": "shop",
        "operations": [{"op": "AlterField", "model_name": "order", "name": "cents", "field": {"type": "BigIntegerField"}}],
    },
]
BATCH_LINE = re.compile(r": batch ([\d,]+) up to key \S+: ([\d,]+) rows in (\d+) ms;")


def _backfill(api: Any, bundle_id: int) -> dict[str, Any]:
    response = api.get(f"/api/v1/bundles/{bundle_id}/")
    assert response.status_code == 200, response.content
    return response.json()["backfills"][0]  # type: ignore[no-any-return]


def _nullable(dbname: str) -> str:
    with admin_connect(dbname) as conn:
        row = conn.execute(
            "SELECT is_nullable FROM information_schema.columns WHERE table_name = 'shop_order' AND column_name = 'cents'"
        ).fetchone()
        assert row is not None
        return str(row[0])


def _batch_ms(output: str) -> list[int]:
    return [int(ms) for _, _, ms in BATCH_LINE.findall(output)]


def _estimate_now(project: Project, bundle: ReleaseBundle, template: str) -> float:
    """The dry-run engine's estimate of the backfill's work at production size, made now, as the
    service's dry-run makes it (a clone of the seeded template, the sample, the estimate)."""
    revision = Revision.objects.get(change_request__project=project)
    report = dry_run_execute(
        server=shadow_server(),
        template=template,
        clone_name=f"{django_settings.SHADOW_DATABASE_PREFIX}dr_acceptance_{uuid.uuid4().hex[:8]}",
        baseline=baseline_plan(bundle.baseline),
        change=revision_plan(revision, bundle.baseline),
        profile=production_profile(project=project),
        backfill_sample_batches=SAMPLE_BATCHES,
        backfill_target_lock_ms=project.backfill_target_lock_ms,
    )
    return float(to_json(report)["backfills"][0]["at_production"]["work_ms"])  # type: ignore[index, call-overload]


@pytest.fixture
def release(project_with_baseline, client_for, settings):  # noqa: ANN001, ANN201
    settings.SCHEMAGATE_SEED_MAX_ROWS = ROWS  # the seeded clone has every production row
    settings.SCHEMAGATE_BACKFILL_SAMPLE_BATCHES = SAMPLE_BATCHES
    return Release(project_with_baseline, client_for)


def test_a_not_null_column_by_expand_backfill_contract_on_200000_rows(release, live_server, tmp_path):  # noqa: PLR0915
    api = release.api
    assert api.post("/api/v1/table-stats/", STATS, format="json").status_code in (200, 201)
    change_request = release.approved(EXPAND_BACKFILL_CONTRACT, title="cents, NOT NULL by expand/contract")
    dry_run = api.get(f"/api/v1/dry-runs/{change_request['latest_dry_run']}/").json()
    assert dry_run["status"] == "succeeded", dry_run
    (timing,) = dry_run["report"]["backfills"]
    assert timing["rows_total"] == ROWS and timing["at_production"]["batches"] == BATCHES
    estimate = timing["at_production"]

    project = Project.objects.get(slug="shop")
    template = seeded_template_for(baseline=project.current_baseline, profile=production_profile(project=project))
    with baseline_copy(template) as dbname:
        sealed, archive = release.sealed(change_request)
        files = archive_files(archive)
        bundle = ReleaseBundle.objects.select_related("baseline").get(pk=sealed["id"])
        key = api.post("/api/v1/projects/shop/api-keys/", {"name": "rollout", "permissions": ["release_bundle"]}, format="json")
        assert key.status_code == 201, key.content
        env = {
            **project_from_bundle(tmp_path, files, bundle, dbname),
            "SCHEMAGATE_REPORT_URL": f"{live_server.url}/api/v1/bundles/{bundle.pk}/phases/1/progress/",
            "SCHEMAGATE_API_KEY": key.json()["key"],
        }
        assert manage(env, tmp_path, "migrate", "shop", "0001", "--fake").returncode == 0
        expanded = manage(env, tmp_path, "migrate", "shop", EXPAND)
        assert expanded.returncode == 0, expanded.stderr
        assert counts(dbname) == {None: ROWS}
        assert _backfill(api, bundle.pk)["state"] == "pending"

        # Stopped by a batch limit: the service has the figures of the stop.
        stopped = manage(env, tmp_path, COMMAND, "--max-batches", str(BATCHES // 4))
        assert stopped.returncode == 0, stopped.stderr
        backfill = _backfill(api, bundle.pk)
        assert (backfill["state"], backfill["contract_ready"]) == ("running", False)
        assert (backfill["progress"]["batches"], backfill["progress"]["rows"]) == (BATCHES // 4, ROWS // 4)

        # Killed half-way: the batch in flight rolls back with its checkpoint.
        running = subprocess.Popen(
            [sys.executable, "-m", "django", COMMAND],
            env={**env, "PYTHONUNBUFFERED": "1"},
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert running.stdout is not None
        for line in running.stdout:
            if f"batch {BATCHES // 2} up to key" in line:
                running.send_signal(signal.SIGKILL)
                break
        running.wait(timeout=60)
        assert running.returncode == -signal.SIGKILL
        _, batches, rows, finished, _ = checkpoint(dbname)
        assert not finished and batches >= BATCHES // 2 and counts(dbname) == {1: rows, None: ROWS - rows}
        backfill = _backfill(api, bundle.pk)
        assert backfill["state"] == "running" and not backfill["contract_ready"]
        assert BATCHES // 4 < backfill["progress"]["batches"] <= batches

        # The contract phase before parity: refused by migrate and by its SQL file, nothing changed.
        refused = manage(env, tmp_path, "migrate", "shop")
        assert refused.returncode != 0
        assert "Schemagate preflight" in refused.stderr and "has not reached parity" in refused.stderr
        contract_sql = files["sql/forward/002_shop_0003_alter_order_cents.sql"]
        with pytest.raises(psycopg.errors.RaiseException, match="has not reached parity"):
            run_sql_files(dbname, [contract_sql])
        assert _nullable(dbname) == "YES"

        # Restarted: it resumes after the last committed batch and finishes.
        estimated_before = _estimate_now(project, bundle, template)
        started = time.perf_counter()
        resumed = manage(env, tmp_path, COMMAND)
        elapsed = time.perf_counter() - started
        estimated_after = _estimate_now(project, bundle, template)
        assert resumed.returncode == 0, resumed.stderr
        assert "resuming after key" in resumed.stdout and "parity check counts 0" in resumed.stdout
        assert counts(dbname) == {1: ROWS}
        assert checkpoint(dbname)[2:] == (ROWS, True, 0)
        backfill = _backfill(api, bundle.pk)
        assert (backfill["state"], backfill["contract_ready"]) == ("finished", True)
        assert (backfill["progress"]["rows"], backfill["progress"]["parity_remaining"]) == (ROWS, 0)

        # The contract phase after parity.
        contracted = manage(env, tmp_path, "migrate", "shop")
        assert contracted.returncode == 0, contracted.stderr
        assert _nullable(dbname) == "NO"

        # The estimate against the command's measured run: the work of every committed batch, as
        # the checkpoint sums it (a hundred batches average out a busy neighbour's stalls).
        resumed_batches = _batch_ms(resumed.stdout)
        assert len(resumed_batches) >= BATCHES // 4
        measured = work_ms(dbname)
        beside = math.sqrt(estimated_before * estimated_after)
        ratio = beside / measured
        print(
            f"\n  estimated beside the run {beside:,.0f} ms (before {estimated_before:,.0f}, after {estimated_after:,.0f}); "
            f"the change request's dry-run {estimate['work_ms']:,.0f} ms ({estimate['low_ms']:,.0f}-{estimate['high_ms']:,.0f}); "
            f"measured: all committed batches {measured:,} ms, the resumed run's median batch x {BATCHES} = "
            f"{statistics.median(resumed_batches) * BATCHES:,.0f} ms; "
            f"ratio {ratio:.2f} (the change request's: {estimate['work_ms'] / measured:.2f}); last run {elapsed:.1f} s"
        )
        assert 0.5 <= ratio <= 2.0
