"""A phased rollout plan, written when the dry-run's findings call for expand/contract steps.

A finding marks a *contract* step when its rule is a backward-incompatible change (a drop or rename breaks the application version still
running): that migration and the ones after it wait until the new code is deployed.
A finding whose safer alternative is expand/contract is listed as advice. Only fields that
do not depend on timing (code, rule, title, migration, the alternative's summary) are used,
so the plan is as reproducible as the rest of the bundle. No such finding: no plan.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from changeapi.dryrun.contract import Finding, Report

if TYPE_CHECKING:
    from approvals.bundles.contents import BundledMigration


@dataclass
class PhasedPlan:
    """Migrations before the first contract step are phase 1; the contract step and what
    follows it (migrations apply in order) are phase 2, after the application deploy."""

    expand: list[str]
    contract: list[str]
    findings: list[dict[str, Any]]

    def as_manifest(self) -> dict[str, Any]:
        return {"expand": self.expand, "contract": self.contract, "findings": self.findings}

    def markdown(self, *, paths: dict[str, dict[str, str]]) -> str:
        lines = ["# Phased rollout", "", "Findings of the dry-run that concern expand/contract:", ""]
        for finding in self.findings:
            where = f" in {finding['migration']}" if finding["migration"] else ""
            lines.append(f"- {finding['code']} {finding['title']}{where} [{finding['phase']}]: {finding['alternative']}")
        if not self.contract:
            lines += [
                "",
                "Every migration of this bundle applies in one phase as written; the findings above recommend",
                "splitting such steps into expand/contract in later change requests.",
                "",
            ]
            lines += [f"1. `{paths[label]['forward_sql']}` ({label})" for label in self.expand]
            return "\n".join(lines) + "\n"
        lines += ["", "## Phase 1: expand (before deploying the application code that needs it)", ""]
        lines += [f"1. `{paths[label]['forward_sql']}` ({label})" for label in self.expand] or ["Nothing."]
        lines += ["", "## Phase 2: contract (after no running application version uses what it removes)", ""]
        lines += [f"1. `{paths[label]['forward_sql']}` ({label})" for label in self.contract]
        return "\n".join(lines) + "\n"


def _phase(finding: Finding) -> str | None:
    if finding.rule.startswith("backward-incompatible"):
        return "contract"
    summary = finding.safer_alternative.summary.lower()
    if "expand" in summary and "contract" in summary:
        return "advice"
    return None


def _migration(finding: Finding, report: Report) -> str | None:
    if finding.migration is not None:
        return finding.migration
    statement = report.statement(finding.statement_index)
    return (statement.migration or None) if statement is not None else None


def phased_plan(*, bundled: list[BundledMigration], combined_report: Report) -> PhasedPlan | None:
    """The plan for the combined dry-run's findings, or None when none concerns expand/contract."""
    findings: list[dict[str, Any]] = []
    for finding in combined_report.findings:
        phase = _phase(finding)
        if phase is None:
            continue
        findings.append(
            {
                "code": finding.code,
                "title": finding.title,
                "phase": phase,
                "migration": _migration(finding, combined_report),
                "operation_index": finding.operation_index,
                "alternative": finding.safer_alternative.summary,
            }
        )
    if not findings:
        return None
    labels = [item.label for item in bundled]
    contract_at = [labels.index(f["migration"]) for f in findings if f["phase"] == "contract" and f["migration"] in labels]
    split = min(contract_at) if contract_at else len(labels)
    return PhasedPlan(expand=labels[:split], contract=labels[split:], findings=findings)
