"""A bundle's generated backfill command, run as a team would run it: the bundle's files copied
into a Django project on a copy of the baseline database with rows in it, `migrate`, then the
command, stopped half-way (by a batch limit, and by SIGKILL) and started again, or started twice
at once: every row is done exactly once, and the contract phase's preflight passes only at parity."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Any

import pytest
import redis
from celery import Celery

from approvals.models import ReleaseBundle
from tests.approvals.bundling import Release, admin_connect, archive_files, baseline_copy
from tests.approvals.team import checkpoint, counts, manage, project_from_bundle

pytestmark = pytest.mark.django_db(transaction=True)

# `cents = coalesce(cents, 0) + 1` for every row: a row done twice would read 2, one missed NULL.
COUNT_EACH_ROW: list[dict[str, Any]] = [
    {
        "app_label": "shop",
        "operations": [
            {"op": "AddField", "model_name": "order", "name": "cents", "field": {"type": "IntegerField", "null": True}},
            {
                "op": "Backfill",
                "model": "shop.Order",
                "assignments": {"cents": {"+": [{"Coalesce": [{"F": "cents"}, 0]}, 1]}},
                "batch_size": 500,
                "pause_ms": 100,
                "parity": {"cents__isnull": True},
            },
        ],
    }
]
MIGRATION = "0002_order_cents_backfill_order"
COMMAND = "schemagate_backfill_1_1"
ROWS = 6000 - 6000 // 7  # ids 1..6000 but every seventh: keys with gaps


@pytest.fixture
def release(project_with_baseline, client_for):  # noqa: ANN001, ANN201
    return Release(project_with_baseline, client_for)


def seed(dbname: str) -> None:
    with admin_connect(dbname) as conn:
        conn.execute("INSERT INTO shop_customer (id, email) VALUES (1, 'a@example.com')")
        conn.execute("INSERT INTO shop_order (id, total, customer_id) SELECT g, g % 1000, 1 FROM generate_series(1, 6000) g")
        conn.execute("DELETE FROM shop_order WHERE id % 7 = 0")


@pytest.fixture
def team_project(release, tmp_path):  # noqa: ANN001, ANN201
    """The bundle applied with `migrate` to a copy of the baseline with ROWS orders."""
    sealed, archive = release.sealed(release.approved(COUNT_EACH_ROW))
    bundle = ReleaseBundle.objects.select_related("baseline").get(pk=sealed["id"])
    with baseline_copy(bundle.baseline.template_name) as dbname:
        seed(dbname)
        env = project_from_bundle(tmp_path, archive_files(archive), bundle, dbname)
        faked = manage(env, tmp_path, "migrate", "shop", "0001", "--fake")
        assert faked.returncode == 0, faked.stderr
        migrated = manage(env, tmp_path, "migrate", "shop")
        assert migrated.returncode == 0, migrated.stderr
        assert counts(dbname) == {None: ROWS}
        yield env, tmp_path, dbname


def test_the_command_stopped_half_way_resumes_and_every_row_is_done_once(team_project):
    env, root, dbname = team_project

    first = manage(env, root, COMMAND, "--max-batches", "4")

    assert first.returncode == 0, first.stderr
    assert "batch 4 up to key" in first.stdout and "run again to resume" in first.stdout
    assert counts(dbname) == {1: 2000, None: ROWS - 2000}
    assert checkpoint(dbname) == (f"shop.{MIGRATION}:1", 4, 2000, False, None)
    refused = manage(env, root, COMMAND, "--check-parity")
    assert refused.returncode != 0 and "has not reached parity" in refused.stderr

    second = manage(env, root, COMMAND)

    assert second.returncode == 0, second.stderr
    assert "resuming after key" in second.stdout and "parity check counts 0" in second.stdout
    assert "ms of batch work (pauses excluded)" in second.stdout
    assert counts(dbname) == {1: ROWS}
    assert checkpoint(dbname) == (f"shop.{MIGRATION}:1", 11, ROWS, True, 0)
    assert manage(env, root, COMMAND, "--check-parity").returncode == 0
    again = manage(env, root, COMMAND)
    assert "already finished" in again.stdout
    assert counts(dbname) == {1: ROWS}


def test_the_command_killed_mid_run_loses_nothing_and_repeats_nothing(team_project):
    env, root, dbname = team_project
    running = subprocess.Popen(
        [sys.executable, "-m", "django", COMMAND],
        env={**env, "PYTHONUNBUFFERED": "1"},
        cwd=root,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert running.stdout is not None
    for line in running.stdout:
        if "batch 3 up to key" in line:
            running.send_signal(signal.SIGKILL)
            break
    running.wait(timeout=60)

    done = checkpoint(dbname)
    assert not done[3] and counts(dbname).get(1) == done[2]
    assert manage(env, root, COMMAND).returncode == 0
    assert counts(dbname) == {1: ROWS}
    assert checkpoint(dbname)[2:] == (ROWS, True, 0)


def test_two_runs_started_at_once_take_turns_and_do_every_row_once(team_project):
    env, root, dbname = team_project
    runs = [
        subprocess.Popen([sys.executable, "-m", "django", COMMAND], env=env, cwd=root, stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [run.communicate(timeout=120)[0] for run in runs]

    assert [run.returncode for run in runs] == [0, 0]
    assert counts(dbname) == {1: ROWS}
    assert checkpoint(dbname)[1:] == (11, ROWS, True, 0)
    assert sum(output.count(" up to key ") for output in outputs) == 11


def test_the_command_reports_its_progress_until_the_contract_phase_is_ready(team_project, project_with_baseline, live_server):
    env, root, dbname = team_project
    bundle = ReleaseBundle.objects.get()
    issued = project_with_baseline["api"].post(
        "/api/v1/projects/shop/api-keys/", {"name": "backfill", "permissions": ["release_bundle"]}, format="json"
    )
    assert issued.status_code == 201, issued.content
    env = {
        **env,
        "SCHEMAGATE_REPORT_URL": f"{live_server.url}/api/v1/bundles/{bundle.pk}/phases/1/progress/",
        "SCHEMAGATE_API_KEY": issued.json()["key"],
    }

    stopped = manage(env, root, COMMAND, "--max-batches", "4")

    assert stopped.returncode == 0, stopped.stderr
    assert "not reported" not in stopped.stdout
    backfill = project_with_baseline["api"].get(f"/api/v1/bundles/{bundle.pk}/").json()["backfills"][0]
    assert (backfill["state"], backfill["contract_ready"]) == ("running", False)
    assert (backfill["progress"]["batches"], backfill["progress"]["rows"]) == (4, 2000)

    finished = manage(env, root, COMMAND)

    assert finished.returncode == 0, finished.stderr
    backfill = project_with_baseline["api"].get(f"/api/v1/bundles/{bundle.pk}/").json()["backfills"][0]
    assert (backfill["state"], backfill["contract_ready"]) == ("finished", True)
    assert (backfill["progress"]["rows"], backfill["progress"]["parity_remaining"]) == (ROWS, 0)


def test_the_command_goes_on_when_the_service_is_unreachable(team_project):
    env, root, dbname = team_project

    result = manage(
        env, root, COMMAND, "--report-url", "http://127.0.0.1:9/api/v1/bundles/1/phases/1/progress/", "--api-key", "sg_x_y"
    )

    assert result.returncode == 0, result.stderr
    assert "progress not reported to http://127.0.0.1:9/" in result.stdout and "the backfill goes on" in result.stdout
    assert counts(dbname) == {1: ROWS}


def _team_worker(env: dict[str, str], root: Any) -> subprocess.Popen[bytes]:
    """A Celery worker of the team's project (its own app, `team_celery`, on the test's Redis)."""
    command = [sys.executable, "-m", "celery", "-A", "team_celery", "worker", "-P", "solo", "--without-gossip"]
    return subprocess.Popen(
        [*command, "--without-mingle", "-l", "WARNING"], cwd=root, env=env, start_new_session=True, stderr=subprocess.PIPE
    )


def test_the_bundles_celery_task_runs_the_backfill_in_chunks_each_enqueueing_the_next(team_project):
    env, root, dbname = team_project
    broker = os.environ.get("TEST_CELERY_BROKER_URL", "redis://127.0.0.1:6379/15")
    redis.Redis.from_url(broker).flushdb()
    worker = _team_worker(env, root)
    try:
        Celery(broker=broker, set_as_current=False).send_task(COMMAND, kwargs={"chunk_batches": 4})
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not _finished(dbname):
            assert worker.poll() is None, worker.stderr.read() if worker.stderr else ""
            time.sleep(0.3)
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=30)
        redis.Redis.from_url(broker).flushdb()

    assert counts(dbname) == {1: ROWS}
    assert checkpoint(dbname) == (f"shop.{MIGRATION}:1", 11, ROWS, True, 0)
    assert manage(env, root, COMMAND, "--check-parity").returncode == 0


def _finished(dbname: str) -> bool:
    with admin_connect(dbname) as conn:
        if conn.execute("SELECT to_regclass('schemagate_backfill_checkpoint')").fetchone() == (None,):
            return False
        row = conn.execute("SELECT finished FROM schemagate_backfill_checkpoint").fetchone()
        return bool(row and row[0])
