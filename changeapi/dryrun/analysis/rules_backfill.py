"""Rules about data changes: SG304 to SG306.

An UPDATE or DELETE over a whole existing table in one statement holds its row locks, and in
an atomic migration every schema lock taken before it, until it ends, and writes all its WAL
at once; replicas lag behind it. The classic case is a backfill in `RunSQL`. `RunPython` is
never run by the dry-run, so what it does is unknown: it is reported as such. A declared
Backfill step is batched, and timed: its batches may still hold their row locks longer than the
project allows (SG305), or its assignments may never satisfy its own parity check (SG306).
"""

from __future__ import annotations

from django.db.migrations import operations as ops

from changeapi.dryrun.analysis.findings import AnalysisContext, RuleFunction, estimated_ms, finding
from changeapi.dryrun.analysis.rules_compat import NON_TRANSACTIONAL_DDL
from changeapi.dryrun.apply import is_data_step, is_noop_data_step
from changeapi.dryrun.contract import Finding, SaferAlternative
from changeapi.dryrun.mysql_dml import mysql_unbatched_changes
from changeapi.dryrun.sql_forms import unbatched_changes

BATCH_SIZE = 10_000


def _first_line(sql: str) -> str:
    line = " ".join(sql.split())
    return line if len(line) <= 120 else line[:117] + "..."


def batched_backfill_example(table: str, batched_sql: str) -> str:
    """A backfill run outside the migration: one key range per transaction, each committed on its own."""
    return (
        "# A management command (or task) run after the schema migration is deployed, not inside it.\n"
        "from django.db import connection, transaction\n"
        "\n"
        f"BATCH_SIZE = {BATCH_SIZE:_}\n"
        "\n"
        "\n"
        "def backfill() -> None:\n"
        "    with connection.cursor() as cursor:\n"
        f'        cursor.execute("SELECT min(id), max(id) FROM {table}")\n'
        "        low, high = cursor.fetchone()\n"
        "    if low is None:\n"
        "        return\n"
        "    for start in range(low, high + 1, BATCH_SIZE):\n"
        "        with transaction.atomic():  # one short transaction per batch: locks and WAL stay small\n"
        "            with connection.cursor() as cursor:\n"
        f"                cursor.execute({batched_sql!r}, [start, start + BATCH_SIZE])\n"
    )


def _batched_alternative(table: str, batched_sql: str) -> SaferAlternative:
    return SaferAlternative(
        summary="Backfill in key-range batches outside the migration, each batch committed on its own.",
        steps=(
            "Remove the statement from the migration (keep the schema change there).",
            f"Run it in batches of {BATCH_SIZE:,} keys from a management command or task after the deploy (example"
            " below): each batch is a short transaction, so row locks are brief and replicas keep up.",
            "Make it idempotent (the WHERE skips rows already done), so it can be stopped and resumed.",
            "Add constraints that need the data (NOT NULL, CHECK) in a later migration, once it has finished.",
            "Or declare it as a Backfill step of the operations form (docs/backfills.md): the dry-run then times a"
            " sample of its batches and says how long the whole backfill takes and which batch size keeps locks short.",
        ),
        example=batched_backfill_example(table, batched_sql),
    )


def unbatched_data_change(ctx: AnalysisContext) -> list[Finding]:
    """SG304: RunSQL updates or deletes all matching rows of an existing table in one statement;
    RunPython's work is unknown (info)."""
    findings = []
    mysql = ctx.engine in NON_TRANSACTIONAL_DDL
    for s in ctx.statements:
        if not isinstance(ctx.operation(s.migration, s.operation_index), ops.RunSQL):
            continue  # Django's own backfills (NOT NULL with a default) are SG104's
        # Django's MySQL editor opens no transaction around a migration (its DDL would commit
        # it): a RunSQL statement there commits when it ends, whatever the migration's `atomic`.
        atomic = not mysql and next((m.atomic for m in ctx.migrations if m.label == s.migration), True)
        held = (
            "its row locks, and every lock the migration took before it, until the migration commits"
            if atomic
            else "its row locks until it ends"
        )
        changes = mysql_unbatched_changes(s.sql) if mysql else unbatched_changes(s.sql)
        for change in changes:
            if ctx.is_new(change.table, s.index):
                continue  # rows inserted by the change itself: nobody else sees them yet
            findings.append(
                finding(
                    "SG304",
                    severity=ctx.severity(change.table, estimated_ms(s)),
                    message=f"`{_first_line(s.sql)}` {'updates' if change.command == 'UPDATE' else 'deletes'} every matching "
                    f"row of {change.table} in one statement: {change.reason}. It holds {held} "
                    f"({ctx.size_note(change.table, s.estimate)}).",
                    safer_alternative=_batched_alternative(change.table, change.batched_sql),
                    migration=s.migration,
                    operation_index=s.operation_index,
                    statement_index=s.index,
                    table=change.table,
                )
            )
    if ctx.plan is None:
        return findings
    for m in ctx.plan.migrations:
        for index, op in enumerate(m.operations):
            if not is_data_step(op) or is_noop_data_step(op):
                continue
            # On MySQL/MariaDB it runs in a transaction of its own: the DDL before it has committed.
            held = (
                "its row locks"
                if mysql and m.atomic
                else "its own rows' locks"
                if not m.atomic
                else "its row locks and every lock the migration took before it"
            )
            findings.append(
                finding(
                    "SG304",
                    severity="info",
                    message=f"{op.describe()} in {m.app_label}.{m.name} is not executed by the dry-run: which rows it "
                    f"changes, and how long it takes, are unknown. A loop over a large table in one transaction holds "
                    f"{held} until it ends.",
                    safer_alternative=_batched_alternative("<table>", "UPDATE <table> SET ... WHERE id >= %s AND id < %s"),
                    migration=f"{m.app_label}.{m.name}",
                    operation_index=index,
                )
            )
    return findings


def _step(ctx: AnalysisContext, migration: str, index: int) -> str:
    operation = ctx.operation(migration, index)
    return operation.describe() if operation is not None else f"The backfill step {index} of {migration}"


def backfill_batch_over_target(ctx: AnalysisContext) -> list[Finding]:
    """SG305: at production size one batch of the declared size may hold its row locks past the
    project's target (by the estimate's upper bound, the one to plan a lock by)."""
    findings = []
    for b in ctx.backfills:
        scale = b.at_production
        if scale is None or scale.batch_high_ms <= b.target_lock_ms or b.recommended_batch_size is None:
            continue
        findings.append(
            finding(
                "SG305",
                severity="high" if scale.batch_high_ms > 5 * b.target_lock_ms else "medium",
                message=f"{_step(ctx, b.migration, b.operation_index)}: at production size one batch of "
                f"{b.batch_size:,} rows holds its row locks about {scale.batch_ms:,.0f} ms, up to "
                f"{scale.batch_high_ms:,.0f} ms, past the project's target of {b.target_lock_ms:,} ms; every "
                "writer of those rows waits that long.",
                safer_alternative=SaferAlternative(
                    summary=f"Use batches of {b.recommended_batch_size:,} row{'' if b.recommended_batch_size == 1 else 's'}.",
                    steps=(
                        f"Set the step's batch_size to {b.recommended_batch_size:,}: {b.recommendation}.",
                        "Keep a pause between batches if replicas or autovacuum need to keep up "
                        f"(the whole backfill then takes {scale.batches:,} batches).",
                    ),
                    example=f'{{"op": "Backfill", "model": "{b.model}", "batch_size": {b.recommended_batch_size}, ...}}',
                ),
                migration=b.migration,
                operation_index=b.operation_index,
                table=b.table,
            )
        )
    return findings


def backfill_parity_unmet(ctx: AnalysisContext) -> list[Finding]:
    """SG306: among the keys the sample covered, the parity check still counts rows: the
    assignments (or the filter) leave rows it counts, so the backfill never reaches zero."""
    findings = []
    for b in ctx.backfills:
        if b.parity is None or b.parity.holds_in_sampled_range:
            continue
        findings.append(
            finding(
                "SG306",
                severity="high",
                message=f"{_step(ctx, b.migration, b.operation_index)}: after its sampled batches the parity check "
                f"`{b.parity.condition}` still counts {b.parity.in_sampled_range:,} rows among the keys they covered "
                f"(up to {b.batches[-1].to_key if b.batches else '?'}): the backfill would never bring it to zero, "
                "and nothing that waits for parity could follow it.",
                safer_alternative=SaferAlternative(
                    summary="Make the assignments set every row the parity check counts.",
                    steps=(
                        "Check that each assigned expression yields a value the parity check accepts (a Coalesce "
                        "over a nullable source column still yields NULL when every argument is NULL).",
                        "Check that the filter selects every row the parity check counts: rows outside the filter are never set.",
                    ),
                    example="",
                ),
                migration=b.migration,
                operation_index=b.operation_index,
                table=b.table,
            )
        )
    return findings


RULES: list[RuleFunction] = [unbatched_data_change, backfill_batch_over_target, backfill_parity_unmet]
