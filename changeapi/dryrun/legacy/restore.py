"""The DDL that restores a schema snapshot on a shadow database, made from its typed catalog.

Names come from production and are hostile input: every one is quoted with psycopg's
`sql.Identifier`, never put into SQL text. Types, defaults and the bodies of checks and
indexes are SQL text by nature, so each is read by PostgreSQL's own parser (pglast), refused
unless it is exactly one node of the kind it claims to be, and written again from that node:
whatever surrounds it in the upload (a `;`, a second statement, a comment) never reaches a
server. What parses but the shadow cannot make (an extension's type or index method) is
noted for review instead of failing the whole restore.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import psycopg
from pglast import ast, enums, parse_sql
from pglast.parser import ParseError
from pglast.stream import RawStream
from psycopg import sql

from changeapi.dryrun.drift import Catalog, Constraint, Index, Table

_INDEX_METHODS = frozenset({"btree", "hash", "gist", "gin", "spgist", "brin"})
_SEQUENCE_TYPES = frozenset({"smallint", "integer", "bigint"})
_FK_ACTIONS = {"a": "NO ACTION", "r": "RESTRICT", "c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT"}
_FK_MATCH = {"s": "", "f": " MATCH FULL", "p": " MATCH PARTIAL"}
# Constraints are added in this order: a foreign key needs the unique key it references.
_CONSTRAINT_ORDER = {"primary_key": 0, "unique": 1, "check": 2, "exclusion": 3, "foreign_key": 4}


class SnapshotNotRestorable(Exception):
    """A snapshot value that is not what the catalog query writes, at its JSON pointer."""

    def __init__(self, message: str, pointer: str) -> None:
        super().__init__(message)
        self.message = message
        self.pointer = pointer


class NoteKind(StrEnum):
    TYPE = "type"
    DEFAULT = "default"
    COLLATION = "collation"
    CONSTRAINT = "constraint"
    INDEX = "index"
    SEQUENCE = "sequence"
    PARTITIONED = "partitioned"


@dataclass(frozen=True)
class RestoreNote:
    """Something of production's schema the shadow does not have as production has it."""

    kind: NoteKind
    table: str | None
    name: str
    detail: str


@dataclass(frozen=True)
class ColumnDDL:
    name: str
    type: str  # re-written from its parse tree
    nullable: bool
    identity: str | None
    collation: str | None


@dataclass(frozen=True)
class TableDDL:
    name: str
    columns: tuple[ColumnDDL, ...]
    pointer: str


@dataclass(frozen=True)
class Step:
    """One statement the restore may do without: when it fails, the failure becomes a note."""

    kind: NoteKind
    table: str | None
    name: str
    statement: sql.Composed


@dataclass(frozen=True)
class RestorePlan:
    """Everything to run, in order: sequences, tables, then what hangs on tables."""

    sequences: tuple[Step, ...]
    tables: tuple[TableDDL, ...]
    after_tables: tuple[Step, ...]
    notes: tuple[RestoreNote, ...]


def _parse_one(text: str, pointer: str, what: str) -> Any:
    """The single statement PostgreSQL's parser reads in `text`, else a located refusal."""
    try:
        statements = parse_sql(text)
    except ParseError:
        raise SnapshotNotRestorable(f"not a {what} PostgreSQL can read", pointer) from None
    if len(statements) != 1:
        raise SnapshotNotRestorable(f"not one {what}: it holds {len(statements)} statements", pointer)
    return statements[0].stmt


def _bare_select(stmt: Any) -> bool:
    """A `SELECT <one value>` and nothing else: no FROM, WHERE, WITH, INTO, set operation."""
    if not isinstance(stmt, ast.SelectStmt) or not stmt.targetList or len(stmt.targetList) != 1:
        return False
    others = (
        "distinctClause",
        "intoClause",
        "fromClause",
        "whereClause",
        "groupClause",
        "havingClause",
        "windowClause",
        "valuesLists",
        "sortClause",
        "limitOffset",
        "limitCount",
        "lockingClause",
        "withClause",
        "larg",
        "rarg",
    )
    return all(not getattr(stmt, name, None) for name in others) and stmt.targetList[0].name is None


def column_type(text: str, pointer: str) -> str:
    """A column type as format_type() writes it, re-written from its parse tree."""
    stmt = _parse_one(f"SELECT CAST(NULL AS {text})", pointer, "type")
    value = stmt.targetList[0].val if _bare_select(stmt) else None
    if not (isinstance(value, ast.TypeCast) and isinstance(value.arg, ast.A_Const) and value.arg.isnull):
        raise SnapshotNotRestorable("not a type name", pointer)
    type_name = value.typeName
    if type_name is None or type_name.setof or type_name.pct_type:
        raise SnapshotNotRestorable("not a column type", pointer)
    return _deparse(type_name, pointer)


def expression(text: str, pointer: str) -> str:
    """A default or predicate as pg_get_expr() writes it: one expression, re-written."""
    stmt = _parse_one(f"SELECT {text}", pointer, "expression")
    if not _bare_select(stmt):
        raise SnapshotNotRestorable("not one expression", pointer)
    return _deparse(stmt.targetList[0].val, pointer)


def _deparse(node: Any, pointer: str) -> str:
    """SQL text of a parse tree node, written by pglast from the node alone."""
    try:
        return str(RawStream()(node))
    except Exception as exc:  # noqa: BLE001 - a node pglast cannot print is a value the restore cannot use
        raise SnapshotNotRestorable(f"PostgreSQL's parser read it, but it cannot be written again: {exc}", pointer) from None


def _names(nodes: Iterable[Any] | None) -> list[str]:
    return [node.sval for node in nodes or ()]


def _columns(names: Sequence[str]) -> sql.Composable:
    return sql.SQL(", ").join(sql.Identifier(name) for name in names)


def _deferrable(node: Any) -> str:
    if not node.deferrable:
        return ""
    return " DEFERRABLE INITIALLY DEFERRED" if node.initdeferred else " DEFERRABLE"


_CONTYPES = {
    "primary_key": enums.ConstrType.CONSTR_PRIMARY,
    "unique": enums.ConstrType.CONSTR_UNIQUE,
    "foreign_key": enums.ConstrType.CONSTR_FOREIGN,
    "check": enums.ConstrType.CONSTR_CHECK,
    "exclusion": enums.ConstrType.CONSTR_EXCLUSION,
}


def constraint_node(constraint: Constraint, pointer: str) -> Any:
    """The parse tree of a pg_get_constraintdef() text, checked against the declared type."""
    stmt = _parse_one(f"ALTER TABLE t ADD CONSTRAINT c {constraint.definition}", pointer, "constraint definition")
    commands = tuple(stmt.cmds or ()) if isinstance(stmt, ast.AlterTableStmt) else ()
    if len(commands) != 1 or commands[0].subtype != enums.AlterTableType.AT_AddConstraint:
        raise SnapshotNotRestorable("not one constraint definition", pointer)
    node = commands[0].def_
    if not isinstance(node, ast.Constraint) or node.contype != _CONTYPES[constraint.type]:
        raise SnapshotNotRestorable(f"not a {constraint.type.replace('_', ' ')} constraint", pointer)
    return node


def _constraint_body(constraint: Constraint, node: Any, tables: set[str], pointer: str) -> sql.Composed | str:
    """The constraint clause from its parse tree with every name quoted here; or why the
    shadow cannot have it (a str)."""
    not_valid = sql.SQL(" NOT VALID" if node.skip_validation else "")
    if constraint.type in ("primary_key", "unique"):
        keyword = "PRIMARY KEY" if constraint.type == "primary_key" else "UNIQUE"
        if node.nulls_not_distinct:
            keyword += " NULLS NOT DISTINCT"
        body = sql.SQL(keyword + " ({})").format(_columns(_names(node.keys)))
        if node.including:
            body += sql.SQL(" INCLUDE ({})").format(_columns(_names(node.including)))
        return body + sql.SQL(_deferrable(node))
    if constraint.type == "foreign_key":
        target = node.pktable.relname
        if target not in tables:
            return f"it references {target}, a table the snapshot does not list"
        body = sql.SQL("FOREIGN KEY ({}) REFERENCES {}").format(_columns(_names(node.fk_attrs)), sql.Identifier(target))
        if node.pk_attrs:
            body += sql.SQL(" ({})").format(_columns(_names(node.pk_attrs)))
        actions = (
            f"{_FK_MATCH.get(node.fk_matchtype, '')} ON UPDATE {_FK_ACTIONS.get(node.fk_upd_action, 'NO ACTION')}"
            f" ON DELETE {_FK_ACTIONS.get(node.fk_del_action, 'NO ACTION')}{_deferrable(node)}"
        )
        return body + sql.SQL(actions) + not_valid
    if constraint.type == "check":
        body = sql.SQL("CHECK ({})").format(sql.SQL(_deparse(node.raw_expr, pointer)))
        return body + sql.SQL(" NO INHERIT" if node.is_no_inherit else "") + not_valid
    return "exclusion constraints are not restored on the shadow"


def foreign_key_facts(constraint: Constraint) -> tuple[str, tuple[str, ...]]:
    """ON DELETE of a foreign key as PostgreSQL wrote it, and its columns (NO ACTION and none
    when the definition cannot be read)."""
    try:
        node = constraint_node(constraint, "")
    except SnapshotNotRestorable:
        return "NO ACTION", ()
    return _FK_ACTIONS.get(node.fk_del_action, "NO ACTION"), tuple(_names(node.fk_attrs))


def _index_statement(index: Index, pointer: str) -> sql.Composed | str:
    """CREATE INDEX from the parse tree of pg_get_indexdef(), its name and table the snapshot's
    own (quoted here, not the definition's); or why the shadow cannot have it (a str)."""
    stmt = _parse_one(index.definition, pointer, "index definition")
    if not isinstance(stmt, ast.IndexStmt) or stmt.concurrent:
        raise SnapshotNotRestorable("not a CREATE INDEX statement", pointer)
    if stmt.accessMethod not in _INDEX_METHODS:
        return f"the index method {stmt.accessMethod} is not one the shadow restores"
    elements: list[sql.Composable] = []
    for element in stmt.indexParams or ():
        if element.opclassopts:
            return "operator class options are not restored on the shadow"
        part: sql.Composable = (
            sql.Identifier(element.name) if element.name else sql.SQL("({})").format(sql.SQL(_deparse(element.expr, pointer)))
        )
        if element.collation:
            part += sql.SQL(" COLLATE {}").format(sql.Identifier(*_names(element.collation)))
        if element.opclass:
            part += sql.SQL(" {}").format(sql.Identifier(*_names(element.opclass)))
        part += sql.SQL({enums.SortByDir.SORTBY_DESC: " DESC", enums.SortByDir.SORTBY_ASC: " ASC"}.get(element.ordering, ""))
        nulls = {enums.SortByNulls.SORTBY_NULLS_FIRST: " NULLS FIRST", enums.SortByNulls.SORTBY_NULLS_LAST: " NULLS LAST"}
        elements.append(part + sql.SQL(nulls.get(element.nulls_ordering, "")))
    statement = sql.SQL("CREATE {}INDEX {} ON {} USING {} ({})").format(
        sql.SQL("UNIQUE " if stmt.unique else ""),
        sql.Identifier(index.name),
        sql.Identifier(index.table),
        sql.SQL(stmt.accessMethod),
        sql.SQL(", ").join(elements),
    )
    if stmt.indexIncludingParams:
        statement += sql.SQL(" INCLUDE ({})").format(_columns([e.name for e in stmt.indexIncludingParams]))
    if stmt.nulls_not_distinct:
        statement += sql.SQL(" NULLS NOT DISTINCT")
    if stmt.whereClause is not None:
        statement += sql.SQL(" WHERE ({})").format(sql.SQL(_deparse(stmt.whereClause, pointer)))
    return statement


def _owner(owned_by: str, tables: dict[str, Table]) -> tuple[str, str] | None:
    """`table.column` split where a table of the snapshot has that column (names may hold dots)."""
    for at in range(len(owned_by)):
        if owned_by[at] == ".":
            table, column = owned_by[:at], owned_by[at + 1 :]
            if table in tables and any(c.name == column for c in tables[table].columns):
                return table, column
    return None


def restore_plan(catalog: Catalog) -> RestorePlan:
    """Every statement that restores `catalog`, checked before any database is made.

    Raises SnapshotNotRestorable at the first value that is not what the catalog query writes.
    """
    tables = {table.name: table for table in catalog.tables}
    notes: list[RestoreNote] = []
    table_ddl: list[TableDDL] = []
    after: list[Step] = []
    for t, table in enumerate(catalog.tables):
        columns = []
        for c, column in enumerate(table.columns):
            pointer = f"/tables/{t}/columns/{c}"
            columns.append(
                ColumnDDL(
                    name=column.name,
                    type=column_type(column.type, f"{pointer}/type"),
                    nullable=column.nullable,
                    identity=column.identity,
                    collation=column.collation,
                )
            )
            if column.default is not None and column.identity is None:
                default = expression(column.default, f"{pointer}/default")
                statement = sql.SQL("ALTER TABLE {} ALTER COLUMN {} SET DEFAULT ({})").format(
                    sql.Identifier(table.name), sql.Identifier(column.name), sql.SQL(default)
                )
                after.append(Step(NoteKind.DEFAULT, table.name, column.name, statement))
        table_ddl.append(TableDDL(name=table.name, columns=tuple(columns), pointer=f"/tables/{t}"))
        if table.partitioned:
            detail = "partitioned in production; restored as a plain table (the snapshot has no partition key)"
            notes.append(RestoreNote(NoteKind.PARTITIONED, table.name, table.name, detail))

    ordered = sorted(enumerate(catalog.constraints), key=lambda item: _CONSTRAINT_ORDER[item[1].type])
    backing = {(k.table, k.name) for k in catalog.constraints if k.type in ("primary_key", "unique", "exclusion")}
    for k, constraint in ordered:
        pointer = f"/constraints/{k}/definition"
        body = _constraint_body(constraint, constraint_node(constraint, pointer), set(tables), pointer)
        if isinstance(body, str):
            notes.append(RestoreNote(NoteKind.CONSTRAINT, constraint.table, constraint.name, body))
            continue
        statement = sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} ").format(
            sql.Identifier(constraint.table), sql.Identifier(constraint.name)
        )
        after.append(Step(NoteKind.CONSTRAINT, constraint.table, constraint.name, statement + body))
    for i, index in enumerate(catalog.indexes):
        if index.primary or (index.table, index.name) in backing:
            continue  # made by its constraint
        made = _index_statement(index, f"/indexes/{i}/definition")
        if isinstance(made, str):
            notes.append(RestoreNote(NoteKind.INDEX, index.table, index.name, made))
        else:
            after.append(Step(NoteKind.INDEX, index.table, index.name, made))

    identity_owned = {f"{t.name}.{c.name}" for t in catalog.tables for c in t.columns if c.identity}
    sequences: list[Step] = []
    for s, sequence in enumerate(catalog.sequences):
        if sequence.owned_by in identity_owned:
            continue  # made by its identity column
        if sequence.type not in _SEQUENCE_TYPES:
            raise SnapshotNotRestorable("a sequence is smallint, integer or bigint", f"/sequences/{s}/type")
        create = sql.SQL("CREATE SEQUENCE {} AS {}").format(sql.Identifier(sequence.name), sql.SQL(sequence.type))
        sequences.append(Step(NoteKind.SEQUENCE, None, sequence.name, create))
        owner = _owner(sequence.owned_by, tables) if sequence.owned_by else None
        if owner is not None:
            own = sql.SQL("ALTER SEQUENCE {} OWNED BY {}").format(sql.Identifier(sequence.name), sql.Identifier(*owner))
            after.append(Step(NoteKind.SEQUENCE, owner[0], sequence.name, own))
    return RestorePlan(sequences=tuple(sequences), tables=tuple(table_ddl), after_tables=tuple(after), notes=tuple(notes))


def _column_sql(column: ColumnDDL, known_types: set[str], known_collations: set[str]) -> tuple[sql.Composable, list[str]]:
    """One column of CREATE TABLE, and what of it the shadow cannot have."""
    lacking = []
    type_sql = column.type
    if column.type not in known_types:
        lacking.append(f"type {column.type} does not exist on the shadow (an extension's or a user-defined type)")
        type_sql = "text"
    part = sql.SQL("{} {}").format(sql.Identifier(column.name), sql.SQL(type_sql))
    if column.collation is not None and column.collation != "default" and type_sql == column.type:
        if column.collation in known_collations:
            part += sql.SQL(" COLLATE {}").format(sql.Identifier(column.collation))
        else:
            lacking.append(f"collation {column.collation} does not exist on the shadow")
    if not column.nullable:
        part += sql.SQL(" NOT NULL")
    if column.identity is not None and type_sql == column.type:
        part += sql.SQL(" GENERATED ALWAYS AS IDENTITY" if column.identity == "always" else " GENERATED BY DEFAULT AS IDENTITY")
    return part, lacking


def restore_apply(conn: psycopg.Connection, plan: RestorePlan) -> list[RestoreNote]:
    """Run `plan` on an empty shadow database in autocommit, as the job's own role.

    Tables must be made (a table that cannot be is a SnapshotNotRestorable); each other step
    stands alone, so one that fails leaves a note and the rest goes on. The types and
    collations the shadow has are asked for as values, never spliced into SQL.
    """
    notes = list(plan.notes)
    wanted_types = sorted({column.type for table in plan.tables for column in table.columns})
    rows = conn.execute("SELECT t FROM unnest(%s::text[]) AS t WHERE to_regtype(t) IS NOT NULL", [wanted_types]).fetchall()
    known_types = {row[0] for row in rows}
    rows = conn.execute("SELECT collname FROM pg_collation").fetchall()
    known_collations = {row[0] for row in rows}
    for step in plan.sequences:
        _optional(conn, step, notes)
    for table in plan.tables:
        parts = []
        for column in table.columns:
            part, lacking = _column_sql(column, known_types, known_collations)
            parts.append(part)
            notes += [RestoreNote(NoteKind.TYPE, table.name, column.name, why) for why in lacking]
        create = sql.SQL("CREATE TABLE {} ({})").format(sql.Identifier(table.name), sql.SQL(", ").join(parts))
        try:
            conn.execute(create)
        except psycopg.Error as exc:
            raise SnapshotNotRestorable(f"the table cannot be made on the shadow: {_first_line(exc)}", table.pointer) from None
    for step in plan.after_tables:
        _optional(conn, step, notes)
    return notes


def _optional(conn: psycopg.Connection, step: Step, notes: list[RestoreNote]) -> None:
    try:
        conn.execute(step.statement)
    except psycopg.errors.QueryCanceled:
        raise  # the watchdog's limits end the job, not one step
    except psycopg.Error as exc:
        notes.append(RestoreNote(step.kind, step.table, step.name, f"not restored on the shadow: {_first_line(exc)}"))


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
