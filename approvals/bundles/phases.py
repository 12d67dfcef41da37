"""A phased rollout plan, written when the dry-run's findings call for expand/contract steps.

A finding marks a *contract* step when it says `"phase": "contract"` or its rule is a
backward-incompatible change (a drop or rename breaks the application version still
running): that migration and the ones after it wait until the new code is deployed.
A finding whose safer alternative is expand/contract is listed as advice. Only fields that
do not depend on timing (code, rule, title, migration, the alternative's summary) are used,
so the plan is as reproducible as the rest of the bundle. No such finding: no plan.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

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


def _alternative(finding: dict[str, Any]) -> str:
    alternative = finding.get("safer_alternative") or finding.get("alternative")
    if isinstance(alternative, dict):
        return str(alternative.get("summary") or "")
    return str(alternative or "")


def _phase(finding: dict[str, Any]) -> str | None:
    if finding.get("phase") in ("expand", "contract"):
        return str(finding["phase"])
    if str(finding.get("rule") or "").startswith("backward-incompatible"):
        return "contract"
    summary = _alternative(finding).lower()
    if "expand" in summary and "contract" in summary:
        return "advice"
    return None


def _migration(finding: dict[str, Any], statements: list[dict[str, Any]]) -> str | None:
    if isinstance(finding.get("migration"), str):
        return str(finding["migration"])
    index = finding.get("statement_index")
    if isinstance(index, int) and 0 <= index < len(statements):
        return str(statements[index].get("migration") or "") or None
    return None


def phased_plan(*, bundled: list[BundledMigration], combined_report: dict[str, Any]) -> PhasedPlan | None:
    """The plan for the combined dry-run's findings, or None when none concerns expand/contract."""
    statements = combined_report.get("statements") or []
    findings = []
    for finding in combined_report.get("findings") or []:
        phase = _phase(finding) if isinstance(finding, dict) else None
        if phase is None:
            continue
        findings.append(
            {
                "code": str(finding.get("code") or ""),
                "title": str(finding.get("title") or ""),
                "phase": phase,
                "migration": _migration(finding, statements),
                "operation_index": finding.get("operation_index"),
                "alternative": _alternative(finding),
            }
        )
    if not findings:
        return None
    labels = [item.label for item in bundled]
    contract_at = [labels.index(f["migration"]) for f in findings if f["phase"] == "contract" and f["migration"] in labels]
    split = min(contract_at) if contract_at else len(labels)
    return PhasedPlan(expand=labels[:split], contract=labels[split:], findings=findings)
