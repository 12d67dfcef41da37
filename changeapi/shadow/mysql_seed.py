"""Synthetic rows for a MySQL/MariaDB template: N rows per table, parents before children.

Simpler than the PostgreSQL seeder: each table gets its rows from one `INSERT … SELECT` over
MariaDB's sequence engine (`seq_1_to_N`), every value a function of the row number `n`, valid
for its column type and unique wherever a unique index could ask for it; a foreign key column
holds a row number of the referenced table, which was seeded with the same functions first.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from changeapi.shadow.mysql_databases import base_tables, foreign_keys, quote

INTEGER_TYPES = {"tinyint", "smallint", "mediumint", "int", "integer", "bigint"}
TEXT_TYPES = {"char", "varchar", "tinytext", "text", "mediumtext", "longtext"}
BINARY_TYPES = {"binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob"}
# The largest value each integer type holds, so n is wrapped into its range.
INTEGER_MAX = {"tinyint": 127, "smallint": 32767, "mediumint": 8388607}


@dataclass(frozen=True, slots=True)
class SeededTable:
    table: str
    rows: int
    seconds: float


@dataclass(frozen=True, slots=True)
class _Column:
    name: str
    data_type: str
    column_type: str
    nullable: bool
    length: int | None
    precision: int | None
    scale: int | None
    generated: bool


def _columns(cursor: Any, database: str, table: str) -> list[_Column]:
    cursor.execute(
        "SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, IS_NULLABLE, CHARACTER_MAXIMUM_LENGTH, NUMERIC_PRECISION, "
        "NUMERIC_SCALE, EXTRA FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s "
        "ORDER BY ORDINAL_POSITION",
        [database, table],
    )
    return [
        _Column(
            name=str(row[0]),
            data_type=str(row[1]).lower(),
            column_type=str(row[2]).lower(),
            nullable=row[3] == "YES",
            length=int(row[4]) if row[4] is not None else None,
            precision=int(row[5]) if row[5] is not None else None,
            scale=int(row[6]) if row[6] is not None else None,
            generated="GENERATED" in str(row[7]).upper() or str(row[7]).upper() in {"VIRTUAL", "STORED", "PERSISTENT"},
        )
        for row in cursor.fetchall()
    ]


def value_expression(column: _Column, n: str) -> str:
    """SQL for the value of `column` in row `n` (an SQL expression of the row number)."""
    kind = column.data_type
    if kind in INTEGER_TYPES:
        top = INTEGER_MAX.get(kind)
        return f"(({n} - 1) % {top} + 1)" if top else n
    if kind in {"decimal", "numeric"}:
        digits = (column.precision or 10) - (column.scale or 0)
        return f"(({n} - 1) % {10 ** min(digits, 18) - 1} + 1)" if digits > 0 else "0"
    if kind in {"float", "double", "real"}:
        return f"({n} * 1.5)"
    if kind in {"bit"}:
        return f"({n} % 2)"
    if kind == "uuid":
        return f"CAST(LPAD(HEX({n}), 32, '0') AS UUID)"
    if kind in TEXT_TYPES or kind in BINARY_TYPES:
        length = column.length or 255
        if kind == "longtext":  # what MariaDB stores JSON in: text valid as JSON suits either
            return f"CONCAT('{{\"n\": ', {n}, '}}')"
        value = f"CONCAT('s', {n})"
        return f"LEFT({value}, {length})" if length < 21 else value
    if kind == "json":
        return f"CONCAT('{{\"n\": ', {n}, '}}')"
    if kind == "date":
        return f"DATE_ADD('2020-01-01', INTERVAL ({n} % 3650) DAY)"
    if kind in {"datetime", "timestamp"}:
        return f"DATE_ADD('2020-01-01 00:00:00', INTERVAL {n} SECOND)"
    if kind == "time":
        return f"SEC_TO_TIME({n} % 86400)"
    if kind == "year":
        return f"(1901 + {n} % 254)"
    if kind == "enum":
        return "1"  # the first member
    return "NULL" if column.nullable else "''"


def parents_first(tables: list[str], edges: dict[str, set[str]]) -> list[str]:
    """Tables so that each comes after the tables it references (cycles broken where found)."""
    ordered: list[str] = []
    visiting: set[str] = set()

    def visit(table: str) -> None:
        if table in ordered or table in visiting:
            return
        visiting.add(table)
        for parent in sorted(edges.get(table, ())):
            visit(parent)
        visiting.discard(table)
        ordered.append(table)

    for table in tables:
        visit(table)
    return ordered


def seed_database(cursor: Any, database: str, rows: dict[str, int], *, default_rows: int = 0) -> list[SeededTable]:
    """Fill every table of `database` with `rows[table]` rows (else `default_rows`), parents first.

    Foreign key checks are off for the session (a self-reference points at its own row), but
    every reference is to a row that exists, so a later ALTER that checks keys finds them valid;
    a referenced table given no rows gets one, so the tables referring to it can have theirs.
    """
    cursor.execute("SET SESSION foreign_key_checks = 0, unique_checks = 0")
    tables = base_tables(cursor, database)
    keys = foreign_keys(cursor, database)
    edges: dict[str, set[str]] = {}
    for key in keys:
        if key.referenced_table != key.table:
            edges.setdefault(key.table, set()).add(key.referenced_table)
    references = {(key.table, column): key.referenced_table for key in keys for column in key.columns}
    order = parents_first(tables, edges)
    counts = {table: rows.get(table, default_rows) for table in order}
    # A table with rows needs rows to reference: a parent left without any gets one.
    for table in reversed(order):
        for parent in edges.get(table, ()):
            if counts[table] > 0 and counts.get(parent, 0) <= 0:
                counts[parent] = 1
    seeded: list[SeededTable] = []
    for table in order:
        count = counts[table]
        if count <= 0:
            continue
        started = time.perf_counter()
        columns = [c for c in _columns(cursor, database, table) if not c.generated]
        expressions = []
        for column in columns:
            referenced = references.get((table, column.name))
            if referenced is not None:
                parent_rows = counts.get(referenced, 0)
                if parent_rows <= 0:
                    expressions.append("NULL")
                    continue
                # The parent's key column holds the parent's row number through the same function.
                expressions.append(value_expression(column, f"((seq - 1) % {parent_rows} + 1)"))
            else:
                expressions.append(value_expression(column, "seq"))
        names = ", ".join(quote(c.name) for c in columns)
        cursor.execute(
            f"INSERT INTO {quote(database)}.{quote(table)} ({names}) SELECT {', '.join(expressions)} FROM seq_1_to_{int(count)}"
        )
        seeded.append(SeededTable(table=table, rows=count, seconds=round(time.perf_counter() - started, 3)))
    cursor.execute("SET SESSION foreign_key_checks = 1, unique_checks = 1")
    return seeded
