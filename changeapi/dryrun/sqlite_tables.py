"""What the SQLite estimates need to know of the clone's tables before the change runs: the
rows each holds and its bytes (its own pages and its indexes'), the figures the uploaded table
stats are set against (docs/table-stats.md measures production the same way)."""

from __future__ import annotations

import sqlite3
from collections.abc import Collection
from dataclasses import dataclass, field

from changeapi.shadow.sqlite_seed import base_tables, quote


@dataclass(frozen=True, slots=True)
class SqliteTableFacts:
    """Rows (`count(*)`) and bytes per table, and how the bytes were measured: `dbstat` (the
    pages of the table and its indexes) or `page share` (the file's used pages shared out by
    the tables' record lengths, where the library was built without dbstat)."""

    rows: dict[str, int] = field(default_factory=dict)
    total_bytes: dict[str, int] = field(default_factory=dict)
    bytes_source: str = "dbstat"


def has_dbstat(raw: sqlite3.Connection) -> bool:
    """Whether this SQLite library has the dbstat table (SQLITE_ENABLE_DBSTAT_VTAB)."""
    try:
        raw.execute("SELECT 1 FROM dbstat LIMIT 1").fetchall()
    except sqlite3.OperationalError:
        return False
    return True


def sqlite_table_facts(
    raw: sqlite3.Connection, *, only: Collection[str] | None = None, use_dbstat: bool | None = None
) -> SqliteTableFacts:
    """Count the rows of each base table (of those in `only`, when given) and weigh it;
    `use_dbstat=False` takes the page share even where dbstat exists (to check that fallback).

    dbstat reads every page it weighs (tens of milliseconds per 20 MB), so a dry-run weighs only
    the tables it has production figures for.
    """
    every = base_tables(raw)
    tables = [t for t in every if only is None or t in only]
    rows = {table: int(raw.execute(f"SELECT count(*) FROM {quote(table)}").fetchone()[0]) for table in tables}
    if not (use_dbstat if use_dbstat is not None else has_dbstat(raw)):
        shares = _page_share(raw, every)
        return SqliteTableFacts(rows=rows, total_bytes={t: shares[t] for t in tables}, bytes_source="page share")
    sizes = {}
    for table in tables:
        btrees = raw.execute("SELECT name FROM sqlite_master WHERE tbl_name = ? AND type IN ('table', 'index')", [table])
        sizes[table] = sum(
            int(raw.execute("SELECT coalesce(sum(pgsize), 0) FROM dbstat WHERE name = ?", [name]).fetchone()[0])
            for (name,) in btrees.fetchall()
        )
    return SqliteTableFacts(rows=rows, total_bytes=sizes)


def _page_share(raw: sqlite3.Connection, tables: list[str]) -> dict[str, int]:
    """The file's used pages (page_count less the freelist, times page_size) shared out by each
    table's record bytes (the sum of its values' lengths): an approximation that counts indexes
    in proportion to their table."""
    page_size = int(raw.execute("PRAGMA page_size").fetchone()[0])
    used = (
        int(raw.execute("PRAGMA page_count").fetchone()[0]) - int(raw.execute("PRAGMA freelist_count").fetchone()[0])
    ) * page_size
    weights = {}
    for table in tables:
        columns = [row[1] for row in raw.execute(f"PRAGMA table_info({quote(table)})")]
        lengths = " + ".join(f"coalesce(length(CAST({quote(c)} AS BLOB)), 0)" for c in columns) or "0"
        weights[table] = int(raw.execute(f"SELECT coalesce(sum({lengths}), 0) FROM {quote(table)}").fetchone()[0])
    total = sum(weights.values())
    return {table: round(used * weight / total) if total else 0 for table, weight in weights.items()}
