"""Drift: a production schema snapshot against the schema the migrations say it has.

Both sides are the output of one catalog query per engine (docs/drift.md), read on production
by the team and on a clone of the baseline's template by the service. Objects are matched by
name (tables, sequences and extensions by their own name, columns and constraints within their
table, indexes by their own name on PostgreSQL and SQLite and within their table on MySQL,
where every table has its `PRIMARY`), and each difference says what it means for the next change.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from changeapi.dryrun.contract import DriftWarning, StatementTrace
from changeapi.dryrun.drift_spelling import mysql_catalog_spelled

ENGINES = ("postgresql", "mysql", "sqlite")
# server_version_num per major version: PostgreSQL's and MySQL's are major * 10000 + ...,
# SQLite's (SQLITE_VERSION_NUMBER) major * 1000000 + minor * 1000 + patch.
_MAJOR_DIVISORS = {"postgresql": 10_000, "mysql": 10_000, "sqlite": 1_000_000}


class DriftKind(StrEnum):
    TABLE = "table"
    COLUMN = "column"
    INDEX = "index"
    CONSTRAINT = "constraint"
    SEQUENCE = "sequence"
    EXTENSION = "extension"
    SERVER = "server"


class DriftStatus(StrEnum):
    MISSING = "missing"  # the migrations have it, production does not
    EXTRA = "extra"  # production has it, the migrations do not
    DIFFERENT = "different"  # both have it, not alike
    INVALID = "invalid"  # an index production has but does not use (a failed CREATE INDEX CONCURRENTLY)
    NOT_VALID = "not_valid"  # a constraint added NOT VALID and never validated


class Severity(StrEnum):
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    INFO = "info"


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    nullable: bool
    default: str | None = None
    collation: str | None = None
    identity: str | None = None


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...] = ()
    partitioned: bool = False


@dataclass(frozen=True)
class Index:
    name: str
    table: str
    definition: str
    unique: bool = False
    primary: bool = False
    valid: bool = True
    predicate: str | None = None


@dataclass(frozen=True)
class Constraint:
    name: str
    table: str
    type: str
    definition: str
    validated: bool = True


@dataclass(frozen=True)
class Sequence:
    name: str
    type: str
    owned_by: str | None = None


@dataclass(frozen=True)
class Extension:
    name: str
    version: str


@dataclass(frozen=True)
class Catalog:
    """One schema as its engine's catalog query reads it: only structure, never data.

    Sequences and extensions are PostgreSQL's alone: empty on the other engines.
    """

    server_version: str
    server_version_num: int
    schema: str
    tables: tuple[Table, ...] = ()
    indexes: tuple[Index, ...] = ()
    constraints: tuple[Constraint, ...] = ()
    sequences: tuple[Sequence, ...] = ()
    extensions: tuple[Extension, ...] = ()
    engine: str = "postgresql"

    @property
    def major_version(self) -> int:
        return self.server_version_num // _MAJOR_DIVISORS[self.engine]

    @property
    def server_name(self) -> str:
        """The server as a reader names it: PostgreSQL 15, MariaDB 10, MySQL 8, SQLite 3."""
        if self.engine == "mysql":
            return ("MariaDB" if "mariadb" in self.server_version.lower() else "MySQL") + f" {self.major_version}"
        return f"{'SQLite' if self.engine == 'sqlite' else 'PostgreSQL'} {self.major_version}"

    def index_key(self, index: Index) -> tuple[str, str]:
        """What names an index: its own name, but on MySQL only within its table."""
        return (index.table if self.engine == "mysql" else "", index.name)


def catalog_from_json(data: Mapping[str, Any]) -> Catalog:
    """A catalog from the query's JSON (already validated when it came from an upload).

    Without `engine` it is PostgreSQL's (whose query writes none). A MySQL/MariaDB catalog is
    read with the spellings the two flavours differ in made one (`drift_spelling`).
    """
    engine = str(data.get("engine") or "postgresql")
    if engine == "mysql":
        data = mysql_catalog_spelled(dict(data))
    return Catalog(
        engine=engine,
        server_version=str(data["server_version"]),
        server_version_num=int(data["server_version_num"]),
        schema=str(data.get("schema") or "public"),
        tables=tuple(
            Table(
                name=t["name"],
                partitioned=bool(t.get("partitioned", False)),
                columns=tuple(Column(**c) for c in t.get("columns") or ()),
            )
            for t in data.get("tables") or ()
        ),
        indexes=tuple(Index(**i) for i in data.get("indexes") or ()),
        constraints=tuple(Constraint(**k) for k in data.get("constraints") or ()),
        sequences=tuple(Sequence(**s) for s in data.get("sequences") or ()),
        extensions=tuple(Extension(**e) for e in data.get("extensions") or ()),
    )


@dataclass(frozen=True)
class Drift:
    """One object that production has otherwise than the migrations say.

    `expected` is the migrations' side (the baseline's template), `actual` production's;
    `consequence` says what it means for changes, in words a reviewer acts on.
    """

    kind: DriftKind
    status: DriftStatus
    severity: Severity
    name: str
    table: str | None
    detail: str
    consequence: str
    expected: dict[str, Any] | None = None
    actual: dict[str, Any] | None = None


@dataclass(frozen=True)
class DriftReport:
    production_version: str
    shadow_version: str
    items: tuple[Drift, ...] = field(default_factory=tuple)

    @property
    def drifted(self) -> bool:
        return bool(self.items)

    def counts(self) -> dict[str, int]:
        return {severity.value: sum(1 for d in self.items if d.severity is severity) for severity in Severity}

    def touched(self, *, tables: Iterable[str], names: Iterable[str] = ()) -> tuple[Drift, ...]:
        """The drifted objects a change touches: any on one of `tables`, or named in `names`."""
        tables, names = set(tables), set(names)
        return tuple(d for d in self.items if (d.table or d.name) in tables or d.name in names)

    def as_dict(self) -> dict[str, Any]:
        return {
            "drifted": self.drifted,
            "production_version": self.production_version,
            "shadow_version": self.shadow_version,
            "counts": self.counts(),
            "items": [asdict(d) for d in self.items],
        }


def drift_warnings(report: DriftReport, statements: Iterable[StatementTrace]) -> tuple[DriftWarning, ...]:
    """The drifted objects the statements touch: any on a table a statement targets or works
    on, and any index, constraint or sequence a statement creates, drops or rebuilds by name.

    The dry-run ran on the schema the migrations say, so on these objects its SQL, locks and
    timings may not be what production does.
    """
    statements = list(statements)
    warnings: list[DriftWarning] = []
    for drift in report.items:
        indexes = tuple(s.index for s in statements if _touches(s, drift))
        if indexes:
            warnings.append(
                DriftWarning(
                    kind=drift.kind.value,
                    status=drift.status.value,
                    severity=drift.severity.value,
                    name=drift.name,
                    table=drift.table,
                    detail=drift.detail,
                    consequence=drift.consequence,
                    statement_indexes=indexes,
                )
            )
    return tuple(warnings)


def _touches(statement: StatementTrace, drift: Drift) -> bool:
    tables = {*statement.target_tables, *statement.work_tables}
    relations = {*statement.created_relations, *statement.dropped_relations, *statement.rebuilt_indexes}
    if drift.table is not None and drift.table in tables | relations:
        return True
    # A column's name is no relation's; an index's or a sequence's is.
    return drift.kind is not DriftKind.COLUMN and drift.name in relations


def drift_compare(*, expected: Catalog, actual: Catalog) -> DriftReport:
    """Every difference between the migrations' schema (`expected`) and production's (`actual`).

    Ordered by kind and name, so two reports of the same schemas are equal. Django's own
    history table is left out of both sides (`without_history`).
    """
    expected, actual = without_history(expected), without_history(actual)
    items: list[Drift] = []
    if expected.major_version != actual.major_version:
        items.append(_server_drift(expected, actual))
    items += _table_drift(expected, actual)
    items += _index_drift(expected, actual)
    items += _constraint_drift(expected, actual)
    items += _sequence_drift(expected, actual)
    items += _extension_drift(expected, actual)
    return DriftReport(production_version=actual.server_version, shadow_version=expected.server_version, items=tuple(items))


HISTORY_TABLE = "django_migrations"


def without_history(catalog: Catalog) -> Catalog:
    """The catalog without Django's `django_migrations` and what belongs to it: every
    production has it (migrate and the bundles' scripts write it), a template never does (it is
    built by applying the operations), and no change request touches it."""
    owned = f"{HISTORY_TABLE}."
    return dataclasses.replace(
        catalog,
        tables=tuple(t for t in catalog.tables if t.name != HISTORY_TABLE),
        indexes=tuple(i for i in catalog.indexes if i.table != HISTORY_TABLE),
        constraints=tuple(k for k in catalog.constraints if k.table != HISTORY_TABLE),
        sequences=tuple(q for q in catalog.sequences if not (q.owned_by or "").startswith(owned)),
    )


def _server_drift(expected: Catalog, actual: Catalog) -> Drift:
    return Drift(
        kind=DriftKind.SERVER,
        status=DriftStatus.DIFFERENT,
        severity=Severity.MEDIUM,
        name="server_version",
        table=None,
        detail=f"production runs {actual.server_name}, the shadow {expected.server_name}",
        consequence=_SERVER_CONSEQUENCES.get(expected.engine, _SERVER_CONSEQUENCES["postgresql"]),
        expected={"server_version": expected.server_version},
        actual={"server_version": actual.server_version},
    )


_SERVER_CONSEQUENCES = {
    "postgresql": "locks, rewrites and timings are measured on another major version: some statements "
    "(e.g. ADD COLUMN with a default, before 11) behave differently in production",
    "mysql": "algorithms, locks and timings are measured on another server: whether an ALTER runs INSTANT, "
    "INPLACE or COPY (and so blocks writes or rebuilds the table) may differ in production",
}


def _table_drift(expected: Catalog, actual: Catalog) -> list[Drift]:
    want = {t.name: t for t in expected.tables}
    have = {t.name: t for t in actual.tables}
    items: list[Drift] = []
    for name in sorted(want.keys() | have.keys()):
        if name not in have:
            items.append(
                Drift(
                    kind=DriftKind.TABLE,
                    status=DriftStatus.MISSING,
                    severity=Severity.HIGH,
                    name=name,
                    table=name,
                    detail=f"table {name} is in the migrations but not in production",
                    consequence=f"any change to {name} fails in production although the dry-run succeeds",
                )
            )
        elif name not in want:
            items.append(
                Drift(
                    kind=DriftKind.TABLE,
                    status=DriftStatus.EXTRA,
                    severity=Severity.MEDIUM,
                    name=name,
                    table=name,
                    detail=f"table {name} exists in production but not in the migrations",
                    consequence=f"a CreateModel with db_table {name} will fail (relation already exists)",
                )
            )
        else:
            items += _column_drift(want[name], have[name])
    return items


def _column_drift(want: Table, have: Table) -> list[Drift]:
    expected = {c.name: c for c in want.columns}
    actual = {c.name: c for c in have.columns}
    items: list[Drift] = []
    for name in sorted(expected.keys() | actual.keys()):
        where = f"{want.name}.{name}"
        column = actual.get(name)
        if column is None:
            items.append(
                Drift(
                    kind=DriftKind.COLUMN,
                    status=DriftStatus.MISSING,
                    severity=Severity.HIGH,
                    name=name,
                    table=want.name,
                    detail=f"column {where} is in the migrations but not in production",
                    consequence=f"queries and changes that use {where} fail in production; "
                    f"a RemoveField of it fails too (column does not exist)",
                    expected=asdict(expected[name]),
                )
            )
        elif name not in expected:
            required = not column.nullable and column.default is None and column.identity is None
            items.append(
                Drift(
                    kind=DriftKind.COLUMN,
                    status=DriftStatus.EXTRA,
                    severity=Severity.HIGH if required else Severity.MEDIUM,
                    name=name,
                    table=want.name,
                    detail=f"column {where} exists in production but not in the migrations",
                    consequence=(
                        f"an AddField named {name} will fail (column already exists)"
                        + (
                            "; it is NOT NULL without a default, so every INSERT Django makes fails in production"
                            if required
                            else ""
                        )
                    ),
                    actual=asdict(column),
                )
            )
        elif expected[name] != column:
            items.append(_column_difference(want.name, expected[name], column))
    return items


def _column_difference(table: str, want: Column, have: Column) -> Drift:
    where = f"{table}.{want.name}"
    parts: list[str] = []
    consequences: list[str] = []
    severity = Severity.LOW
    if want.type != have.type:
        parts.append(f"type {have.type} in production, {want.type} in the migrations")
        consequences.append("an AlterField of it rewrites or casts otherwise than the dry-run shows")
        severity = Severity.HIGH
    if want.nullable != have.nullable:
        if have.nullable:
            parts.append("nullable in production, NOT NULL in the migrations")
            consequences.append("production may hold NULLs the migrations rule out, so SET NOT NULL can fail there")
            severity = max(severity, Severity.MEDIUM, key=_rank)
        else:
            parts.append("NOT NULL in production, nullable in the migrations")
            consequences.append("rows Django writes with NULL in it are refused in production")
            severity = Severity.HIGH
    if want.default != have.default:
        parts.append(f"default {have.default or 'none'} in production, {want.default or 'none'} in the migrations")
        consequences.append("rows inserted without it get another value in production")
        severity = max(severity, Severity.MEDIUM, key=_rank)
    if want.collation != have.collation:
        parts.append(f"collation {have.collation} in production, {want.collation} in the migrations")
        consequences.append("ordering, comparisons and unique checks differ, and its indexes are not the same")
        severity = max(severity, Severity.MEDIUM, key=_rank)
    if want.identity != have.identity:
        parts.append(f"identity {have.identity or 'none'} in production, {want.identity or 'none'} in the migrations")
        consequences.append("inserts that give or omit its value behave otherwise in production")
        severity = max(severity, Severity.MEDIUM, key=_rank)
    return Drift(
        kind=DriftKind.COLUMN,
        status=DriftStatus.DIFFERENT,
        severity=severity,
        name=want.name,
        table=table,
        detail=f"column {where}: " + "; ".join(parts),
        consequence="; ".join(consequences),
        expected=asdict(want),
        actual=asdict(have),
    )


def _without_schema(definition: str, schema: str) -> str:
    """pg_get_indexdef names the table with its schema; production's schema need not be public."""
    return definition.replace(f" ON {schema}.", " ON ").replace(f' ON "{schema}".', " ON ")


def _index_drift(expected: Catalog, actual: Catalog) -> list[Drift]:
    want = {expected.index_key(i): i for i in expected.indexes}
    have = {actual.index_key(i): i for i in actual.indexes}
    tables = {t.name for t in actual.tables}
    items: list[Drift] = []
    for key in sorted(want.keys() | have.keys()):
        index = have.get(key)
        if index is None:
            name = want[key].name
            if want[key].table not in tables:
                continue  # its table is missing altogether: one item says so
            items.append(
                Drift(
                    kind=DriftKind.INDEX,
                    status=DriftStatus.MISSING,
                    severity=Severity.MEDIUM,
                    name=name,
                    table=want[key].table,
                    detail=f"index {name} is in the migrations but not in production",
                    consequence=f"a RemoveIndex of {name} will fail (index does not exist), and queries that "
                    "rely on it scan in production",
                    expected=asdict(want[key]),
                )
            )
            continue
        name = index.name
        known = want.get(key)
        if not index.valid:
            items.append(
                Drift(
                    kind=DriftKind.INDEX,
                    status=DriftStatus.INVALID,
                    severity=Severity.HIGH,
                    name=name,
                    table=index.table,
                    detail=f"index {name} is INVALID in production" + ("" if known else ", and not in the migrations"),
                    consequence=f"index {name} is INVALID (left by a failed or cancelled CREATE INDEX CONCURRENTLY): "
                    f"queries do not use it, writes still maintain it; drop and rebuild it "
                    f"(DROP INDEX CONCURRENTLY {_ident(name)}, then create it again)",
                    expected=asdict(known) if known else None,
                    actual=asdict(index),
                )
            )
        elif known is None:
            items.append(
                Drift(
                    kind=DriftKind.INDEX,
                    status=DriftStatus.EXTRA,
                    severity=Severity.MEDIUM,
                    name=name,
                    table=index.table,
                    detail=f"index {name} exists in production but not in the migrations",
                    consequence=f"index {name} exists in production but not in the migrations: an AddIndex of the "
                    "same name will fail, and writes to its table are slower than the dry-run measures",
                    actual=asdict(index),
                )
            )
        elif _index_shape(known, expected.schema) != _index_shape(index, actual.schema):
            items.append(
                Drift(
                    kind=DriftKind.INDEX,
                    status=DriftStatus.DIFFERENT,
                    severity=Severity.MEDIUM,
                    name=name,
                    table=index.table,
                    detail=f"index {name} is defined otherwise in production: {_without_schema(index.definition, actual.schema)}",
                    consequence="changes that drop or rebuild it, and the queries that use it, behave otherwise "
                    "in production than in the dry-run",
                    expected=asdict(known),
                    actual=asdict(index),
                )
            )
    return items


def _index_shape(index: Index, schema: str) -> tuple[Any, ...]:
    return (index.table, _without_schema(index.definition, schema), index.unique, index.primary, index.predicate)


def _constraint_drift(expected: Catalog, actual: Catalog) -> list[Drift]:
    want = {(k.table, k.name): k for k in expected.constraints}
    have = {(k.table, k.name): k for k in actual.constraints}
    tables = {t.name for t in actual.tables}
    items: list[Drift] = []
    for key in sorted(want.keys() | have.keys()):
        table, name = key
        constraint = have.get(key)
        if constraint is None:
            if table not in tables:
                continue  # its table is missing altogether: one item says so
            items.append(
                Drift(
                    kind=DriftKind.CONSTRAINT,
                    status=DriftStatus.MISSING,
                    severity=Severity.MEDIUM,
                    name=name,
                    table=table,
                    detail=f"constraint {name} on {table} is in the migrations but not in production",
                    consequence=f"production accepts rows it would refuse, and a RemoveConstraint of {name} "
                    "will fail (constraint does not exist)",
                    expected=asdict(want[key]),
                )
            )
            continue
        known = want.get(key)
        if not constraint.validated:
            items.append(
                Drift(
                    kind=DriftKind.CONSTRAINT,
                    status=DriftStatus.NOT_VALID,
                    severity=Severity.MEDIUM,
                    name=name,
                    table=table,
                    detail=f"constraint {name} on {table} is NOT VALID in production"
                    + ("" if known else ", and not in the migrations"),
                    consequence=f"constraint {name} is NOT VALID: rows that were there when it was added are not "
                    f"checked; run ALTER TABLE {_ident(table)} VALIDATE CONSTRAINT {_ident(name)} (SHARE UPDATE EXCLUSIVE, "
                    "reads and writes go on)",
                    expected=asdict(known) if known else None,
                    actual=asdict(constraint),
                )
            )
        elif known is None:
            items.append(
                Drift(
                    kind=DriftKind.CONSTRAINT,
                    status=DriftStatus.EXTRA,
                    severity=Severity.MEDIUM,
                    name=name,
                    table=table,
                    detail=f"constraint {name} on {table} exists in production but not in the migrations",
                    consequence=f"production refuses rows the dry-run accepts, and an AddConstraint named {name} "
                    "will fail (constraint already exists)",
                    actual=asdict(constraint),
                )
            )
        elif (known.type, known.definition) != (constraint.type, constraint.definition):
            items.append(
                Drift(
                    kind=DriftKind.CONSTRAINT,
                    status=DriftStatus.DIFFERENT,
                    severity=Severity.MEDIUM,
                    name=name,
                    table=table,
                    detail=f"constraint {name} on {table} is {constraint.definition} in production, "
                    f"{known.definition} in the migrations",
                    consequence="production accepts or refuses other rows than the dry-run",
                    expected=asdict(known),
                    actual=asdict(constraint),
                )
            )
    return items


def _sequence_drift(expected: Catalog, actual: Catalog) -> list[Drift]:
    want = {s.name: s for s in expected.sequences}
    have = {s.name: s for s in actual.sequences}
    tables = {t.name for t in actual.tables}
    items: list[Drift] = []
    for name in sorted(want.keys() | have.keys()):
        if name not in have:
            owner = (want[name].owned_by or "").partition(".")[0]
            if owner and owner not in tables:
                continue  # it goes with its table, which is missing altogether: one item says so
            status, detail = DriftStatus.MISSING, f"sequence {name} is in the migrations but not in production"
            consequence = "defaults and identities that draw from it fail or draw from another sequence in production"
        elif name not in want:
            status, detail = DriftStatus.EXTRA, f"sequence {name} exists in production but not in the migrations"
            consequence = "a change that creates a sequence of that name will fail"
        elif want[name] != have[name]:
            status = DriftStatus.DIFFERENT
            detail = f"sequence {name} is {have[name].type} owned by {have[name].owned_by} in production"
            consequence = "its range or owner differ: values run out or are dropped otherwise in production"
        else:
            continue
        items.append(
            Drift(
                kind=DriftKind.SEQUENCE,
                status=status,
                severity=Severity.LOW,
                name=name,
                table=None,
                detail=detail,
                consequence=consequence,
                expected=asdict(want[name]) if name in want else None,
                actual=asdict(have[name]) if name in have else None,
            )
        )
    return items


def _extension_drift(expected: Catalog, actual: Catalog) -> list[Drift]:
    want = {e.name: e for e in expected.extensions}
    have = {e.name: e for e in actual.extensions}
    items: list[Drift] = []
    for name in sorted(want.keys() | have.keys()):
        if name not in have:
            status, severity = DriftStatus.MISSING, Severity.HIGH
            detail = f"extension {name} is in the migrations but not in production"
            consequence = f"changes that use {name}'s types, operators or functions fail in production"
        elif name not in want:
            status, severity = DriftStatus.EXTRA, Severity.INFO
            detail = f"extension {name} exists in production but not in the migrations"
            consequence = f"a CreateExtension of {name} without IF NOT EXISTS would fail; otherwise harmless"
        elif want[name].version != have[name].version:
            status, severity = DriftStatus.DIFFERENT, Severity.LOW
            detail = f"extension {name} is version {have[name].version} in production, {want[name].version} on the shadow"
            consequence = "its functions and operators may behave otherwise in production"
        else:
            continue
        items.append(
            Drift(
                kind=DriftKind.EXTENSION,
                status=status,
                severity=severity,
                name=name,
                table=None,
                detail=detail,
                consequence=consequence,
                expected=asdict(want[name]) if name in want else None,
                actual=asdict(have[name]) if name in have else None,
            )
        )
    return items


def _ident(name: str) -> str:
    """A name as SQL in advice: quoted unless it is a plain lower-case identifier."""
    return name if re.fullmatch(r"[a-z_][a-z0-9_$]*", name) else '"' + name.replace('"', '""') + '"'


_RANKS = {Severity.INFO: 0, Severity.LOW: 1, Severity.MEDIUM: 2, Severity.HIGH: 3}


def _rank(severity: Severity) -> int:
    return _RANKS[severity]
