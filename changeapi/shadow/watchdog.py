"""Limits enforced from outside the job's session: its statements are cancelled past the timeout.

A session can change its own `statement_timeout` (`SET`, `set_config()` inside a `DO` block),
so the timeout set at connect is a default, not a limit. The watchdog holds an admin
connection for as long as a job's connection is open and cancels any statement of the job's
role that has run longer than the limit, whatever the session set.
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


def _cancel_overdue(conn: psycopg.Connection, role: str, limit_ms: int) -> int:
    rows = conn.execute(
        "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE usename = %s AND state = 'active' "
        "AND now() - query_start > make_interval(secs => %s)",
        [role, (limit_ms + _GRACE_MS) / 1000],
    ).fetchall()
    return len(rows)


@contextmanager
def statement_watchdog(server: ShadowServer, role: str, *, limit_ms: int | None = None) -> Iterator[None]:
    """Cancel `role`'s statements that run past `limit_ms` (SHADOW_STATEMENT_TIMEOUT_MS) while open."""
    limit = int(limit_ms if limit_ms is not None else settings.SHADOW_STATEMENT_TIMEOUT_MS)
    interval = max(min(limit / 4000, 1.0), 0.05)
    stop = threading.Event()

    def watch() -> None:
        try:
            with server.admin_connect() as conn:
                while not stop.wait(interval):
                    cancelled = _cancel_overdue(conn, role, limit)
                    if cancelled:
                        logger.warning("cancelled %d statement(s) of %s past %d ms on %s", cancelled, role, limit, server.key)
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
