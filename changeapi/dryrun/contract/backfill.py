"""The report's backfill steps: a sample of batches timed on the seeded clone, and what that means
for the whole backfill at production size.

Keys are written as text (`after_key`, `to_key`) whatever the column's type, so a later run of the
backfill (a command checkpointing by key, progress reported back) can resume from a report's
figures and compare with them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from changeapi.dryrun.contract.fields import ABSENT_WHEN_NONE
from changeapi.dryrun.contract.statements import Lock


@dataclass(frozen=True, slots=True, kw_only=True)
class BackfillBatch:
    """One batch as it ran on the clone, in a transaction of its own.

    A batch spans `keys` keys of the ordering key (`batch_size`, fewer for the last); `rows` of
    them matched the filter and were set. `duration_ms` is the whole batch (finding its upper key, the UPDATE, the commit);
    `lock_ms` the UPDATE until its commit, the time its rows stay locked. PostgreSQL keeps row
    locks in the rows, not in `pg_locks`: `rows_locked` is the rows the UPDATE changed, each
    locked until the commit; `locks` the relation locks the transaction held.
    `wal_bytes` is the WAL inserted from the batch's start to its commit
    (`pg_current_wal_insert_lsn()` diff; other sessions of the server may add to it).
    """

    index: int
    after_key: str | None  # exclusive lower bound; None for the first batch
    to_key: str  # inclusive upper bound
    keys: int
    rows: int
    rows_locked: int
    duration_ms: float
    lock_ms: float
    wal_bytes: int
    locks: tuple[Lock, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class ParityCheck:
    """The parity check's count (rows still to do), before and after the sample.

    `in_sampled_range` counts those left among the keys the sample covered: more than zero means
    the assignments do not make the rows they set pass the check, so the backfill never ends.
    `count_sql` is the count as Django compiled it on the clone, its values quoted by the server's
    driver: the release bundle's preflight runs it on the target before the contract migrations.
    """

    condition: str
    before: int
    after: int
    in_sampled_range: int
    holds_in_sampled_range: bool
    count_sql: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class BackfillAtScale:
    """The whole backfill at production size, from the sample and the project's table stats.

    `rows` is production's rows times the share of the shadow's rows the filter matched;
    `batches` production's rows over the batch size (a batch spans `batch_size` keys, matched or
    not). `batch_ms` is one batch's lock time at production
    size; `total_ms` all batches' work plus the pauses between them, with the range of the same
    model as every other estimate (docs/estimates.md); pauses are exact and not widened.
    """

    rows: int
    batches: int
    batch_ms: float
    batch_low_ms: float
    batch_high_ms: float
    work_ms: float
    pauses_ms: float
    total_ms: float
    low_ms: float
    high_ms: float
    rows_scale: float
    width_scale: float
    law: str
    range_factor: float
    basis: str


@dataclass(frozen=True, slots=True, kw_only=True)
class BackfillTiming:
    """One Backfill step of the change, sampled on the clone right after its migration committed.

    What it says of the step (`table`, `key_column`, `batch_size`, `pause_ms`, `sql` of one
    batch: the second, which has both bounds of the keyset, when the sample had one) is what a later run of the backfill needs to repeat it; `rows_total` and
    `rows_matched` are the shadow's table and the rows the filter matched before the sample;
    `sampled_keys` the keys the sampled batches spanned; `shadow_total_ms` the whole backfill on
    the shadow's rows at the sampled rate.
    `recommended_batch_size` keeps one batch's lock time at production size (upper bound)
    under `target_lock_ms`, the project's setting; None when the sample set no rows.
    """

    migration: str
    operation_index: int
    model: str
    table: str
    key_column: str
    batch_size: int
    pause_ms: int
    sql: str
    rows_total: int
    rows_matched: int
    batches: tuple[BackfillBatch, ...]
    sampled_rows: int
    sampled_wal_bytes: int
    sampled_keys: int
    covers_all_rows: bool
    shadow_batches: int
    shadow_total_ms: float
    parity: ParityCheck | None = field(default=None, metadata=ABSENT_WHEN_NONE)
    target_lock_ms: int = 200
    recommended_batch_size: int | None = None
    recommendation: str = ""
    at_production: BackfillAtScale | None = field(default=None, metadata=ABSENT_WHEN_NONE)
    estimate_basis: str = ""
