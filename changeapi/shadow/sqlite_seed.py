"""Synthetic rows for a SQLite template: N rows per table, parents before children.

The shape of the MySQL/MariaDB seeder (`mysql_seed`): each table gets its rows from one
`INSERT … SELECT` over a counter (here a recursive CTE), every value a function of the row
number `n`, valid for the column's declared type and unique wherever a unique index could ask
for it; a foreign key column holds a row number of the referenced table, seeded first with the
same functions, so every reference points at a row that exists.
"""

from __future__ import annotations

import re
import sqlite3
import time
from dataclasses import dataclass

from changeapi.shadow.mysql_seed import SeededTable, parents_first

_LENGTH = re.compile(r"\((\d+)")
SMALLINT_MAX = 32767


@dataclass(frozen=True, slots=True)
class _Column:
    name: str
    declared: str
    nullable: bool
    json: bool
    generated: bool


def quote(identifier: str) -> str:
    """A SQLite identifier in double quotes (a double quote inside is doubled)."""
    return '"' + identifier.replace('"', '""') + '"'


def base_tables(connection: sqlite3.Connection) -> list[str]:
    rows = connection.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name"
    ).fetchall()
    return [str(row[0]) for row in rows]


def _columns(connection: sqlite3.Connection, table: str) -> list[_Column]:
    row = connection.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", [table]).fetchone()
    create = str(row[0] or "") if row else ""
    columns = []
    # table_xinfo's `hidden`: 0 a plain column, 2 and 3 generated ones (computed, not inserted).
    for _cid, name, declared, notnull, _default, _pk, hidden in connection.execute(f"PRAGMA table_xinfo({quote(table)})"):
        columns.append(
            _Column(
                name=str(name),
                declared=str(declared or "").lower(),
                nullable=not notnull,
                json=f"JSON_VALID({quote(str(name))})" in create,
                generated=hidden in (2, 3),
            )
        )
    return columns


def value_expression(column: _Column, n: str) -> str:
    """SQL for the value of `column` in row `n` (an SQL expression of the row number), by the
    type Django's SQLite backend declares for the field."""
    kind = column.declared
    length_match = _LENGTH.search(kind)
    length = int(length_match.group(1)) if length_match else None
    if kind.startswith("smallint"):
        return f"(({n} - 1) % {SMALLINT_MAX} + 1)"
    if kind.startswith(("integer", "bigint", "int")):
        return n
    if kind.startswith("bool"):
        return f"({n} % 2)"
    if kind.startswith(("decimal", "numeric")):
        return n
    if kind.startswith("real"):
        return f"({n} * 1.5)"
    if kind.startswith("char(32)"):  # UUIDField: 32 hexadecimal digits
        return f"printf('%032x', {n})"
    if kind.startswith(("varchar", "char")):
        value = f"('s' || {n})"
        return f"substr({value}, 1, {length})" if length is not None and length < 21 else value
    if kind.startswith("text"):
        return f"('{{\"n\": ' || {n} || '}}')" if column.json else f"('s' || {n})"
    if kind.startswith("datetime"):
        return f"datetime('2020-01-01 00:00:00', '+' || {n} || ' seconds')"
    if kind.startswith("date"):
        return f"date('2020-01-01', '+' || ({n} % 3650) || ' days')"
    if kind.startswith("time"):
        return f"time({n} % 86400, 'unixepoch')"
    if kind.startswith("blob"):
        return f"CAST(('s' || {n}) AS BLOB)"
    return "NULL" if column.nullable else "''"


def _foreign_keys(connection: sqlite3.Connection, table: str) -> dict[str, str]:
    """Per referencing column, the referenced table."""
    return {
        str(row[3]): str(row[2]) for row in connection.execute(f"PRAGMA foreign_key_list({quote(table)})") if row[3] is not None
    }


def seed_database(connection: sqlite3.Connection, rows: dict[str, int], *, default_rows: int = 0) -> list[SeededTable]:
    """Fill every table with `rows[table]` rows (else `default_rows`), parents first, and commit.

    A referenced table given no rows gets one, so the tables referring to it can have theirs;
    foreign keys are not enforced while seeding (a self-reference points at its own row), but
    every reference is to a row that exists.
    """
    connection.execute("PRAGMA foreign_keys = OFF")
    tables = base_tables(connection)
    references = {table: _foreign_keys(connection, table) for table in tables}
    edges = {table: {parent for parent in keys.values() if parent != table} for table, keys in references.items()}
    order = parents_first(tables, edges)
    counts = {table: rows.get(table, default_rows) for table in order}
    for table in reversed(order):
        for parent in edges.get(table, ()):
            if counts[table] > 0 and counts.get(parent, 0) <= 0:
                counts[parent] = 1
    seeded: list[SeededTable] = []
    connection.execute("BEGIN")
    for table in order:
        count = counts[table]
        if count <= 0:
            continue
        started = time.perf_counter()
        columns = [c for c in _columns(connection, table) if not c.generated]
        expressions = []
        for column in columns:
            referenced = references[table].get(column.name)
            if referenced is None:
                expressions.append(value_expression(column, "n"))
            elif counts.get(referenced, 0) > 0:
                expressions.append(value_expression(column, f"((n - 1) % {int(counts[referenced])} + 1)"))
            else:
                expressions.append("NULL")
        names = ", ".join(quote(c.name) for c in columns)
        connection.execute(
            f"WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < {int(count)}) "
            f"INSERT INTO {quote(table)} ({names}) SELECT {', '.join(expressions)} FROM seq"
        )
        seeded.append(SeededTable(table=table, rows=count, seconds=round(time.perf_counter() - started, 3)))
    connection.execute("COMMIT")
    connection.execute("PRAGMA foreign_keys = ON")
    return seeded
