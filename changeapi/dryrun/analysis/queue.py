"""Lock queue risk: how many queries pile up behind a blocking lock, and a lock_timeout to bound it.

A lock request that conflicts with traffic waits behind the oldest open transaction on the
table, and every later query on the table queues behind the waiting request, not only
behind the holder. So the queue grows for `wait + hold` seconds at the rate of the blocked
queries: `pile_up = blocked_qps * (oldest_transaction + estimated_hold)`. A `lock_timeout`
caps the wait: with `lock_timeout = L` one attempt queues at most `blocked_qps * (L + hold)`
queries, and a retry loop waits out the old transaction instead of the traffic doing so.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from changeapi.dryrun.contract import LockQueueRisk, TableBlocking
from changeapi.dryrun.profile import ProductionProfile

QUEUE_BUDGET = 50  # queries allowed to queue during one wait: about one application connection pool
LOCK_TIMEOUT_BOUNDS_MS = (100, 5_000)
MAX_RETRIES = 10
FIRST_BACKOFF_MS = 1_000


def lock_queue_risk(blocking: Sequence[TableBlocking], profile: ProductionProfile | None) -> tuple[LockQueueRisk, ...]:
    """One entry per table whose traffic a lock of the change blocks and whose activity is known."""
    if profile is None:
        return ()
    risks = []
    for entry in blocking:
        figures = profile.tables.get(entry.table)
        if figures is None or not figures.has_activity:
            continue
        blocks_reads = entry.reads_blocked_ms > 0
        blocks_writes = entry.writes_blocked_ms > 0
        if not (blocks_reads or blocks_writes):
            continue
        qps = figures.queries_per_second or 0.0
        blocked_qps = qps if blocks_reads else (figures.writes_per_second if figures.writes_per_second is not None else qps)
        hold_ms = entry.reads_blocked_estimated_ms if blocks_reads else entry.writes_blocked_estimated_ms
        wait_ms = (figures.oldest_transaction_seconds or 0.0) * 1000
        low, high = LOCK_TIMEOUT_BOUNDS_MS
        timeout_ms = int(min(max(QUEUE_BUDGET / blocked_qps * 1000, low), high)) if blocked_qps > 0 else high
        retries = min(max(math.ceil(wait_ms / timeout_ms) + 2, 3), MAX_RETRIES)
        risks.append(
            LockQueueRisk(
                table=entry.table,
                lock_mode=entry.strongest_lock,
                queries_per_second=float(qps),
                blocked_queries_per_second=float(round(blocked_qps, 3)),
                oldest_transaction_seconds=(
                    None if figures.oldest_transaction_seconds is None else float(figures.oldest_transaction_seconds)
                ),
                estimated_hold_ms=float(hold_ms),
                worst_case_wait_ms=float(round(wait_ms, 3)),
                pile_up_queries=math.ceil(blocked_qps * (wait_ms + hold_ms) / 1000),
                pile_up_with_timeout_queries=math.ceil(blocked_qps * (min(wait_ms, timeout_ms) + hold_ms) / 1000),
                recommended_lock_timeout_ms=timeout_ms,
                recommended_retries=retries,
                retry_backoff_ms=FIRST_BACKOFF_MS,
                note=(
                    ""
                    if figures.oldest_transaction_seconds is not None
                    else "oldest transaction age not uploaded: the wait for it is not counted"
                ),
            )
        )
    return tuple(risks)
