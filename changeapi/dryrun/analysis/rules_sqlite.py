"""Rules for SQLite dry-runs: SG701-SG702.

SQLite has one writer per database: from a transaction's first write to its commit every other
writer waits, whatever table it writes (for its busy timeout, then fails with "database is
locked"); readers go on in WAL mode, and in rollback-journal mode are blocked while the writer
commits (and earlier once its changes spill from the page cache). Django's table remake copies
every row of the table under that lock, so its cost is the table's size (SG701 states the
remake's estimate at production size where table stats were uploaded). A table the change
creates holds no production rows and triggers nothing here.
"""

from __future__ import annotations

from django.db.migrations import operations as ops

from changeapi.dryrun.analysis.findings import AnalysisContext, RuleFunction, finding, statement_numbers
from changeapi.dryrun.contract import Finding, SaferAlternative, TableRemake

LOCKED_NOTE = (
    "For all of that time, and until the migration commits, SQLite holds the database's one write lock: every write "
    "to any table of the database waits (for the application's busy timeout, Django's default 5 s, then fails with "
    '"database is locked"). Readers go on in WAL mode; in rollback-journal mode (SQLite\'s default) they are blocked '
    "too while it commits, and earlier once the copy outgrows the page cache."
)


def _seconds(ms: float) -> str:
    return f"{ms:,.0f} ms" if ms < 1000 else f"{ms / 1000:,.2f} s"


def _existing(ctx: AnalysisContext, remake: TableRemake) -> bool:
    """Whether the remade table existed before the change (one it created holds no rows)."""
    first = remake.statement_indexes[0]
    return not any(s.index < first and s.command == "CREATE TABLE" and remake.table in s.target_tables for s in ctx.statements)


def _production_rows(ctx: AnalysisContext, table: str) -> int | None:
    figures = ctx.profile.tables.get(table) if ctx.profile else None
    return figures.rows if figures is not None else None


def _rows(ctx: AnalysisContext, remake: TableRemake) -> int | None:
    """Production rows when uploaded, else the rows the copy moved, else the clone's rows."""
    production = _production_rows(ctx, remake.table)
    if production is not None:
        return production
    if remake.rows is not None:
        return remake.rows
    return ctx.table_rows.get(remake.table)


def _severity(rows: int | None) -> str:
    if rows is None:
        return "medium"
    return "high" if rows >= 1_000_000 else "medium" if rows >= 100_000 else "low"


def _size(ctx: AnalysisContext, remake: TableRemake) -> str:
    """What the remake took on the shadow, and what that means at production size."""
    shadow = f"{_seconds(remake.duration_ms)} on the shadow"
    if remake.rows is not None:
        shadow += f" for {remake.rows:,} rows"
    production = _production_rows(ctx, remake.table)
    if production is None:
        return f"{shadow}; production size unknown (no table stats)"
    text = f"{shadow}; {production:,} rows in production"
    estimate = remake.estimate
    if (
        estimate is not None
        and estimate.estimated_ms is not None
        and estimate.low_ms is not None
        and estimate.high_ms is not None
    ):
        text += (
            f", so about {_seconds(estimate.estimated_ms)} there ({_seconds(estimate.low_ms)} to "
            f"{_seconds(estimate.high_ms)}: the copy linear in the rows, the indexes n log n)"
        )
    elif remake.rows:
        estimated = remake.duration_ms * production / remake.rows
        text += f", so about {_seconds(estimated)} there (the copy's time grows with the rows it moves)"
    return text


def _alternative(ctx: AnalysisContext, remake: TableRemake) -> SaferAlternative:
    operation = ctx.operation(remake.migration, remake.operation_index)
    table = remake.table
    column = getattr(getattr(operation, "field", None), "column", None) or getattr(operation, "name", "new_column")
    steps: tuple[str, ...]
    if isinstance(operation, ops.AlterField):
        steps = (
            f"Expand instead of altering: add a new nullable column beside {column} (AddField with null=True and no "
            "unique, primary key or non-literal default is a plain ALTER TABLE ADD COLUMN: no remake, no rows copied).",
            "Copy the values across in batches of a few thousand rows, each in its own short transaction, so writers "
            "wait milliseconds at a time; switch the code to the new column.",
            f"Drop the old column in a later release (SQLite's DROP COLUMN rewrites {table}'s rows too: schedule it "
            "like the remake, in a quiet window).",
        )
    elif isinstance(operation, ops.AddField):
        steps = (
            "Add the column so that SQLite can ALTER TABLE ADD COLUMN it: null=True (or a literal db_default), not "
            "unique and not a primary key; Django then copies no rows.",
            "Make it unique afterwards with AddIndex/AddConstraint (CREATE UNIQUE INDEX builds an index without a "
            "remake), and backfill values in batches in short transactions.",
        )
    else:
        steps = (
            "Find a form of the change SQLite's ALTER TABLE makes in place (ADD COLUMN, RENAME COLUMN, RENAME TO, "
            "CREATE/DROP INDEX): those copy no rows.",
        )
    return SaferAlternative(
        summary=f"Avoid remaking {table}, or remake it where a write pause of this length is acceptable.",
        steps=(
            *steps,
            "If the remake is needed: run it in a maintenance window with the application's writers stopped, or with its "
            "busy timeout (OPTIONS['timeout'] in Django's DATABASES) above the remake's time at production size.",
            "Keep each remake in a migration of its own, so the write lock is released between them.",
        ),
    )


def table_remake(ctx: AnalysisContext) -> list[Finding]:
    """SG701: Django remade an existing table, copying its rows under the database's write lock."""
    findings = []
    for remake in ctx.remakes:
        if not _existing(ctx, remake):
            continue
        rows = _rows(ctx, remake)
        findings.append(
            finding(
                "SG701",
                severity=_severity(rows),
                message=(
                    f"{statement_numbers(remake.statement_indexes).capitalize()} remake {remake.table} (Django's new__ "
                    f"table, a copy of every row, drop, rename, indexes again): {_size(ctx, remake)}. {LOCKED_NOTE}"
                ),
                safer_alternative=_alternative(ctx, remake),
                migration=remake.migration,
                operation_index=remake.operation_index,
                statement_index=remake.statement_indexes[0],
                table=remake.table,
            )
        )
    return findings


def long_write_transaction(ctx: AnalysisContext) -> list[Finding]:
    """SG702: one transaction holds the write lock through more than one remake of existing tables."""
    by_transaction: dict[int, list[TableRemake]] = {}
    for remake in ctx.remakes:
        statement = ctx.statements[remake.statement_indexes[0]]
        if statement.transaction is not None and _existing(ctx, remake):
            by_transaction.setdefault(statement.transaction, []).append(remake)
    findings = []
    for remakes in by_transaction.values():
        if len(remakes) < 2:
            continue
        first = remakes[0]
        total = sum(r.duration_ms for r in remakes)
        tables = ", ".join(dict.fromkeys(r.table for r in remakes))
        largest = max((_rows(ctx, r) or 0 for r in remakes), default=0)
        findings.append(
            finding(
                "SG702",
                severity="medium" if largest >= 100_000 else "low",
                message=(
                    f"Migration {first.migration} remakes {len(remakes)} tables ({tables}) in one transaction: the "
                    f"database's write lock is held through all of them, {_seconds(total)} of copying on the shadow "
                    "before any writer can go on."
                ),
                safer_alternative=SaferAlternative(
                    summary="Split the migration so each remake commits on its own and writers go on in between.",
                    steps=(
                        "Move each operation that remakes a table into a migration of its own (makemigrations, then "
                        "split the file), each depending on the previous one.",
                        "Deploy them one at a time, or with a pause between them, so queued writes drain.",
                    ),
                ),
                migration=first.migration,
                statement_index=first.statement_indexes[0],
                table=first.table,
            )
        )
    return findings


RULES: list[RuleFunction] = [table_remake, long_write_transaction]
