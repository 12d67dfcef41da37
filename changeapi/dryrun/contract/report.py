"""The dry-run report: what a change did on the shadow, and what that means in production."""

from __future__ import annotations

from dataclasses import dataclass, field

from changeapi.dryrun.contract.analysis import (
    EstimationModel,
    Finding,
    FindingCounts,
    LockQueueRisk,
    LockSpan,
    Reversibility,
    TableBlocking,
)
from changeapi.dryrun.contract.backfill import BackfillTiming
from changeapi.dryrun.contract.drift import SchemaDrift, SchemaSource
from changeapi.dryrun.contract.fields import ABSENT_WHEN_EMPTY, ABSENT_WHEN_NONE
from changeapi.dryrun.contract.patterns import AccessPatterns
from changeapi.dryrun.contract.statements import MigrationEntry, ReportError, StatementTrace, TableRemake, TransactionEntry

REPORT_VERSION = 3
"""Written into every report as `report_version`. Reports stored without one are version 1:
the same shape, with the keys added since then possibly missing. Version 3 lists on each
statement only the locks it newly acquired and adds `transactions`; earlier reports listed
every lock the session held, flagged `acquired_by_statement`, and `held_locks`."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Summary:
    migrations: int
    operations: int
    statements: int
    rewrites: tuple[str, ...]
    tables_scanned: tuple[str, ...]
    data_steps_not_executed: int
    estimated_total_ms: float | None = None
    findings: FindingCounts = FindingCounts()
    reversible: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Report:
    """One dry-run's report, as stored on `DryRun.report` (through `to_json`) and served by the API."""

    report_version: int = REPORT_VERSION
    engine: str
    server: str
    server_version: str
    shadow_database: str
    clone_ms: float
    started_at: str
    finished_at: str
    status: str
    error: ReportError | None
    total_ms: float
    summary: Summary
    migrations: tuple[MigrationEntry, ...]
    statements: tuple[StatementTrace, ...]
    lock_spans: tuple[LockSpan, ...]
    tables: tuple[TableBlocking, ...]
    transactions: tuple[TransactionEntry, ...] = ()
    estimation: EstimationModel | None = field(default=None, metadata=ABSENT_WHEN_NONE)
    lock_queue: tuple[LockQueueRisk, ...] = ()
    reversibility: tuple[Reversibility, ...] = ()
    findings: tuple[Finding, ...] = ()
    access_patterns: AccessPatterns | None = field(default=None, metadata=ABSENT_WHEN_NONE)
    schema_drift: SchemaDrift | None = field(default=None, metadata=ABSENT_WHEN_NONE)
    # Additive: reports without Backfill steps (and those stored before them) have no key.
    backfills: tuple[BackfillTiming, ...] = field(default=(), metadata=ABSENT_WHEN_EMPTY)
    schema_source: SchemaSource | None = field(default=None, metadata=ABSENT_WHEN_NONE)
    # SQLite: the tables Django remade (additive: other engines' reports have no key).
    remakes: tuple[TableRemake, ...] = field(default=(), metadata=ABSENT_WHEN_EMPTY)

    def statement(self, index: int | None) -> StatementTrace | None:
        """The statement at `index`, if the report has it."""
        if index is None or not 0 <= index < len(self.statements):
            return None
        return self.statements[index]
