"""Class each MySQL/MariaDB statement by the work the server said it does, and scale its time
on the clone to production size.

The class comes from the server's own answer for the statement (`online_ddl`): INSTANT, and
NOCOPY other than an index build, change only the data dictionary (constant); a COPY, or any
statement after which the table has a new InnoDB table id, rewrites every row (linear in rows
and bytes); an index added in place sorts its keys (n log n); in place without a rebuild reads
the rows (linear); UPDATE, DELETE and INSERT of an existing table change its rows (linear).
Work on a table the change created holds no production rows and is catalog-only.

These servers are not calibrated at template build as PostgreSQL's are: each statement is
fitted from its own two timings, on the one-row copy the server was asked on (its fixed cost
`c`) and on the clone's `n` rows, with the class's law between them and no deviation:

    t_prod = c + (t_clone - c) * L(n_prod) / L(n_clone) * (1 - b + b * w_prod / w_clone)

The range is PostgreSQL's, with the documented defaults in place of fitted figures: the
residual an unfitted law is allowed per e-fold of rows, and the default noise.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Sequence

from changeapi.dryrun.analysis.classify import BACKFILL, CATALOG_ONLY, INDEX_BUILD, REWRITE, SCAN, Classification
from changeapi.dryrun.analysis.clone_estimate import analysed_statement, clone_model_summary, estimate_from_clone
from changeapi.dryrun.analysis.estimate import BYTES_SHARE, JITTER_MS, RANGE_FLOOR, UNFITTED_RESIDUAL
from changeapi.dryrun.calibration import DEFAULT_NOISE
from changeapi.dryrun.contract import Estimate, EstimationModel, StatementTrace
from changeapi.dryrun.mysql_dml import rows_changed_table
from changeapi.dryrun.mysql_tables import MySqlTableFacts
from changeapi.dryrun.profile import ProductionProfile

_IDENTIFIER = r"`((?:[^`]|``)+)`"
_CREATE_TABLE = re.compile(rf"^\s*CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?{_IDENTIFIER}", re.IGNORECASE)
_ADDS_INDEX = re.compile(
    r"^\s*CREATE\s+(?:UNIQUE\s+|FULLTEXT\s+|SPATIAL\s+)?INDEX\b"
    r"|\bADD\s+(?:CONSTRAINT\s+`(?:[^`]|``)+`\s+)?(?:UNIQUE|PRIMARY\s+KEY|INDEX|KEY|FULLTEXT|SPATIAL)\b",
    re.IGNORECASE,
)

MODEL_DESCRIPTION = (
    "t_prod = c + (t_clone - c) * L(rows_prod) / L(rows_clone) * (1 - b + b * bytes_per_row_prod / bytes_per_row_clone), "
    "per statement, over the table it works on, by the work the server said it does: INSTANT, and NOCOPY other than an "
    "index build, are catalog-only (constant); COPY or a new InnoDB table id (a rebuild) is linear in rows, as are "
    "in-place work without a rebuild and UPDATE/DELETE/INSERT of existing rows; an index built in place is n log2 n. "
    "Not calibrated on this server: each statement is fitted from its own two timings, c on the one-row copy the "
    "server was asked on (ALGORITHM= as accepted) and t_clone on the clone's rows, with the law between them and no "
    f"deviation from it; b = {BYTES_SHARE} is the share of per-row time that follows bytes (the clone's bytes from "
    "ANALYZE TABLE after the run, production's from the uploaded total_bytes). Range: the estimate divided and "
    f"multiplied by one factor combining a floor (x{RANGE_FLOOR}), the default noise ({DEFAULT_NOISE:.0%}), an "
    f"unfitted law's doubt ({UNFITTED_RESIDUAL} per e-fold of rows extrapolated) and the bytes share's doubt, plus "
    f"a jitter of {JITTER_MS:g} ms."
)


def _unquote(name: str) -> str:
    return name.replace("``", "`")


def worked_tables(statements: Iterable[StatementTrace]) -> set[str]:
    """The tables whose rows and bytes the estimates need: those of DDL the server was asked
    about, and those whose rows a statement changed."""
    tables = set()
    for statement in statements:
        if statement.online_ddl is not None:
            tables.add(statement.online_ddl.table)
        changed = rows_changed_table(statement.sql)
        if changed is not None:
            tables.add(changed)
    return tables


def classify_mysql_statement(statement: StatementTrace, created: set[str]) -> Classification:
    """The class of work of one statement, from what the server said of it; `created` are the
    tables the change made before it."""
    ddl = statement.online_ddl
    changed = rows_changed_table(statement.sql)
    table = ddl.table if ddl is not None else changed
    if table is None:
        return Classification(CATALOG_ONLY, (), "no table's rows are read or written")
    if table in created:
        return Classification(CATALOG_ONLY, (), f"{table} was created by the change: no production rows")
    if ddl is None:
        return Classification(BACKFILL, (table,), f"{statement.command} of existing rows")
    algorithm = f"ALGORITHM={ddl.algorithm}" if ddl.algorithm else "the server's algorithm unknown"
    if ddl.rebuilt or ddl.algorithm == "COPY":
        copied = f", {ddl.rows_copied:,} rows copied" if ddl.rows_copied else ""
        return Classification(REWRITE, (table,), f"{algorithm}, new InnoDB table id{copied}")
    if _ADDS_INDEX.search(statement.sql):
        return Classification(INDEX_BUILD, (table,), f"index built in place ({algorithm})")
    if ddl.algorithm in ("INSTANT", "NOCOPY"):
        return Classification(CATALOG_ONLY, (), f"{algorithm}: the data dictionary only")
    if ddl.algorithm == "INPLACE":
        return Classification(SCAN, (table,), "ALGORITHM=INPLACE without a rebuild: the rows are read")
    return Classification(CATALOG_ONLY, (), f"not rebuilt (the InnoDB table id stayed); {ddl.probe_error or algorithm}")


def estimate_mysql_statement(
    statement: StatementTrace,
    classification: Classification,
    *,
    profile: ProductionProfile | None,
    clone: MySqlTableFacts,
) -> Estimate:
    """Measured time on the clone and the estimate at production size, with its basis; the
    one-row copy's time the server was asked on is the fixed cost that does not grow."""
    probe_ms = statement.online_ddl.probe_ms if statement.online_ddl is not None else None
    return estimate_from_clone(
        float(statement.duration_ms or 0.0),
        classification,
        profile=profile,
        clone_rows=clone.rows,
        clone_bytes=clone.total_bytes,
        fixed_ms=probe_ms or 0.0,
        fixed_source="a one-row copy",
    )


def analyse_mysql_statements(
    statements: Sequence[StatementTrace], *, profile: ProductionProfile | None, clone: MySqlTableFacts
) -> tuple[StatementTrace, ...]:
    """Each statement with its work class, the tables it works on, the evidence, its estimate
    and the tables it created."""
    created: set[str] = set()
    analysed = []
    for statement in statements:
        classification = classify_mysql_statement(statement, created)
        match = _CREATE_TABLE.match(statement.sql)
        made = (_unquote(match.group(1)),) if match and statement.error is None else ()
        estimate = estimate_mysql_statement(statement, classification, profile=profile, clone=clone)
        analysed.append(
            dataclasses.replace(
                analysed_statement(statement, classification, estimate),
                # The tables it made, which no other session has rows in or waits on (lock spans).
                created_relations=statement.created_relations or made,
            )
        )
        created.update(made)
    return tuple(analysed)


def mysql_model_summary(clone: MySqlTableFacts, *, estimated: bool) -> EstimationModel:
    """The model as the report states it, with the clone's rows and bytes it scaled from."""
    return clone_model_summary(MODEL_DESCRIPTION, clone_rows=clone.rows, clone_bytes=clone.total_bytes, estimated=estimated)
