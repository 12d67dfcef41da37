"""Read a SQL statement with PostgreSQL's own parser (pglast) and say what it is and what it locks.

The lock modes are PostgreSQL's documented ones ("Explicit Locking", and the Notes of
CREATE INDEX, DROP INDEX, REINDEX, ALTER TABLE): they are reported for statements whose locks
cannot be observed after the fact because they run outside a transaction and release them
when done (CREATE INDEX CONCURRENTLY and the like), and always marked as documented.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import pglast
from pglast import ast, enums
from pglast.stream import RawStream

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


# Functions that are stable within a statement: as the default of an added column PostgreSQL
# evaluates them once and stores the value in the catalog (no rewrite), so every existing row
# gets the same moment. CURRENT_TIMESTAMP and its kin parse as SQLValueFunction.
ONCE_FUNCTIONS = frozenset({"now", "statement_timestamp", "transaction_timestamp"})


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
    once_default_columns: list[str] = field(default_factory=list)
    parsed: bool = True

    @property
    def is_dml(self) -> bool:
        return self.command in ("UPDATE", "DELETE", "INSERT")


def _strongest(modes: list[str]) -> str:
    return max(modes, key=_STRENGTH.index) if modes else ACCESS_EXCLUSIVE


def _name(range_var: Any) -> str:
    return str(range_var.relname) if range_var is not None else ""


def _func_names(node: Any) -> set[str]:
    """Names of every function called anywhere inside an expression tree (SQL value functions
    such as CURRENT_TIMESTAMP as `sqlvaluefunction`)."""
    found: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, ast.FuncCall) and value.funcname:
            found.add(str(value.funcname[-1].sval).lower())
        if isinstance(value, ast.SQLValueFunction):
            found.add("sqlvaluefunction")
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
            for constraint in definition.constraints or ():
                if isinstance(constraint, ast.Constraint) and constraint.contype is not None:
                    if constraint.contype.name == "CONSTR_FOREIGN":
                        form.locks.append(DocumentedLock(_name(constraint.pktable), SHARE_ROW_EXCLUSIVE))
            default = _column_default(definition)
            called = _func_names(default) if default is not None else set()
            if called & VOLATILE_FUNCTIONS:
                form.volatile_default_columns.append(str(definition.colname))
            elif called & (ONCE_FUNCTIONS | {"sqlvaluefunction"}):
                form.once_default_columns.append(str(definition.colname))
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
        first.once_default_columns.extend(other.once_default_columns)
        first.concurrently = first.concurrently or other.concurrently
    return first


@dataclass(frozen=True)
class UnbatchedChange:
    """An UPDATE or DELETE that changes every matching row in one statement, and a batched form of it.

    `batched_sql` is the same statement restricted to one key range (`%s` placeholders for
    its bounds), to be run once per range, each range committed on its own.
    """

    command: str
    table: str
    reason: str
    batched_sql: str


_RANGE_LOWER = {">", ">="}
_RANGE_UPPER = {"<", "<="}


def _column_name(node: Any) -> str | None:
    if isinstance(node, ast.ColumnRef) and node.fields and isinstance(node.fields[-1], ast.String):
        return str(node.fields[-1].sval)
    return None


def _conjuncts(where: Any) -> list[Any]:
    if isinstance(where, ast.BoolExpr) and where.boolop is not None and where.boolop.name == "AND_EXPR":
        return [part for arg in where.args or () for part in _conjuncts(arg)]
    return [where]


def _limited_subquery(node: Any) -> bool:
    """A subquery with a LIMIT anywhere in `node` (`id IN (SELECT id ... LIMIT 10000)`)."""
    if isinstance(node, ast.SelectStmt) and node.limitCount is not None:
        return True
    if isinstance(node, ast.Node):
        return any(_limited_subquery(getattr(node, attr)) for attr in node)
    if isinstance(node, tuple | list):
        return any(_limited_subquery(item) for item in node)
    return False


def _is_batch(where: Any) -> bool:
    """A WHERE that bounds the statement to one batch: a key range, a LIMIT subquery, or named keys."""
    if _limited_subquery(where):
        return True
    lower: set[str] = set()
    upper: set[str] = set()
    for part in _conjuncts(where):
        if not isinstance(part, ast.A_Expr) or part.kind is None:
            continue
        column = _column_name(part.lexpr)
        if column is None:
            continue
        kind = part.kind.name
        operator = str(part.name[-1].sval) if part.name else ""
        if kind == "AEXPR_BETWEEN":
            return True
        if column in ("id", "pk") or column.endswith("_id"):
            constant = isinstance(part.rexpr, ast.A_Const) or (
                isinstance(part.rexpr, tuple) and all(isinstance(item, ast.A_Const) for item in part.rexpr)
            )
            if constant and (operator == "=" and kind in ("AEXPR_OP", "AEXPR_IN")):
                return True  # named rows: `id = 7`, `id IN (1, 2, 3)`
        if operator in _RANGE_LOWER:
            lower.add(column)
        elif operator in _RANGE_UPPER:
            upper.add(column)
    return bool(lower & upper)


def _in_key_range(where: Any, key: str, first: int) -> Any:
    """`where AND key >= $first AND key < $first+1`: the statement cut to one range of its table's key."""
    bounds = [
        ast.A_Expr(
            kind=enums.A_Expr_Kind.AEXPR_OP,
            name=(ast.String(sval=operator),),
            lexpr=ast.ColumnRef(fields=(ast.String(sval=key),)),
            rexpr=ast.ParamRef(number=number),
        )
        for operator, number in ((">=", first), ("<", first + 1))
    ]
    return ast.BoolExpr(boolop=enums.BoolExprType.AND_EXPR, args=tuple([*_conjuncts(where), *bounds] if where else bounds))


def _unbatched(stmt: Any, sql_text: str, key: str) -> UnbatchedChange | None:
    if not isinstance(stmt, ast.UpdateStmt | ast.DeleteStmt):
        return None
    command = "UPDATE" if isinstance(stmt, ast.UpdateStmt) else "DELETE"
    where = stmt.whereClause
    if where is not None and _is_batch(where):
        return None
    if isinstance(stmt, ast.UpdateStmt) and any(_limited_subquery(item) for item in stmt.fromClause or ()):
        return None
    reason = (
        "it has no WHERE clause"
        if where is None
        else f"its WHERE ({RawStream()(where)}) is neither a key range nor a LIMIT batch"
    )
    first = 1
    while f"${first}" in sql_text or f"${first + 1}" in sql_text:
        first += 2
    stmt.whereClause = _in_key_range(where, key, first)
    # The batched form is run with parameters: a literal % is doubled, the bounds become %s.
    batched = re.sub(rf"\$({first}|{first + 1})\b", "%s", RawStream()(stmt).replace("%", "%%"))
    return UnbatchedChange(command=command, table=_name(stmt.relation), reason=reason, batched_sql=batched)


def unbatched_changes(sql_text: str, *, key: str = "id") -> list[UnbatchedChange]:
    """Each UPDATE or DELETE in `sql_text` that changes all its matching rows at once.

    One statement over every row holds its row locks (and the migration's locks) until it
    ends, and writes all its WAL in one go; a key-range or LIMIT batch does not. `key` is the
    column the batched form ranges over. `RunSQL` text may hold several statements (PostgreSQL
    runs them as one): each is judged.
    """
    try:
        parsed = pglast.parse_sql(sql_text)
    except Exception:  # noqa: BLE001 - unparsed SQL is reported elsewhere, not judged here
        return []
    return [change for raw in parsed if (change := _unbatched(raw.stmt, sql_text, key)) is not None]


@dataclass(frozen=True)
class InlineForeignKey:
    """`ADD COLUMN ... REFERENCES`, as Django writes a new ForeignKey: the key is made with the column.

    PostgreSQL takes SHARE ROW EXCLUSIVE on the referenced table, as for ADD CONSTRAINT, and
    validates the key by scanning the table unless the new column has no default (then every
    value is NULL and the scan is skipped).
    """

    table: str
    column: str
    referenced: str
    referenced_columns: tuple[str, ...]
    constraint: str | None
    has_default: bool
    nullable: bool


def inline_foreign_keys(sql_text: str) -> list[InlineForeignKey]:
    """Every foreign key declared inline with an added column in `sql_text`."""
    try:
        parsed = pglast.parse_sql(sql_text)
    except Exception:  # noqa: BLE001 - unparsed SQL is reported elsewhere, not judged here
        return []
    found = []
    for raw in parsed:
        stmt = raw.stmt
        if not isinstance(stmt, ast.AlterTableStmt):
            continue
        for cmd in stmt.cmds or ():
            definition = cmd.def_
            if cmd.subtype.name != "AT_AddColumn" or not isinstance(definition, ast.ColumnDef):
                continue
            kinds = {c.contype.name: c for c in definition.constraints or () if isinstance(c, ast.Constraint) and c.contype}
            key = kinds.get("CONSTR_FOREIGN")
            if key is None:
                continue
            found.append(
                InlineForeignKey(
                    table=_name(stmt.relation),
                    column=str(definition.colname),
                    referenced=_name(key.pktable),
                    referenced_columns=tuple(str(c.sval) for c in key.pk_attrs or ()),
                    constraint=str(key.conname) if key.conname else None,
                    has_default="CONSTR_DEFAULT" in kinds,
                    nullable="CONSTR_NOTNULL" not in kinds,
                )
            )
    return found
