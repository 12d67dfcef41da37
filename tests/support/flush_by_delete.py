"""Emptying the test database between transactional tests by DELETE instead of TRUNCATE.

A transactional test (`django_db(transaction=True)`) ends with Django's flush: one TRUNCATE
of every table, which gives each of the ~50 tables a new file and waits for an ACCESS
EXCLUSIVE lock on all of them, then the post_migrate signal, which writes the content types,
permissions and guardian's anonymous user (where one is configured) again, row by row: a
quarter to a third of a second per test here, for tables holding a handful of rows.

Instead, DELETE in one transaction empties the tables in a few milliseconds. Django makes
every foreign key DEFERRABLE INITIALLY DEFERRED on PostgreSQL, so the order of the deletes
does not matter: the keys are checked at commit, when every table is empty. What migrate and
that signal wrote is kept (as TestCase, which never flushes, keeps it), so the signal is not
sent.

Tables whose triggers refuse DELETE (the append-only audit trail, sealed bundles) are still
truncated, with the tables referencing them: TRUNCATE fires no row trigger, and the service's
role in production has no TRUNCATE on them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.core.management.commands import flush
from django.db.backends.postgresql.operations import DatabaseOperations
from guardian.conf import settings as guardian_settings

# Written by migrate and by post_migrate: the same rows again after every flush.
KEPT_TABLES = frozenset({"django_content_type", "auth_permission"})

_DELETE_TRIGGERED: dict[str, frozenset[str]] = {}

# Tables with a trigger of their own (not a foreign key's) that fires on DELETE, and the
# tables referencing them, which TRUNCATE must take along.
_TRIGGERED_TABLES = """
WITH RECURSIVE truncated(oid) AS (
    SELECT t.tgrelid FROM pg_trigger t WHERE NOT t.tgisinternal AND t.tgtype & 8 = 8
    UNION
    SELECT k.conrelid FROM pg_constraint k JOIN truncated ON k.confrelid = truncated.oid WHERE k.contype = 'f'
)
SELECT c.relname FROM truncated JOIN pg_class c ON c.oid = truncated.oid
WHERE c.relnamespace = 'public'::regnamespace
"""


# Whether the last flush fell back to Django's own (sequences to restart), which truncates
# the kept tables too: post_migrate must then write their rows again.
_fell_back = False


@contextmanager
def flushes_by_delete() -> Iterator[None]:
    """Inside, Django's flush deletes rather than truncates, and sends no post_migrate."""
    emit = flush.emit_post_migrate_signal

    def emit_after_a_fallback(*args: Any, **kwargs: Any) -> None:
        if _fell_back:
            emit(*args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(DatabaseOperations, "sql_flush", sql_flush_by_delete)
        patch.setattr(flush, "emit_post_migrate_signal", emit_after_a_fallback)
        yield


def sql_flush_by_delete(
    self: DatabaseOperations, style: Any, tables: list[str], *, reset_sequences: bool = False, allow_cascade: bool = False
) -> list[str]:
    """What `DatabaseOperations.sql_flush` returns, as DELETEs, but for the kept rows; TRUNCATE
    for the tables whose triggers refuse DELETE. Where sequences are to restart, which DELETE
    cannot do, Django's own TRUNCATE of every table, and post_migrate after it as usual."""
    global _fell_back
    _fell_back = reset_sequences
    if reset_sequences:
        return original_sql_flush(self, style, tables, reset_sequences=True, allow_cascade=allow_cascade)
    tables = [table for table in tables if table not in KEPT_TABLES]
    if not tables:
        return []
    triggered = _delete_triggered(self)
    truncated = [table for table in tables if table in triggered]
    statements = original_sql_flush(self, style, truncated, allow_cascade=allow_cascade) if truncated else []
    return statements + [_delete(self, style, table) for table in tables if table not in triggered]


def _delete(ops: DatabaseOperations, style: Any, table: str) -> str:
    statement = f"{style.SQL_KEYWORD('DELETE FROM')} {style.SQL_FIELD(ops.quote_name(table))}"
    if table == "auth_user" and guardian_settings.ANONYMOUS_USER_NAME is not None:
        anonymous = str(guardian_settings.ANONYMOUS_USER_NAME).replace("'", "''")
        statement += f" WHERE username <> '{anonymous}'"
    return statement + ";"


def _delete_triggered(ops: DatabaseOperations) -> frozenset[str]:
    """Read once per test database: its schema does not change while the suite runs."""
    name = ops.connection.settings_dict["NAME"]
    if name not in _DELETE_TRIGGERED:
        with ops.connection.cursor() as cursor:
            cursor.execute(_TRIGGERED_TABLES)
            _DELETE_TRIGGERED[name] = frozenset(row[0] for row in cursor.fetchall())
    return _DELETE_TRIGGERED[name]


original_sql_flush = DatabaseOperations.sql_flush
