"""Statements that fail on the shadow only because of its synthetic rows, and how the run goes on.

Three statements depend on the rows already in a table: narrowing a varchar or char column
("value too long"), a new unique constraint or index (duplicates), SET NOT NULL (NULLs).
Seeded rows can break each where production's rows would not, so such a statement runs
under a savepoint. When it fails with the matching error on a table whose rows are all the
seeder's (the seeder filled it; the change neither created it nor wrote rows into it), it is
rolled back to the savepoint, the breaking rows are changed to satisfy it, and it runs
again: the report then says which production rows would make it fail, with a read-only
query that counts them. Anything else fails the run as before: another error, a table the
seeder did not fill, or that the change created or wrote to (an INSERT, UPDATE, DELETE,
MERGE or COPY on it, or any DO, CALL or unparsed statement before), production statistics
that show such rows, rows that cannot be changed to conform, or a second failure of the
statement, which is then the schema's, not the data's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pglast
import psycopg
from pglast import ast
from psycopg import sql

from changeapi.dryrun.contract import SeededDataFailure
from changeapi.shadow.column_stats import ColumnFigures
from changeapi.shadow.seed import Column, Table, read_tables

ProductionColumns = Mapping[str, Mapping[str, ColumnFigures]]
"""Uploaded column statistics per table: what production's rows are like."""

TOO_LONG = "value_too_long"
DUPLICATES = "duplicate_values"
NULLS = "null_values"
SQLSTATES = {TOO_LONG: "22001", DUPLICATES: "23505", NULLS: "23502"}

SAVEPOINT = "sg_seeded_rows"
_NUMBERS = ("int2", "int4", "int8", "numeric", "float4", "float8")
_TEXTS = ("text", "varchar", "bpchar", "citext")


class _CannotConform(Exception):
    """The breaking rows cannot be given values that satisfy the statement: its failure stands."""


@dataclass(frozen=True)
class RowCondition:
    """What the rows of `table` must satisfy for the statement to succeed."""

    kind: str
    table: str
    columns: tuple[str, ...]
    max_length: int | None = None


def row_conditions(sql_text: str) -> list[RowCondition]:
    """The conditions on existing rows `sql_text` imposes; empty for any other statement.

    Partial and expression indexes, NULLS NOT DISTINCT and USING INDEX constraints are left
    out: their failures are reported as they happen.
    """
    try:
        statements = pglast.parse_sql(sql_text)
    except Exception:  # noqa: BLE001 - pglast's own errors: an unparsed statement imposes nothing known
        return []
    conditions: list[RowCondition] = []
    for raw in statements:
        stmt = raw.stmt
        relation = getattr(stmt, "relation", None)
        table = str(relation.relname) if isinstance(relation, ast.RangeVar) and relation.relname else ""
        if isinstance(stmt, ast.AlterTableStmt) and table:
            conditions += _alter_conditions(table, stmt.cmds or ())
        elif isinstance(stmt, ast.IndexStmt) and table and stmt.unique and not stmt.concurrent and stmt.whereClause is None:
            params = [p for p in stmt.indexParams or () if isinstance(p, ast.IndexElem)]
            names = [str(p.name) for p in params if p.name]
            if names and len(names) == len(stmt.indexParams or ()) and not stmt.nulls_not_distinct:
                conditions.append(RowCondition(DUPLICATES, table, tuple(names)))
    return conditions


def _alter_conditions(table: str, commands: Any) -> list[RowCondition]:
    conditions = []
    for command in commands:
        if not isinstance(command, ast.AlterTableCmd) or command.subtype is None:
            continue
        kind = command.subtype.name
        if kind == "AT_SetNotNull" and command.name:
            conditions.append(RowCondition(NULLS, table, (command.name,)))
        elif kind == "AT_AlterColumnType" and isinstance(command.def_, ast.ColumnDef):
            length = _char_length(command.def_.typeName)
            if length is not None and command.name:
                conditions.append(RowCondition(TOO_LONG, table, (command.name,), max_length=length))
        elif kind == "AT_AddConstraint" and isinstance(command.def_, ast.Constraint):
            constraint = command.def_
            contype = constraint.contype.name if constraint.contype is not None else ""
            if contype in ("CONSTR_UNIQUE", "CONSTR_PRIMARY") and constraint.keys and not constraint.indexname:
                if not constraint.nulls_not_distinct:
                    columns = tuple(k.sval for k in constraint.keys)
                    conditions.append(RowCondition(DUPLICATES, table, columns))
                if contype == "CONSTR_PRIMARY":
                    conditions += [RowCondition(NULLS, table, (c.sval,)) for c in constraint.keys]
    return conditions


def _char_length(type_name: Any) -> int | None:
    """n of varchar(n) / char(n), else None."""
    if type_name is None or not type_name.names or type_name.arrayBounds:
        return None
    name = type_name.names[-1].sval
    if name not in ("varchar", "bpchar") or not type_name.typmods or len(type_name.typmods) != 1:
        return None
    value = getattr(type_name.typmods[0], "val", None)
    return getattr(value, "ival", None)


_WRITING = (ast.InsertStmt, ast.UpdateStmt, ast.DeleteStmt, ast.MergeStmt, ast.CopyStmt)


def rows_written(sql_text: str) -> tuple[set[str], bool]:
    """The tables `sql_text` writes rows into, and whether it may write anywhere else (a DO
    block, a procedure, a data-modifying WITH, SQL that does not parse)."""
    try:
        statements = pglast.parse_sql(sql_text)
    except Exception:  # noqa: BLE001 - pglast's own errors: unparsed SQL may write anything
        return set(), True
    tables: set[str] = set()
    for raw in statements:
        stmt = raw.stmt
        if isinstance(stmt, ast.DoStmt | ast.CallStmt) or getattr(stmt, "withClause", None) is not None:
            return tables, True
        if isinstance(stmt, _WRITING) and isinstance(stmt.relation, ast.RangeVar) and stmt.relation.relname:
            tables.add(str(stmt.relation.relname))
    return tables, False


def savepoint(raw: psycopg.Connection) -> None:
    raw.execute(f"SAVEPOINT {SAVEPOINT}")


def release(raw: psycopg.Connection) -> None:
    raw.execute(f"RELEASE SAVEPOINT {SAVEPOINT}")


def production_breaks(condition: RowCondition, production: ProductionColumns) -> bool:
    """Whether production's own column statistics show rows that break `condition`: then the
    failure is production's too, whatever the seed holds.

    NULLs when `null_frac` is above 0; values longer than the new maximum when the average
    width (bytes, with a 1-byte header) exceeds it; duplicates when ANALYZE's sample had any
    (`n_distinct` is not -1) in a one-column key.
    """
    figures = production.get(condition.table, {}).get(condition.columns[0])
    if figures is None:
        return False
    if condition.kind == NULLS:
        return (figures.null_frac or 0.0) > 0
    if condition.kind == TOO_LONG:
        return figures.avg_width is not None and condition.max_length is not None and figures.avg_width - 1 > condition.max_length
    return len(condition.columns) == 1 and figures.n_distinct is not None and figures.n_distinct != -1


def conform_seeded_rows(
    raw: psycopg.Connection,
    conditions: list[RowCondition],
    exc: BaseException,
    *,
    not_seeded: Callable[[str], bool],
    production: ProductionColumns,
) -> tuple[SeededDataFailure, ...]:
    """After `exc` failed the guarded statement: when it is the error `conditions` predict, roll
    back to the statement's savepoint and, when only seeded rows break it, change them to
    conform and say so; empty when the failure is not the seed's, and the caller lets `exc`
    fail the run."""
    state = sqlstate_of(exc)
    matching = [c for c in conditions if SQLSTATES[c.kind] == state]
    if not matching or any(not_seeded(c.table) or production_breaks(c, production) for c in matching):
        return ()  # another error (a lost server, a timeout): left as it is for the run to report
    try:
        raw.execute(f"ROLLBACK TO SAVEPOINT {SAVEPOINT}")
    except psycopg.Error:
        return ()
    try:
        tables = read_tables(raw)
        found = [(c, _violations(raw, c)) for c in matching if c.table in tables]
        if not any(seeded for _, seeded in found):
            raw.execute(f"ROLLBACK TO SAVEPOINT {SAVEPOINT}")
            return ()
        for condition, seeded in found:
            if seeded:
                raw.execute(_conform_sql(condition, tables[condition.table]))
    except (psycopg.Error, _CannotConform):
        raw.execute(f"ROLLBACK TO SAVEPOINT {SAVEPOINT}")
        return ()
    message = _first_line(exc)
    return tuple(_failure(condition, seeded, state or "", message) for condition, seeded in found if seeded)


def sqlstate_of(exc: BaseException) -> str | None:
    """The SQLSTATE of a database error, or of the error it was raised from (Django wraps them)."""
    cause: BaseException | None = exc
    while cause is not None:
        state = getattr(cause, "sqlstate", None)
        if state:
            return str(state)
        cause = cause.__cause__
    return None


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _where(condition: RowCondition) -> sql.Composable:
    """The rows that break `condition` on their own (duplicates need their group: see `_violations`)."""
    column = sql.Identifier(condition.columns[0])
    if condition.kind == NULLS:
        return sql.SQL("{} IS NULL").format(column)
    if condition.kind == TOO_LONG:
        return sql.SQL("char_length({}) > {}").format(column, sql.Literal(condition.max_length))
    return sql.SQL(" AND ").join(sql.SQL("{} IS NOT NULL").format(sql.Identifier(c)) for c in condition.columns)


def _duplicates(condition: RowCondition, *, extra: str) -> sql.Composed:
    """Rows of `condition.table` numbered `k` among the rows sharing their key, with `extra` columns."""
    return sql.SQL(
        "SELECT ctid AS row_id, {extra}, row_number() OVER (PARTITION BY {key} ORDER BY ctid) AS k FROM {table} WHERE {where}"
    ).format(
        extra=sql.SQL(extra),  # type: ignore[arg-type]  # fixed text of this module
        key=sql.SQL(", ").join(sql.Identifier(c) for c in condition.columns),
        table=sql.Identifier(condition.table),
        where=_where(condition),
    )


def _violations(raw: psycopg.Connection, condition: RowCondition) -> int:
    """How many rows must change for `condition` to hold: all but one of each duplicate group."""
    if condition.kind == DUPLICATES:
        query = sql.SQL("SELECT count(*) FROM ({rows}) d WHERE k > 1").format(rows=_duplicates(condition, extra="1 AS one"))
    else:
        query = sql.SQL("SELECT count(*) FROM {t} WHERE {c}").format(t=sql.Identifier(condition.table), c=_where(condition))
    row = raw.execute(query).fetchone()
    return int(row[0]) if row else 0


def _conform_sql(condition: RowCondition, table: Table) -> sql.Composed:
    """An UPDATE giving the breaking seeded rows values that satisfy `condition`, within the
    column's type: cut to length, a fresh value for one key column of a duplicate, and for a
    NULL a value copied from another row (or a fresh one where the column must stay unique)."""
    columns = {c.name: c for c in table.columns}
    name = sql.Identifier(table.name)
    column = columns[condition.columns[0]]
    unique = any(column.name in s for s in table.unique_sets)
    breaking = sql.SQL("SELECT ctid AS row_id, row_number() OVER () AS rn FROM {t} WHERE {w}").format(t=name, w=_where(condition))
    if condition.kind == TOO_LONG and unique:
        # Cut values of a unique column could meet: each gets a numbered suffix within the new length.
        return _update_from(name, column, _fresh(column, table.name, max_length=condition.max_length), breaking)
    if condition.kind == TOO_LONG:
        return sql.SQL("UPDATE {t} SET {c} = left({c}, {n}) WHERE {w}").format(
            t=name, c=sql.Identifier(column.name), n=sql.Literal(condition.max_length), w=_where(condition)
        )
    if condition.kind == DUPLICATES:
        target = _changeable(condition, table)
        rows = sql.SQL("SELECT row_id, row_number() OVER () AS rn FROM ({d}) d WHERE k > 1").format(
            d=_duplicates(condition, extra="1 AS one")
        )
        return _update_from(name, target, _fresh(target, table.name), rows)
    value = _fresh(column, table.name) if unique else _copied(column, table)
    return _update_from(name, column, value, breaking)


def _update_from(table: sql.Identifier, column: Column, value: sql.Composable, rows: sql.Composable) -> sql.Composed:
    return sql.SQL("UPDATE {t} SET {c} = {v} FROM ({rows}) AS v WHERE {t}.ctid = v.row_id").format(
        t=table, c=sql.Identifier(column.name), v=value, rows=rows
    )


def _changeable(condition: RowCondition, table: Table) -> Column:
    """The key column a fresh value can go into: not a foreign key (its values must exist), of
    a type with fresh values."""
    referencing = {c for fk in table.foreign_keys for c in fk.columns}
    columns = {c.name: c for c in table.columns}
    for name in condition.columns:
        column = columns.get(name)
        if column is not None and name not in referencing and _freshable(column):
            return column
    raise _CannotConform(f"no column of {condition.columns} can take fresh values")


def _freshable(column: Column) -> bool:
    return column.type_name in (*_NUMBERS, *_TEXTS, "uuid", "date", "timestamp", "timestamptz")


def _fresh(column: Column, table: str, *, max_length: int | None = None) -> sql.Composed:
    """A value no row has yet, numbered by `v.rn`: past the column's maximum, or its text
    with a numbered suffix, shortened to fit the column (or `max_length`)."""
    if not _freshable(column):
        raise _CannotConform(f"no fresh values for type {column.type_sql}")
    c, t, kind = sql.Identifier(column.name), sql.Identifier(table), sql.SQL(column.type_sql)  # type: ignore[arg-type]
    if column.type_name in _NUMBERS:
        return sql.SQL("((SELECT coalesce(max({c}), 0) FROM {t}) + v.rn)::{k}").format(c=c, t=t, k=kind)
    if column.type_name == "uuid":
        return sql.SQL("md5({t}.ctid::text || '-' || v.rn)::uuid").format(t=t)
    if column.type_name == "date":
        return sql.SQL("(SELECT coalesce(max({c}), DATE '2015-01-01') FROM {t}) + v.rn::int").format(c=c, t=t)
    if column.type_name in ("timestamp", "timestamptz"):
        return sql.SQL("(SELECT coalesce(max({c}), TIMESTAMP '2015-01-01'::{k}) FROM {t}) + v.rn * INTERVAL '1 second'").format(
            c=c, t=t, k=kind
        )
    suffix = sql.SQL("'~' || v.rn")
    length = max_length if max_length is not None else (column.typmod - 4 if column.typmod > 4 else None)
    if length is None:
        return sql.SQL("(coalesce({t}.{c}::text, '') || {s})::{k}").format(t=t, c=c, s=suffix, k=kind)
    return sql.SQL("(left(coalesce({t}.{c}::text, ''), greatest({n} - 1 - length(v.rn::text), 0)) || {s})::{k}").format(
        t=t, c=c, n=sql.Literal(length), s=suffix, k=kind
    )


def _copied(column: Column, table: Table) -> sql.Composed:
    """A value another row has: of the column's type and (as that row passed them) its checks."""
    return sql.SQL("(SELECT {c} FROM {t} WHERE {c} IS NOT NULL LIMIT 1)").format(
        c=sql.Identifier(column.name), t=sql.Identifier(table.name)
    )


def _failure(condition: RowCondition, seeded: int, sqlstate: str, error: str) -> SeededDataFailure:
    table, columns = condition.table, condition.columns
    quoted = ", ".join(_quote(c) for c in columns)
    if condition.kind == TOO_LONG:
        column = _quote(columns[0])
        words = f"a row of {table} has a {columns[0]} longer than {condition.max_length} characters"
        check = f"SELECT count(*) FROM {_quote(table)} WHERE char_length({column}) > {condition.max_length};"
    elif condition.kind == DUPLICATES:
        words = f"two rows of {table} share a value of ({', '.join(columns)}), none of it NULL"
        not_null = " AND ".join(f"{_quote(c)} IS NOT NULL" for c in columns)
        check = (
            f"SELECT count(*) FROM (SELECT 1 FROM {_quote(table)} WHERE {not_null} "
            f"GROUP BY {quoted} HAVING count(*) > 1) AS shared;"
        )
    else:
        words = f"a row of {table} has {columns[0]} NULL"
        check = f"SELECT count(*) FROM {_quote(table)} WHERE {_quote(columns[0])} IS NULL;"
    return SeededDataFailure(
        kind=condition.kind,
        sqlstate=sqlstate,
        error=error,
        table=table,
        columns=columns,
        seeded_rows=seeded,
        fails_in_production_if=words,
        production_check=check,
    )


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
