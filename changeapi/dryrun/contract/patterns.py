"""The report's `access_patterns` block: a project's key queries planned before and after the change."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True, kw_only=True)
class PlanNode:
    depth: int
    node_type: str
    label: str
    relation: str | None
    index: str | None
    condition: str | None = None
    startup_cost: float
    total_cost: float
    rows: float


@dataclass(frozen=True, slots=True, kw_only=True)
class PlanScan:
    table: str
    scan_method: str
    indexes: tuple[str, ...]
    rows: float


@dataclass(frozen=True, slots=True, kw_only=True)
class PlanSummary:
    """A pattern's plan (EXPLAIN, never ANALYZE): its cost, how it reads each table, its nodes."""

    summary: str
    total_cost: float
    startup_cost: float
    rows: float
    node_types: tuple[str, ...]
    indexes: tuple[str, ...]
    scans: tuple[PlanScan, ...]
    nodes: tuple[PlanNode, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class PlanFailure:
    """The error the server gave instead of a plan."""

    error: str
    sqlstate: str | None


PatternPlan = PlanSummary | PlanFailure


@dataclass(frozen=True, slots=True, kw_only=True)
class PatternTableSize:
    """The size a table was planned at on the shadow, beside its production size."""

    table: str
    seed_rows: int | None
    seed_pages: int
    production_rows: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class AccessPatternVerdict:
    """One pattern's plans before and after the change, and whether it got worse."""

    name: str
    sql: str
    orm: str
    weight: float | None
    verdict: str
    reasons: tuple[str, ...]
    cost_ratio: float | None
    before: PatternPlan
    after: PatternPlan | None
    tables: tuple[PatternTableSize, ...]
    warnings: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class VerdictCounts:
    unchanged: int = 0
    improved: int = 0
    regressed: int = 0
    broken: int = 0
    invalid: int = 0
    not_compared: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class AccessPatterns:
    """The project's key queries explained before and after the change, and at what sizes."""

    note: str
    seed_max_rows: int | None
    tables: tuple[PatternTableSize, ...]
    planner_settings: Mapping[str, str] = field(default_factory=dict)
    regression_factor: float
    large_table_rows: int
    verdicts: VerdictCounts
    patterns: tuple[AccessPatternVerdict, ...]
