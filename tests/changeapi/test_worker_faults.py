"""Jobs survive lost workers and duplicate deliveries: one result, no shadow left behind.

These tests run real Celery worker processes against Redis and the test database.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.db import connection

from changeapi.models import AuditEvent, DryRun
from changeapi.services.dry_runs import dry_run_perform, dry_runs_reclaim
from changeapi.tasks import dry_run_task
from config.celery import app as celery_app
from tests.approvals.test_release_flow import _submit
from tests.conftest import clone_databases

pytestmark = pytest.mark.django_db(transaction=True)

REPO = Path(__file__).resolve().parents[2]
BROKER = os.environ.get("TEST_CELERY_BROKER_URL", "redis://127.0.0.1:6379/14")
LEASE_SECONDS = 3


def _sleep_change(seconds: float) -> list[dict]:
    return [{"app_label": "shop", "operations": [{"op": "RunSQL", "sql": f"SELECT pg_sleep({seconds})"}]}]


def _use_broker(eager: bool, url: str) -> None:
    celery_app.conf.task_always_eager = eager
    celery_app.conf.broker_url = url
    # Producer pools are bound to the broker they were made for: drop them so the next
    # send connects to `url`.
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


@pytest.fixture
def broker() -> Iterator[str]:
    """Route tasks through Redis for the test, as production does."""
    redis.Redis.from_url(BROKER).flushdb()
    previous = (celery_app.conf.task_always_eager, celery_app.conf.broker_url)
    _use_broker(False, BROKER)
    yield BROKER
    _use_broker(*previous)
    redis.Redis.from_url(BROKER).flushdb()


def _start_worker(name: str) -> subprocess.Popen[bytes]:
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        "CELERY_BROKER_URL": BROKER,
        "SCHEMAGATE_DRY_RUN_LEASE_SECONDS": str(LEASE_SECONDS),
        "SHADOW_DATABASE_PREFIX": settings.SHADOW_DATABASE_PREFIX,
    }
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "config",
        "worker",
        "-P",
        "solo",
        "-n",
        f"{name}@%h",
        "--without-gossip",
        "--without-mingle",
        "-l",
        "WARNING",
    ]
    return subprocess.Popen(command, cwd=REPO, env=env, start_new_session=True)


def _wait_for(predicate, timeout: float, what: str) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _stop(worker: subprocess.Popen[bytes]) -> None:
    if worker.poll() is None:
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()


def test_a_worker_killed_mid_dry_run_is_reclaimed_and_the_job_finishes_once(project_with_baseline, broker):
    api = project_with_baseline["api"]
    first = _start_worker("first")
    try:
        change_request = _submit(api, _sleep_change(3))
        dry_run_id = change_request["latest_dry_run"]
        _wait_for(
            lambda: DryRun.objects.get(pk=dry_run_id).status == "running" and clone_databases(), 60, "the first worker to start"
        )
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    finally:
        _stop(first)

    _wait_for(lambda: dry_runs_reclaim() == [dry_run_id], LEASE_SECONDS * 5, "the lease to expire and the job to be requeued")
    second = _start_worker("second")
    try:
        _wait_for(lambda: DryRun.objects.get(pk=dry_run_id).status in ("succeeded", "failed"), 90, "the second worker to finish")
    finally:
        _stop(second)

    dry_run = DryRun.objects.get(pk=dry_run_id)
    assert dry_run.status == "succeeded", dry_run.error
    assert dry_run.attempts == 2
    finished = AuditEvent.objects.filter(action="dry_run.finished", target_id=str(dry_run_id))
    assert finished.count() == 1
    assert clone_databases() == []


def test_the_same_task_delivered_twice_gives_one_result(project_with_baseline):
    api = project_with_baseline["api"]
    change_request = _submit(api)
    dry_run_id = change_request["latest_dry_run"]
    report = DryRun.objects.get(pk=dry_run_id).report

    dry_run_task.delay(dry_run_id)
    assert dry_run_perform(dry_run_id=dry_run_id) is None

    dry_run = DryRun.objects.get(pk=dry_run_id)
    assert dry_run.attempts == 1
    assert dry_run.report == report
    assert AuditEvent.objects.filter(action="dry_run.finished", target_id=str(dry_run_id)).count() == 1
