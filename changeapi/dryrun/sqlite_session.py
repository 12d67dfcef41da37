"""SQLite templates and job sessions: a baseline's seeded template file, and one clone per job.

The template is built by Django's SQLite schema editor through the one apply path, then
seeded; a job takes a warm spare copy of it when one is ready, or copies it with the backup
API, and works on that file alone (the connection is fenced: `sqlite_connection`). While a job
runs, a watchdog thread interrupts it from outside once it passes its wall time or a statement
passes its statement time (`sqlite3.Connection.interrupt`, which SQLite allows from any thread).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from django.conf import settings
from django.db.backends.base.base import BaseDatabaseWrapper

from changeapi.dryrun.engine import apply_plan_untraced
from changeapi.dryrun.sqlite_connection import sqlite_connection
from changeapi.intake.plan import Plan
from changeapi.shadow.engine_servers import SqliteShadowServer
from changeapi.shadow.mysql_seed import SeededTable
from changeapi.shadow.sqlite_files import (
    FileCopyCost,
    build_lock,
    building_name,
    database_copy,
    database_create,
    database_drop,
    database_exists,
    shadow_path,
    spare_claim,
)
from changeapi.shadow.sqlite_seed import seed_database

_POLL_SECONDS = 0.05


@dataclass(frozen=True, slots=True)
class SqliteTemplate:
    """A built template: its name, and the rows seeded per table (empty when it existed)."""

    name: str
    built: bool
    seeded: tuple[SeededTable, ...] = ()
    build_seconds: float = 0.0


def template_build(
    *, server: SqliteShadowServer, name: str, baseline: Plan, rows: dict[str, int] | None = None, default_rows: int = 0
) -> SqliteTemplate:
    """Ensure the template of `baseline` exists on `server` as `name`, seeded; built now if not.

    The baseline is applied by Django's SQLite schema editor (the SQL `migrate` runs) on a
    file of its own name-in-progress, seeded, and only then renamed to `name`: a template that
    exists is whole, and a failed build leaves nothing behind.
    """
    server.ensure_usable()
    with build_lock(server, name):
        if database_exists(server, name):
            return SqliteTemplate(name=name, built=False)
        started = time.perf_counter()
        building = building_name(name)
        database_drop(server, building)
        path = database_create(server, building)
        try:
            with sqlite_connection(path, alias=f"schemagate_template_{building}") as connection:
                apply_plan_untraced(connection, baseline)
                raw = connection.connection
                assert raw is not None
                raw.set_authorizer(None)  # the seeder is the service's own SQL
                seeded = seed_database(raw, rows or {}, default_rows=default_rows)
            path.rename(shadow_path(server, name))
        except BaseException:
            database_drop(server, building)
            raise
    return SqliteTemplate(name=name, built=True, seeded=tuple(seeded), build_seconds=round(time.perf_counter() - started, 3))


@dataclass
class Watchdog:
    """Interrupts the job's connection from another thread once a limit has passed; says which."""

    wall_seconds: float
    statement_ms: float
    breach: str | None = None
    statement_started: float | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def watch(self, raw: sqlite3.Connection) -> None:
        deadline = time.monotonic() + self.wall_seconds

        def run() -> None:
            while not self._stop.wait(_POLL_SECONDS):
                now = time.monotonic()
                if now > deadline:
                    self.breach = self.breach or (
                        f"the dry-run exceeded its wall-time limit of {self.wall_seconds:g} s (SCHEMAGATE_DRY_RUN_WALL_SECONDS)"
                    )
                started = self.statement_started
                if self.breach is None and started is not None and (now - started) * 1000 > self.statement_ms:
                    self.breach = f"a statement ran past SHADOW_STATEMENT_TIMEOUT_MS ({self.statement_ms:g} ms)"
                if self.breach is not None:
                    # Repeated: an interrupt between two statements is lost, the next one is not.
                    raw.interrupt()

        self._thread = threading.Thread(target=run, name="sqlite-watchdog", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop watching (once the run is over, so the service's own reads are not interrupted)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


@dataclass(frozen=True)
class SqliteSession:
    """A connected clone: its name and file, the spare taken ("" for a fresh copy), the time it
    took, what a fresh copy cost (None for a spare), and the job's watchdog."""

    connection: BaseDatabaseWrapper
    name: str
    path: str
    spare: str
    clone_ms: float
    copy: FileCopyCost | None
    watchdog: Watchdog
    max_bytes: int


def clone_max_bytes(template_bytes: int) -> int:
    """The clone's file-size cap: the template's size plus SHADOW_MAX_CLONE_GROWTH_BYTES."""
    return template_bytes + int(settings.SHADOW_MAX_CLONE_GROWTH_BYTES)


@contextmanager
def sqlite_session(
    server: SqliteShadowServer, *, template: str, name: str, spares: list[str] | None = None, drop: bool = True
) -> Iterator[SqliteSession]:
    """Take a ready spare of `template` (renamed to `name`) or copy it as `name`; connect to it.

    The connection is fenced and capped in size, in WAL mode (the mode production SQLite runs
    Django in when readers must go on during a write). The clone is deleted whatever happens,
    unless `drop` is False.
    """
    started = time.perf_counter()
    database_drop(server, name)  # a reclaimed job's leftover
    template_bytes = shadow_path(server, template).stat().st_size
    spare = spare_claim(server, spares, name=name) if spares else None
    copy = None if spare else database_copy(server, source=template, name=name)
    watchdog = Watchdog(
        wall_seconds=float(settings.SCHEMAGATE_DRY_RUN_WALL_SECONDS), statement_ms=float(settings.SHADOW_STATEMENT_TIMEOUT_MS)
    )
    path = shadow_path(server, name)
    try:
        with sqlite3.connect(path) as setup:
            setup.execute("PRAGMA journal_mode = WAL")
        setup.close()
        clone_ms = round((time.perf_counter() - started) * 1000, 3)
        max_bytes = clone_max_bytes(template_bytes)
        with sqlite_connection(path, alias=f"schemagate_shadow_{name}", max_bytes=max_bytes) as connection:
            raw = connection.connection
            assert raw is not None
            watchdog.watch(raw)
            try:
                yield SqliteSession(
                    connection=connection,
                    name=name,
                    path=str(path),
                    spare=spare or "",
                    clone_ms=clone_ms,
                    copy=copy,
                    watchdog=watchdog,
                    max_bytes=max_bytes,
                )
            finally:
                watchdog.stop()
    finally:
        if drop:
            database_drop(server, name)
