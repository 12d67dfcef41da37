"""Limits on a MySQL/MariaDB job enforced from the admin side: statement time, and wall time.

The job user's `MAX_STATEMENT_TIME` is only a default: a session may `SET SESSION
max_statement_time = 0` and lift it. So while a job's session is open, an admin connection
polls the process list and kills any statement of the job's user that has run past
SHADOW_STATEMENT_TIMEOUT_MS (plus a grace, so the session normally stops itself with its own
error), and every session of the user once the job has run past SCHEMAGATE_DRY_RUN_WALL_SECONDS.
The reason is kept (`mysql_breach_of`), for the report to say which limit stopped the job.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.conf import settings

from changeapi.shadow.engine_servers import MySqlShadowServer
from changeapi.shadow.mysql_databases import server_errors

logger = logging.getLogger(__name__)

_GRACE_MS = 500
_POLL_SECONDS = 0.25

_breaches: dict[str, str] = {}
_breaches_lock = threading.Lock()


def mysql_breach_of(user: str) -> str | None:
    """Why the watchdog of `user`'s job killed its statements, if it did."""
    with _breaches_lock:
        return _breaches.get(user)


def _record(user: str, reason: str) -> None:
    with _breaches_lock:
        _breaches.setdefault(user, reason)


def _kill(cursor: Any, user: str, *, older_than_ms: int | None, what: str) -> int:
    query = "SELECT ID FROM information_schema.PROCESSLIST WHERE USER = %s"
    params: list[object] = [user]
    if older_than_ms is not None:
        query += " AND COMMAND = 'Query' AND TIME_MS > %s"
        params.append(older_than_ms)
    cursor.execute(query, params)
    killed = 0
    for (session_id,) in cursor.fetchall():
        try:
            cursor.execute(f"KILL {what} {int(session_id)}")
            killed += 1
        except server_errors():
            continue  # it ended meanwhile
    return killed


@contextmanager
def mysql_watchdog(server: MySqlShadowServer, user: str) -> Iterator[None]:
    """Enforce the job's limits on `user`'s sessions for the duration of the block."""
    stop = threading.Event()
    connection = server.admin_connect()
    with _breaches_lock:
        _breaches.pop(user, None)
    statement_ms = int(settings.SHADOW_STATEMENT_TIMEOUT_MS) + _GRACE_MS
    wall_deadline = time.monotonic() + int(settings.SCHEMAGATE_DRY_RUN_WALL_SECONDS)

    def watch() -> None:
        cursor = connection.cursor()
        while not stop.wait(_POLL_SECONDS):
            try:
                if time.monotonic() > wall_deadline:
                    if _kill(cursor, user, older_than_ms=None, what="CONNECTION"):
                        _record(
                            user,
                            f"the job ran past SCHEMAGATE_DRY_RUN_WALL_SECONDS ({settings.SCHEMAGATE_DRY_RUN_WALL_SECONDS} s)",
                        )
                elif _kill(cursor, user, older_than_ms=statement_ms, what="QUERY"):
                    _record(user, f"a statement ran past SHADOW_STATEMENT_TIMEOUT_MS ({settings.SHADOW_STATEMENT_TIMEOUT_MS} ms)")
            except server_errors() as exc:
                logger.warning("MySQL watchdog of %s on %s stopped: %s", user, server.key, exc)
                return

    thread = threading.Thread(target=watch, name=f"mysql-watchdog-{user}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)
        connection.close()
