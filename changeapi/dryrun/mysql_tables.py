"""What the MySQL/MariaDB rules and estimates need to know of the tables a change touched, read
on the clone after the run: how many rows each holds, its bytes, and the foreign keys that tie
it to others."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from changeapi.shadow.mysql_databases import quote, server_errors

ROWS_COUNTED_UP_TO = 1_000_001
"""Past a million rows every rule says the same: the count stops there, so it stays cheap."""


@dataclass(frozen=True, slots=True)
class MySqlTableFacts:
    """Rows per table (at most `ROWS_COUNTED_UP_TO`), its bytes (data and indexes, as InnoDB's
    freshly sampled statistics say) and, per table, the foreign keys in either direction as
    `child -> parent` (online schema change tools refuse tables with any)."""

    rows: dict[str, int] = field(default_factory=dict)
    foreign_keys: dict[str, tuple[str, ...]] = field(default_factory=dict)
    total_bytes: dict[str, int] = field(default_factory=dict)


def mysql_table_facts(cursor: Any, tables: Iterable[str]) -> MySqlTableFacts:
    """Count the rows of each table, weigh it and list its foreign keys; a table gone by now is left out.

    InnoDB's `DATA_LENGTH`/`INDEX_LENGTH` lag behind a table just filled or copied until its
    statistics are sampled again, so `ANALYZE TABLE` (a few pages sampled, no rows read) comes first.
    """
    rows: dict[str, int] = {}
    keys: dict[str, tuple[str, ...]] = {}
    sizes: dict[str, int] = {}
    for table in sorted(set(tables)):
        try:
            cursor.execute(f"SELECT COUNT(*) FROM (SELECT 1 FROM {quote(table)} LIMIT {ROWS_COUNTED_UP_TO}) AS counted")
        except server_errors():
            continue
        rows[table] = int(cursor.fetchone()[0])
        cursor.execute(f"ANALYZE TABLE {quote(table)}")
        cursor.fetchall()
        cursor.execute(
            "SELECT COALESCE(DATA_LENGTH, 0) + COALESCE(INDEX_LENGTH, 0) FROM information_schema.TABLES "
            "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s",
            [table],
        )
        size = cursor.fetchone()
        sizes[table] = int(size[0]) if size else 0
        cursor.execute(
            "SELECT TABLE_NAME, REFERENCED_TABLE_NAME FROM information_schema.REFERENTIAL_CONSTRAINTS "
            "WHERE CONSTRAINT_SCHEMA = DATABASE() AND (TABLE_NAME = %s OR REFERENCED_TABLE_NAME = %s) "
            "ORDER BY TABLE_NAME, REFERENCED_TABLE_NAME",
            [table, table],
        )
        keys[table] = tuple(dict.fromkeys(f"{child} -> {parent}" for child, parent in cursor.fetchall()))
    return MySqlTableFacts(rows=rows, foreign_keys=keys, total_bytes=sizes)
