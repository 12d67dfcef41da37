"""Fill a template database with synthetic rows shaped like production, read from its catalog.

Rows are generated server-side (`INSERT ... SELECT ... FROM generate_series`) from each
column's type, so they respect types, NOT NULL, unique indexes and foreign keys without any
production data leaving production. Parents are seeded before children; a table whose rows
cannot be made (an unknown NOT NULL type, a CHECK the synthetic values violate) is left
empty and named in the warnings rather than failing the template.

Uploaded column statistics (`pg_stats` figures, `seed_shape`) set each column's NULL share,
text widths, number of distinct values and physical order; columns without them keep the
defaults, and the result says which columns had which.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import psycopg
from psycopg import sql

from changeapi.shadow.column_stats import ColumnFigures
from changeapi.shadow.seed_shape import ColumnShape, column_shape, key_expression, null_condition, text_expression

_TEXT_TYPES = ("text", "varchar", "citext")

_TABLES_SQL = """
SELECT c.oid::bigint, c.relname
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND n.nspname = current_schema()
"""

_COLUMNS_SQL = """
SELECT a.attrelid::bigint, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod), t.typname,
       t.typcategory, t.typtype, a.atttypmod, a.attnotnull, a.attidentity, a.attgenerated,
       COALESCE(pg_get_expr(d.adbin, d.adrelid), '')
FROM pg_attribute a
JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE a.attnum > 0 AND NOT a.attisdropped AND a.attrelid = ANY(%s)
ORDER BY a.attrelid, a.attnum
"""

_UNIQUE_SQL = """
SELECT indrelid::bigint, indkey::int2[] FROM pg_index
WHERE indisunique AND indexprs IS NULL AND indrelid = ANY(%s)
"""

_FOREIGN_KEYS_SQL = """
SELECT conrelid::bigint, conkey, confrelid::bigint, confkey FROM pg_constraint
WHERE contype = 'f' AND conrelid = ANY(%s)
"""


@dataclass
class Column:
    number: int
    name: str
    type_sql: str
    type_name: str
    category: str
    type_kind: str
    typmod: int
    not_null: bool
    generated: bool  # identity, serial or generated: PostgreSQL fills it
    has_default: bool


@dataclass
class ForeignKey:
    columns: list[str]
    parent: str
    parent_columns: list[str]


@dataclass
class Table:
    oid: int
    name: str
    columns: list[Column] = field(default_factory=list)
    unique_sets: list[list[str]] = field(default_factory=list)
    foreign_keys: list[ForeignKey] = field(default_factory=list)


@dataclass
class SeededTable:
    """What one table holds after seeding; the estimator scales from these bytes.

    `columns_from_stats` were shaped by uploaded column statistics, `columns_by_default` by
    the seeder's defaults (columns PostgreSQL fills itself, such as identities, are in neither).
    """

    table: str
    rows: int
    total_bytes: int
    columns_from_stats: list[str] = field(default_factory=list)
    columns_by_default: list[str] = field(default_factory=list)


@dataclass
class SeedResult:
    tables: list[SeededTable]
    warnings: list[str]
    seconds: float = 0.0


def read_tables(conn: psycopg.Connection) -> dict[str, Table]:
    """The schema's tables with their columns, unique column sets and foreign keys."""
    tables = {oid: Table(oid, name) for oid, name in conn.execute(_TABLES_SQL).fetchall()}
    oids = list(tables)
    by_number: dict[int, dict[int, str]] = {oid: {} for oid in oids}
    for row in conn.execute(_COLUMNS_SQL, [oids]).fetchall():
        relid, number, name, type_sql, type_name, category, kind, typmod, not_null, identity, generated, default = row
        serial = default.startswith("nextval(")
        tables[relid].columns.append(
            Column(
                number=number,
                name=name,
                type_sql=type_sql,
                type_name=type_name,
                category=category,
                type_kind=kind,
                typmod=typmod,
                not_null=not_null,
                generated=bool(identity) or bool(generated) or serial,
                has_default=bool(default),
            )
        )
        by_number[relid][number] = name
    for relid, keys in conn.execute(_UNIQUE_SQL, [oids]).fetchall():
        tables[relid].unique_sets.append([by_number[relid][k] for k in keys if k in by_number[relid]])
    names = {oid: t.name for oid, t in tables.items()}
    for relid, keys, parent, parent_keys in conn.execute(_FOREIGN_KEYS_SQL, [oids]).fetchall():
        if parent not in tables:
            continue
        tables[relid].foreign_keys.append(
            ForeignKey(
                columns=[by_number[relid][k] for k in keys],
                parent=names[parent],
                parent_columns=[by_number[parent][k] for k in parent_keys],
            )
        )
    return {t.name: t for t in tables.values()}


def parents_first(tables: dict[str, Table]) -> list[str]:
    """Tables ordered so that every referenced table comes before the tables referencing it.

    A cycle is broken arbitrarily; the foreign key that closes it is then filled with NULL,
    or the table is skipped if that column is NOT NULL.
    """
    ordered: list[str] = []
    state: dict[str, int] = {}

    def visit(name: str) -> None:
        if state.get(name) is not None:
            return
        state[name] = 0
        for fk in tables[name].foreign_keys:
            if fk.parent != name and state.get(fk.parent) is None:
                visit(fk.parent)
        state[name] = 1
        ordered.append(name)

    for name in sorted(tables):
        visit(name)
    return ordered


def _value(column: Column, unique: bool) -> str | None:
    """A SQL expression in `g` (1..n) for one column, or None for a type we cannot make."""
    t, cat = column.type_name, column.category
    if t == "int2":
        return "(g % 32000)::int2" if not unique else "g::int2"
    if t in ("int4", "int8", "oid"):
        return f"g::{t}" if unique else f"((g * 7919) % 1000000)::{t}"
    if t == "numeric":
        return "(g + 0.25)::numeric % 1000000" if column.typmod < 0 else _numeric(column, unique)
    if t in ("float4", "float8"):
        return f"(g * 1.5)::{t}"
    if t == "bool":
        return "(g % 2 = 0)"
    if t in ("varchar", "bpchar"):
        length = column.typmod - 4 if column.typmod > 4 else 255
        return f"left('v' || g || '-' || md5(g::text) || md5((g + 7)::text), {length})"
    if t in ("text", "citext", "name"):
        return f"(g || '-' || substr(md5(g::text) || md5((g + 7)::text), 1, 24 + (g % 40)::int))::{column.type_sql}"
    if t == "uuid":
        return "md5(g::text || 'uuid')::uuid"
    if t == "date":
        return "DATE '2015-01-01' + g::int" if unique else "DATE '2015-01-01' + (g % 3650)::int"
    if t in ("timestamp", "timestamptz"):
        return f"(TIMESTAMP '2015-01-01' + g * INTERVAL '17 seconds')::{column.type_sql}"
    if t in ("time", "timetz"):
        return f"(TIME '00:00' + (g % 86400) * INTERVAL '1 second')::{column.type_sql}"
    if t == "interval":
        return "g * INTERVAL '1 second'"
    if t in ("json", "jsonb"):
        return f"json_build_object('id', g, 'tag', md5(g::text))::{t}"
    if t == "bytea":
        return "decode(md5(g::text), 'hex')"
    if t == "inet":
        return "'10.0.0.0'::inet + g"
    if cat == "A":
        return f"ARRAY[(g % 1000)::text]::{column.type_sql}"
    if column.type_kind == "e":
        return f"(enum_range(NULL::{column.type_sql}))[1 + (g % array_length(enum_range(NULL::{column.type_sql}), 1))::int]"
    return None


def _column(table: Table, name: str) -> Column:
    return next(c for c in table.columns if c.name == name)


def _in_terms_of(expression: str, key: str) -> str:
    """`expression` (in `g`) with `key` in place of `g`."""
    return re.sub(r"\bg\b", key, expression)


def _max_length(column: Column) -> int | None:
    return column.typmod - 4 if column.type_name == "varchar" and column.typmod > 4 else None


def _shaped_value(column: Column, unique: bool, shape: ColumnShape | None, rows: int) -> str | None:
    """The column's value expression under `shape` (None: the defaults), without NULLs.

    With a key (cardinality or order uploaded), the value is the type's unique-value
    expression of the key, so distinct keys make distinct values; text sorts as its key.
    """
    if shape is None:
        return _value(column, unique)
    key = key_expression(shape, rows, unique=unique)
    if column.type_name in _TEXT_TYPES and (shape.width is not None or key is not None):
        keys = shape.distinct if shape.distinct is not None and not unique else rows
        text = text_expression(key or "g", shape.width, _max_length(column), digits=len(str(keys)))
        return f"({text})::{column.type_sql}"
    if key is None:
        return _value(column, unique)
    expression = _value(column, unique=True)
    return None if expression is None else _in_terms_of(expression, key)


def _with_nulls(expression: str, column: Column, unique: bool, shape: ColumnShape | None) -> str:
    """NULL for `null_frac` of the rows when uploaded, else for one row in ten of a nullable
    column that is not unique; never in a NOT NULL column."""
    if column.not_null:
        return expression
    if shape is None or shape.null_frac is None:
        return expression if unique else f"CASE WHEN g % 10 = 0 THEN NULL ELSE {expression} END"
    condition = null_condition(shape)
    return expression if condition is None else f"CASE WHEN {condition} THEN NULL ELSE {expression} END"


def _numeric(column: Column, unique: bool) -> str:
    precision = ((column.typmod - 4) >> 16) & 0xFFFF
    scale = (column.typmod - 4) & 0xFFFF
    digits = max(precision - scale, 0)
    if digits == 0:
        return f"((g % 100) / 1000.0)::{column.type_sql}"
    modulus = 10 ** min(digits, 15)
    return f"((g % {modulus}) + {0.5 if scale else 0})::{column.type_sql}"


@dataclass
class _Source:
    """One foreign key's parent rows, numbered 1..count, joined to the generator."""

    alias: str
    fk: ForeignKey
    count: int
    index_expr: str


def _shape_foreign_keys(
    table: Table,
    sources: list[_Source],
    shapes: dict[str, ColumnShape],
    rows: int,
    values: dict[str, sql.Composable],
    *,
    radix: set[int],
) -> None:
    """Spread each single-column foreign key with uploaded statistics over as many parents as
    its `n_distinct` says, in its order, NULL in its share; values stay the parents' keys.

    Keys that are one-to-one or part of a unique set keep the parents they were given.
    """
    for source in sources:
        if len(source.fk.columns) != 1 or id(source.fk) in radix or source.index_expr == "g":
            continue
        name = source.fk.columns[0]
        shape = shapes.get(name)
        if shape is None:
            continue
        among = min(shape.distinct or source.count, source.count)
        parents = ColumnShape(distinct=among, ordered=shape.ordered, descending=shape.descending)
        source.index_expr = key_expression(parents, rows, unique=False) or source.index_expr
        condition = None if _column(table, name).not_null else null_condition(shape)
        if condition is not None:
            values[name] = sql.SQL("CASE WHEN {} THEN NULL ELSE {} END").format(sql.SQL(condition), values[name])  # type: ignore[arg-type]


def _insert_statement(
    table: Table, rows: int, parent_rows: dict[str, int], figures: Mapping[str, ColumnFigures] | None = None
) -> tuple[sql.Composed | None, int, str]:
    """The INSERT that seeds `table`, the rows it will make, and why not when it cannot.

    `figures` are the uploaded statistics of its columns; the others get the defaults.
    """
    figures = figures or {}
    single_unique = {s[0] for s in table.unique_sets if len(s) == 1}
    fk_columns = {c: fk for fk in table.foreign_keys for c in fk.columns}
    unique_driven: set[str] = set(single_unique)
    radix_sets: list[list[ForeignKey]] = []
    for unique_set in table.unique_sets:
        if len(unique_set) < 2:
            continue
        plain = [c for c in unique_set if c not in fk_columns]
        if plain:
            unique_driven.add(plain[0])
        else:
            fks = []
            for name in unique_set:
                if fk_columns[name] not in fks:
                    fks.append(fk_columns[name])
            radix_sets.append(fks)

    sources: list[_Source] = []
    values: dict[str, sql.Composable] = {}
    for number, fk in enumerate(table.foreign_keys):
        count = parent_rows.get(fk.parent, 0) if fk.parent != table.name else 0
        nullable = not any(_column(table, name).not_null for name in fk.columns)
        if count == 0:
            if not nullable:
                return None, 0, f"{table.name}: its parent {fk.parent} has no rows to reference"
            for name in fk.columns:
                values[name] = sql.SQL("NULL")
            continue
        alias = f"p{number}"
        if len(fk.columns) == 1 and fk.columns[0] in unique_driven:
            rows = min(rows, count)  # one child per parent at most (a OneToOneField)
            index_expr = "g"
        else:
            index_expr = f"1 + ((g * 7919) % {count})"
        sources.append(_Source(alias, fk, count, index_expr))
        for child, parent in zip(fk.columns, fk.parent_columns, strict=True):
            values[child] = sql.SQL("{}.{}").format(sql.Identifier(alias), sql.Identifier(parent))
    for fks in radix_sets:
        stride = 1
        for fk in fks:
            source = next((s for s in sources if s.fk is fk), None)
            if source is None:
                continue
            source.index_expr = f"1 + (((g - 1) / {stride}) % {source.count})"
            stride *= source.count
        rows = min(rows, stride)
    shapes = {name: column_shape(f, rows) for name, f in figures.items()}
    ordered = any(shape.ordered for shape in shapes.values())
    _shape_foreign_keys(table, sources, shapes, rows, values, radix={id(fk) for fks in radix_sets for fk in fks})

    for column in table.columns:
        if column.name in values or column.generated:
            continue
        unique = column.name in unique_driven
        shape = shapes.get(column.name)
        expr = _shaped_value(column, unique, shape, rows)
        if expr is None:
            if column.not_null and not column.has_default:
                return None, 0, f"{table.name}.{column.name}: no synthetic values for type {column.type_sql}"
            continue
        expr = _with_nulls(expr, column, unique, shape)
        values[column.name] = sql.SQL(expr)  # type: ignore[arg-type]  # built from catalog facts, not input
    if not values:
        return sql.SQL("INSERT INTO {} SELECT FROM generate_series(1, {})").format(sql.Identifier(table.name), rows), rows, ""

    joins = [
        sql.SQL(
            " JOIN (SELECT {cols}, row_number() OVER (ORDER BY {order}) AS rn FROM {parent}) AS {alias} ON {alias}.rn = {index}"
        ).format(
            cols=sql.SQL(", ").join(sql.Identifier(c) for c in s.fk.parent_columns),
            order=sql.SQL(", ").join(sql.Identifier(c) for c in s.fk.parent_columns),
            parent=sql.Identifier(s.fk.parent),
            alias=sql.Identifier(s.alias),
            index=sql.SQL(s.index_expr),  # type: ignore[arg-type]
        )
        for s in sources
    ]
    statement = sql.SQL(
        "INSERT INTO {table} ({columns}) SELECT {values} FROM generate_series(1::bigint, {rows}) AS g{joins}{order}"
    ).format(
        table=sql.Identifier(table.name),
        columns=sql.SQL(", ").join(sql.Identifier(c) for c in values),
        values=sql.SQL(", ").join(values.values()),
        rows=sql.Literal(rows),
        joins=sql.Composed(joins),
        # A join may return rows out of `g` order; a column that must be physically sorted needs them in it.
        order=sql.SQL(" ORDER BY g" if ordered else ""),
    )
    return statement, rows, ""


def seed_database(
    conn: psycopg.Connection,
    rows_per_table: dict[str, int],
    columns: Mapping[str, Mapping[str, ColumnFigures]] | None = None,
) -> SeedResult:
    """Insert synthetic rows into each named table, then VACUUM (FREEZE, ANALYZE) them.

    `conn` is an autocommit connection of the tables' owner. Production tables are vacuumed
    and analysed; freezing the seed makes the first scan in a dry-run read, not rewrite,
    every page, as it would in production. `columns` holds, per table, the uploaded
    statistics of its columns; rows shaped by them that the table refuses (a CHECK the
    seeder cannot know) are made again with the defaults, with a warning.
    """
    started = time.perf_counter()
    columns = columns or {}
    tables = read_tables(conn)
    warnings = [f"{name}: no such table in the baseline; not seeded" for name in sorted(set(rows_per_table) - set(tables))]
    parent_rows: dict[str, int] = {}
    seeded: list[str] = []
    shaped: dict[str, set[str]] = {}
    for name in parents_first(tables):
        wanted = rows_per_table.get(name, 0)
        if wanted <= 0:
            parent_rows[name] = _count(conn, name)
            continue
        figures = _known_columns(tables[name], columns.get(name, {}), warnings)
        rows, reason = _seed_table(conn, tables[name], wanted, parent_rows, figures)
        if figures and rows is None and reason.startswith("rejected"):
            warnings.append(f"{name}: rows shaped by its column statistics {reason}; seeded with the defaults")
            figures = {}
            rows, reason = _seed_table(conn, tables[name], wanted, parent_rows, figures)
        if rows is None:
            warnings.append(
                f"{name}: synthetic rows {reason}; not seeded" if reason.startswith("rejected") else f"{reason}; not seeded"
            )
            parent_rows[name] = 0
            continue
        parent_rows[name] = rows
        shaped[name] = set(figures)
        seeded.append(name)
    for name in seeded:
        conn.execute(sql.SQL("VACUUM (FREEZE, ANALYZE) {}").format(sql.Identifier(name)))
    result = [
        _seeded_table(conn, tables[name], parent_rows[name], shaped.get(name, set()))
        for name in sorted(rows_per_table)
        if name in tables
    ]
    return SeedResult(tables=result, warnings=warnings, seconds=round(time.perf_counter() - started, 3))


def _known_columns(table: Table, figures: Mapping[str, ColumnFigures], warnings: list[str]) -> dict[str, ColumnFigures]:
    """The figures of the columns the seeder fills. Statistics of columns PostgreSQL fills
    (identities, serials, generated columns) are dropped quietly, those of columns the table
    lacks with a warning."""
    unknown = sorted(set(figures) - {c.name for c in table.columns})
    if unknown:
        warnings.append(f"{table.name}: statistics for columns it does not have: {', '.join(unknown)}; ignored")
    filled = {c.name for c in table.columns if not c.generated}
    return {name: f for name, f in figures.items() if name in filled}


def _seed_table(
    conn: psycopg.Connection, table: Table, wanted: int, parent_rows: dict[str, int], figures: Mapping[str, ColumnFigures]
) -> tuple[int | None, str]:
    """Seed one table: the rows made, or None and why not."""
    statement, rows, reason = _insert_statement(table, wanted, parent_rows, figures)
    if statement is None:
        return None, reason
    try:
        with conn.transaction():
            conn.execute(statement)
    except psycopg.Error as exc:
        return None, f"rejected ({_first_line(exc)})"
    return rows, ""


def _seeded_table(conn: psycopg.Connection, table: Table, rows: int, shaped: set[str]) -> SeededTable:
    filled = [c.name for c in table.columns if not c.generated]
    return SeededTable(
        table=table.name,
        rows=rows,
        total_bytes=_total_bytes(conn, table.name),
        columns_from_stats=[c for c in filled if c in shaped],
        columns_by_default=[c for c in filled if c not in shaped] if rows else [],
    )


def _count(conn: psycopg.Connection, table: str) -> int:
    row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))).fetchone()
    return int(row[0]) if row else 0


def _total_bytes(conn: psycopg.Connection, table: str) -> int:
    row = conn.execute("SELECT pg_total_relation_size(%s::regclass)", [sql.Identifier(table).as_string(conn)]).fetchone()
    return int(row[0]) if row else 0


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
