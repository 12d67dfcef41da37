"""Reports made from statements and their locks, with spans derived as the engine derives them,
for drawing the lock timeline without a shadow server."""

from __future__ import annotations

from collections.abc import Sequence

from changeapi.dryrun import contract
from changeapi.dryrun.analysis.timeline import lock_spans, production_timeline
from tests.factories import LockFactory, ReportFactory, StatementTraceFactory, SummaryFactory


def report_of(statements: Sequence[contract.StatementTrace]) -> contract.Report:
    """A report of `statements`; each transaction commits 0.5 ms after its last statement."""
    released: dict[int, float | None] = {}
    for statement in statements:
        if statement.transaction is not None:
            released[statement.transaction] = statement.end_ms + 0.5
    total = max([statement.end_ms + 1 for statement in statements] + [0.0])
    spans = lock_spans(statements, released, total, production_timeline(statements))
    return ReportFactory(
        statements=tuple(statements),
        lock_spans=spans,
        total_ms=total,
        summary=SummaryFactory(statements=len(statements)),
    )


def index_built_under_a_table_lock() -> contract.Report:
    """The case a shared row hid: ADD COLUMN takes ACCESS EXCLUSIVE on shop_order, then the
    CREATE INDEX in the same transaction takes SHARE on it (and creates the index), then a
    long ALTER TYPE rebuilds the table's existing indexes; all held until the commit."""
    return report_of(
        [
            StatementTraceFactory(index=0, started_ms=0.0, duration_ms=1.2, locks=(LockFactory(relation="shop_order"),)),
            StatementTraceFactory(
                index=1,
                sql='CREATE INDEX "order_total_idx" ON "shop_order" ("total")',
                started_ms=2.0,
                duration_ms=14.0,
                created_relations=("order_total_idx",),
                locks=(
                    LockFactory(relation="order_total_idx", relation_kind="index", table="shop_order"),
                    LockFactory(relation="shop_order", mode="ShareLock", blocks_reads=False),
                ),
            ),
            StatementTraceFactory(
                index=2,
                sql='ALTER TABLE "shop_order" ALTER COLUMN "total" TYPE bigint',
                started_ms=16.5,
                duration_ms=55.0,
                locks=(
                    LockFactory(relation="shop_order_pkey", relation_kind="index", table="shop_order"),
                    LockFactory(relation="shop_customer", mode="ShareRowExclusiveLock", blocks_reads=False),
                ),
            ),
            StatementTraceFactory(
                index=3,
                transaction=2,
                sql='ALTER TABLE "shop_customer" VALIDATE CONSTRAINT "fk"',
                started_ms=72.5,
                duration_ms=3.0,
                locks=(
                    LockFactory(
                        relation="shop_customer", mode="ShareUpdateExclusiveLock", blocks_reads=False, blocks_writes=False
                    ),
                ),
            ),
        ]
    )


def many_statements(count: int, *, tables: int | None = None) -> contract.Report:
    """`count` statements of 0.1 to 50 ms, one transaction each, each locking one of `tables`
    tables (a table of its own when None) ACCESS EXCLUSIVE."""
    statements = []
    started = 0.0
    for index in range(count):
        duration = 0.1 if index % 7 else 50.0
        table = f"app_table_{index % tables if tables else index}"
        statements.append(
            StatementTraceFactory(
                index=index, transaction=index + 1, started_ms=started, duration_ms=duration, locks=(LockFactory(relation=table),)
            )
        )
        started += duration + 1.0
    return report_of(statements)
