"""What the engine recorded while a plan ran: migrations, statements, their locks and estimates.

Engine-neutral where the engines agree: a lock is a `mode` on a relation and what it blocks.
Parts only one engine has (a MySQL DDL algorithm, a metadata lock) are optional fields,
absent from the JSON when None, so a report of another engine leaves them out.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from changeapi.dryrun.contract.fields import ABSENT_WHEN_EMPTY, ABSENT_WHEN_FALSE, ABSENT_WHEN_NONE, WHEN_COMPLETED


@dataclass(frozen=True, slots=True, kw_only=True)
class Lock:
    """A lock the statement took (observed in pg_locks after it, not held before it), or documented for it.

    Only the locks a statement newly acquired are listed on it, so a report grows with its
    statements, not with their square; what a transaction holds at its end is on the
    transaction (`TransactionEntry.held`), and what was held while a statement ran is
    derived from both (`analysis.held.held_by_statement`).
    """

    relation: str
    relation_kind: str
    table: str | None
    mode: str
    blocks_reads: bool
    blocks_writes: bool
    blocks_ddl: bool
    source: str = "observed"


@dataclass(frozen=True, slots=True, kw_only=True)
class HeldLock:
    """The strongest lock on an existing table, and the statement that took it."""

    table: str
    mode: str
    blocks_reads: bool
    blocks_writes: bool
    source: str = "observed"
    statement_index: int | None = field(default=None, metadata=ABSENT_WHEN_NONE)


@dataclass(frozen=True, slots=True, kw_only=True)
class TransactionEntry:
    """One transaction of the run: its statements, when it released its locks, what it held then.

    `released_ms` is the commit, or the end of the run for a transaction rolled back by a
    failure. `held` has the strongest lock per existing table (relations the run created
    block nobody and are left out): the locks every session waits on until the release.
    """

    id: int
    migration: str
    first_statement: int
    last_statement: int
    committed: bool
    released_ms: float
    estimated_released_ms: float
    held: tuple[HeldLock, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class StatementEvent:
    """What the server said it did: a rewrite, a verifying scan, a validation, an index build."""

    kind: str
    table: str | None
    object: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Scan:
    table: str
    count: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Estimate:
    """Measured time on the shadow and the estimate at production size, with its basis."""

    work_class: str
    measured_ms: float
    estimated_ms: float | None
    low_ms: float | None
    high_ms: float | None
    scale: float | None  # production bytes over the shadow's, for the tables worked on
    exponent: float | None  # the growth in rows applied, as an exponent of rows_scale
    basis: str
    rows_scale: float | None = None  # production rows over the shadow's
    width_scale: float | None = None  # the factor for production's bytes per row against the shadow's
    law: str | None = None  # constant | linear | n_log_n
    range_factor: float | None = None  # low = estimate / factor, high = estimate * factor (before a spill step)


@dataclass(frozen=True, slots=True, kw_only=True)
class SeededDataFailure:
    """The statement failed on the shadow only because of synthetic rows the seeder made.

    Those rows were changed to satisfy it (inside the statement's own savepoint) and the
    statement ran again, so the dry-run went on. In production it fails only if rows exist
    as `fails_in_production_if` says: `production_check` is a read-only query that counts
    them (no values), for the team to run before deploying.
    """

    kind: str  # value_too_long | duplicate_values | null_values
    sqlstate: str
    error: str
    table: str
    columns: tuple[str, ...]
    seeded_rows: int
    fails_in_production_if: str
    production_check: str


@dataclass(frozen=True, slots=True, kw_only=True)
class DdlRefusal:
    """A clause the server refused for the statement (MySQL/MariaDB errors 1845-1847), and why."""

    clause: str  # e.g. ALGORITHM=INSTANT, LOCK=NONE
    code: int
    message: str


@dataclass(frozen=True, slots=True, kw_only=True)
class OnlineDdl:
    """MySQL/MariaDB: how the server runs one DDL statement, asked of the server itself.

    `algorithm` is the most efficient of INSTANT, NOCOPY (MariaDB), INPLACE, COPY and `lock`
    the weakest of NONE, SHARED, EXCLUSIVE that the server accepted for the statement, each
    tried on an empty copy of the table (None when it accepted none, or the statement could
    not be tried: `probe_error` says why). `blocks_reads`/`blocks_writes` follow from that
    lock for the statement's duration; every ALTER also takes an exclusive metadata lock
    briefly at its start and end, which queues behind any open transaction on the table.
    `rebuilt` is a new InnoDB table id after the statement ran as Django runs it, and
    `rows_copied` the rows the server reported passing through the copy (`Records: N`).
    `observed_blocks_*` are what a read and a write from other sessions met while it ran
    (`mysql_blocking`: blocked when one waited a quarter of the statement's time or more), and
    `observed_*_wait_ms` the longest each waited: None when it was over too soon to observe.
    `probe_ms` is how long the accepted algorithm took on the one-row copy: the statement's
    fixed cost, which the production estimate does not scale. A rebuild that allows LOCK=NONE can still stop both for a while as it starts and commits.
    """

    table: str
    algorithm: str | None
    lock: str | None
    refusals: tuple[DdlRefusal, ...] = ()
    probe_error: str | None = field(default=None, metadata=ABSENT_WHEN_NONE)
    blocks_reads: bool | None = None
    blocks_writes: bool | None = None
    table_id_before: int | None = None
    table_id_after: int | None = None
    rebuilt: bool | None = None
    rows_copied: int | None = None
    observed_blocks_reads: bool | None = None
    observed_blocks_writes: bool | None = None
    observed_read_wait_ms: float | None = None
    observed_write_wait_ms: float | None = None
    probe_ms: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TableRemake:
    """SQLite: Django's remake of one table, as one step of the change.

    Django's SQLite schema editor makes most changes SQLite's ALTER TABLE cannot by building
    the table anew: CREATE TABLE "new__t", INSERT INTO "new__t" SELECT … FROM "t", DROP TABLE
    "t", ALTER TABLE "new__t" RENAME TO "t", then t's indexes again (`statement_indexes`).
    `duration_ms` is the sum of those statements' times on the shadow and `rows` the rows the
    copy moved there (None when SQLite did not say). All the while the database's one write
    lock is held: every other writer, on any table, waits.
    """

    table: str
    migration: str
    operation_index: int | None
    statement_indexes: tuple[int, ...]
    duration_ms: float
    rows: int | None
    # At production size: the sum of its statements' estimates (the copy linear in the rows,
    # the indexes n log n, the rest constant); absent on reports made before it was estimated.
    estimate: Estimate | None = field(default=None, metadata=ABSENT_WHEN_NONE)


@dataclass(frozen=True, slots=True, kw_only=True)
class StatementTrace:
    """One statement as it ran on the shadow, what it did, and its estimate.

    `locks` is None for a statement that did not complete (it failed, or ended its
    transaction): it then has no locks, rewrites or scans, and may have an `error`.
    """

    index: int
    migration: str
    operation_index: int | None
    sql: str
    command: str = ""
    target_tables: tuple[str, ...] = ()
    concurrently: bool = False
    transactional: bool
    transaction: int | None
    started_ms: float
    duration_ms: float | None
    notices: tuple[str, ...]
    events: tuple[StatementEvent, ...] = ()
    transaction_boundary: bool = field(default=False, metadata=ABSENT_WHEN_FALSE)
    locks: tuple[Lock, ...] | None = field(default=None, metadata=ABSENT_WHEN_NONE)
    rewrites: tuple[str, ...] = field(default=(), metadata=WHEN_COMPLETED)
    rebuilt_indexes: tuple[str, ...] = field(default=(), metadata=WHEN_COMPLETED)
    sequential_scans: tuple[Scan, ...] = field(default=(), metadata=WHEN_COMPLETED)
    created_relations: tuple[str, ...] = field(default=(), metadata=WHEN_COMPLETED)
    dropped_relations: tuple[str, ...] = field(default=(), metadata=WHEN_COMPLETED)
    locks_source: str = field(default="observed", metadata=WHEN_COMPLETED)
    volatile_default_columns: tuple[str, ...] = field(default=(), metadata=WHEN_COMPLETED)
    error: str | None = field(default=None, metadata=ABSENT_WHEN_NONE)
    work_class: str | None = field(default=None, metadata=ABSENT_WHEN_NONE)
    work_tables: tuple[str, ...] = ()
    evidence: str = ""
    estimate: Estimate | None = field(default=None, metadata=ABSENT_WHEN_NONE)
    seeded_failures: tuple[SeededDataFailure, ...] = field(default=(), metadata=ABSENT_WHEN_EMPTY)
    # MySQL/MariaDB: DDL is not transactional there; each such statement commits on its own
    # (and commits whatever the session had open), so a failure later leaves it applied.
    commits_on_its_own: bool = field(default=False, metadata=ABSENT_WHEN_FALSE)
    online_ddl: OnlineDdl | None = field(default=None, metadata=ABSENT_WHEN_NONE)

    @property
    def end_ms(self) -> float:
        return self.started_ms + (self.duration_ms or 0.0)


@dataclass(frozen=True, slots=True, kw_only=True)
class MigrationOperation:
    index: int
    type: str
    description: str
    executed: bool
    note: str


@dataclass(frozen=True, slots=True, kw_only=True)
class MigrationEntry:
    """One migration of the plan as it ran: its operations and when it started and finished."""

    app_label: str
    name: str
    atomic: bool
    operations: tuple[MigrationOperation, ...]
    started_ms: float
    finished_ms: float | None

    @property
    def label(self) -> str:
        return f"{self.app_label}.{self.name}"


@dataclass(frozen=True, slots=True, kw_only=True)
class ReportError:
    """The first error of the run: the database's message and where it happened."""

    message: str
    sqlstate: str | None
    statement_index: int | None
    migration: str
    operation_index: int | None
