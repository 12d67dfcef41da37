"""Turn a traced run into the report: classed and estimated statements, lock spans, blocked time
per table, lock queue risk, reversibility and findings.

Everything here is a pure function of the trace, the plan and the production figures, so a
report can be rebuilt from a stored trace and tested without a database.
"""

from __future__ import annotations

from typing import Any

from changeapi.dryrun.analysis import rules_compat, rules_integrity, rules_locking
from changeapi.dryrun.analysis.classify import classify_statement
from changeapi.dryrun.analysis.estimate import estimate_statement, model_summary
from changeapi.dryrun.analysis.findings import SEVERITIES, AnalysisContext, run_rules
from changeapi.dryrun.analysis.queue import lock_queue_risk
from changeapi.dryrun.analysis.timeline import lock_spans, production_timeline, table_blocking
from changeapi.dryrun.engine import PlanRun
from changeapi.dryrun.profile import ProductionProfile
from changeapi.dryrun.template_facts import TemplateFacts
from changeapi.dryrun.tracing import LOCK_STRENGTH
from changeapi.intake.plan import Plan

__all__ = ["build_report", "lock_spans", "table_blocking"]


def _held_locks(statement: dict[str, Any], invisible: set[str]) -> list[dict[str, Any]]:
    """The strongest lock on each existing table while the statement ran, whoever took it."""
    strongest: dict[str, dict[str, Any]] = {}
    for lock in statement.get("locks") or []:
        table = lock["table"] or lock["relation"]
        if table in invisible or lock["relation"] in invisible:
            continue
        current = strongest.get(table)
        if current is None or LOCK_STRENGTH.get(lock["mode"], 99) > LOCK_STRENGTH.get(current["mode"], 99):
            strongest[table] = {
                "table": table,
                "mode": lock["mode"],
                "blocks_reads": lock["blocks_reads"],
                "blocks_writes": lock["blocks_writes"],
                "source": lock.get("source", "observed"),
            }
    return [strongest[t] for t in sorted(strongest)]


def analyse_statements(statements: list[dict[str, Any]], *, profile: ProductionProfile | None, facts: TemplateFacts) -> set[str]:
    """Add work class, estimate and held locks to each statement; return the relations the run created."""
    new_relations: set[str] = set()
    for statement in statements:
        classification = classify_statement(statement, new_relations)
        statement["work_class"] = classification["work_class"]
        statement["work_tables"] = classification["tables"]
        statement["evidence"] = classification["evidence"]
        statement["estimate"] = estimate_statement(statement, classification, profile=profile, facts=facts)
        statement["held_locks"] = _held_locks(statement, new_relations | set(statement.get("created_relations", [])))
        new_relations.update(statement.get("created_relations", []))
    return new_relations


def build_report(
    *,
    run: PlanRun,
    meta: dict[str, Any],
    plan: Plan | None = None,
    profile: ProductionProfile | None = None,
    facts: TemplateFacts | None = None,
    reversibility: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The JSON report stored on the dry-run and served by the API."""
    facts = facts or TemplateFacts()
    statements = run.statements
    new_relations = analyse_statements(statements, profile=profile, facts=facts)
    estimates = [s["estimate"] for s in statements]
    timeline = production_timeline(statements, estimates)
    spans = lock_spans(statements, run.transactions, run.total_ms, timeline)
    blocking = table_blocking(spans)
    queue = lock_queue_risk(blocking, profile)
    reversibility = reversibility or []
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
    )
    findings = run_rules(context, rules_locking.RULES + rules_compat.RULES + rules_integrity.RULES)
    estimated = all(e["estimated_ms"] is not None for e in estimates)
    estimated_total = round(timeline[-1][1] + max(run.total_ms - _last_end(statements), 0.0), 3) if statements else 0.0
    return {
        **meta,
        "status": "failed" if run.error else "succeeded",
        "error": run.error.as_dict() if run.error else None,
        "total_ms": run.total_ms,
        "summary": {
            "migrations": len(run.migrations),
            "operations": sum(len(m["operations"]) for m in run.migrations),
            "statements": len(statements),
            "rewrites": sorted({t for s in statements for t in s.get("rewrites", [])}),
            "tables_scanned": sorted({scan["table"] for s in statements for scan in s.get("sequential_scans", [])}),
            "data_steps_not_executed": sum(1 for m in run.migrations for op in m["operations"] if not op["executed"]),
            "estimated_total_ms": estimated_total if estimated and profile is not None and profile.has_sizes else None,
            "findings": {severity: sum(1 for f in findings if f["severity"] == severity) for severity in SEVERITIES},
            "reversible": bool(reversibility) and all(r["reversible"] for r in reversibility),
        },
        "migrations": run.migrations,
        "statements": statements,
        "lock_spans": spans,
        "tables": blocking,
        "estimation": {**model_summary(facts), "estimated": estimated and profile is not None and profile.has_sizes},
        "lock_queue": queue,
        "reversibility": reversibility,
        "findings": findings,
    }


def _last_end(statements: list[dict[str, Any]]) -> float:
    last = statements[-1]
    return float(last["started_ms"] + (last.get("duration_ms") or 0.0))
