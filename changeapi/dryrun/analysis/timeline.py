"""Lock spans over the run, on the shadow and at production size, and per-table blocked time.

A lock is held from the statement that acquires it until its transaction ends: in an atomic
migration that is the commit after the last statement, so an ACCESS EXCLUSIVE lock taken by
the first statement blocks the table through every slower statement after it. The production
timeline replaces each statement's measured duration by its estimate and keeps the measured
gaps between statements (Python, commits), so a span's estimated length is the estimated
time of everything it covers. Locks on relations the run itself created block nobody (no
other session can see them before commit) and are left out of the per-table totals.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence

from changeapi.dryrun.contract import LockSpan, StatementTrace, TableBlocking
from changeapi.dryrun.tracing import LOCK_STRENGTH


def production_timeline(statements: Sequence[StatementTrace]) -> list[tuple[float, float]]:
    """(start, end) of each statement at production size, in ms from the start of the run."""
    timeline: list[tuple[float, float]] = []
    previous_end = 0.0
    estimated_end = 0.0
    for statement in statements:
        start = statement.started_ms
        gap = max(start - previous_end, 0.0)
        duration = statement.estimate.estimated_ms if statement.estimate is not None else None
        if duration is None:
            duration = statement.duration_ms or 0.0
        estimated_start = estimated_end + gap
        estimated_end = estimated_start + duration
        timeline.append((round(estimated_start, 3), round(estimated_end, 3)))
        previous_end = statement.end_ms
    return timeline


def estimated_total_ms(
    statements: Sequence[StatementTrace], timeline: list[tuple[float, float]], total_ms: float, *, has_sizes: bool
) -> float | None:
    """The run's length at production size (the production timeline's end, then the measured
    time after the last statement); None unless table stats were uploaded and every statement
    has an estimate."""
    if not has_sizes or not all(s.estimate is not None and s.estimate.estimated_ms is not None for s in statements):
        return None
    return float(round(timeline[-1][1] + max(total_ms - statements[-1].end_ms, 0.0), 3)) if statements else 0.0


class ProductionClock:
    """Maps moments of the shadow run (a commit) to the production timeline: the same gap after
    the last statement that ended before it. Statements end in order, so a search suffices."""

    def __init__(self, statements: Sequence[StatementTrace], timeline: list[tuple[float, float]]) -> None:
        self._ends = [statement.end_ms for statement in statements]
        self._estimated_ends = [estimated[1] for estimated in timeline]

    def at(self, moment: float) -> float:
        position = bisect.bisect_right(self._ends, moment + 1e-9)
        if position == 0:
            return moment
        return round(self._estimated_ends[position - 1] + (moment - self._ends[position - 1]), 3)


def lock_spans(
    statements: Sequence[StatementTrace],
    transactions: Mapping[int, float | None],
    total_ms: float,
    timeline: list[tuple[float, float]],
) -> tuple[LockSpan, ...]:
    """One span per lock a statement acquired, ending when its transaction released it."""
    new_relations: set[str] = set()
    spans = []
    clock = ProductionClock(statements, timeline)
    for statement, estimated in zip(statements, timeline, strict=True):
        if statement.locks is None:
            continue
        start = statement.started_ms
        end_of_statement = start + (statement.duration_ms or 0)
        txn = statement.transaction
        released = transactions.get(txn) if txn is not None else end_of_statement
        if released is None:  # rolled back, or never committed: held until the run ended
            released = total_ms
        estimated_released = estimated[1] if txn is None else clock.at(released)
        invisible = new_relations | set(statement.created_relations)
        for lock in statement.locks:
            spans.append(
                LockSpan(
                    table=lock.table,
                    relation=lock.relation,
                    mode=lock.mode,
                    statement_index=statement.index,
                    from_ms=float(round(start, 3)),
                    to_ms=float(round(released, 3)),
                    held_ms=float(round(released - start, 3)),
                    estimated_from_ms=float(estimated[0]),
                    estimated_to_ms=float(estimated_released),
                    estimated_held_ms=float(round(estimated_released - estimated[0], 3)),
                    blocks_reads=lock.blocks_reads,
                    blocks_writes=lock.blocks_writes,
                    blocks_ddl=lock.blocks_ddl,
                    source=lock.source,
                    new_relation=lock.relation in invisible or (lock.table or "") in new_relations,
                )
            )
        new_relations |= invisible
    return tuple(spans)


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


def table_blocking(spans: Sequence[LockSpan]) -> tuple[TableBlocking, ...]:
    """For each existing table: how long its reads and writes were blocked, and the strongest lock."""
    tables: dict[str, dict[str, list[tuple[float, float]]]] = {}
    strongest: dict[str, str] = {}
    for span in spans:
        if span.new_relation:
            continue
        table = span.table or span.relation
        entry = tables.setdefault(table, {"reads": [], "writes": [], "reads_est": [], "writes_est": []})
        interval = (span.from_ms, span.to_ms)
        estimated = (span.estimated_from_ms, span.estimated_to_ms)
        if span.blocks_reads:
            entry["reads"].append(interval)
            entry["reads_est"].append(estimated)
        if span.blocks_writes:
            entry["writes"].append(interval)
            entry["writes_est"].append(estimated)
        current = strongest.get(table)
        if current is None or LOCK_STRENGTH.get(span.mode, 99) > LOCK_STRENGTH.get(current, 99):
            strongest[table] = span.mode
    return tuple(
        TableBlocking(
            table=table,
            strongest_lock=strongest[table],
            reads_blocked_ms=round(_union_length(entry["reads"]), 3),
            writes_blocked_ms=round(_union_length(entry["writes"]), 3),
            reads_blocked_estimated_ms=round(_union_length(entry["reads_est"]), 3),
            writes_blocked_estimated_ms=round(_union_length(entry["writes_est"]), 3),
        )
        for table, entry in sorted(tables.items())
    )
