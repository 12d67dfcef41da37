"""Fill a template database with synthetic rows shaped like production, read from its catalog.

Rows are generated server-side (`INSERT ... SELECT ... FROM generate_series`) from each
column's type, so they respect types, NOT NULL, unique indexes and foreign keys without any
production data leaving production. Parents are seeded before children; a table whose rows
cannot be made (an unknown NOT NULL type, a CHECK the synthetic values violate) is left
empty and named in the warnings rather than failing the template.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import psycopg
from psycopg import sql

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
    """What one table holds after seeding; the estimator scales from these bytes."""

    table: str
    rows: int
    total_bytes: int


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


def _insert_statement(table: Table, rows: int, parent_rows: dict[str, int]) -> tuple[sql.Composed | None, int, str]:
    """The INSERT that seeds `table`, the rows it will make, and why not when it cannot."""
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
        nullable = not any(next(c for c in table.columns if c.name == name).not_null for name in fk.columns)
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

    for column in table.columns:
        if column.name in values or column.generated:
            continue
        unique = column.name in unique_driven
        expr = _value(column, unique)
        if expr is None:
            if column.not_null and not column.has_default:
                return None, 0, f"{table.name}.{column.name}: no synthetic values for type {column.type_sql}"
            continue
        if not column.not_null and not unique:
            expr = f"CASE WHEN g % 10 = 0 THEN NULL ELSE {expr} END"
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
        "INSERT INTO {table} ({columns}) SELECT {values} FROM generate_series(1::bigint, {rows}) AS g{joins}"
    ).format(
        table=sql.Identifier(table.name),
        columns=sql.SQL(", ").join(sql.Identifier(c) for c in values),
        values=sql.SQL(", ").join(values.values()),
        rows=sql.Literal(rows),
        joins=sql.Composed(joins),
    )
    return statement, rows, ""


def seed_database(conn: psycopg.Connection, rows_per_table: dict[str, int]) -> SeedResult:
    """Insert synthetic rows into each named table, then VACUUM (FREEZE, ANALYZE) them.

    `conn` is an autocommit connection of the tables' owner. Production tables are vacuumed
    and analysed; freezing the seed makes the first scan in a dry-run read, not rewrite,
    every page, as it would in production.
    """
    started = time.perf_counter()
    tables = read_tables(conn)
    warnings = [f"{name}: no such table in the baseline; not seeded" for name in sorted(set(rows_per_table) - set(tables))]
    parent_rows: dict[str, int] = {}
    seeded: list[str] = []
    for name in parents_first(tables):
        wanted = rows_per_table.get(name, 0)
        if wanted <= 0:
            parent_rows[name] = _count(conn, name)
            continue
        statement, rows, reason = _insert_statement(tables[name], wanted, parent_rows)
        if statement is None:
            warnings.append(f"{reason}; not seeded")
            parent_rows[name] = 0
            continue
        try:
            with conn.transaction():
                conn.execute(statement)
        except psycopg.Error as exc:
            warnings.append(f"{name}: synthetic rows rejected ({_first_line(exc)}); not seeded")
            parent_rows[name] = 0
            continue
        parent_rows[name] = rows
        seeded.append(name)
    for name in seeded:
        conn.execute(sql.SQL("VACUUM (FREEZE, ANALYZE) {}").format(sql.Identifier(name)))
    result = [
        SeededTable(table=name, rows=parent_rows[name], total_bytes=_total_bytes(conn, name))
        for name in sorted(rows_per_table)
        if name in tables
    ]
    return SeedResult(tables=result, warnings=warnings, seconds=round(time.perf_counter() - started, 3))


def _count(conn: psycopg.Connection, table: str) -> int:
    row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))).fetchone()
    return int(row[0]) if row else 0


def _total_bytes(conn: psycopg.Connection, table: str) -> int:
    row = conn.execute("SELECT pg_total_relation_size(%s::regclass)", [sql.Identifier(table).as_string(conn)]).fetchone()
    return int(row[0]) if row else 0


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
