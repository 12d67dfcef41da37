"""Rules for MySQL/MariaDB dry-runs: SG601-SG605.

They read what the server itself said of each statement (`online_ddl`: the algorithm and lock
it accepted, what it refused, whether it rebuilt the table and how many rows it copied) and
that DDL commits on its own there, with the clone's rows and foreign keys per table. Work on a
table the change creates is invisible to others until it exists, holds no rows, and triggers
nothing here.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from django.db import models
from django.db.migrations import operations as ops

from changeapi.dryrun.analysis.findings import AnalysisContext, RuleFunction, finding, migration_example, statement_numbers
from changeapi.dryrun.contract import Finding, OnlineDdl, SaferAlternative, StatementTrace

LOCK_WAIT_TIMEOUT_DEFAULT_SECONDS = 31_536_000
"""The server's default `lock_wait_timeout`: a year."""
RECOMMENDED_LOCK_WAIT_TIMEOUT_SECONDS = 5
MARIADB_INSTANT_FIELD_LIMIT = 1017
"""MariaDB (MDEV-15562): the clustered index holds at most 1017 user fields, and every column
added or dropped instantly stays one of them (a dropped one as a dummy field) until a rebuild.
On MariaDB 10.11 a table of two columns took 1,015 instant ADD/DROP COLUMN pairs, then refused
the next with 1845; `ALTER TABLE ... FORCE` made it instant again."""
MYSQL_ROW_VERSION_LIMIT = 64
"""MySQL 8.0.29+: 64 row versions per table (INNODB_TABLES.TOTAL_ROW_VERSIONS); 255 from 9.1."""
UTF8MB4_ONE_LENGTH_BYTE_CHARS = 63
"""A utf8mb4 varchar of at most 255 bytes (63 characters of 4 bytes) stores lengths in one byte."""

_IDENTIFIER = r"`((?:[^`]|``)+)`"
_CREATE_TABLE = re.compile(rf"^\s*CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?{_IDENTIFIER}", re.IGNORECASE)
_DROP_TABLE = re.compile(rf"^\s*DROP\s+TABLE\s+(?:IF\s+EXISTS\s+)?{_IDENTIFIER}", re.IGNORECASE)
_ADD_FOREIGN_KEY = re.compile(
    rf"ADD\s+(?:CONSTRAINT\s+{_IDENTIFIER}\s+)?FOREIGN\s+KEY\s*\([^)]*\)\s*REFERENCES\s+{_IDENTIFIER}", re.IGNORECASE
)
_ALTER_CLAUSES = re.compile(rf"^\s*ALTER\s+TABLE\s+{_IDENTIFIER}\s+(?P<clauses>.*)$", re.IGNORECASE | re.DOTALL)
_INSTANT_COLUMN = re.compile(r"\b(?:ADD|DROP)\s+COLUMN\b", re.IGNORECASE)
_DEFAULT_ONLY = re.compile(r"^\s*ALTER\s+TABLE\s+\S+\s+ALTER\s+COLUMN\s+\S+\s+(?:DROP|SET)\s+DEFAULT\b", re.IGNORECASE)


def _unquote(name: str) -> str:
    return name.replace("``", "`")


def _first_line(sql: str) -> str:
    line = " ".join(sql.split())
    return line if len(line) <= 120 else line[:117] + "..."


def _created_before(ctx: AnalysisContext, table: str, index: int) -> bool:
    """Whether a CREATE TABLE of the change up to statement `index` made `table`."""
    for s in ctx.statements:
        if s.index > index:
            break
        match = _CREATE_TABLE.match(s.sql)
        if match and _unquote(match.group(1)) == table:
            return True
    return False


def _existing_ddl(ctx: AnalysisContext) -> Iterator[tuple[StatementTrace, OnlineDdl]]:
    """Statements the server was asked about that ran on a table the change did not create."""
    for s in ctx.statements:
        if s.online_ddl is None or s.error is not None or _created_before(ctx, s.online_ddl.table, s.index):
            continue
        yield s, s.online_ddl


def _rows(ctx: AnalysisContext, table: str, ddl: OnlineDdl | None = None) -> int | None:
    """Production rows when uploaded, else the clone's (seeded) rows, else the rows the copy passed."""
    figures = ctx.profile.tables.get(table) if ctx.profile else None
    if figures is not None:
        return figures.rows
    if table in ctx.table_rows:
        return ctx.table_rows[table]
    return ddl.rows_copied if ddl is not None and ddl.rows_copied else None


def _severity(rows: int | None) -> str:
    if rows is None:
        return "medium"
    return "high" if rows >= 1_000_000 else "medium" if rows >= 100_000 else "low"


def _size(ctx: AnalysisContext, table: str, rows: int | None) -> str:
    if ctx.profile is not None and table in ctx.profile.tables:
        return f"{rows:,} rows in production"
    if rows is None:
        return "size unknown"
    return f"{rows:,} rows on the seeded shadow, production size unknown (no table stats)"


def _alter_clauses(sql: str) -> str | None:
    match = _ALTER_CLAUSES.match(sql.strip().rstrip(";"))
    return match.group("clauses") if match else None


def _tool_steps(ctx: AnalysisContext, table: str) -> tuple[str, ...]:
    keys = ctx.foreign_keys.get(table, ())
    having = f" {table} has: {', '.join(keys)}." if keys else f" {table} has none today."
    return (
        "Or run the change with an online schema change tool (gh-ost, pt-online-schema-change): it copies the table in "
        "small chunks while writes go on, and swaps it in with a brief rename; record it in Django with "
        "SeparateDatabaseAndState (state only).",
        "Such tools refuse tables with foreign keys: gh-ost supports none on the table or pointing to it, "
        "pt-online-schema-change needs --alter-foreign-keys-method for the tables referencing it. Django creates a "
        f"foreign key for every ForeignKey (db_constraint=True by default).{having}",
    )


def _tool_example(table: str, sql: str) -> str:
    clauses = _alter_clauses(sql)
    if clauses is None:
        return ""
    alter = clauses.replace('"', '\\"')
    return (
        f'pt-online-schema-change --alter "{alter}" D=<database>,t={table} --execute\n'
        f'gh-ost --database=<database> --table={table} --alter="{alter}" --execute'
    )


def _compatible_form(ctx: AnalysisContext, s: StatementTrace) -> tuple[str, tuple[str, ...], str] | None:
    """An INSTANT/INPLACE-compatible form of the statement's operation, when there is one."""
    op: Any = ctx.operation(s.migration, s.operation_index)
    field = getattr(op, "field", None)
    if isinstance(op, ops.AlterField) and isinstance(field, models.CharField) and field.max_length:
        keep = min(field.max_length, UTF8MB4_ONE_LENGTH_BYTE_CHARS)
        _name, _path, args, kwargs = field.deconstruct()
        rewritten = type(field)(*args, **{**kwargs, "max_length": keep})
        return (
            "Keep the varchar in its length-byte class: widening within it is INSTANT, crossing it or narrowing copies.",
            (
                f"With utf8mb4 (4 bytes a character) a varchar of up to {UTF8MB4_ONE_LENGTH_BYTE_CHARS} characters "
                "(255 bytes) stores every length in one byte; a wider one takes two for values past 127 bytes. Widening "
                "is INSTANT while it stays within 255 bytes, from above 255 bytes, or from at most 127 bytes (31 "
                "characters); otherwise rows change format and the table is copied.",
                "Narrowing is always a copy (every row is checked): keep the width and limit the length in the "
                "application (a MaxLengthValidator) instead.",
            ),
            migration_example([ops.AlterField(model_name=op.model_name, name=op.name, field=rewritten)])
            if field.max_length > keep
            else "",
        )
    if isinstance(op, ops.AddField) and field is not None and not field.null:
        rewritten = field.clone()
        rewritten.null = True
        return (
            "Add the column nullable: an added NULL column is INSTANT.",
            (
                "Add the field with null=True (example below); fill it in batches from a command, not the migration.",
                "Make it NOT NULL later, when the table is small enough or with an online schema change tool.",
            ),
            migration_example([ops.AddField(model_name=op.model_name, name=op.name, field=rewritten)]),
        )
    return None


def blocking_alter(ctx: AnalysisContext) -> list[Finding]:
    """SG601: a COPY rebuild, or an ALTER that holds LOCK=SHARED/EXCLUSIVE, on a table with rows."""
    findings = []
    for s, ddl in _existing_ddl(ctx):
        if not (ddl.algorithm == "COPY" or ddl.blocks_writes) or _ADD_FOREIGN_KEY.search(s.sql):
            continue
        rows = _rows(ctx, ddl.table, ddl)
        if rows == 0:
            continue
        how = "copies the table row by row" if ddl.algorithm == "COPY" else f"runs {ddl.algorithm or 'with no algorithm'}"
        blocked = "reads and writes" if ddl.blocks_reads else "writes"
        refused = [r for r in ddl.refusals if r.clause == "LOCK=NONE"]
        why = f"; LOCK=NONE was refused: {refused[0].message}" if refused else ""
        copied = f", {ddl.rows_copied:,} rows copied on the shadow" if ddl.rows_copied else ""
        compatible = _compatible_form(ctx, s)
        steps = _tool_steps(ctx, ddl.table)
        if compatible is not None:
            summary, own, example = compatible
            steps = own + steps
        else:
            summary = "No INSTANT or in-place form exists for this change: use an online schema change tool."
            example = _tool_example(ddl.table, s.sql)
        findings.append(
            finding(
                "SG601",
                severity=_severity(rows),
                message=f"`{_first_line(s.sql)}` {how} with LOCK={ddl.lock}: {blocked} to {ddl.table} wait for the whole "
                f"statement ({_size(ctx, ddl.table, rows)}{copied}){why}.",
                safer_alternative=SaferAlternative(summary=summary, steps=steps, example=example),
                migration=s.migration,
                operation_index=s.operation_index,
                statement_index=s.index,
                table=ddl.table,
            )
        )
    return findings


def _undo(sql: str) -> str:
    """The statement that undoes `sql`, when its form says; else a note to undo it by hand."""
    text = " ".join(sql.strip().rstrip(";").split())
    if match := _CREATE_TABLE.match(text):
        return f"DROP TABLE `{match.group(1)}`;"
    if match := re.match(rf"^CREATE\s+(?:UNIQUE\s+)?INDEX\s+{_IDENTIFIER}\s+ON\s+{_IDENTIFIER}", text, re.IGNORECASE):
        return f"DROP INDEX `{match.group(1)}` ON `{match.group(2)}`;"
    match = _ALTER_CLAUSES.match(text)
    if match:
        table, clauses = match.group(1), match.group("clauses")
        if column := re.match(rf"^ADD\s+COLUMN\s+{_IDENTIFIER}", clauses, re.IGNORECASE):
            return f"ALTER TABLE `{table}` DROP COLUMN `{column.group(1)}`;"
        if rename := re.match(rf"^RENAME\s+COLUMN\s+{_IDENTIFIER}\s+TO\s+{_IDENTIFIER}", clauses, re.IGNORECASE):
            return f"ALTER TABLE `{table}` RENAME COLUMN `{rename.group(2)}` TO `{rename.group(1)}`;"
        if key := re.match(rf"^ADD\s+CONSTRAINT\s+{_IDENTIFIER}\s+FOREIGN\s+KEY", clauses, re.IGNORECASE):
            return f"ALTER TABLE `{table}` DROP FOREIGN KEY `{key.group(1)}`;"
        if unique := re.match(rf"^ADD\s+CONSTRAINT\s+{_IDENTIFIER}\s+UNIQUE", clauses, re.IGNORECASE):
            return f"ALTER TABLE `{table}` DROP INDEX `{unique.group(1)}`;"
        if check := re.match(rf"^ADD\s+CONSTRAINT\s+{_IDENTIFIER}\s+CHECK", clauses, re.IGNORECASE):
            return f"ALTER TABLE `{table}` DROP CONSTRAINT `{check.group(1)}`;"
    return f"-- undo by hand (the definition before it is in the baseline): {_first_line(text)}"


def _on_new_table(ctx: AnalysisContext, s: StatementTrace) -> bool:
    """Whether the statement creates a table, or works on one the change created before it."""
    if _CREATE_TABLE.match(s.sql):
        return True
    table = s.online_ddl.table if s.online_ddl is not None else None
    if table is None and (match := _DROP_TABLE.match(s.sql)):
        table = _unquote(match.group(1))
    return table is not None and _created_before(ctx, table, s.index - 1)


def non_transactional_ddl(ctx: AnalysisContext) -> list[Finding]:
    """SG602: a migration whose later statement can fail after earlier DDL committed on its own.

    A migration that only creates tables and works on them is left out, as work on new tables
    is everywhere in the catalog: dropping them undoes it.
    """
    findings = []
    by_migration: dict[str, list[StatementTrace]] = {}
    for s in ctx.statements:
        by_migration.setdefault(s.migration, []).append(s)
    for migration, statements in by_migration.items():
        failed = next((s for s in statements if s.error is not None), None)
        committed = []
        for position, s in enumerate(statements):
            if s is failed:
                break
            later = statements[position + 1 :]
            if s.commits_on_its_own and s.error is None and any(not _DEFAULT_ONLY.match(t.sql) for t in later):
                committed.append(s)
        if not committed or all(_on_new_table(ctx, s) for s in statements):
            continue
        indexes = [s.index for s in committed]
        undo = "\n".join(_undo(s.sql) for s in reversed(committed))
        happened = (
            f"It did on the shadow: {statement_numbers([failed.index])} failed, and {statement_numbers(indexes)} stayed applied."
            if failed is not None
            else f"If a later statement fails (a lock wait timeout, duplicate or invalid data), {statement_numbers(indexes)} "
            "stay applied."
        )
        findings.append(
            finding(
                "SG602",
                severity="high" if failed is not None else "medium",
                message=f"MySQL/MariaDB DDL commits on its own: {migration} runs {len(statements)} statements with no "
                f"transaction around them, and Django records the migration only once all succeed. {happened} "
                "`migrate` then fails on the partial schema until it is undone by hand.",
                safer_alternative=SaferAlternative(
                    summary="One schema operation per migration, so a failure leaves nothing half done; the recovery below.",
                    steps=(
                        "Split the migration: Django records each migration once its statements ran, so with one DDL "
                        "statement per migration a failure leaves the schema as the last recorded migration made it.",
                        f"To recover from a failure half-way: undo {statement_numbers(indexes)} with the statements below, "
                        "last first, fix the cause, and run `migrate` again.",
                        "Or apply the remaining statements by hand (`sqlmigrate`) and record the migration with "
                        "`migrate --fake <app> <migration>`.",
                    ),
                    example=undo,
                ),
                migration=migration,
                operation_index=committed[0].operation_index,
                statement_index=committed[0].index,
            )
        )
    return findings


def lock_wait_timeout(ctx: AnalysisContext) -> list[Finding]:
    """SG603: the change's DDL on existing tables waits up to lock_wait_timeout for a metadata lock."""
    touched: list[tuple[StatementTrace, str]] = []
    for s in ctx.statements:
        table = s.online_ddl.table if s.online_ddl is not None else None
        if table is None and (match := _DROP_TABLE.match(s.sql)):
            table = _unquote(match.group(1))
        if table is not None and s.commits_on_its_own and not _created_before(ctx, table, s.index - 1):
            touched.append((s, table))
    if not touched:
        return []
    first, table = touched[0]
    tables = list(dict.fromkeys(t for _, t in touched))
    figures = [ctx.profile.tables[t] for t in tables if ctx.profile and t in ctx.profile.tables]
    queued = [(f.queries_per_second or 0.0) * (f.oldest_transaction_seconds or 0.0) for f in figures if f.has_activity]
    traffic = ""
    severity = "medium"
    if queued:
        traffic = f" With the uploaded traffic, about {max(queued):,.0f} queries queue behind it while it waits for the oldest transaction."
        severity = "high" if max(queued) >= 1000 else "medium" if max(queued) >= 100 else "low"
    timeout = RECOMMENDED_LOCK_WAIT_TIMEOUT_SECONDS
    return [
        finding(
            "SG603",
            severity=severity,
            message=f"Every ALTER, even an INSTANT one, takes an exclusive metadata lock on its table ({', '.join(tables)}), "
            "and waits for it behind every transaction that has touched the table and is still open; meanwhile every "
            f"later query on the table queues behind the waiting ALTER. lock_wait_timeout defaults to "
            f"{LOCK_WAIT_TIMEOUT_DEFAULT_SECONDS:,} s (a year), so one long transaction stalls the table for as long as "
            f"it lasts.{traffic}",
            safer_alternative=SaferAlternative(
                summary=f"Set lock_wait_timeout = {timeout} in the session that migrates, and retry on timeout.",
                steps=(
                    f"Start each migration with SET SESSION lock_wait_timeout = {timeout} (release bundles for this engine "
                    "must set it before their first statement; with `migrate`, a RunSQL first, or the connection's "
                    "OPTIONS init_command).",
                    "On error 1205 (Lock wait timeout exceeded), retry with backoff: nothing was changed.",
                    "Deploy when no long transactions run (reports, open idle sessions): the ALTER waits for the oldest.",
                ),
                example=f'migrations.RunSQL("SET SESSION lock_wait_timeout = {timeout}", migrations.RunSQL.noop),',
            ),
            migration=first.migration,
            operation_index=first.operation_index,
            statement_index=first.index,
            table=table,
        )
    ]


def foreign_key_on_large_table(ctx: AnalysisContext) -> list[Finding]:
    """SG604: a foreign key added to an existing table with rows: validated by a copy, both tables locked."""
    findings = []
    for s, ddl in _existing_ddl(ctx):
        match = _ADD_FOREIGN_KEY.search(s.sql)
        if match is None:
            continue
        rows = _rows(ctx, ddl.table, ddl)
        if rows == 0:
            continue
        name, parent = match.group(1), _unquote(match.group(2))
        how = f"ALGORITHM={ddl.algorithm}, LOCK={ddl.lock}" if ddl.algorithm else "an algorithm the server did not say"
        copied = f", {ddl.rows_copied:,} rows copied on the shadow" if ddl.rows_copied else ""
        constraint = f"`{_unquote(name)}`" if name else "<name>"
        findings.append(
            finding(
                "SG604",
                severity=_severity(rows),
                message=f"`{_first_line(s.sql)}` adds a foreign key to {ddl.table} ({_size(ctx, ddl.table, rows)}{copied}) "
                f"with {how}: with foreign_key_checks on, the server checks every row against {parent}, writes to "
                f"{ddl.table} wait for it, and {parent} is locked by the statement too (its metadata lock), so DDL and "
                "writes on both wait.",
                safer_alternative=SaferAlternative(
                    summary="Add the field without the constraint, then add the key in place without the validation copy.",
                    steps=(
                        "Add the field with db_constraint=False (Django's state keeps the relation).",
                        f"Check there are no orphans first: SELECT ... FROM {ddl.table} LEFT JOIN {parent} ... WHERE "
                        f"{parent}.id IS NULL AND the key column IS NOT NULL.",
                        "Then, in a RunSQL of its own: SET SESSION foreign_key_checks = 0; the ADD CONSTRAINT with "
                        "ALGORITHM=INPLACE, LOCK=NONE (the server skips the check and the copy); SET SESSION "
                        "foreign_key_checks = 1. Keep Django's state with SeparateDatabaseAndState.",
                        "Online schema change tools are no way out here: they refuse tables with foreign keys.",
                    ),
                    example=(
                        "SET SESSION foreign_key_checks = 0;\n"
                        f"ALTER TABLE `{ddl.table}` ADD CONSTRAINT {constraint} FOREIGN KEY (...) REFERENCES `{parent}` (`id`), "
                        "ALGORITHM=INPLACE, LOCK=NONE;\nSET SESSION foreign_key_checks = 1;"
                    ),
                ),
                migration=s.migration,
                operation_index=s.operation_index,
                statement_index=s.index,
                table=ddl.table,
            )
        )
    return findings


def instant_column_limit(ctx: AnalysisContext) -> list[Finding]:
    """SG605: an INSTANT ADD/DROP COLUMN counts toward the table's limit of instant column changes."""
    per_table: dict[str, list[StatementTrace]] = {}
    for s, ddl in _existing_ddl(ctx):
        if ddl.algorithm == "INSTANT" and _INSTANT_COLUMN.search(s.sql):
            per_table.setdefault(ddl.table, []).append(s)
    findings = []
    for table, statements in per_table.items():
        first = statements[0]
        count = f"{statement_numbers([s.index for s in statements])} ({len(statements)} instant column change(s))"
        if ctx.engine == "mysql":
            limit = (
                f"MySQL allows {MYSQL_ROW_VERSION_LIMIT} row versions per table (255 from MySQL 9.1; "
                "INFORMATION_SCHEMA.INNODB_TABLES.TOTAL_ROW_VERSIONS counts them); past that, ALGORITHM=INSTANT is "
                "refused (error 4092) and the change rebuilds the table."
            )
        else:
            limit = (
                "MariaDB keeps every column added or dropped instantly in the clustered index (a dropped one as a dummy "
                f"field written on every INSERT and UPDATE); the index holds at most {MARIADB_INSTANT_FIELD_LIMIT} user "
                "fields (the table's columns and every column dropped instantly since its last rebuild), and the hidden "
                "metadata record must fit in a page: past either, ALGORITHM=INSTANT is refused (error 1845) and the change "
                "rebuilds the table."
            )
        findings.append(
            finding(
                "SG605",
                severity="low",
                message=f"{count} on {table} run INSTANT and count toward the table's limit of instant column changes. "
                f"{limit} A rebuild resets the count.",
                safer_alternative=SaferAlternative(
                    summary="Keep the instant change; rebuild the table in a quiet window when many have accumulated.",
                    steps=(
                        "Group column additions into fewer migrations rather than many small ones on the same table.",
                        f"Reset the count with a rebuild: ALTER TABLE `{table}` FORCE (in place, LOCK=NONE) or OPTIMIZE "
                        "TABLE, when the table is quiet; a COPY or in-place rebuild of another change resets it too.",
                    ),
                    example=f"ALTER TABLE `{table}` FORCE, ALGORITHM=INPLACE, LOCK=NONE;",
                ),
                migration=first.migration,
                operation_index=first.operation_index,
                statement_index=first.index,
                table=table,
            )
        )
    return findings


RULES: list[RuleFunction] = [
    blocking_alter,
    non_transactional_ddl,
    lock_wait_timeout,
    foreign_key_on_large_table,
    instant_column_limit,
]
