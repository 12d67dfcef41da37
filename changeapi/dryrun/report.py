"""Turn a traced run into the report: statements, lock spans, and per-table blocked time.

A lock is held from the statement that acquires it until its transaction ends: in an atomic
migration that is the commit after the last statement, so an ACCESS EXCLUSIVE lock taken by
the first statement blocks the table through everything that follows it.
"""

from __future__ import annotations

from typing import Any

from changeapi.dryrun.engine import PlanRun
from changeapi.dryrun.tracing import LOCK_STRENGTH


def lock_spans(run: PlanRun) -> list[dict[str, Any]]:
    """One span per lock a statement acquired, ending when its transaction released it."""
    spans = []
    for statement in run.statements:
        if statement.get("locks") is None:
            continue
        start = statement["started_ms"]
        end_of_statement = start + (statement["duration_ms"] or 0)
        txn = statement.get("transaction")
        released = run.transactions.get(txn) if txn is not None else end_of_statement
        if released is None:  # rolled back, or never committed: held until the run ended
            released = run.total_ms
        for lock in statement["locks"]:
            if not lock["acquired_by_statement"]:
                continue
            spans.append(
                {
                    "table": lock["table"],
                    "relation": lock["relation"],
                    "mode": lock["mode"],
                    "statement_index": statement["index"],
                    "from_ms": round(start, 3),
                    "to_ms": round(released, 3),
                    "held_ms": round(released - start, 3),
                    "blocks_reads": lock["blocks_reads"],
                    "blocks_writes": lock["blocks_writes"],
                }
            )
    return spans


def _union_length(intervals: list[tuple[float, float]]) -> float:
    total = 0.0
    current_start = current_end = None
    for start, end in sorted(intervals):
        if current_end is None or start > current_end:
            if current_end is not None and current_start is not None:
                total += current_end - current_start
            current_start, current_end = start, end
        else:
            current_end = max(current_end, end)
    if current_end is not None and current_start is not None:
        total += current_end - current_start
    return total


def table_blocking(spans: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """For each table, how long its reads and its writes were blocked, and the strongest lock."""
    tables: dict[str, dict[str, list[tuple[float, float]]]] = {}
    strongest: dict[str, str] = {}
    for span in spans:
        table = span["table"]
        entry = tables.setdefault(table, {"reads": [], "writes": []})
        interval = (span["from_ms"], span["to_ms"])
        if span["blocks_reads"]:
            entry["reads"].append(interval)
        if span["blocks_writes"]:
            entry["writes"].append(interval)
        current = strongest.get(table)
        if current is None or LOCK_STRENGTH.get(span["mode"], 99) > LOCK_STRENGTH.get(current, 99):
            strongest[table] = span["mode"]
    return [
        {
            "table": table,
            "strongest_lock": strongest[table],
            "reads_blocked_ms": round(_union_length(entry["reads"]), 3),
            "writes_blocked_ms": round(_union_length(entry["writes"]), 3),
        }
        for table, entry in sorted(tables.items())
    ]


def build_report(*, run: PlanRun, meta: dict[str, Any]) -> dict[str, Any]:
    """The JSON report stored on the dry-run and served by the API."""
    spans = lock_spans(run)
    statements = run.statements
    return {
        **meta,
        "status": "failed" if run.error else "succeeded",
        "error": run.error.as_dict() if run.error else None,
        "total_ms": run.total_ms,
        "summary": {
            "migrations": len(run.migrations),
            "operations": sum(len(m["operations"]) for m in run.migrations),
            "statements": len(statements),
            "rewrites": sorted({t for s in statements for t in s.get("rewrites", [])}),
            "tables_scanned": sorted({scan["table"] for s in statements for scan in s.get("sequential_scans", [])}),
            "data_steps_not_executed": sum(1 for m in run.migrations for op in m["operations"] if not op["executed"]),
        },
        "migrations": run.migrations,
        "statements": statements,
        "lock_spans": spans,
        "tables": table_blocking(spans),
    }
