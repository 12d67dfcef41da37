"""A phased rollout plan, written when the dry-run's findings call for expand/contract steps or the
bundle has Backfill steps.

The phases are ordered: an *expand* phase (migrations that keep the running application working),
then, after a migration with Backfill steps, a *backfill* phase (the bundle's generated command or
Celery task, off the deploy path), then a *contract* phase (the migrations after it, which may need
the backfilled rows: they depend on the expand phase and the bundle's own preflight refuses them
until every earlier backfill's parity check counts zero). A finding whose rule is a
backward-incompatible change (a drop or rename breaks the application version still running)
makes its migration and the ones after it a contract phase too: they wait until the new code is
deployed. Findings whose safer alternative is expand/contract are listed as advice. Only fields
that do not depend on timing (code, rule, title, migration, the alternative's summary) are used,
so the plan is as reproducible as the rest of the bundle.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from changeapi.dryrun.contract import Finding, Report

if TYPE_CHECKING:
    from approvals.bundles.contents import BundledMigration

# Rules whose safer alternative is expand/contract with a batched backfill (a rewrite, a scan for
# NOT NULL, a per-row default): the Backfill step and these phases are how a bundle does it.
EXPAND_CONTRACT_RULES = frozenset({"SG102", "SG104", "SG303"})

EXPAND, BACKFILL, CONTRACT = "expand", "backfill", "contract"


@dataclass(frozen=True)
class Phase:
    """One step of the rollout. `backfills` are positions (1-based) in the manifest's
    `backfills`: those a backfill phase runs, or those a contract phase waits for."""

    number: int
    kind: str
    migrations: tuple[str, ...] = ()
    backfills: tuple[int, ...] = ()
    depends_on: tuple[int, ...] = ()

    def as_manifest(self) -> dict[str, Any]:
        return {
            "phase": self.number,
            "kind": self.kind,
            "migrations": list(self.migrations),
            "backfills": list(self.backfills),
            "depends_on": list(self.depends_on),
        }


@dataclass
class PhasedPlan:
    """`expand` are the migrations before the first contract phase, `contract` the rest (migrations
    apply in order); `rollout` the ordered phases, backfills between them."""

    expand: list[str]
    contract: list[str]
    findings: list[dict[str, Any]]
    rollout: list[Phase] = field(default_factory=list)

    def as_manifest(self) -> dict[str, Any]:
        return {
            "expand": self.expand,
            "contract": self.contract,
            "findings": self.findings,
            "rollout": [phase.as_manifest() for phase in self.rollout],
        }

    def markdown(self, *, paths: dict[str, dict[str, str]], backfills: list[dict[str, Any]]) -> str:
        lines = ["# Phased rollout", ""]
        if self.findings:
            lines += ["Findings of the dry-run that concern expand/contract:", ""]
            for finding in self.findings:
                where = f" in {finding['migration']}" if finding["migration"] else ""
                lines.append(f"- {finding['code']} {finding['title']}{where} [{finding['phase']}]: {finding['alternative']}")
            lines.append("")
        if len(self.rollout) == 1:
            lines += [
                "Every migration of this bundle applies in one phase as written; the findings above recommend",
                "splitting such steps into expand/contract in later change requests.",
                "",
            ]
            lines += [f"1. `{paths[label]['forward_sql']}` ({label})" for label in self.expand]
            return "\n".join(lines) + "\n"
        for phase in self.rollout:
            lines += [_heading(phase, backfills), ""]
            if phase.kind == BACKFILL:
                for position in phase.backfills:
                    step = backfills[position - 1]
                    lines.append(
                        f"1. Backfill {position}: `python manage.py {step['command']}`, or the Celery task "
                        f"`{step['task']}` (`{step['task_file']}`), until it says finished: {step['description']}."
                    )
            else:
                lines += [f"1. `{paths[label]['forward_sql']}` ({label})" for label in phase.migrations] or ["Nothing."]
            lines.append("")
        return "\n".join(lines)


def _heading(phase: Phase, backfills: list[dict[str, Any]]) -> str:
    if phase.kind == EXPAND:
        return f"## Phase {phase.number}: expand (before deploying the application code that needs it)"
    if phase.kind == BACKFILL:
        return f"## Phase {phase.number}: backfill (after phase {phase.depends_on[0]}, off the deploy path; resumable)"
    if not phase.backfills:
        return f"## Phase {phase.number}: contract (after no running application version uses what it removes)"
    waits = ", ".join(f"{n} (`{backfills[n - 1]['command']} --check-parity`)" for n in phase.backfills)
    after = ", ".join(str(n) for n in phase.depends_on)
    return (
        f"## Phase {phase.number}: contract (after phases {after}; the bundle's preflight refuses it until the parity "
        f"check of backfill {waits} counts zero)"
    )


def _phase(finding: Finding) -> str | None:
    if finding.rule.startswith("backward-incompatible"):
        return "contract"
    if finding.code in EXPAND_CONTRACT_RULES:
        return "advice"
    summary = finding.safer_alternative.summary.lower()
    if "expand" in summary and "contract" in summary:
        return "advice"
    return None


def _migration(finding: Finding, report: Report) -> str | None:
    if finding.migration is not None:
        return finding.migration
    statement = report.statement(finding.statement_index)
    return (statement.migration or None) if statement is not None else None


def _rollout(labels: list[str], backfills: list[dict[str, Any]], contract_from: int | None) -> list[Phase]:
    """The ordered phases: migrations gather into a phase until one has Backfill steps (which then
    run as a phase of their own) or a contract finding starts the contract; after a backfill the
    migrations are a contract phase that waits for every backfill before it."""
    phases: list[Phase] = []
    group: list[str] = []
    kind = EXPAND
    waited: list[int] = []

    def close() -> None:
        if group:
            contract = kind == CONTRACT
            earlier = tuple(phase.number for phase in phases) if contract else ()
            phases.append(Phase(len(phases) + 1, kind, tuple(group), tuple(waited) if contract else (), earlier))
            group.clear()

    for index, label in enumerate(labels):
        if contract_from is not None and index == contract_from and kind == EXPAND:
            close()
            kind = CONTRACT
        group.append(label)
        steps = [position for position, step in enumerate(backfills, start=1) if step["migration"] == label]
        if steps:
            close()
            phases.append(Phase(len(phases) + 1, BACKFILL, backfills=tuple(steps), depends_on=(len(phases),)))
            waited += steps
            kind = CONTRACT
    close()
    return phases


def phased_plan(
    *, bundled: list[BundledMigration], combined_report: Report, backfills: list[dict[str, Any]]
) -> PhasedPlan | None:
    """The plan for the combined dry-run's findings and the bundle's Backfill steps, or None when
    no finding concerns expand/contract and there is no backfill."""
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
    if not findings and not backfills:
        return None
    labels = [item.label for item in bundled]
    contract_at = [labels.index(f["migration"]) for f in findings if f["phase"] == "contract" and f["migration"] in labels]
    rollout = _rollout(labels, backfills, min(contract_at) if contract_at else None)
    first_contract = next((phase.number for phase in rollout if phase.kind == CONTRACT), None)
    expand = [label for phase in rollout if first_contract is None or phase.number < first_contract for label in phase.migrations]
    contract = [label for label in labels if label not in expand]
    return PhasedPlan(expand=expand, contract=contract, findings=findings, rollout=rollout)
