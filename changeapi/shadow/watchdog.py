"""Limits enforced from outside the job's session: its statement time and its database's growth.

A session can change its own `statement_timeout` (`SET`, `set_config()` inside a `DO` block),
so the timeout set at connect is a default, not a limit. The watchdog holds an admin
connection for as long as a job's connection is open and cancels any statement of the job's
role that has run longer than the limit, whatever the session set. It also cancels the job's
statements once its database has grown past SHADOW_MAX_CLONE_GROWTH_BYTES since connect (a
`RunSQL` filling a table from `generate_series`, say), so one job cannot fill the disk every
other job's clone lives on; temporary files are capped per session by the role's
`temp_file_limit`, which only a superuser may change.

The reason for a cancellation is kept for the job (`breach_of`), so its report says which
limit stopped it rather than PostgreSQL's bare "canceling statement due to user request".
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from django.conf import settings

from changeapi.shadow.servers import ShadowServer, ShadowServerUnavailable

logger = logging.getLogger(__name__)

# Past the session's own timeout, so the session normally stops itself with its own error.
_GRACE_MS = 500

_breaches: dict[str, str] = {}
_breaches_lock = threading.Lock()


def breach_of(role: str) -> str | None:
    """Why the watchdog of `role`'s job cancelled its statements, if it did."""
    with _breaches_lock:
        return _breaches.get(role)


def _record(role: str, reason: str) -> None:
    with _breaches_lock:
        _breaches.setdefault(role, reason)


def _cancel_active(conn: psycopg.Connection, role: str, *, older_than_ms: int | None = None) -> int:
    query = "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE usename = %s AND state = 'active'"
    params: list[object] = [role]
    if older_than_ms is not None:
        query += " AND now() - query_start > make_interval(secs => %s)"
        params.append(older_than_ms / 1000)
    return len(conn.execute(query, params).fetchall())


def _database_bytes(conn: psycopg.Connection, dbname: str) -> int | None:
    row = conn.execute("SELECT pg_database_size(oid) FROM pg_database WHERE datname = %s", [dbname]).fetchone()
    return int(row[0]) if row else None


def _check(conn: psycopg.Connection, role: str, dbname: str, *, limit_ms: int, start_bytes: int | None) -> None:
    if _cancel_active(conn, role, older_than_ms=limit_ms + _GRACE_MS):
        _record(
            role, f"a statement ran past {limit_ms} ms (SHADOW_STATEMENT_TIMEOUT_MS) and was cancelled by the shadow's watchdog"
        )
        logger.warning("cancelled statements of %s past %d ms", role, limit_ms)
    if start_bytes is None:
        return
    grown = (_database_bytes(conn, dbname) or start_bytes) - start_bytes
    cap = int(settings.SHADOW_MAX_CLONE_GROWTH_BYTES)
    if grown > cap:
        _record(
            role,
            f"the dry-run's database grew by {grown} bytes, past its limit of {cap} bytes "
            "(SHADOW_MAX_CLONE_GROWTH_BYTES); its statements were cancelled",
        )
        if _cancel_active(conn, role):
            logger.warning("cancelled statements of %s: its database %s grew by %d bytes", role, dbname, grown)


@contextmanager
def statement_watchdog(server: ShadowServer, role: str, dbname: str, *, limit_ms: int | None = None) -> Iterator[None]:
    """While open, cancel `role`'s statements past `limit_ms` (SHADOW_STATEMENT_TIMEOUT_MS), and
    all of them once `dbname` has grown past SHADOW_MAX_CLONE_GROWTH_BYTES."""
    limit = int(limit_ms if limit_ms is not None else settings.SHADOW_STATEMENT_TIMEOUT_MS)
    interval = max(min(limit / 4000, 1.0), 0.05)
    stop = threading.Event()
    with _breaches_lock:
        _breaches.pop(role, None)

    def watch() -> None:
        try:
            with server.admin_connect() as conn:
                start_bytes = _database_bytes(conn, dbname)
                while not stop.wait(interval):
                    _check(conn, role, dbname, limit_ms=limit, start_bytes=start_bytes)
        except (ShadowServerUnavailable, psycopg.Error) as exc:
            # The job's own connection fails the same way and reports it.
            logger.warning("statement watchdog for %s on %s stopped: %s", role, server.key, exc)

    thread = threading.Thread(target=watch, name=f"watchdog-{role}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=10)
        with _breaches_lock:
            _breaches.pop(role, None)
