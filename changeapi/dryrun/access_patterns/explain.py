"""Plans of access patterns on a shadow database, with the schema facts they are judged by.

Each pattern is prepared and explained (`EXPLAIN (FORMAT JSON) EXECUTE`, never ANALYZE) in a
transaction of its own that is rolled back, so a pattern that writes is planned, never run.
`plan_cache_mode = force_custom_plan` makes the plan the one PostgreSQL builds for the sample
values, as it does for a query sent with its values. The statement goes through the extended
protocol, which accepts exactly one command.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

import psycopg
from django.db.backends.base.base import BaseDatabaseWrapper
from psycopg import sql

from changeapi.dryrun.access_patterns.placeholders import BoundPattern, PatternError, argument_text, bind_placeholders
from changeapi.dryrun.contract import PatternPlan, PlanFailure, PlanNode, PlanScan, PlanSummary

PLANNER_SETTINGS = (
    "seq_page_cost",
    "random_page_cost",
    "effective_cache_size",
    "work_mem",
    "default_statistics_target",
    "jit",
)

SCAN_METHODS = {
    "Seq Scan": "seq_scan",
    "Index Scan": "index_scan",
    "Index Only Scan": "index_only_scan",
    "Bitmap Heap Scan": "bitmap_scan",
}
INDEX_METHODS = frozenset({"index_scan", "index_only_scan", "bitmap_scan"})
MAX_NODES = 60
EXPLAIN_TIMEOUT_MS = 10_000
CONDITION_KEYS = ("Index Cond", "Recheck Cond", "Hash Cond", "Merge Cond", "Join Filter", "Filter")

_INDEXES_SQL = """
SELECT i.relname, t.relname, ix.indisunique, pg_get_indexdef(ix.indexrelid),
       EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = ix.indexrelid),
       pg_relation_size(ix.indexrelid),
       ARRAY(SELECT COALESCE(a.attname, '(expression)')
             FROM unnest(ix.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
             LEFT JOIN pg_attribute a ON a.attrelid = ix.indrelid AND a.attnum = k.attnum
             WHERE k.ord <= ix.indnkeyatts ORDER BY k.ord)
FROM pg_index ix
JOIN pg_class i ON i.oid = ix.indexrelid
JOIN pg_class t ON t.oid = ix.indrelid
WHERE t.relnamespace = current_schema()::regnamespace
"""
# The same, for the tables a change touched only.
_INDEXES_OF_SQL = _INDEXES_SQL + "  AND t.relname = ANY(%s)\n"

_FOREIGN_KEYS_SQL = """
SELECT c.conname, t.relname, p.relname,
       ARRAY(SELECT a.attname FROM unnest(c.conkey) WITH ORDINALITY AS k(attnum, ord)
             JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum ORDER BY k.ord)
FROM pg_constraint c
JOIN pg_class t ON t.oid = c.conrelid
JOIN pg_class p ON p.oid = c.confrelid
WHERE c.contype = 'f' AND t.relnamespace = current_schema()::regnamespace
"""
# Foreign keys from or to the tables a change touched.
_FOREIGN_KEYS_OF_SQL = _FOREIGN_KEYS_SQL + "  AND (t.relname = ANY(%s) OR p.relname = ANY(%s))\n"

_SIZES_SQL = """
SELECT relname, reltuples::bigint, relpages FROM pg_class
WHERE relkind IN ('r', 'p', 'm') AND relnamespace = current_schema()::regnamespace
"""


@dataclass(frozen=True)
class AccessPattern:
    """One of a project's key queries, as the engine reads it."""

    name: str
    sql: str
    params: dict[str, Any] = field(default_factory=dict)
    weight: float | None = None
    orm: str = ""


@dataclass(frozen=True)
class IndexFact:
    name: str
    table: str
    columns: tuple[str, ...]
    unique: bool
    backs_constraint: bool
    definition: str
    bytes: int

    def same_index_as(self, other: IndexFact) -> bool:
        """The same definition under another name (a RenameIndex)."""
        return self.definition.replace(f" {self.name} ", f" {other.name} ", 1) == other.definition


@dataclass(frozen=True)
class ForeignKeyFact:
    name: str
    table: str
    columns: tuple[str, ...]
    parent: str


@dataclass(frozen=True)
class PatternsSnapshot:
    """Plans of every pattern at one moment of a dry-run, and the schema they were planned on.

    `plans` holds, by pattern name, a plan summary or the error it got; `sizes` the
    planner's view of each table (reltuples, relpages), i.e. the size the plans were taken at.
    """

    plans: dict[str, PatternPlan]
    indexes: dict[str, IndexFact]
    foreign_keys: dict[str, ForeignKeyFact]
    sizes: dict[str, tuple[int, int]]
    settings: dict[str, str]

    def supported(self, fk: ForeignKeyFact) -> bool:
        """Whether an index leads with the foreign key's columns (in any order)."""
        width = len(fk.columns)
        return any(index.table == fk.table and set(index.columns[:width]) == set(fk.columns) for index in self.indexes.values())


def _raw(connection: BaseDatabaseWrapper | psycopg.Connection) -> psycopg.Connection:
    return connection if isinstance(connection, psycopg.Connection) else connection.connection


def pattern_check(connection: BaseDatabaseWrapper | psycopg.Connection, pattern: AccessPattern) -> PlanSummary:
    """Prepare and explain one pattern; its plan summary, or PatternError saying where it fails."""
    return _explain(_raw(connection), pattern, "sg_ap_check")


def explain_patterns(
    connection: BaseDatabaseWrapper | psycopg.Connection,
    patterns: list[AccessPattern] | None,
    *,
    since: PatternsSnapshot | None = None,
    touched: Collection[str] | None = None,
) -> PatternsSnapshot | None:
    """Plans of `patterns` on the database as it is now, plus its indexes, foreign keys and sizes.

    None when the caller has no patterns to follow (`patterns is None`); a pattern that fails
    is recorded with its error, never raised, so one broken query does not hide the others.

    With `since` (a snapshot of the same database earlier) and `touched` (every table changed
    since), the index and foreign-key facts are read for the touched tables only and the rest
    kept from `since`: after a change of a few tables on a schema of hundreds, that is what
    costs. Every pattern is planned again (any of them may read a touched table), and sizes
    are read whole (one scan of pg_class), which also tells which tables still exist.
    """
    if patterns is None:
        return None
    raw = _raw(connection)
    plans: dict[str, PatternPlan] = {}
    for number, pattern in enumerate(patterns):
        try:
            plans[pattern.name] = _explain(raw, pattern, f"sg_ap_{number}")
        except PatternError as exc:
            plans[pattern.name] = PlanFailure(error=exc.message, sqlstate=exc.sqlstate)
    incremental = since is not None and touched is not None
    names = sorted(touched or ())
    # Four catalog reads in one pipeline: one round trip, not four, after every change.
    with raw.pipeline(), raw.cursor() as c_sizes, raw.cursor() as c_indexes, raw.cursor() as c_fks, raw.cursor() as c_settings:
        c_sizes.execute(_SIZES_SQL)
        if incremental:
            c_indexes.execute(_INDEXES_OF_SQL, [names])
            c_fks.execute(_FOREIGN_KEYS_OF_SQL, [names, names])
        else:
            c_indexes.execute(_INDEXES_SQL)
            c_fks.execute(_FOREIGN_KEYS_SQL)
        c_settings.execute(
            "SELECT " + ", ".join(f"current_setting('{name}')" for name in PLANNER_SETTINGS)  # a fixed list of names
        )
        sizes = {row[0]: (int(row[1]), int(row[2])) for row in c_sizes.fetchall()}
        indexes = {
            row[0]: IndexFact(row[0], row[1], tuple(row[6]), row[2], row[4], row[3], int(row[5])) for row in c_indexes.fetchall()
        }
        foreign_keys = {f"{row[1]}.{row[0]}": ForeignKeyFact(row[0], row[1], tuple(row[3]), row[2]) for row in c_fks.fetchall()}
        values = c_settings.fetchone()
    if since is not None and touched is not None:
        changed = set(touched)

        def kept(table: str) -> bool:
            return table not in changed and table in sizes

        indexes = {**{k: v for k, v in since.indexes.items() if kept(v.table)}, **indexes}
        foreign_keys = {
            **{k: v for k, v in since.foreign_keys.items() if kept(v.table) and kept(v.parent)},
            **foreign_keys,
        }
    planner = dict(zip(PLANNER_SETTINGS, values or (), strict=False))
    return PatternsSnapshot(plans=plans, indexes=indexes, foreign_keys=foreign_keys, sizes=sizes, settings=planner)


def _explain(raw: psycopg.Connection, pattern: AccessPattern, statement: str) -> PlanSummary:
    bound = bind_placeholders(pattern.sql, pattern.params)
    prefix = f"PREPARE {statement} AS "
    arguments = [argument_text(value) for value in bound.values]
    try:
        # A server-side-binding cursor, whatever the connection's factory: binary results force the
        # extended protocol, which refuses a second command hidden in the pattern.
        with raw.transaction(force_rollback=True), psycopg.Cursor(raw) as cur:
            cur.execute("SET LOCAL client_min_messages = warning")
            cur.execute("SET LOCAL plan_cache_mode = force_custom_plan")
            cur.execute(f"SET LOCAL statement_timeout = {EXPLAIN_TIMEOUT_MS}")  # planning only: seconds at most
            try:
                cur.execute(prefix + bound.text, binary=True)  # type: ignore[arg-type]  # the author's SQL, on a throwaway clone
            except psycopg.Error as exc:
                raise _located(exc, bound, len(prefix)) from exc
            execute, starts = _execute_text(raw, statement, arguments)
            try:
                cur.execute(execute, binary=True)  # type: ignore[arg-type]  # built from quoted literals
            except psycopg.Error as exc:
                raise _value_error(exc, bound, starts) from exc
            row = cur.fetchone()
    finally:
        _deallocate(raw, statement)
    assert row is not None
    return plan_summary(row[0])


def _execute_text(raw: psycopg.Connection, statement: str, arguments: list[str | None]) -> tuple[str, list[int]]:
    """`EXPLAIN (FORMAT JSON) EXECUTE name(args)` and where each argument starts in it."""
    text = f"EXPLAIN (FORMAT JSON) EXECUTE {statement}"
    if not arguments:
        return text, []
    text += "("
    starts = []
    for number, argument in enumerate(arguments):
        if number:
            text += ", "
        starts.append(len(text))
        text += "NULL" if argument is None else sql.Literal(argument).as_string(raw)
    return text + ")", starts


def _deallocate(raw: psycopg.Connection, statement: str) -> None:
    """Prepared statements outlive a rollback: drop this one (it may not exist if PREPARE failed)."""
    try:
        raw.execute(f"DEALLOCATE {statement}")  # type: ignore[arg-type]  # a name we made
    except psycopg.errors.InvalidSqlStatementName:
        pass


def _first_line(exc: psycopg.Error) -> str:
    primary = exc.diag.message_primary
    return primary or (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _located(exc: psycopg.Error, bound: BoundPattern, prefix_length: int) -> PatternError:
    """PostgreSQL's error, at the line and column of the submitted SQL it points to."""
    message = _first_line(exc)
    if exc.diag.message_hint:
        message += f" (hint: {exc.diag.message_hint})"
    position = exc.diag.statement_position
    line = column = None
    if position and position.isdigit() and int(position) > prefix_length:
        line, column = bound.location(int(position) - prefix_length)
    return PatternError(message, pointer="/sql", line=line, column=column, sqlstate=exc.sqlstate)


def _value_error(exc: psycopg.Error, bound: BoundPattern, starts: list[int]) -> PatternError:
    """An error binding the sample values: pointed at the value PostgreSQL names by position."""
    position = exc.diag.statement_position
    pointer = "/params"
    if position and position.isdigit() and starts:
        index = max((i for i, start in enumerate(starts) if start < int(position)), default=0)
        pointer = f"/params/{bound.names[index]}"
    return PatternError(f"sample value: {_first_line(exc)}", pointer=pointer, sqlstate=exc.sqlstate)


def _label(node: dict[str, Any]) -> str:
    kind = node["Node Type"]
    if kind == "ModifyTable":
        kind = node.get("Operation", kind)
    if node.get("Index Name") and kind != "Bitmap Index Scan":
        kind += f" using {node['Index Name']}"
    if node.get("Relation Name"):
        kind += f" on {node['Relation Name']}"
    return kind


def _condition(node: dict[str, Any]) -> str | None:
    """The node's index, join and filter conditions, as PostgreSQL prints them."""
    conditions = [str(node[key]) for key in CONDITION_KEYS if node.get(key)]
    text = " AND ".join(conditions)
    return (text if len(text) <= 300 else text[:299] + "…") or None


def plan_summary(explain: list[dict[str, Any]]) -> PlanSummary:
    """What a reviewer compares: node types, indexes used, scans per table, estimated cost and rows."""
    root = explain[0]["Plan"]
    nodes: list[PlanNode] = []
    scans: list[PlanScan] = []

    def bitmap_indexes(node: dict[str, Any]) -> list[str]:
        found = [node["Index Name"]] if node.get("Index Name") else []
        for child in node.get("Plans", []):
            found += bitmap_indexes(child)
        return found

    def walk(node: dict[str, Any], depth: int) -> None:
        nodes.append(
            PlanNode(
                depth=depth,
                node_type=node["Node Type"],
                label=_label(node),
                relation=node.get("Relation Name"),
                index=node.get("Index Name"),
                condition=_condition(node),
                startup_cost=float(node["Startup Cost"]),
                total_cost=float(node["Total Cost"]),
                rows=float(node["Plan Rows"]),
            )
        )
        method = SCAN_METHODS.get(node["Node Type"])
        if method and node.get("Relation Name"):
            indexes = (
                bitmap_indexes(node) if method == "bitmap_scan" else ([node["Index Name"]] if node.get("Index Name") else [])
            )
            scans.append(
                PlanScan(table=node["Relation Name"], scan_method=method, indexes=tuple(indexes), rows=float(node["Plan Rows"]))
            )
        for child in node.get("Plans", []):
            walk(child, depth + 1)

    walk(root, 0)
    labels = [n.label for n in nodes]
    return PlanSummary(
        summary=" › ".join(labels[:6]) + (" › …" if len(labels) > 6 else ""),
        total_cost=float(root["Total Cost"]),
        startup_cost=float(root["Startup Cost"]),
        rows=float(root["Plan Rows"]),
        node_types=tuple(dict.fromkeys(n.node_type for n in nodes)),
        indexes=tuple(sorted({index for scan in scans for index in scan.indexes})),
        scans=tuple(scans),
        nodes=tuple(nodes[:MAX_NODES]),
    )
