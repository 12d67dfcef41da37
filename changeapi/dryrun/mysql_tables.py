"""What the MySQL/MariaDB rules need to know of the tables a change touched, read on the clone
after the run: how many rows each holds, and the foreign keys that tie it to others."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from changeapi.shadow.mysql_databases import quote, server_errors

ROWS_COUNTED_UP_TO = 1_000_001
"""Past a million rows every rule says the same: the count stops there, so it stays cheap."""


@dataclass(frozen=True, slots=True)
class MySqlTableFacts:
    """Rows per table (at most `ROWS_COUNTED_UP_TO`) and, per table, the foreign keys in either
    direction as `child -> parent` (online schema change tools refuse tables with any)."""

    rows: dict[str, int] = field(default_factory=dict)
    foreign_keys: dict[str, tuple[str, ...]] = field(default_factory=dict)


def mysql_table_facts(cursor: Any, tables: Iterable[str]) -> MySqlTableFacts:
    """Count the rows of each table and list its foreign keys; a table gone by now is left out."""
    rows: dict[str, int] = {}
    keys: dict[str, tuple[str, ...]] = {}
    for table in sorted(set(tables)):
        try:
            cursor.execute(f"SELECT COUNT(*) FROM (SELECT 1 FROM {quote(table)} LIMIT {ROWS_COUNTED_UP_TO}) AS counted")
        except server_errors():
            continue
        rows[table] = int(cursor.fetchone()[0])
        cursor.execute(
            "SELECT TABLE_NAME, REFERENCED_TABLE_NAME FROM information_schema.REFERENTIAL_CONSTRAINTS "
            "WHERE CONSTRAINT_SCHEMA = DATABASE() AND (TABLE_NAME = %s OR REFERENCED_TABLE_NAME = %s) "
            "ORDER BY TABLE_NAME, REFERENCED_TABLE_NAME",
            [table, table],
        )
        keys[table] = tuple(dict.fromkeys(f"{child} -> {parent}" for child, parent in cursor.fetchall()))
    return MySqlTableFacts(rows=rows, foreign_keys=keys)
