"""Read a SQL statement with PostgreSQL's own parser (pglast) and say what it is and what it locks.

The lock modes are PostgreSQL's documented ones ("Explicit Locking", and the Notes of
CREATE INDEX, DROP INDEX, REINDEX, ALTER TABLE): they are reported for statements whose locks
cannot be observed after the fact because they run outside a transaction and release them
when done (CREATE INDEX CONCURRENTLY and the like), and always marked as documented.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pglast
from pglast import ast

ACCESS_EXCLUSIVE = "AccessExclusiveLock"
SHARE_UPDATE_EXCLUSIVE = "ShareUpdateExclusiveLock"
SHARE_ROW_EXCLUSIVE = "ShareRowExclusiveLock"
SHARE = "ShareLock"
ROW_EXCLUSIVE = "RowExclusiveLock"
ACCESS_SHARE = "AccessShareLock"
EXCLUSIVE = "ExclusiveLock"

# ALTER TABLE takes ACCESS EXCLUSIVE "unless explicitly noted"; these are the noted ones.
_ALTER_TABLE_WEAKER = {
    "AT_SetStatistics": SHARE_UPDATE_EXCLUSIVE,
    "AT_SetOptions": SHARE_UPDATE_EXCLUSIVE,
    "AT_ResetOptions": SHARE_UPDATE_EXCLUSIVE,
    "AT_ValidateConstraint": SHARE_UPDATE_EXCLUSIVE,
    "AT_ClusterOn": SHARE_UPDATE_EXCLUSIVE,
    "AT_DropCluster": SHARE_UPDATE_EXCLUSIVE,
    "AT_AttachPartition": SHARE_UPDATE_EXCLUSIVE,
    "AT_EnableTrig": SHARE_ROW_EXCLUSIVE,
    "AT_EnableAlwaysTrig": SHARE_ROW_EXCLUSIVE,
    "AT_EnableReplicaTrig": SHARE_ROW_EXCLUSIVE,
    "AT_DisableTrig": SHARE_ROW_EXCLUSIVE,
    "AT_EnableTrigAll": SHARE_ROW_EXCLUSIVE,
    "AT_DisableTrigAll": SHARE_ROW_EXCLUSIVE,
    "AT_EnableTrigUser": SHARE_ROW_EXCLUSIVE,
    "AT_DisableTrigUser": SHARE_ROW_EXCLUSIVE,
}

_STRENGTH = [
    ACCESS_SHARE,
    "RowShareLock",
    ROW_EXCLUSIVE,
    SHARE_UPDATE_EXCLUSIVE,
    SHARE,
    SHARE_ROW_EXCLUSIVE,
    EXCLUSIVE,
    ACCESS_EXCLUSIVE,
]

# Functions whose value differs per row: as a column default they force a table rewrite.
VOLATILE_FUNCTIONS = frozenset(
    {
        "random",
        "gen_random_uuid",
        "uuid_generate_v4",
        "uuid_generate_v1",
        "clock_timestamp",
        "timeofday",
        "nextval",
        "txid_current",
    }
)


@dataclass(frozen=True)
class DocumentedLock:
    """A lock PostgreSQL's documentation says the statement takes on `relation`."""

    relation: str
    mode: str
    is_index: bool = False


@dataclass
class StatementForm:
    """What a statement is, read from its parse tree."""

    command: str
    tables: list[str] = field(default_factory=list)
    concurrently: bool = False
    subcommands: list[str] = field(default_factory=list)
    locks: list[DocumentedLock] = field(default_factory=list)
    volatile_default_columns: list[str] = field(default_factory=list)
    parsed: bool = True

    @property
    def is_dml(self) -> bool:
        return self.command in ("UPDATE", "DELETE", "INSERT")


def _strongest(modes: list[str]) -> str:
    return max(modes, key=_STRENGTH.index) if modes else ACCESS_EXCLUSIVE


def _name(range_var: Any) -> str:
    return str(range_var.relname) if range_var is not None else ""


def _func_names(node: Any) -> set[str]:
    """Names of every function called anywhere inside an expression tree."""
    found: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, ast.FuncCall) and value.funcname:
            found.add(str(value.funcname[-1].sval).lower())
        if isinstance(value, ast.Node):
            for attr in value:
                walk(getattr(value, attr))
        elif isinstance(value, tuple | list):
            for item in value:
                walk(item)

    walk(node)
    return found


def _column_default(column: Any) -> Any:
    for constraint in column.constraints or ():
        if constraint.contype is not None and constraint.contype.name == "CONSTR_DEFAULT":
            return constraint.raw_expr
    return None


def _alter_table(stmt: ast.AlterTableStmt) -> StatementForm:
    table = _name(stmt.relation)
    form = StatementForm("ALTER TABLE", tables=[table])
    modes = []
    for cmd in stmt.cmds or ():
        subtype = cmd.subtype.name
        form.subcommands.append(subtype)
        mode = _ALTER_TABLE_WEAKER.get(subtype, ACCESS_EXCLUSIVE)
        definition = cmd.def_
        if subtype == "AT_AddConstraint" and isinstance(definition, ast.Constraint) and definition.contype is not None:
            kind = definition.contype.name
            form.subcommands[-1] = f"AT_AddConstraint:{kind}" + (":NOT_VALID" if definition.skip_validation else "")
            if kind == "CONSTR_FOREIGN":
                mode = SHARE_ROW_EXCLUSIVE
                form.locks.append(DocumentedLock(_name(definition.pktable), SHARE_ROW_EXCLUSIVE))
        if subtype == "AT_DetachPartition" and getattr(definition, "concurrent", False):
            mode = SHARE_UPDATE_EXCLUSIVE
            form.concurrently = True
        if subtype == "AT_AddColumn" and isinstance(definition, ast.ColumnDef):
            default = _column_default(definition)
            if default is not None and _func_names(default) & VOLATILE_FUNCTIONS:
                form.volatile_default_columns.append(str(definition.colname))
        if subtype == "AT_ColumnDefault" and definition is not None and _func_names(definition) & VOLATILE_FUNCTIONS:
            form.volatile_default_columns.append(str(cmd.name))
        modes.append(mode)
    form.locks.insert(0, DocumentedLock(table, _strongest(modes)))
    return form


def _drop(stmt: ast.DropStmt) -> StatementForm:
    kind = stmt.removeType.name if stmt.removeType is not None else "OBJECT_UNKNOWN"
    names = [str(parts[-1].sval) for parts in stmt.objects or () if isinstance(parts, tuple)]
    if kind == "OBJECT_INDEX":
        mode = SHARE_UPDATE_EXCLUSIVE if stmt.concurrent else ACCESS_EXCLUSIVE
        return StatementForm(
            "DROP INDEX",
            concurrently=bool(stmt.concurrent),
            locks=[DocumentedLock(n, mode, is_index=True) for n in names],
        )
    if kind in ("OBJECT_TABLE", "OBJECT_MATVIEW", "OBJECT_VIEW"):
        return StatementForm("DROP TABLE", tables=names, locks=[DocumentedLock(n, ACCESS_EXCLUSIVE) for n in names])
    return StatementForm(f"DROP {kind.removeprefix('OBJECT_')}")


def _index(stmt: ast.IndexStmt) -> StatementForm:
    table = _name(stmt.relation)
    mode = SHARE_UPDATE_EXCLUSIVE if stmt.concurrent else SHARE
    command = "CREATE UNIQUE INDEX" if stmt.unique else "CREATE INDEX"
    return StatementForm(command, tables=[table], concurrently=bool(stmt.concurrent), locks=[DocumentedLock(table, mode)])


def _reindex(stmt: ast.ReindexStmt) -> StatementForm:
    concurrently = any(str(p.defname) == "concurrently" for p in stmt.params or ())
    target = _name(stmt.relation)
    on_index = stmt.kind is not None and stmt.kind.name == "REINDEX_OBJECT_INDEX"
    mode = SHARE_UPDATE_EXCLUSIVE if concurrently else SHARE
    return StatementForm(
        "REINDEX",
        tables=[] if on_index else [target],
        concurrently=concurrently,
        locks=[DocumentedLock(target, mode, is_index=on_index)],
    )


def _create_table(stmt: ast.CreateStmt) -> StatementForm:
    form = StatementForm("CREATE TABLE", tables=[_name(stmt.relation)])
    for element in stmt.tableElts or ():
        constraints = element.constraints or () if isinstance(element, ast.ColumnDef) else (element,)
        for constraint in constraints:
            if (
                isinstance(constraint, ast.Constraint)
                and constraint.contype is not None
                and constraint.contype.name == "CONSTR_FOREIGN"
            ):
                form.locks.append(DocumentedLock(_name(constraint.pktable), SHARE_ROW_EXCLUSIVE))
    return form


def _one(stmt: Any) -> StatementForm:
    if isinstance(stmt, ast.AlterTableStmt):
        return _alter_table(stmt)
    if isinstance(stmt, ast.IndexStmt):
        return _index(stmt)
    if isinstance(stmt, ast.DropStmt):
        return _drop(stmt)
    if isinstance(stmt, ast.ReindexStmt):
        return _reindex(stmt)
    if isinstance(stmt, ast.CreateStmt):
        return _create_table(stmt)
    if isinstance(stmt, ast.UpdateStmt | ast.DeleteStmt | ast.InsertStmt):
        command = {ast.UpdateStmt: "UPDATE", ast.DeleteStmt: "DELETE", ast.InsertStmt: "INSERT"}[type(stmt)]
        table = _name(stmt.relation)
        return StatementForm(command, tables=[table], locks=[DocumentedLock(table, ROW_EXCLUSIVE)])
    if isinstance(stmt, ast.TruncateStmt):
        tables = [_name(r) for r in stmt.relations or ()]
        return StatementForm("TRUNCATE", tables=tables, locks=[DocumentedLock(t, ACCESS_EXCLUSIVE) for t in tables])
    if isinstance(stmt, ast.RenameStmt):
        table = _name(stmt.relation)
        return StatementForm(
            "RENAME", tables=[table] if table else [], locks=[DocumentedLock(table, ACCESS_EXCLUSIVE)] if table else []
        )
    if isinstance(stmt, ast.VacuumStmt):
        full = any(str(o.defname) == "full" for o in stmt.options or ())
        tables = [_name(r.relation) for r in stmt.rels or ()]
        mode = ACCESS_EXCLUSIVE if full else SHARE_UPDATE_EXCLUSIVE
        return StatementForm(
            "VACUUM" if stmt.is_vacuumcmd else "ANALYZE", tables=tables, locks=[DocumentedLock(t, mode) for t in tables]
        )
    if isinstance(stmt, ast.RefreshMatViewStmt):
        table = _name(stmt.relation)
        mode = EXCLUSIVE if stmt.concurrent else ACCESS_EXCLUSIVE
        return StatementForm(
            "REFRESH MATERIALIZED VIEW", tables=[table], concurrently=bool(stmt.concurrent), locks=[DocumentedLock(table, mode)]
        )
    if isinstance(stmt, ast.CreateTrigStmt):
        table = _name(stmt.relation)
        return StatementForm("CREATE TRIGGER", tables=[table], locks=[DocumentedLock(table, SHARE_ROW_EXCLUSIVE)])
    if isinstance(stmt, ast.SelectStmt):
        return StatementForm("SELECT")
    return StatementForm(type(stmt).__name__.removesuffix("Stmt").upper())


def statement_form(sql_text: str) -> StatementForm:
    """The form of `sql_text`; a statement pglast cannot parse is `parsed=False`, never an error."""
    try:
        parsed = pglast.parse_sql(sql_text)
    except Exception:  # noqa: BLE001 - pglast raises its own ParseError and others; unparsed is a fact, not a failure
        return StatementForm("UNKNOWN", parsed=False)
    forms = [_one(raw.stmt) for raw in parsed]
    if not forms:
        return StatementForm("EMPTY")
    first = forms[0]
    for other in forms[1:]:
        first.tables.extend(t for t in other.tables if t not in first.tables)
        first.locks.extend(other.locks)
        first.subcommands.extend(other.subcommands)
        first.volatile_default_columns.extend(other.volatile_default_columns)
        first.concurrently = first.concurrently or other.concurrently
    return first
