"""A Django connection to one SQLite shadow file, fenced in as a job's role would be elsewhere.

SQLite has no users: whatever a connection runs, it runs with this process's rights on the
filesystem. So the fence is SQLite's authorizer, consulted as each statement is prepared: it
refuses ATTACH and DETACH (and so `VACUUM INTO`, which attaches its target), which would open
or create a file anywhere, and every PRAGMA but the ones Django's SQLite backend itself uses,
so submitted SQL can neither lift the file-size cap (`max_page_count`, set as the connection
opens) nor change how the file is written. Waiting for a lock is bounded as `lock_timeout` is
on PostgreSQL (SHADOW_LOCK_TIMEOUT_MS, SQLite's busy timeout).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from django.db.backends.base.base import BaseDatabaseWrapper

from changeapi.dryrun.connection import registered_wrapper

ALLOWED_PRAGMAS = frozenset(
    {
        "foreign_keys",
        "foreign_key_check",
        "foreign_key_list",
        "index_info",
        "index_list",
        "index_xinfo",
        "legacy_alter_table",
        "table_info",
        "table_xinfo",
    }
)
"""The PRAGMAs Django's SQLite backend runs (schema editor, introspection, constraint checks)."""
READ_ONLY_PRAGMAS = frozenset({"page_count", "page_size", "max_page_count", "journal_mode"})
"""Read without an argument (the report's file size); refused with one."""


def _authorize(action: int, first: str | None, second: str | None, _database: str | None, _trigger: str | None) -> int:
    if action in (sqlite3.SQLITE_ATTACH, sqlite3.SQLITE_DETACH):
        return sqlite3.SQLITE_DENY
    if action == sqlite3.SQLITE_PRAGMA:
        name = (first or "").lower()
        if name in ALLOWED_PRAGMAS or (name in READ_ONLY_PRAGMAS and second is None):
            return sqlite3.SQLITE_OK
        return sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_OK


def fence(raw: sqlite3.Connection, *, max_bytes: int | None) -> None:
    """Cap the file at `max_bytes` (in whole pages) and install the authorizer on `raw`."""
    if max_bytes is not None:
        page_size = int(raw.execute("PRAGMA page_size").fetchone()[0])
        raw.execute(f"PRAGMA max_page_count = {max(int(max_bytes) // page_size, 1)}")
    raw.set_authorizer(_authorize)


def busy_timeout_seconds() -> float:
    return max(int(settings.SHADOW_LOCK_TIMEOUT_MS), 1) / 1000


@contextmanager
def sqlite_connection(path: Path, *, alias: str, max_bytes: int | None = None) -> Iterator[BaseDatabaseWrapper]:
    """A connected Django SQLite wrapper on `path`, fenced (see the module docstring); closed
    and unregistered after. The file must exist: connecting never creates one."""
    if not path.is_file():
        raise FileNotFoundError(f"no shadow database file {path.name}")
    settings_dict = {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(path),
        "OPTIONS": {"timeout": busy_timeout_seconds()},
    }
    with registered_wrapper(settings_dict, alias) as wrapper:
        wrapper.ensure_connection()
        raw = wrapper.connection
        assert raw is not None
        fence(raw, max_bytes=max_bytes)
        yield wrapper
