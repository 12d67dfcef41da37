"""The report contract: typed, immutable parts of a dry-run report and its one JSON form.

The engine builds a `Report`; analysis, renderings and everything outside the engine read its
attributes; `to_json` and `report_from_json` are the only code that knows its keys.
"""

from changeapi.dryrun.contract.analysis import (
    CalibrationSize,
    CatalogOnlyCost,
    ClassExponent,
    EstimationModel,
    Finding,
    FindingCounts,
    LockQueueRisk,
    LockSpan,
    Reversibility,
    SaferAlternative,
    SeededTable,
    TableBlocking,
)
from changeapi.dryrun.contract.backfill import BackfillAtScale, BackfillBatch, BackfillTiming, ParityCheck
from changeapi.dryrun.contract.codec import ReportFormatError, report_from_json, to_json
from changeapi.dryrun.contract.drift import SCHEMA_MIGRATIONS, SCHEMA_SNAPSHOT, DriftWarning, SchemaDrift, SchemaSource
from changeapi.dryrun.contract.fields import JsonValue
from changeapi.dryrun.contract.patterns import (
    AccessPatterns,
    AccessPatternVerdict,
    PatternPlan,
    PatternTableSize,
    PlanFailure,
    PlanNode,
    PlanScan,
    PlanSummary,
    VerdictCounts,
)
from changeapi.dryrun.contract.report import REPORT_VERSION, Report, Summary
from changeapi.dryrun.contract.statements import (
    DdlRefusal,
    Estimate,
    HeldLock,
    Lock,
    MigrationEntry,
    MigrationOperation,
    OnlineDdl,
    ReportError,
    Scan,
    SeededDataFailure,
    StatementEvent,
    StatementTrace,
    TransactionEntry,
)

__all__ = [
    "REPORT_VERSION",
    "SCHEMA_MIGRATIONS",
    "SCHEMA_SNAPSHOT",
    "AccessPatternVerdict",
    "AccessPatterns",
    "BackfillAtScale",
    "BackfillBatch",
    "BackfillTiming",
    "CalibrationSize",
    "CatalogOnlyCost",
    "ClassExponent",
    "DdlRefusal",
    "DriftWarning",
    "Estimate",
    "EstimationModel",
    "Finding",
    "FindingCounts",
    "HeldLock",
    "JsonValue",
    "Lock",
    "LockQueueRisk",
    "LockSpan",
    "MigrationEntry",
    "MigrationOperation",
    "ParityCheck",
    "OnlineDdl",
    "PatternPlan",
    "PatternTableSize",
    "PlanFailure",
    "PlanNode",
    "PlanScan",
    "PlanSummary",
    "Report",
    "ReportError",
    "ReportFormatError",
    "Reversibility",
    "SaferAlternative",
    "Scan",
    "SchemaDrift",
    "SchemaSource",
    "SeededDataFailure",
    "SeededTable",
    "StatementEvent",
    "StatementTrace",
    "TransactionEntry",
    "Summary",
    "TableBlocking",
    "VerdictCounts",
    "report_from_json",
    "to_json",
]
