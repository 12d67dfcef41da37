"""Plans before and after a change, compared: a verdict per pattern, the report's `access_patterns`
block and the findings SG401-SG404.

A pure function of two snapshots, the production figures and the traced statements. Plans are
taken at the shadow's seeded sizes, so the block states those sizes beside production's and
warns where the plan at production size may differ.
"""

from __future__ import annotations

import dataclasses
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from changeapi.dryrun.access_patterns.explain import (
    INDEX_METHODS,
    AccessPattern,
    ForeignKeyFact,
    IndexFact,
    PatternsSnapshot,
)
from changeapi.dryrun.analysis.findings import SEVERITIES, finding, finding_counts
from changeapi.dryrun.contract import (
    AccessPatterns,
    AccessPatternVerdict,
    Finding,
    PatternPlan,
    PatternTableSize,
    PlanFailure,
    PlanScan,
    PlanSummary,
    Report,
    SaferAlternative,
    StatementTrace,
    VerdictCounts,
)
from changeapi.dryrun.profile import ProductionProfile

VERDICTS = ("unchanged", "improved", "regressed", "broken", "invalid", "not_compared")
DEFAULT_REGRESSION_FACTOR = 2.0
DEFAULT_LARGE_TABLE_ROWS = 10_000
HOT_CALLS_PER_SECOND = 10.0
RARE_CALLS_PER_SECOND = 0.1
METHOD_NAMES = {
    "seq_scan": "Seq Scan",
    "index_scan": "Index Scan",
    "index_only_scan": "Index Only Scan",
    "bitmap_scan": "Bitmap Scan",
}

NOTE = (
    "Plans are PostgreSQL's estimates (EXPLAIN, never ANALYZE) on the shadow, before and after the change, at "
    "the seeded sizes listed: each table is seeded at its production row count up to the seed cap "
    "(SCHEMAGATE_SEED_MAX_ROWS). PostgreSQL plans from a table's real pages, so a larger size cannot be "
    "simulated by editing pg_class; where a table is planned below its production size, the pattern's "
    "warnings say how the plan may differ there. Plans after the change use the statistics the tables had, "
    "as right after a deploy."
)


def regression_factor() -> float:
    return float(getattr(settings, "SCHEMAGATE_PLAN_REGRESSION_FACTOR", DEFAULT_REGRESSION_FACTOR))


def large_table_rows() -> int:
    return int(getattr(settings, "SCHEMAGATE_PLAN_LARGE_TABLE_ROWS", DEFAULT_LARGE_TABLE_ROWS))


@dataclass
class Sizes:
    """Rows of a table in production (table stats) and on the shadow when planned."""

    profile: ProductionProfile | None
    shadow: dict[str, tuple[int, int]]

    def production(self, table: str) -> int | None:
        figures = self.profile.tables.get(table) if self.profile else None
        return figures.rows if figures else None

    def seeded(self, table: str) -> int | None:
        rows = self.shadow.get(table, (-1, 0))[0]
        return rows if rows >= 0 else None

    def rows(self, table: str) -> int | None:
        """Production rows when known, else the rows the shadow holds."""
        production = self.production(table)
        return production if production is not None else self.seeded(table)

    def describe(self, table: str) -> str:
        production = self.production(table)
        if production is not None:
            return f"{production:,} rows in production"
        seeded = self.seeded(table)
        return f"{seeded:,} rows on the shadow, no table stats" if seeded is not None else "size unknown"

    def entry(self, table: str) -> PatternTableSize:
        rows, pages = self.shadow.get(table, (-1, 0))
        return PatternTableSize(
            table=table,
            seed_rows=rows if rows >= 0 else None,
            seed_pages=pages,
            production_rows=self.production(table),
        )


@dataclass
class Verdict:
    verdict: str
    reasons: list[str] = field(default_factory=list)
    lost_index: list[str] = field(default_factory=list)
    cost_ratio: float | None = None


def _access(plan: PlanSummary) -> dict[str, set[str]]:
    access: dict[str, set[str]] = defaultdict(set)
    for scan in plan.scans:
        access[scan.table].add(scan.scan_method)
    return access


def _scans(plan: PatternPlan | None) -> tuple[PlanScan, ...]:
    return plan.scans if isinstance(plan, PlanSummary) else ()


def _indexes(plan: PatternPlan) -> tuple[str, ...]:
    return plan.indexes if isinstance(plan, PlanSummary) else ()


def _methods(methods: set[str]) -> str:
    return " + ".join(METHOD_NAMES[m] for m in sorted(methods))


def compare_plans(before: PatternPlan, after: PatternPlan | None, *, sizes: Sizes, factor: float, large_rows: int) -> Verdict:
    """unchanged, improved or regressed (or broken / invalid / not_compared), with the reasons.

    Regressed: an index scan became a sequential scan on a large table (production rows, or
    shadow rows without stats, at least `large_rows`), or the estimated cost grew more than
    `factor` times. Improved: a sequential scan became an index scan at a lower cost, or the
    cost fell more than `factor` times.
    """
    if isinstance(before, PlanFailure):
        return Verdict("invalid", [f"the pattern fails on the baseline: {before.error}"])
    if after is None:
        return Verdict("not_compared", ["the change failed on the shadow: no plan after it"])
    if isinstance(after, PlanFailure):
        return Verdict("broken", [f"the query fails after the change: {after.error}"])
    old, new = _access(before), _access(after)
    lost = sorted(t for t in new if "seq_scan" in new[t] and old.get(t) and old[t] <= INDEX_METHODS)
    gained = sorted(t for t in old if "seq_scan" in old[t] and new.get(t) and new[t] <= INDEX_METHODS)
    ratio = round(after.total_cost / before.total_cost, 3) if before.total_cost > 0 else None
    cost = f"estimated cost {before.total_cost:,.2f} → {after.total_cost:,.2f}"
    large = [t for t in lost if (sizes.rows(t) or 0) >= large_rows]
    reasons = [f"{_methods(old[t])} → Seq Scan on {t} ({sizes.describe(t)})" for t in large]
    if ratio is not None and ratio > factor:
        reasons.append(f"{cost} (×{ratio:,.1f}, above the factor {factor:g})")
    if reasons:
        return Verdict("regressed", reasons, lost_index=lost, cost_ratio=ratio)
    cheaper = ratio is not None and ratio < 1
    if (gained and cheaper) or (ratio is not None and ratio < 1 / factor):
        reasons = [f"Seq Scan → {_methods(new[t])} on {t} ({sizes.describe(t)})" for t in gained]
        return Verdict("improved", [*reasons, f"{cost} (×{ratio:,.2f})"], cost_ratio=ratio)
    reasons = [
        f"{_methods(old[t])} → Seq Scan on {t}, a small table ({sizes.describe(t)}): below "
        f"SCHEMAGATE_PLAN_LARGE_TABLE_ROWS ({large_rows:,}) and within the cost factor"
        for t in lost
    ]
    if before.summary != after.summary or before.total_cost != after.total_cost:
        reasons.append(f"plan changed within the cost factor {factor:g}: {cost}")
    return Verdict("unchanged", reasons, lost_index=lost, cost_ratio=ratio)


def seed_warnings(plan: PatternPlan, sizes: Sizes, foreign_keys: list[ForeignKeyFact]) -> list[str]:
    """Where the plan at production size may differ from the plan taken on the shadow."""
    if isinstance(plan, PlanFailure):
        return []
    if sizes.profile is None or not sizes.profile.has_sizes:
        return ["no table stats were uploaded: the shadow was not seeded, so this plan was taken on empty tables"]
    warnings = []
    tables = list(dict.fromkeys(scan.table for scan in plan.scans))
    for table in tables:
        production, seeded = sizes.production(table), sizes.seeded(table)
        if production is None:
            warnings.append(f"{table} has no table stats: planned at its seeded size ({sizes.describe(table)})")
            continue
        methods = {s.scan_method for s in plan.scans if s.table == table}
        if seeded is not None and "seq_scan" in methods and production > seeded * 1.5:
            warnings.append(
                f"Seq Scan on {table} planned at {seeded:,} rows; production has {production:,} "
                f"(×{production / max(seeded, 1):,.0f}): the scan costs that much more there, and at that size "
                "the planner may prefer an index if one fits the query"
            )
        conditions = " ".join(n.condition or "" for n in plan.nodes)
        for fk in foreign_keys:
            if fk.table == table and any(re.search(rf"\b{re.escape(c)}\b", conditions) for c in fk.columns):
                warnings += _rows_per_key(fk, sizes)
    return warnings


def _rows_per_key(fk: ForeignKeyFact, sizes: Sizes) -> list[str]:
    """Capping tables one by one changes how many child rows share a parent key: say by how much."""
    child, parent = sizes.production(fk.table), sizes.production(fk.parent)
    seeded_child, seeded_parent = sizes.seeded(fk.table), sizes.seeded(fk.parent)
    if not (child and parent and seeded_child and seeded_parent):
        return []
    shadow, production = seeded_child / seeded_parent, child / parent
    if max(shadow, production) <= 2 * min(shadow, production):
        return []
    direction = f"{production / shadow:,.0f}× lower" if production > shadow else f"{shadow / production:,.0f}× higher"
    return [
        f"{fk.table} has {shadow:,.1f} rows per {fk.parent} on the shadow and {production:,.1f} in production "
        f"(each table is seeded up to the cap on its own): row estimates for filters and joins on "
        f"{', '.join(fk.columns)} are about {direction} than production's"
    ]


def _size_severity(rows: int | None) -> str:
    if rows is None:
        return "medium"
    if rows >= 1_000_000:
        return "high"
    return "medium" if rows >= 100_000 else "low"


def _weighted(severity: str, weight: float | None) -> str:
    """A hot query (>= 10 calls/s) is one level more severe, a rare one (< 0.1 calls/s) one less."""
    order = ["low", "medium", "high"]
    level = order.index(severity)
    if weight is not None and weight >= HOT_CALLS_PER_SECOND:
        level = min(level + 1, 2)
    elif weight is not None and weight < RARE_CALLS_PER_SECOND:
        level = max(level - 1, 0)
    return order[level]


def _statement_touching(
    statements: Sequence[StatementTrace], *, dropped: frozenset[str] = frozenset(), created: frozenset[str] = frozenset()
) -> StatementTrace | None:
    """The first statement that dropped or created one of the named relations."""
    for statement in statements:
        if dropped & set(statement.dropped_relations) or created & set(statement.created_relations):
            return statement
    return None


def _located(
    code: str, statement: StatementTrace | None, *, severity: str, message: str, alternative: SaferAlternative, table: str | None
) -> Finding:
    """A finding at the statement that made the change it is about, when there is one."""
    return finding(
        code,
        severity=severity,
        message=message,
        safer_alternative=alternative,
        table=table,
        migration=statement.migration if statement is not None else None,
        operation_index=statement.operation_index if statement is not None else None,
        statement_index=statement.index if statement is not None else None,
    )


def _concurrently(index: IndexFact) -> str:
    return index.definition.replace("INDEX", "INDEX CONCURRENTLY", 1) + ";"


@dataclass
class _Context:
    patterns: list[AccessPattern]
    before: PatternsSnapshot
    after: PatternsSnapshot | None
    sizes: Sizes
    statements: Sequence[StatementTrace]
    results: dict[str, dict[str, Any]] = field(default_factory=dict)


def _regression_severity(ctx: _Context, pattern: AccessPattern) -> str:
    """High for a broken query; else by the largest table concerned, then by the pattern's weight."""
    result = ctx.results[pattern.name]
    if result["verdict"] == "broken":
        return "high"
    tables = result["lost_index"] or [s.table for s in _scans(ctx.before.plans[pattern.name])]
    rows = max((ctx.sizes.rows(t) or 0 for t in tables), default=None)
    return _weighted(_size_severity(rows), pattern.weight)


def _regressions(ctx: _Context) -> list[Finding]:
    """SG401: a pattern that regressed, or fails, after the change; severity by size and weight."""
    findings = []
    for pattern in ctx.patterns:
        result = ctx.results[pattern.name]
        if result["verdict"] not in ("regressed", "broken"):
            continue
        before = ctx.before.plans[pattern.name]
        tables = result["lost_index"] or list(dict.fromkeys(s.table for s in _scans(before)))
        table = tables[0] if tables else None
        used = set(_indexes(before))
        dropped = [ctx.before.indexes[name] for name in sorted(used) if ctx.after and name not in ctx.after.indexes]
        statement = _statement_touching(ctx.statements, dropped=frozenset(i.name for i in dropped))
        calls = f" ({pattern.weight:g} calls/s)" if pattern.weight is not None else ""
        message = f"access pattern {pattern.name!r}{calls} {result['verdict']}: " + "; ".join(result["reasons"])
        steps = [
            "Compare the pattern's plans before and after in the report (access_patterns).",
            "Keep (or add, concurrently) an index that serves the query, or change the query with the schema.",
        ]
        example = "\n".join(_concurrently(index) for index in dropped)
        if dropped:
            steps.insert(0, f"Keep {', '.join(i.name for i in dropped)}: the pattern used it before the change.")
        findings.append(
            _located(
                "SG401",
                statement,
                severity=_regression_severity(ctx, pattern),
                message=message,
                alternative=SaferAlternative(
                    summary="Keep the query's plan: serve it with an index.", steps=tuple(steps), example=example
                ),
                table=table,
            )
        )
    return findings


def _unused_indexes(ctx: _Context) -> list[Finding]:
    """SG402: an index the change adds to an existing table that no pattern's plan uses."""
    after = ctx.after
    planned = [plan for plan in (after.plans.values() if after else []) if isinstance(plan, PlanSummary)]
    if after is None or not planned:
        return []
    used = {index for plan in planned for index in plan.indexes}
    findings = []
    for name, index in sorted(after.indexes.items()):
        renamed = any(index.same_index_as(old) for old in ctx.before.indexes.values())
        if name in ctx.before.indexes or renamed or index.table not in ctx.before.sizes:
            continue
        supports_fk = any(
            fk.table == index.table and set(index.columns[: len(fk.columns)]) == set(fk.columns)
            for fk in after.foreign_keys.values()
        )
        if index.unique or index.backs_constraint or supports_fk or name in used:
            continue
        statement = _statement_touching(ctx.statements, created=frozenset({name}))
        findings.append(
            _located(
                "SG402",
                statement,
                severity="low",
                message=f"new index {name} on {index.table} ({', '.join(index.columns)}) is used by none of the "
                f"{len(planned)} access patterns; it is written on every INSERT and on UPDATEs of its "
                f"columns of {index.table} ({ctx.sizes.describe(index.table)})",
                alternative=SaferAlternative(
                    summary="Add the index with the query that needs it, or record that query as an access pattern.",
                    steps=(
                        "If a query needs the index, add it as an access pattern: the next dry-run shows the plan using it.",
                        "Otherwise leave the index out of this change.",
                    ),
                ),
                table=index.table,
            )
        )
    return findings


def _unindexed_foreign_keys(ctx: _Context) -> list[Finding]:
    """SG403: a foreign key the change adds with no index leading with its columns."""
    after = ctx.after
    if after is None:
        return []
    findings = []
    for key, fk in sorted(after.foreign_keys.items()):
        if key in ctx.before.foreign_keys or after.supported(fk):
            continue
        existing = fk.table in ctx.before.sizes
        statement = next((s for s in ctx.statements if f'"{fk.name}"' in s.sql or f" {fk.name} " in s.sql), None)
        columns = ", ".join(fk.columns)
        findings.append(
            _located(
                "SG403",
                statement,
                severity=_size_severity(ctx.sizes.production(fk.table)) if existing else "low",
                message=f"new foreign key {fk.name} on {fk.table} ({columns}) → {fk.parent} has no index leading with "
                f"{columns}: every DELETE or key UPDATE on {fk.parent} scans {fk.table} "
                f"({ctx.sizes.describe(fk.table)}), and joins from {fk.parent} to {fk.table} cannot use an index",
                alternative=SaferAlternative(
                    summary="Index the foreign key's columns (Django's default for a ForeignKey, db_index=True).",
                    steps=(
                        "Keep db_index=True on the ForeignKey, or add an index on its columns.",
                        "On a large existing table, build it with AddIndexConcurrently in a non-atomic migration.",
                    ),
                    example=f"CREATE INDEX CONCURRENTLY {fk.table}_{'_'.join(fk.columns)}_idx ON {fk.table} ({columns});",
                ),
                table=fk.table,
            )
        )
    return findings


def _dropped_indexes(ctx: _Context) -> list[Finding]:
    """SG404: an index the change drops that a pattern's plan used before it."""
    after = ctx.after
    if after is None:
        return []
    findings = []
    order = {severity: i for i, severity in enumerate(SEVERITIES)}
    for name, index in sorted(ctx.before.indexes.items()):
        if name in after.indexes or any(other.same_index_as(index) for other in after.indexes.values()):
            continue
        users = [p for p in ctx.patterns if name in _indexes(ctx.before.plans[p.name])]
        if not users:
            continue
        verdicts = ", ".join(f"{p.name!r} {ctx.results[p.name]['verdict']}" for p in users)
        hurt = [p for p in users if ctx.results[p.name]["verdict"] in ("regressed", "broken")]
        severities = [_regression_severity(ctx, p) for p in hurt]
        statement = _statement_touching(ctx.statements, dropped=frozenset({name}))
        findings.append(
            _located(
                "SG404",
                statement,
                severity=min(severities, key=lambda s: order[s]) if severities else "low",
                message=f"the change drops index {name} on {index.table}, which access patterns used: {verdicts}",
                alternative=SaferAlternative(
                    summary="Keep the index while queries use it; drop it in a later release once none does.",
                    steps=(
                        "Keep the index in this change.",
                        "Move the queries off it (and update their access patterns) first; drop it concurrently later.",
                    ),
                    example=f"-- in a later release, once no access pattern uses it:\nDROP INDEX CONCURRENTLY {name};",
                ),
                table=index.table,
            )
        )
    return findings


def access_patterns_report(
    *,
    patterns: list[AccessPattern],
    before: PatternsSnapshot,
    after: PatternsSnapshot | None,
    profile: ProductionProfile | None,
    statements: Sequence[StatementTrace],
    factor: float | None = None,
    large_rows: int | None = None,
) -> tuple[AccessPatterns, list[Finding]]:
    """The report's `access_patterns` block and its findings (SG401-SG404)."""
    factor = factor if factor is not None else regression_factor()
    large_rows = large_rows if large_rows is not None else large_table_rows()
    sizes = Sizes(profile, before.sizes)
    ctx = _Context(patterns=patterns, before=before, after=after, sizes=sizes, statements=statements)
    entries: list[AccessPatternVerdict] = []
    for pattern in patterns:
        plan_before = before.plans[pattern.name]
        plan_after = after.plans[pattern.name] if after is not None else None
        verdict = compare_plans(plan_before, plan_after, sizes=sizes, factor=factor, large_rows=large_rows)
        ctx.results[pattern.name] = {"verdict": verdict.verdict, "reasons": verdict.reasons, "lost_index": verdict.lost_index}
        tables = list(dict.fromkeys(s.table for plan in (plan_before, plan_after) for s in _scans(plan)))
        entries.append(
            AccessPatternVerdict(
                name=pattern.name,
                sql=pattern.sql,
                orm=pattern.orm,
                weight=None if pattern.weight is None else float(pattern.weight),
                verdict=verdict.verdict,
                reasons=tuple(verdict.reasons),
                cost_ratio=None if verdict.cost_ratio is None else float(verdict.cost_ratio),
                before=plan_before,
                after=plan_after,
                tables=tuple(sizes.entry(t) for t in tables),
                warnings=tuple(seed_warnings(plan_before, sizes, list(before.foreign_keys.values()))),
            )
        )
    seen = list(dict.fromkeys(t.table for entry in entries for t in entry.tables))
    block = AccessPatterns(
        note=NOTE,
        seed_max_rows=profile.seed_max_rows if profile is not None and profile.has_sizes else None,
        tables=tuple(sizes.entry(t) for t in seen),
        planner_settings=dict(before.settings),
        regression_factor=float(factor),
        large_table_rows=large_rows,
        verdicts=VerdictCounts(**{v: sum(1 for e in entries if e.verdict == v) for v in VERDICTS}),
        patterns=tuple(entries),
    )
    findings = _regressions(ctx) + _unused_indexes(ctx) + _unindexed_foreign_keys(ctx) + _dropped_indexes(ctx)
    return block, findings


def attach_access_patterns(
    report: Report,
    *,
    patterns: list[AccessPattern] | None,
    before: PatternsSnapshot | None,
    after: PatternsSnapshot | None,
    profile: ProductionProfile | None,
) -> Report:
    """The report with its `access_patterns` block, and the block's findings merged in severity order."""
    if patterns is None or before is None:
        return report
    block, findings = access_patterns_report(
        patterns=patterns, before=before, after=after, profile=profile, statements=report.statements
    )
    order = {severity: i for i, severity in enumerate(SEVERITIES)}
    merged = sorted(
        [*report.findings, *findings],
        key=lambda f: (order[f.severity], f.statement_index if f.statement_index is not None else 10**6, f.code),
    )
    return dataclasses.replace(
        report,
        access_patterns=block,
        findings=tuple(merged),
        summary=dataclasses.replace(report.summary, findings=finding_counts(merged)),
    )
