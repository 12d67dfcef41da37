"""Class each statement of Django's SQLite schema editor by the work it does, and scale its time
on the clone to production size.

The class comes from the statement's form: the copy of a remake (`INSERT INTO "new__t" SELECT
… FROM "t"`) and `ALTER TABLE … DROP COLUMN` (SQLite rewrites every row) are rewrites of the
existing table, linear in its rows and bytes; `CREATE [UNIQUE] INDEX` on an existing table sorts
its keys (n log n); an `UPDATE` or `DELETE` of an existing table (a backfill, RunSQL) is linear.
Everything else changes the schema only and is constant: `CREATE TABLE`, `ALTER TABLE … RENAME`,
`ADD COLUMN`, the remake's `DROP TABLE`, and any work on a table the change itself created,
which holds no production rows.

SQLite is not calibrated at template build: each statement is scaled from its own time on the
clone (`clone_estimate.estimate_from_clone`, with no fixed cost), and a remake's time at
production size is the sum of its statements'.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence

from changeapi.dryrun.analysis.classify import BACKFILL, CATALOG_ONLY, INDEX_BUILD, REWRITE, Classification
from changeapi.dryrun.analysis.clone_estimate import analysed_statement, clone_model_summary, estimate_from_clone
from changeapi.dryrun.analysis.estimate import BYTES_SHARE, JITTER_MS, RANGE_FLOOR, UNFITTED_RESIDUAL, unscaled_estimate
from changeapi.dryrun.calibration import DEFAULT_NOISE
from changeapi.dryrun.contract import Estimate, EstimationModel, StatementTrace, TableRemake
from changeapi.dryrun.profile import ProductionProfile
from changeapi.dryrun.sqlite_tables import SqliteTableFacts
from changeapi.dryrun.sqlite_trace import REMAKE_PREFIX

_RENAME_TO = re.compile(r"\bRENAME\s+TO\b", re.IGNORECASE)
# RunSQL is written by hand: its table may be quoted any way SQLite accepts, or bare.
_ROWS_CHANGED = re.compile(
    r'^\s*(?:UPDATE(?:\s+OR\s+[A-Za-z]+)?|DELETE\s+FROM)\s+(?:"((?:[^"]|"")+)"|`((?:[^`]|``)+)`|\[([^\]]+)\]|([A-Za-z_]\w*))',
    re.IGNORECASE,
)
_DROP_COLUMN = re.compile(r"\bDROP\s+(?:COLUMN\s+)?\"", re.IGNORECASE)

MODEL_DESCRIPTION = (
    "t_prod = t_clone * L(rows_prod) / L(rows_clone) * (1 - b + b * bytes_per_row_prod / bytes_per_row_clone), per "
    "statement, over the table it works on, by the statement's form: a remake's copy (INSERT INTO new__t SELECT ... "
    "FROM t) and ALTER TABLE ... DROP COLUMN rewrite every row (linear in rows), as UPDATE and DELETE of existing rows "
    "are; CREATE INDEX on an existing table is n log2 n; CREATE TABLE, RENAME, ADD COLUMN, the remake's DROP TABLE and "
    "work on tables the change created are constant. A remake at production size is the sum of its statements. Not "
    "calibrated on SQLite: each statement is scaled from its own time on the clone's rows by the law alone, with no "
    f"fixed cost and no deviation; b = {BYTES_SHARE} is the share of per-row time that follows bytes (the clone's "
    "bytes from dbstat before the change ran, else its used pages shared by record length; production's from the "
    f"uploaded total_bytes). Range: the estimate divided and multiplied by one factor combining a floor (x{RANGE_FLOOR}), "
    f"the default noise ({DEFAULT_NOISE:.0%}), an unfitted law's doubt ({UNFITTED_RESIDUAL} per e-fold of rows "
    f"extrapolated) and the bytes share's doubt, plus a jitter of {JITTER_MS:g} ms."
)


def classify_sqlite_statement(statement: StatementTrace, created: set[str]) -> Classification:
    """The class of work of one statement, from its form; `created` are the tables the change
    made before it (a remake's new__ table among them)."""
    command = statement.command
    tables = statement.target_tables
    if command == "INSERT" and len(tables) == 2 and tables[0].startswith(REMAKE_PREFIX):
        return _on_existing(REWRITE, tables[1], created, f"Django's remake: every row of {tables[1]} copied into {tables[0]}")
    if command == "CREATE INDEX" and tables:
        return _on_existing(INDEX_BUILD, tables[0], created, f"CREATE INDEX sorts the keys of {tables[0]}'s rows")
    changed = rows_changed_table(statement.sql)
    if changed is not None:
        return _on_existing(BACKFILL, changed, created, f"{command} of {changed}'s existing rows")
    if command == "ALTER TABLE" and tables and not _RENAME_TO.search(statement.sql) and _DROP_COLUMN.search(statement.sql):
        return _on_existing(REWRITE, tables[0], created, f"DROP COLUMN rewrites every row of {tables[0]}")
    return Classification(CATALOG_ONLY, (), f"{command or 'the statement'} changes the schema only")


def rows_changed_table(sql: str) -> str | None:
    """The table an UPDATE or DELETE changes the rows of, however it is quoted; None for other statements."""
    match = _ROWS_CHANGED.match(sql)
    if match is None:
        return None
    double, back, bracket, bare = match.groups()
    return double.replace('""', '"') if double else back.replace("``", "`") if back else bracket or bare


def _on_existing(work_class: str, table: str, created: set[str], evidence: str) -> Classification:
    if table in created:
        return Classification(CATALOG_ONLY, (), f"{table} was created by the change: no production rows")
    return Classification(work_class, (table,), evidence)


def _created_by(statement: StatementTrace, created: set[str]) -> set[str]:
    """The tables the statement made: a CREATE TABLE's, or a rename's new name when the table
    renamed was one the change created (a remake's rename gives back a table that existed)."""
    tables = statement.target_tables
    if statement.error is not None or not tables:
        return set()
    if statement.command == "CREATE TABLE":
        return {tables[0]}
    if statement.command == "ALTER TABLE" and len(tables) == 2 and _RENAME_TO.search(statement.sql):
        old, new = tables
        if old in created and old != REMAKE_PREFIX + new:
            return {new}
    return set()


def analyse_sqlite_statements(
    statements: Sequence[StatementTrace], *, profile: ProductionProfile | None, clone: SqliteTableFacts
) -> tuple[StatementTrace, ...]:
    """Each statement with its work class, the table it works on, the evidence and its estimate
    at the profile's size from the clone's rows and bytes (measured before the change ran)."""
    created: set[str] = set()
    analysed = []
    for statement in statements:
        classification = classify_sqlite_statement(statement, created)
        estimate = estimate_from_clone(
            float(statement.duration_ms or 0.0),
            classification,
            profile=profile,
            clone_rows=clone.rows,
            clone_bytes=clone.total_bytes,
        )
        made = _created_by(statement, created)
        # The tables it made, which no running code knows (the compatibility rules skip them).
        analysed.append(
            dataclasses.replace(
                analysed_statement(statement, classification, estimate),
                created_relations=statement.created_relations or tuple(sorted(made)),
            )
        )
        created |= made
    return tuple(analysed)


def remakes_at_scale(remakes: Sequence[TableRemake], statements: Sequence[StatementTrace]) -> tuple[TableRemake, ...]:
    """Each remake with its estimate at production size: the sum of its statements' estimates
    and of their ranges (each bound summed: the copy's doubt and the indexes' are not
    independent, both follow the same rows). Not estimated when one of its statements is not."""
    return tuple(dataclasses.replace(r, estimate=_remake_estimate(r, statements)) for r in remakes)


def _remake_estimate(remake: TableRemake, statements: Sequence[StatementTrace]) -> Estimate:
    steps = [statements[i].estimate for i in remake.statement_indexes]
    estimates = [e for e in steps if e is not None]
    unscaled = next((e for e in estimates if e.estimated_ms is None), None)
    if unscaled is not None or len(estimates) < len(steps):
        basis = unscaled.basis if unscaled is not None else "not estimated: a statement has no estimate"
        return unscaled_estimate(remake.duration_ms, basis, REWRITE, JITTER_MS, DEFAULT_NOISE)
    copy = next((e for e in estimates if e.work_class == REWRITE), None)
    return Estimate(
        work_class=REWRITE,
        measured_ms=remake.duration_ms,
        estimated_ms=round(sum(e.estimated_ms or 0.0 for e in estimates), 3),
        low_ms=round(sum(e.low_ms or 0.0 for e in estimates), 3),
        high_ms=round(sum(e.high_ms or 0.0 for e in estimates), 3),
        scale=copy.scale if copy else None,
        exponent=None,
        basis=(
            f"the sum of its {len(estimates)} statements' estimates: the copy {copy.law if copy else 'not scaled'}, "
            "its indexes n log n, the rest constant"
        ),
        rows_scale=copy.rows_scale if copy else None,
        width_scale=copy.width_scale if copy else None,
    )


def sqlite_model_summary(clone: SqliteTableFacts, *, estimated: bool) -> EstimationModel:
    """The model as the report states it (not calibrated), with the clone's rows and bytes."""
    return clone_model_summary(MODEL_DESCRIPTION, clone_rows=clone.rows, clone_bytes=clone.total_bytes, estimated=estimated)
