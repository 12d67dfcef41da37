"""What keeps a dry-run job within bounds: its lease, its wall clock, the claim limits.

The job flow (`dry_runs`) uses these around the engine: a lease renewed from a thread while
statements block the worker's main thread, a timer that ends the job's shadow sessions past
SCHEMAGATE_DRY_RUN_WALL_SECONDS, and claims that take turns per server so the concurrency
limits hold under races.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading

from django.conf import settings
from django.db import connection
from django.utils import timezone

from changeapi.models import DryRun
from changeapi.shadow import provision
from changeapi.shadow.servers import ShadowServer, ShadowServerUnavailable

logger = logging.getLogger(__name__)


class ShadowServerBusy(Exception):
    """The server (or the project) is at its limit of concurrent dry-runs: try again later."""


class ProjectBusy(ShadowServerBusy):
    """The project is at its limit of concurrent dry-runs, whichever server would take one."""


def lease_duration() -> dt.timedelta:
    return dt.timedelta(seconds=settings.SCHEMAGATE_DRY_RUN_LEASE_SECONDS)


def claims_serialise(key: str) -> None:
    """Claims for one server take turns, so the concurrency limit is not overrun by a race."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"schemagate-claim:{key}"])


class LeaseKeeper:
    """Renews a job's lease from a background thread while the engine works.

    A long statement blocks the worker's main thread, so the renewal cannot ride on progress
    callbacks alone. The thread uses its own database connection and closes it when done.
    """

    def __init__(self, dry_run_id: int, owner: str) -> None:
        self.dry_run_id = dry_run_id
        self.owner = owner
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"lease-{dry_run_id}", daemon=True)

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        interval = max(1.0, settings.SCHEMAGATE_DRY_RUN_LEASE_SECONDS / 3)
        try:
            while not self._stop.wait(interval):
                renewed = DryRun.objects.filter(pk=self.dry_run_id, status=DryRun.Status.RUNNING, lease_owner=self.owner).update(
                    lease_expires_at=timezone.now() + lease_duration()
                )
                if not renewed:
                    logger.warning("dry-run %s: lease lost; its result will be discarded", self.dry_run_id)
                    return
        finally:
            connection.close()


class WallClockGuard:
    """Ends the shadow sessions of a dry-run that runs past SCHEMAGATE_DRY_RUN_WALL_SECONDS.

    statement_timeout bounds one statement; this bounds the whole run (many statements, or a
    submitted `SET statement_timeout = 0`). The engine then fails on its dead connection and
    the report says why.
    """

    def __init__(self, server: ShadowServer, dbname: str) -> None:
        self.server = server
        self.dbname = dbname
        self.fired = False
        self._timer = threading.Timer(settings.SCHEMAGATE_DRY_RUN_WALL_SECONDS, self._fire)
        self._timer.daemon = True

    def _fire(self) -> None:
        self.fired = True
        try:
            provision.terminate_sessions(self.server, self.dbname)
        except ShadowServerUnavailable:
            logger.warning("could not stop the over-time dry-run on %s", self.dbname)

    def __enter__(self) -> WallClockGuard:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()
