"""What each transaction held, and what was held while each statement ran, from the locks taken.

A statement lists only the locks it newly acquired; a lock stays held until its transaction
ends. So the locks held while a statement ran are those its transaction's statements took up
to it, and a transaction's held set is that union at its end. Relations the run created are
invisible to other sessions until commit and block nobody: they are left out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from changeapi.dryrun.analysis.timeline import ProductionClock
from changeapi.dryrun.contract import HeldLock, StatementTrace, TransactionEntry
from changeapi.dryrun.tracing import LOCK_STRENGTH


def _stronger(lock_mode: str, current: HeldLock | None) -> bool:
    return current is None or LOCK_STRENGTH.get(lock_mode, 99) > LOCK_STRENGTH.get(current.mode, 99)


def held_by_statement(statements: Sequence[StatementTrace]) -> list[tuple[HeldLock, ...]]:
    """Per statement (by position), the strongest lock on each existing table while it ran,
    whichever statement of its transaction took it."""
    created: set[str] = set()
    strongest: dict[str, HeldLock] = {}
    transaction: int | None = None
    result: list[tuple[HeldLock, ...]] = []
    for statement in statements:
        if statement.transaction is None or statement.transaction != transaction:
            strongest = {}
        transaction = statement.transaction
        invisible = created | set(statement.created_relations)
        for lock in statement.locks or ():
            table = lock.table or lock.relation
            if table in invisible or lock.relation in invisible:
                continue
            if _stronger(lock.mode, strongest.get(table)):
                strongest[table] = HeldLock(
                    table=table,
                    mode=lock.mode,
                    blocks_reads=lock.blocks_reads,
                    blocks_writes=lock.blocks_writes,
                    source=lock.source,
                    statement_index=statement.index,
                )
        created = invisible
        result.append(tuple(strongest[t] for t in sorted(strongest)))
    return result


def transaction_entries(
    statements: Sequence[StatementTrace],
    released: Mapping[int, float | None],
    total_ms: float,
    timeline: list[tuple[float, float]],
) -> tuple[TransactionEntry, ...]:
    """One entry per transaction the statements ran in, with what it held when it ended."""
    held = held_by_statement(statements)
    clock = ProductionClock(statements, timeline)
    groups: dict[int, list[int]] = {}
    for position, statement in enumerate(statements):
        if statement.transaction is not None:
            groups.setdefault(statement.transaction, []).append(position)
    entries = []
    for txn, positions in groups.items():
        first, last = statements[positions[0]], statements[positions[-1]]
        committed_at = released.get(txn)
        released_ms = committed_at if committed_at is not None else total_ms
        entries.append(
            TransactionEntry(
                id=txn,
                migration=first.migration,
                first_statement=first.index,
                last_statement=last.index,
                committed=committed_at is not None,
                released_ms=float(round(released_ms, 3)),
                estimated_released_ms=float(clock.at(released_ms)),
                held=held[positions[-1]],
            )
        )
    return tuple(entries)
