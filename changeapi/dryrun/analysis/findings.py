"""The findings catalog: rules with stable codes, and the context every rule reads.

A rule is a pure function of the analysed run (statements with their class and estimate,
lock spans, reversibility, production figures) and the plan's operation objects; it returns
findings that name the statement or operation they refer to and a safer alternative written
for this change. docs/findings.md documents every code in `CATALOG`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db.migrations.operations.base import Operation
from django.db.migrations.writer import OperationWriter

from changeapi.dryrun.profile import ProductionProfile
from changeapi.intake.plan import Plan

SEVERITIES = ("high", "medium", "low", "info")


@dataclass(frozen=True)
class Rule:
    code: str
    slug: str
    title: str

    @property
    def docs(self) -> str:
        return f"docs/findings.md#{self.code.lower()}-{self.slug}"


CATALOG: dict[str, Rule] = {
    rule.code: rule
    for rule in (
        Rule("SG101", "blocking-index-build", "Index built while writes to the table are blocked"),
        Rule("SG102", "table-rewrite", "Table rewritten under ACCESS EXCLUSIVE"),
        Rule("SG103", "validation-under-access-exclusive", "Constraint validated by a full scan under ACCESS EXCLUSIVE"),
        Rule("SG104", "not-null-on-large-table", "SET NOT NULL scans the whole table under ACCESS EXCLUSIVE"),
        Rule("SG105", "foreign-key-validation", "Foreign key validated by a full scan while both tables block writes"),
        Rule("SG106", "lock-held-across-statements", "Blocking lock held through later slow statements"),
        Rule("SG107", "lock-queue-risk", "Lock request can queue production traffic"),
        Rule("SG201", "backward-incompatible-drop", "Drop breaks the running application version"),
        Rule("SG202", "backward-incompatible-rename", "Rename breaks the running application version"),
        Rule("SG301", "data-migration-mixed-with-schema", "Data migration step mixed into a schema migration"),
        Rule("SG302", "irreversible-migration", "Migration cannot be reversed"),
        Rule("SG303", "volatile-default", "Default evaluated per row, or once for all rows"),
        Rule("SG401", "access-pattern-regressed", "A key query's plan gets worse, or the query fails"),
        Rule("SG402", "index-unused-by-access-patterns", "New index that no access pattern uses"),
        Rule("SG403", "foreign-key-without-index", "New foreign key without a supporting index"),
        Rule("SG404", "used-index-dropped", "Index dropped that an access pattern used"),
        Rule("SG501", "transaction-boundary-in-sql", "Submitted SQL ends the migration's transaction"),
    )
}


@dataclass
class Alternative:
    summary: str
    steps: list[str]
    example: str = ""


@dataclass
class Finding:
    code: str
    severity: str
    message: str
    alternative: Alternative
    migration: str | None = None
    operation_index: int | None = None
    statement_index: int | None = None
    table: str | None = None

    def as_dict(self) -> dict[str, Any]:
        rule = CATALOG[self.code]
        return {
            "code": self.code,
            "rule": rule.slug,
            "title": rule.title,
            "severity": self.severity,
            "message": self.message,
            "migration": self.migration,
            "operation_index": self.operation_index,
            "statement_index": self.statement_index,
            "table": self.table,
            "safer_alternative": {
                "summary": self.alternative.summary,
                "steps": self.alternative.steps,
                "example": self.alternative.example,
            },
            "docs": rule.docs,
        }


@dataclass
class AnalysisContext:
    """Everything a rule may read; built once per report."""

    statements: list[dict[str, Any]]
    migrations: list[dict[str, Any]]
    spans: list[dict[str, Any]]
    blocking: list[dict[str, Any]]
    reversibility: list[dict[str, Any]]
    queue: list[dict[str, Any]]
    plan: Plan | None
    profile: ProductionProfile | None
    new_relations: set[str] = field(default_factory=set)

    def operation(self, migration: str, index: int | None) -> Operation | None:
        if self.plan is None or index is None:
            return None
        for planned in self.plan.migrations:
            if f"{planned.app_label}.{planned.name}" == migration and 0 <= index < len(planned.operations):
                return planned.operations[index]
        return None

    def app_label(self, migration: str) -> str:
        return migration.split(".", 1)[0]

    def severity(self, table: str | None, estimated_ms: float | None) -> str:
        """By production size: rows from the stats, or the estimated time of the work."""
        figures = self.profile.tables.get(table) if self.profile and table else None
        if figures is None and estimated_ms is None:
            return "medium"
        rows = figures.rows if figures else 0
        ms = estimated_ms or 0.0
        if rows >= 1_000_000 or ms >= 1_000:
            return "high"
        if rows >= 100_000 or ms >= 100:
            return "medium"
        return "low"

    def size_note(self, table: str | None, estimate: dict[str, Any] | None) -> str:
        figures = self.profile.tables.get(table) if self.profile and table else None
        if figures is None:
            return "production size unknown (no table stats)"
        text = f"{figures.rows:,} rows, {figures.total_bytes / 1024 / 1024:,.1f} MiB in production"
        if estimate and estimate.get("estimated_ms") is not None:
            text += f"; estimated {estimate['low_ms'] / 1000:,.2f}-{estimate['high_ms'] / 1000:,.2f} s"
        return text


def operation_code(operation: Operation) -> str:
    """The operation as it would be written in a migration file."""
    text, _imports = OperationWriter(operation, indentation=0).serialize()
    return text.rstrip(",\n")


def migration_example(operations: list[Operation], *, atomic: bool = True) -> str:
    """A whole migration file body holding `operations`, with the imports it needs."""
    imports = {"from django.db import migrations"}
    bodies = []
    for operation in operations:
        text, needed = OperationWriter(operation, indentation=2).serialize()
        imports.update(needed)
        bodies.append(text)
    if any("models." in body for body in bodies):
        imports.add("from django.db import models")
    header = "\n".join(sorted(imports))
    flag = "" if atomic else "    atomic = False\n\n"
    return f"{header}\n\n\nclass Migration(migrations.Migration):\n{flag}    operations = [\n" + "\n".join(bodies) + "\n    ]\n"


RuleFunction = Callable[[AnalysisContext], list[Finding]]


def run_rules(context: AnalysisContext, rules: list[RuleFunction]) -> list[dict[str, Any]]:
    """All findings, most severe first, then in plan order."""
    findings = [finding for rule in rules for finding in rule(context)]
    order = {severity: i for i, severity in enumerate(SEVERITIES)}
    findings.sort(key=lambda f: (order[f.severity], f.statement_index if f.statement_index is not None else 10**6, f.code))
    return [f.as_dict() for f in findings]
