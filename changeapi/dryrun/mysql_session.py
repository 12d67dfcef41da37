"""MySQL/MariaDB templates and job sessions: a baseline's seeded template, and one clone per job.

The template is built by Django's MySQL schema editor through the one apply path, as a user
of its own, then seeded; a job takes a warm spare copy of it when one is ready, or copies it
table by table, and connects to it as its own user; both are dropped when the job ends.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from django.conf import settings
from django.db.backends.base.base import BaseDatabaseWrapper

from changeapi.dryrun.engine import apply_plan_untraced
from changeapi.dryrun.mysql_connection import mysql_connection
from changeapi.intake.plan import Plan
from changeapi.shadow.engine_servers import MySqlShadowServer
from changeapi.shadow.mysql_databases import (
    CloneCost,
    JobUser,
    database_copy,
    database_create,
    database_drop,
    database_exists,
    job_user_create,
    job_user_drop,
    named_lock,
    spare_claim,
)
from changeapi.shadow.mysql_seed import SeededTable, seed_database
from changeapi.shadow.mysql_watchdog import mysql_watchdog


@dataclass(frozen=True, slots=True)
class MySqlTemplate:
    """A built template: its name, and the rows seeded per table (empty when it existed)."""

    name: str
    built: bool
    seeded: tuple[SeededTable, ...] = ()
    build_seconds: float = 0.0


def template_build(
    *, server: MySqlShadowServer, name: str, baseline: Plan, rows: dict[str, int] | None = None, default_rows: int = 0
) -> MySqlTemplate:
    """Ensure the template of `baseline` exists on `server` as `name`, seeded; built now if not.

    The baseline is applied by Django's MySQL schema editor (the SQL `migrate` runs) as the
    template's own job user, with no statement cap, as seeding a large table is the point; the
    user is dropped afterwards, so nothing can connect to the template but the admin. A failed
    build leaves no template behind; concurrent builds of one template take turns (a named lock).
    """
    with named_lock(server, f"schemagate-template:{name}"):
        if database_exists(server, name):
            return MySqlTemplate(name=name, built=False)
        started = time.perf_counter()
        database_create(server, name)
        try:
            user = job_user_create(server, name, statement_seconds=None)
            with mysql_connection(server, user) as connection:
                apply_plan_untraced(connection, baseline)
                with connection.cursor() as cursor:
                    seeded = seed_database(cursor.cursor, name, rows or {}, default_rows=default_rows)
            job_user_drop(server, name)
        except BaseException:
            database_drop(server, name)
            raise
    return MySqlTemplate(name=name, built=True, seeded=tuple(seeded), build_seconds=round(time.perf_counter() - started, 3))


def statement_seconds() -> float:
    """The job's statement cap, SHADOW_STATEMENT_TIMEOUT_MS, in the seconds MariaDB counts."""
    return max(int(settings.SHADOW_STATEMENT_TIMEOUT_MS), 1) / 1000


@dataclass(frozen=True)
class MySqlSession:
    """A connected clone: its name, the spare taken ("" for a fresh copy), the time it took,
    and what a fresh copy cost (None for a spare)."""

    connection: BaseDatabaseWrapper
    user: JobUser
    name: str
    spare: str
    clone_ms: float
    copy: CloneCost | None


@contextmanager
def mysql_session(
    server: MySqlShadowServer, *, template: str, name: str, spares: Sequence[str] = (), drop: bool = True
) -> Iterator[MySqlSession]:
    """Take a ready spare of `template` (one of `spares`) or copy it as `name`; connect as the job.

    A taken spare keeps its own name (these servers cannot rename a database), so the session's
    `name` is the database it runs on. While it is open, the watchdog enforces the job's
    limits from the admin side. The clone and its user are dropped whatever happens, unless
    `drop` is False.
    """
    started = time.perf_counter()
    spare = spare_claim(server, spares) if spares else None
    database = spare or name
    copy = None if spare else database_copy(server, source=template, name=name)
    try:
        user = job_user_create(server, database, statement_seconds=statement_seconds())
        clone_ms = round((time.perf_counter() - started) * 1000, 3)
        with mysql_watchdog(server, user.name), mysql_connection(server, user) as connection:
            yield MySqlSession(connection=connection, user=user, name=database, spare=spare or "", clone_ms=clone_ms, copy=copy)
    finally:
        if drop:
            database_drop(server, database)
