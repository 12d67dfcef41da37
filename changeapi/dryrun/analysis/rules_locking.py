"""Rules about locks and heavy work on existing tables: SG101-SG107.

Each rule reads the classified, estimated statements and the lock spans, and writes its
safer alternative from the operation that produced the statement, so the example is this
change rewritten, not a generic tip.
"""

from __future__ import annotations

import re
from typing import Any

from django.contrib.postgres.operations import AddConstraintNotValid, AddIndexConcurrently, ValidateConstraint
from django.db import models
from django.db.migrations import operations as ops
from django.db.migrations.operations.base import Operation

from changeapi.dryrun.analysis.classify import CATALOG_ONLY, INDEX_BUILD, REWRITE, VALIDATION
from changeapi.dryrun.analysis.findings import (
    AnalysisContext,
    RuleFunction,
    estimated_ms,
    finding,
    migration_example,
    statement_numbers,
)
from changeapi.dryrun.contract import Finding, SaferAlternative, StatementTrace
from changeapi.dryrun.sql_forms import InlineForeignKey, inline_foreign_keys
from changeapi.dryrun.tracing import LOCK_STRENGTH
from changeapi.intake.backfill import Backfill

ACCESS_EXCLUSIVE = "AccessExclusiveLock"


def held_mode(ctx: AnalysisContext, statement: StatementTrace, table: str) -> str | None:
    """The strongest lock held on `table` while the statement ran (its own or earlier ones).

    Locks on relations the change created (the new index itself) block nobody and are not counted.
    """
    held = ctx.held[statement.index] if statement.index < len(ctx.held) else ()
    modes = [lock.mode for lock in held if lock.table == table]
    return max(modes, key=lambda m: LOCK_STRENGTH.get(m, 99)) if modes else None


def _first_line(sql: str) -> str:
    line = " ".join(sql.split())
    return line if len(line) <= 120 else line[:117] + "..."


def _column(operation: Any) -> str | None:
    field = getattr(operation, "field", None)
    if field is None:
        return None
    field = field.clone()
    field.set_attributes_from_name(operation.name)
    return str(field.column)


def blocking_index_build(ctx: AnalysisContext) -> list[Finding]:
    """SG101: CREATE INDEX (or a unique constraint's index) on an existing table blocks writes."""
    findings = []
    for s in ctx.statements:
        if s.work_class != INDEX_BUILD:
            continue
        table = s.work_tables[0]
        mode = held_mode(ctx, s, table) or "ShareLock"
        blocked = "every read and write" if mode == ACCESS_EXCLUSIVE else "every write"
        op = ctx.operation(s.migration, s.operation_index)
        concurrent_sql = re.sub(r"^\s*CREATE (UNIQUE )?INDEX", r"CREATE \1INDEX CONCURRENTLY", s.sql, flags=re.IGNORECASE)
        if isinstance(op, ops.AddIndex):
            alternative = SaferAlternative(
                summary="Build the index with AddIndexConcurrently in a non-atomic migration of its own.",
                steps=(
                    "Move the AddIndex into a new migration with `atomic = False`.",
                    "Replace it with AddIndexConcurrently: reads and writes continue during the build.",
                    "If the build fails it leaves an INVALID index: drop it and retry.",
                ),
                example=migration_example([AddIndexConcurrently(model_name=op.model_name, index=op.index)], atomic=False),
            )
        elif s.command == "CREATE UNIQUE INDEX" or "UNIQUE" in s.sql.upper():
            alternative = SaferAlternative(
                summary="Build the unique index concurrently, then attach it as the constraint.",
                steps=(
                    "In a migration with `atomic = False`, run the CREATE UNIQUE INDEX CONCURRENTLY below (RunSQL).",
                    "Then `ALTER TABLE ... ADD CONSTRAINT <name> UNIQUE USING INDEX <index>` (a catalog change).",
                    "Keep Django's state in step with SeparateDatabaseAndState.",
                ),
                example=concurrent_sql,
            )
        else:
            alternative = SaferAlternative(
                summary="Create the index concurrently, outside a transaction.",
                steps=(
                    "Declare the index in Meta.indexes instead of db_index, and add it with AddIndexConcurrently,"
                    " or run the SQL below with RunSQL in a migration with `atomic = False`.",
                ),
                example=concurrent_sql,
            )
        findings.append(
            finding(
                "SG101",
                severity=ctx.severity(table, estimated_ms(s)),
                message=f"`{_first_line(s.sql)}` builds an index on {table} holding {mode}, which blocks {blocked} on "
                f"{table} for the whole build ({ctx.size_note(table, s.estimate)}).",
                safer_alternative=alternative,
                migration=s.migration,
                operation_index=s.operation_index,
                statement_index=s.index,
                table=table,
            )
        )
    return findings


def table_rewrite(ctx: AnalysisContext) -> list[Finding]:
    """SG102: the table (and its indexes) are rewritten while reads and writes wait."""
    findings = []
    for s in ctx.statements:
        if s.work_class != REWRITE or s.volatile_default_columns:
            continue
        table = s.work_tables[0]
        op = ctx.operation(s.migration, s.operation_index)
        column = _column(op) if isinstance(op, ops.AlterField) else None
        steps = [
            f"Add a new nullable column (e.g. {column or 'col'}_new) of the new type: a catalog-only change.",
            "Deploy code that writes both columns (or add a trigger that copies on write).",
            "Backfill the new column in batches in a separate non-atomic data migration (example below).",
            "Switch reads to the new column, then swap names in a short migration or point the field at it with db_column.",
            "Drop the old column in a later release, once no running code uses it.",
        ]
        example = ""
        if column:
            example = (
                f"-- repeat until no row is updated\nUPDATE {table} SET {column}_new = {column}\n"
                f"WHERE id IN (SELECT id FROM {table} WHERE {column}_new IS NULL AND {column} IS NOT NULL LIMIT 10000);"
            )
        findings.append(
            finding(
                "SG102",
                severity=ctx.severity(table, estimated_ms(s)),
                message=f"`{_first_line(s.sql)}` rewrites {table} and rebuilds its indexes under ACCESS EXCLUSIVE: reads and "
                f"writes wait for all of it ({ctx.size_note(table, s.estimate)}).",
                safer_alternative=SaferAlternative(
                    summary="Expand and contract instead of rewriting in place.", steps=tuple(steps), example=example
                ),
                migration=s.migration,
                operation_index=s.operation_index,
                statement_index=s.index,
                table=table,
            )
        )
    return findings


def _is_set_not_null(s: StatementTrace) -> bool:
    return "ALTER COLUMN" in s.sql.upper() and "SET NOT NULL" in s.sql.upper()


def _is_fk_validation(s: StatementTrace) -> bool:
    return any(e.kind == "fk_validation" for e in s.events)


def validation_under_access_exclusive(ctx: AnalysisContext) -> list[Finding]:
    """SG103: a CHECK (or other) constraint is validated by a scan while ACCESS EXCLUSIVE is held."""
    findings = []
    for s in ctx.statements:
        if s.work_class != VALIDATION or _is_set_not_null(s) or _is_fk_validation(s):
            continue
        table = s.work_tables[0]
        if held_mode(ctx, s, table) != ACCESS_EXCLUSIVE:
            continue
        op = ctx.operation(s.migration, s.operation_index)
        constraint = getattr(op, "constraint", None)
        if isinstance(op, ops.AddConstraint) and isinstance(constraint, models.CheckConstraint):
            model_name = op.model_name  # type: ignore[attr-defined]
            example = (
                migration_example([AddConstraintNotValid(model_name=model_name, constraint=constraint)])
                + "\n# next migration\n"
                + migration_example([ValidateConstraint(model_name=model_name, name=constraint.name)])
            )
        else:
            example = f"{_first_line(s.sql)} NOT VALID;\n-- next migration\nALTER TABLE {table} VALIDATE CONSTRAINT <name>;"
        findings.append(
            finding(
                "SG103",
                severity=ctx.severity(table, estimated_ms(s)),
                message=f"`{_first_line(s.sql)}` scans all of {table} to validate while holding ACCESS EXCLUSIVE "
                f"({ctx.size_note(table, s.estimate)}).",
                safer_alternative=SaferAlternative(
                    summary="Add the constraint NOT VALID, then VALIDATE CONSTRAINT in a separate migration.",
                    steps=(
                        "AddConstraintNotValid: a brief ACCESS EXCLUSIVE, no scan; new rows are checked from then on.",
                        "ValidateConstraint in the next migration: scans under SHARE UPDATE EXCLUSIVE, so reads and writes go on.",
                    ),
                    example=example,
                ),
                migration=s.migration,
                operation_index=s.operation_index,
                statement_index=s.index,
                table=table,
            )
        )
    return findings


def not_null_on_large_table(ctx: AnalysisContext) -> list[Finding]:
    """SG104: SET NOT NULL verifies every row under ACCESS EXCLUSIVE (and a backfill before it)."""
    findings = []
    for s in ctx.statements:
        if not _is_set_not_null(s) or s.work_class not in (VALIDATION, "scan") or not s.work_tables:
            continue
        table = s.work_tables[0]
        op = ctx.operation(s.migration, s.operation_index)
        column = _column(op) or "col"
        backfills = [
            b
            for b in ctx.statements
            if b.index < s.index
            and b.migration == s.migration
            and b.operation_index == s.operation_index
            and b.command == "UPDATE"
        ]
        backfill_note = ""
        if backfills:
            backfill_note = (
                f" Its backfill ({statement_numbers([backfills[0].index])}) runs under the same ACCESS EXCLUSIVE lock, "
                f"taken by the SET DEFAULT before it."
            )
        example = _phased_not_null(ctx.app_label(s.migration), op, table=table, column=column)
        findings.append(
            finding(
                "SG104",
                severity=ctx.severity(table, estimated_ms(s)),
                message=f"`{_first_line(s.sql)}` reads every row of {table} under ACCESS EXCLUSIVE to prove no NULLs "
                f"({ctx.size_note(table, s.estimate)}).{backfill_note}",
                safer_alternative=SaferAlternative(
                    summary="Nullable first, backfill in batches, then SET NOT NULL through a validated CHECK.",
                    steps=(
                        "Keep the column nullable; give new rows the default.",
                        "Backfill existing NULLs with a Backfill step ending its own migration (the example's first): "
                        "released, it runs as the bundle's resumable command or Celery task, between the phases.",
                        f"Add CHECK ({column} IS NOT NULL) NOT VALID, then VALIDATE it in the next migration.",
                        "SET NOT NULL then skips its scan (PostgreSQL 12+); drop the CHECK afterwards.",
                    ),
                    example=example,
                ),
                migration=s.migration,
                operation_index=s.operation_index,
                statement_index=s.index,
                table=table,
            )
        )
    return findings


def _without_default(field: models.Field[Any, Any]) -> models.Field[Any, Any]:
    """The field as it ends, but without its Python default: with one, Django's AlterField to NOT
    NULL first runs `UPDATE ... WHERE col IS NULL`, a scan under ACCESS EXCLUSIVE, which the
    backfill made useless (the default stays the model's, for new rows)."""
    _, path, args, kwargs = field.deconstruct()
    kwargs.pop("default", None)
    return type(field)(*args, **kwargs)


def _phased_not_null(app_label: str, op: Any, *, table: str, column: str) -> str:
    """The change as expand, backfill and contract migrations, written as files a team can submit
    as the next revision (the migration-files form reads the Backfill step); released, they are
    a bundle's phases 1 (expand), 2 (the backfill command or task) and 3 (contract, refused by
    the bundle's preflight until the parity check counts zero). The AlterField's default (if a
    constant) is the value the existing NULLs get."""
    if not isinstance(op, ops.AlterField):
        model_name = getattr(op, "model_name", "<model>")
        return f"# expand: keep {table}.{column} nullable and backfill it in batches; then contract (below).\n" + (
            f"# AddConstraintNotValid CHECK ({column} IS NOT NULL), ValidateConstraint, then SET NOT NULL on {model_name}"
        )
    name, model_name = op.name, op.model_name
    default = op.field.default if op.field.has_default() and not callable(op.field.default) else None
    constraint = f"{table}_{column}_not_null"[:63]
    check = models.CheckConstraint(condition=models.Q(**{f"{name}__isnull": False}), name=constraint)
    backfill = Backfill(
        f"{app_label}.{model_name}",
        {name: models.Value(default)},
        filter=models.Q(**{f"{name}__isnull": True}),
        parity=models.Q(**{f"{name}__isnull": True}),
    )
    value = "" if default is not None else " (put the value existing rows get in place of None)"
    parts: list[tuple[str, list[Operation]]] = [
        (f"1. expand: the column stays nullable; its NULLs are backfilled in batches after this commits{value}", [backfill]),
        (
            "2. contract, once the backfill's parity check counts zero (the bundle's preflight refuses it before): "
            "new rows are checked, no scan",
            [AddConstraintNotValid(model_name=model_name, constraint=check)],
        ),
        (
            "3. contract: validated under SHARE UPDATE EXCLUSIVE, reads and writes go on",
            [ValidateConstraint(model_name, constraint)],
        ),
        (
            "4. contract: SET NOT NULL uses the validated CHECK (PostgreSQL 12+), no scan",
            [ops.AlterField(model_name, name, _without_default(op.field)), ops.RemoveConstraint(model_name, constraint)],
        ),
    ]
    return "\n".join(f"# --- migration {title}\n{migration_example(operations)}" for title, operations in parts)


def foreign_key_validation(ctx: AnalysisContext) -> list[Finding]:
    """SG105: adding a validated foreign key scans the table while both tables block writes."""
    findings = []
    for s in ctx.statements:
        inline = inline_foreign_keys(s.sql) if s.command == "ALTER TABLE" else []
        if inline:
            findings.extend(_inline_foreign_key_findings(ctx, s, inline))
            continue
        if not _is_fk_validation(s) or not s.work_tables:
            continue
        table = s.work_tables[0]
        constraint = next(e.object for e in s.events if e.kind == "fk_validation")
        referenced = sorted({lock.table for lock in s.locks or () if lock.table is not None and lock.table != table})
        sql = s.sql.rstrip().rstrip(";")
        example = f"{sql} NOT VALID;\n-- next migration (SHARE UPDATE EXCLUSIVE only):\nALTER TABLE {table} VALIDATE CONSTRAINT {constraint};"
        findings.append(
            finding(
                "SG105",
                severity=ctx.severity(table, estimated_ms(s)),
                message=f"Foreign key {constraint} is validated by scanning {table} while SHARE ROW EXCLUSIVE blocks writes to "
                f"{table}{' and ' + ', '.join(referenced) if referenced else ''} ({ctx.size_note(table, s.estimate)}).",
                safer_alternative=SaferAlternative(
                    summary="Add the foreign key NOT VALID, then VALIDATE CONSTRAINT in a later migration.",
                    steps=(
                        "Add the field with db_constraint=False (or SeparateDatabaseAndState), and add the constraint with"
                        " RunSQL ... NOT VALID: no scan, new rows are checked.",
                        "Validate it in the next migration: writes continue on both tables meanwhile.",
                    ),
                    example=example,
                ),
                migration=s.migration,
                operation_index=s.operation_index,
                statement_index=s.index,
                table=table,
            )
        )
    return findings


def _inline_foreign_key_findings(ctx: AnalysisContext, s: StatementTrace, keys: list[InlineForeignKey]) -> list[Finding]:
    """SG105 for `ADD COLUMN ... REFERENCES`: the lock on the referenced table, and the scan a default forces.

    A new column without a default is all NULL, so PostgreSQL skips the validation scan; the
    SHARE ROW EXCLUSIVE on the referenced table is taken all the same and held until commit.
    """
    findings = []
    for key in keys:
        referenced_existing = not ctx.is_new(key.referenced, s.index)
        table_existing = not ctx.is_new(key.table, s.index)
        scans = key.has_default and table_existing
        if not scans and not (referenced_existing and table_existing):
            continue  # only a table this change created is locked or scanned: nobody waits
        name = key.constraint or f"{key.table}_{key.column}_fk"
        if scans:
            severity = ctx.severity(key.table, estimated_ms(s))
            what = (
                f"The new column {key.table}.{key.column} has a default, so PostgreSQL validates foreign key {name} by "
                f"scanning all of {key.table} ({ctx.size_note(key.table, s.estimate)})"
            )
        else:
            severity = "low"
            what = (
                f"Foreign key {name} is added with the column {key.table}.{key.column}, which has no default: every "
                f"value is NULL and the validation scan is skipped"
            )
        lock = (
            f"; SHARE ROW EXCLUSIVE on the referenced table {key.referenced} blocks its writes until the migration commits"
            if referenced_existing
            else ""
        )
        example = (
            f"-- 1. the field with db_constraint=False: ADD COLUMN {key.column} ... NULL, no constraint\n"
            f"-- 2. its own short migration (brief SHARE ROW EXCLUSIVE on {key.referenced}, no scan):\n"
            f"ALTER TABLE {key.table} ADD CONSTRAINT {name} FOREIGN KEY ({key.column}) REFERENCES {key.referenced}"
            f" ({', '.join(key.referenced_columns) or 'id'})"
            " DEFERRABLE INITIALLY DEFERRED NOT VALID;\n"
            f"-- 3. next migration (SHARE UPDATE EXCLUSIVE on {key.table}, ROW SHARE on {key.referenced}):\n"
            f"ALTER TABLE {key.table} VALIDATE CONSTRAINT {name};"
        )
        findings.append(
            finding(
                "SG105",
                severity=severity,
                message=f"{what}{lock}.",
                safer_alternative=SaferAlternative(
                    summary="Add the column without the key, then the key NOT VALID in a short migration, then VALIDATE it.",
                    steps=(
                        "Add the field nullable, without a default, with db_constraint=False (keep Django's state in step"
                        " with SeparateDatabaseAndState when the constraint is added by RunSQL).",
                        f"Add the constraint NOT VALID in a migration of its own, with a lock_timeout: it holds the lock on"
                        f" {key.referenced} only for a moment, and checks new rows from then on.",
                        "Backfill the column in batches if it needs values, then VALIDATE CONSTRAINT in a later migration:"
                        " writes continue on both tables meanwhile.",
                    ),
                    example=example,
                ),
                migration=s.migration,
                operation_index=s.operation_index,
                statement_index=s.index,
                table=key.table,
            )
        )
    return findings


def lock_held_across_statements(ctx: AnalysisContext) -> list[Finding]:
    """SG106: a lock blocking traffic is held, until commit, through later statements that do real work."""
    findings = []
    seen: set[tuple[str, int]] = set()
    by_index = {s.index: s for s in ctx.statements}
    for span in sorted(ctx.spans, key=lambda sp: -LOCK_STRENGTH.get(sp.mode, 0)):
        if span.new_relation or not (span.blocks_reads or span.blocks_writes):
            continue
        start = by_index[span.statement_index]
        txn = start.transaction
        table = span.table or span.relation
        if txn is None or (table, txn) in seen:
            continue
        covered = [
            s
            for s in ctx.statements
            if s.index > start.index and s.transaction == txn and s.work_class not in (None, CATALOG_ONLY)
        ]
        if not covered:
            continue
        seen.add((table, txn))
        kinds = ", ".join(dict.fromkeys((c.work_class or "").replace("_", " ") for c in covered))
        heavy = f"{statement_numbers([c.index for c in covered])} ({kinds})"
        blocked = "reads and writes" if span.blocks_reads else "writes"
        held = f"Held {span.held_ms:,.0f} ms on the shadow"
        if ctx.at_production_size:
            held += f", about {span.estimated_held_ms / 1000:,.2f} s at production size"
        findings.append(
            finding(
                "SG106",
                severity=ctx.severity(table, span.estimated_held_ms),
                message=f"{span.mode} on {table}, taken by {statement_numbers([start.index])}, blocks {blocked} until "
                f"{start.migration} commits: through {heavy}. {held}.",
                safer_alternative=SaferAlternative(
                    summary="Do not hold a blocking lock across slow work: split the migration.",
                    steps=(
                        f"Put {heavy} into {'a migration of its own' if len(covered) == 1 else 'migrations of their own'}, "
                        "after the one that takes the lock.",
                        "Or mark the migration `atomic = False`, so each operation commits (and releases its locks) on its own.",
                        "Run index builds concurrently and backfills in batches (see the other findings).",
                    ),
                ),
                migration=start.migration,
                operation_index=start.operation_index,
                statement_index=start.index,
                table=table,
            )
        )
    return findings


def lock_queue_risk(ctx: AnalysisContext) -> list[Finding]:
    """SG107: a blocking lock request queues traffic behind the oldest transaction; bound it with lock_timeout."""
    findings = []
    for risk in ctx.queue:
        piled = risk.pile_up_queries
        severity = "high" if piled >= 1000 else "medium" if piled >= 100 else "low"
        timeout = risk.recommended_lock_timeout_ms
        findings.append(
            finding(
                "SG107",
                severity=severity,
                message=f"{risk.lock_mode} on {risk.table} waits behind the oldest transaction "
                f"({risk.worst_case_wait_ms / 1000:,.1f} s) and is held about {risk.estimated_hold_ms / 1000:,.2f} s: "
                f"about {piled:,} queries at {risk.blocked_queries_per_second:g}/s pile up behind it; with "
                f"lock_timeout {timeout} ms at most {risk.pile_up_with_timeout_queries:,} per attempt.",
                safer_alternative=SaferAlternative(
                    summary=f"Set lock_timeout = {timeout}ms and retry up to {risk.recommended_retries} times with backoff.",
                    steps=(
                        f"Start the migration with SET LOCAL lock_timeout = '{timeout}ms'.",
                        f"On a lock timeout, retry the migration up to {risk.recommended_retries} times, waiting "
                        f"{risk.retry_backoff_ms} ms, doubled each time, with jitter.",
                        "Run it when the oldest transactions are short (no long reports or open idle transactions).",
                    ),
                    example=f"migrations.RunSQL(\"SET LOCAL lock_timeout = '{timeout}ms'\", migrations.RunSQL.noop),",
                ),
                table=risk.table,
            )
        )
    return findings


RULES: list[RuleFunction] = [
    blocking_index_build,
    table_rewrite,
    validation_under_access_exclusive,
    not_null_on_large_table,
    foreign_key_validation,
    lock_held_across_statements,
    lock_queue_risk,
]
