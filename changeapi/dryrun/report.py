"""Turn a traced run into the report: classed and estimated statements, lock spans, blocked time
per table, lock queue risk, reversibility and findings.

Everything here is a pure function of the trace, the plan and the production figures, so a
report can be rebuilt from a stored trace and tested without a database.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from changeapi.dryrun.analysis import rules_backfill, rules_compat, rules_integrity, rules_locking
from changeapi.dryrun.analysis.backfill import DEFAULT_TARGET_LOCK_MS, estimate_backfill
from changeapi.dryrun.analysis.classify import classify_statement
from changeapi.dryrun.analysis.estimate import estimate_statement, model_summary
from changeapi.dryrun.analysis.findings import AnalysisContext, finding_counts, run_rules
from changeapi.dryrun.analysis.held import held_by_statement, transaction_entries
from changeapi.dryrun.analysis.queue import lock_queue_risk
from changeapi.dryrun.analysis.timeline import lock_spans, production_timeline, table_blocking
from changeapi.dryrun.contract import Report, Reversibility, StatementTrace, Summary
from changeapi.dryrun.engine import PlanRun
from changeapi.dryrun.profile import ProductionProfile
from changeapi.dryrun.reversibility import plan_reversible
from changeapi.dryrun.template_facts import TemplateFacts
from changeapi.intake.plan import Plan

__all__ = ["RunFacts", "build_report", "lock_spans", "table_blocking"]


@dataclass(frozen=True, slots=True, kw_only=True)
class RunFacts:
    """Where and when the run happened: the report's header, known only to the caller."""

    engine: str
    server: str
    server_version: str
    shadow_database: str
    clone_ms: float
    started_at: str
    finished_at: str


def analyse_statements(
    statements: Sequence[StatementTrace], *, profile: ProductionProfile | None, facts: TemplateFacts
) -> tuple[tuple[StatementTrace, ...], set[str]]:
    """Each statement with its work class, estimate and held locks; and the relations the run created."""
    new_relations: set[str] = set()
    analysed = []
    for statement in statements:
        classification = classify_statement(statement, new_relations)
        analysed.append(
            dataclasses.replace(
                statement,
                work_class=classification.work_class,
                work_tables=classification.tables,
                evidence=classification.evidence,
                estimate=estimate_statement(statement, classification, profile=profile, facts=facts),
            )
        )
        new_relations.update(statement.created_relations)
    return tuple(analysed), new_relations


def build_report(
    *,
    run: PlanRun,
    facts_of_run: RunFacts,
    plan: Plan | None = None,
    profile: ProductionProfile | None = None,
    facts: TemplateFacts | None = None,
    reversibility: Sequence[Reversibility] = (),
    backfill_target_lock_ms: int = DEFAULT_TARGET_LOCK_MS,
) -> Report:
    """The report stored on the dry-run (through `to_json`) and served by the API.

    `backfill_target_lock_ms` is the project's target for one backfill batch's lock time.
    """
    facts = facts or TemplateFacts()
    statements, new_relations = analyse_statements(run.statements, profile=profile, facts=facts)
    timeline = production_timeline(statements)
    spans = lock_spans(statements, run.transactions, run.total_ms, timeline)
    blocking = table_blocking(spans)
    queue = lock_queue_risk(blocking, profile)
    reversibility = tuple(reversibility)
    backfills = tuple(
        estimate_backfill(timing, profile=profile, facts=facts, target_lock_ms=backfill_target_lock_ms)
        for timing in run.backfills
    )
    context = AnalysisContext(
        statements=statements,
        migrations=run.migrations,
        spans=spans,
        blocking=blocking,
        reversibility=reversibility,
        queue=queue,
        plan=plan,
        profile=profile,
        new_relations=new_relations,
        held=held_by_statement(statements),
        backfills=backfills,
        operation_states=run.states,
    )
    findings = run_rules(context, rules_locking.RULES + rules_compat.RULES + rules_backfill.RULES + rules_integrity.RULES)
    estimated = all(s.estimate is not None and s.estimate.estimated_ms is not None for s in statements)
    estimated_total = round(timeline[-1][1] + max(run.total_ms - statements[-1].end_ms, 0.0), 3) if statements else 0.0
    at_production_size = estimated and profile is not None and profile.has_sizes
    return Report(
        engine=facts_of_run.engine,
        server=facts_of_run.server,
        server_version=facts_of_run.server_version,
        shadow_database=facts_of_run.shadow_database,
        clone_ms=facts_of_run.clone_ms,
        started_at=facts_of_run.started_at,
        finished_at=facts_of_run.finished_at,
        status="failed" if run.error else "succeeded",
        error=run.error,
        total_ms=run.total_ms,
        summary=Summary(
            migrations=len(run.migrations),
            operations=sum(len(m.operations) for m in run.migrations),
            statements=len(statements),
            rewrites=tuple(sorted({t for s in statements for t in s.rewrites})),
            tables_scanned=tuple(sorted({scan.table for s in statements for scan in s.sequential_scans})),
            data_steps_not_executed=sum(1 for m in run.migrations for op in m.operations if not op.executed),
            estimated_total_ms=float(estimated_total) if at_production_size else None,
            findings=finding_counts(findings),
            reversible=plan_reversible(reversibility),
        ),
        migrations=run.migrations,
        statements=statements,
        lock_spans=spans,
        tables=blocking,
        transactions=transaction_entries(statements, run.transactions, run.total_ms, timeline),
        estimation=model_summary(facts, estimated=at_production_size),
        lock_queue=queue,
        reversibility=reversibility,
        findings=findings,
        backfills=backfills,
    )
