"""What the analysis makes of a run: lock spans, blocked time per table, lock queue risk,
reversibility, the time model and findings."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class LockSpan:
    """A lock from the statement that acquired it until its transaction released it,
    on the shadow and at production size."""

    table: str | None
    relation: str
    mode: str
    statement_index: int
    from_ms: float
    to_ms: float
    held_ms: float
    estimated_from_ms: float
    estimated_to_ms: float
    estimated_held_ms: float
    blocks_reads: bool
    blocks_writes: bool
    blocks_ddl: bool = True
    source: str = "observed"
    new_relation: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class TableBlocking:
    """How long an existing table's reads and writes were blocked, and its strongest lock."""

    table: str
    strongest_lock: str
    reads_blocked_ms: float
    writes_blocked_ms: float
    reads_blocked_estimated_ms: float
    writes_blocked_estimated_ms: float


@dataclass(frozen=True, slots=True, kw_only=True)
class LockQueueRisk:
    """Queries piling up behind a blocking lock request, from uploaded production activity."""

    table: str
    lock_mode: str
    queries_per_second: float
    blocked_queries_per_second: float
    oldest_transaction_seconds: float | None
    estimated_hold_ms: float
    worst_case_wait_ms: float
    pile_up_queries: int
    pile_up_with_timeout_queries: int
    recommended_lock_timeout_ms: int
    recommended_retries: int
    retry_backoff_ms: int
    note: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Reversibility:
    """Whether a migration can be rolled back, and the backwards SQL run on the shadow."""

    migration: str
    reversible: bool
    checked: bool
    reason: str
    backwards_sql: tuple[str, ...]
    data_loss: tuple[str, ...]
    backwards_ms: float | None
    data_steps_not_executed: int


@dataclass(frozen=True, slots=True, kw_only=True)
class SaferAlternative:
    summary: str
    steps: tuple[str, ...]
    example: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Finding:
    """One rule of the catalog (docs/findings.md) that the change triggers, with where and why."""

    code: str
    rule: str
    title: str
    severity: str
    message: str
    migration: str | None = None
    operation_index: int | None = None
    statement_index: int | None = None
    table: str | None = None
    safer_alternative: SaferAlternative
    docs: str


@dataclass(frozen=True, slots=True, kw_only=True)
class FindingCounts:
    high: int = 0
    medium: int = 0
    low: int = 0
    info: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class ClassExponent:
    """One class of work's fitted law: its formula and coefficients, the timings it was fitted
    from, and the uncertainty the estimate's range is made of."""

    work_class: str
    exponent: float
    small_ms: float
    large_ms: float
    fixed_ms: float
    note: str
    law: str = ""  # linear | n_log_n (in rows)
    formula: str = ""
    coefficient_ms: float = 0.0  # per row, or per row * log2(rows), at the larger size
    deviation: float = 0.0  # exponent of the rows' growth beyond the law, bounded, applied
    residual: float = 0.0  # the same, as fitted
    noise: float = 0.0  # relative spread of repeated runs


@dataclass(frozen=True, slots=True, kw_only=True)
class CalibrationSize:
    rows: int
    bytes: int


@dataclass(frozen=True, slots=True, kw_only=True)
class CatalogOnlyCost:
    """What a catalog-only statement costs on the shadow server, timed `runs` times over several
    kinds at template build: the constant such a statement is estimated at (`median_ms`) and
    the spread the machine's jitter gives one timing of it."""

    median_ms: float
    low_ms: float  # 10th percentile
    high_ms: float  # 90th percentile
    max_ms: float
    runs: int


@dataclass(frozen=True, slots=True, kw_only=True)
class SeededTable:
    """One seeded table: its rows and bytes, and which of its columns were shaped by uploaded
    column statistics and which by the seeder's documented defaults (docs/table-stats.md)."""

    table: str
    rows: int
    bytes: int
    columns_from_stats: tuple[str, ...] = ()
    columns_by_default: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class EstimationModel:
    """The model that scaled measured times to production size, and how it was calibrated."""

    description: str
    calibrated: bool
    calibration_sizes: tuple[CalibrationSize, ...]
    exponents: tuple[ClassExponent, ...]
    overhead_ms: float
    maintenance_work_mem_bytes: int | None
    seeded_tables: tuple[SeededTable, ...]
    seed_warnings: tuple[str, ...]
    estimated: bool
    noise: float = 0.0  # the server's relative spread of repeated timings at calibration
    range_floor: float = 0.0  # the least range factor of any estimate: what the seed cannot know
    bytes_share: float = 0.0  # the share of per-row time assumed to follow bytes per row
    jitter_ms: float = 0.0  # the absolute widening of every range
    catalog_only: CatalogOnlyCost | None = None  # None on templates calibrated before it was timed


__all__ = [
    "CalibrationSize",
    "CatalogOnlyCost",
    "ClassExponent",
    "EstimationModel",
    "Finding",
    "FindingCounts",
    "LockQueueRisk",
    "LockSpan",
    "Reversibility",
    "SaferAlternative",
    "SeededTable",
    "TableBlocking",
]
