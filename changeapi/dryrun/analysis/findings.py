"""The findings catalog: rules with stable codes, and the context every rule reads.

A rule is a pure function of the analysed run (statements with their class and estimate,
lock spans, reversibility, production figures) and the plan's operation objects; it returns
findings that name the statement or operation they refer to and a safer alternative written
for this change. docs/findings.md documents every code in `CATALOG`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from django.db.migrations.operations.base import Operation
from django.db.migrations.state import ProjectState
from django.db.migrations.writer import OperationWriter

from changeapi.dryrun.contract import (
    BackfillTiming,
    Estimate,
    Finding,
    FindingCounts,
    HeldLock,
    LockQueueRisk,
    LockSpan,
    MigrationEntry,
    Reversibility,
    SaferAlternative,
    StatementTrace,
    TableBlocking,
    TableRemake,
)
from changeapi.dryrun.profile import ProductionProfile
from changeapi.intake.plan import Plan
from changeapi.intake.state_closure import Step

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
        Rule("SG304", "unbatched-data-change", "Rows changed in one statement instead of in batches"),
        Rule("SG305", "backfill-batch-over-target", "Backfill batches hold their row locks past the project's target"),
        Rule("SG306", "backfill-parity-unmet", "Backfill leaves rows its parity check counts"),
        Rule("SG401", "access-pattern-regressed", "A key query's plan gets worse, or the query fails"),
        Rule("SG402", "index-unused-by-access-patterns", "New index that no access pattern uses"),
        Rule("SG403", "foreign-key-without-index", "New foreign key without a supporting index"),
        Rule("SG404", "used-index-dropped", "Index dropped that an access pattern used"),
        Rule("SG501", "transaction-boundary-in-sql", "Submitted SQL ends the migration's transaction"),
        Rule("SG601", "mysql-blocking-alter", "ALTER copies the table or blocks writes while it runs"),
        Rule("SG602", "mysql-non-transactional-ddl", "A failure half-way leaves the migration's earlier DDL applied"),
        Rule("SG603", "mysql-lock-wait-timeout", "ALTER waits up to lock_wait_timeout (a year) and queues every query"),
        Rule("SG604", "mysql-foreign-key-on-large-table", "Foreign key added to a table with rows: copy and both tables locked"),
        Rule("SG605", "mysql-instant-column-limit", "Instant column change counts toward the table's limit"),
        Rule("SG701", "sqlite-table-remake", "Table remade: every write to the database waits while its rows are copied"),
        Rule("SG702", "sqlite-long-write-transaction", "One transaction holds the database's write lock through several remakes"),
    )
}


def statement_numbers(indexes: Sequence[int]) -> str:
    """Statements as people count them, from 1: `statement 2`, `statements 2-4`, `statements 1, 3 and 5-6`.

    The report's indexes count from 0; every text a person reads numbers statements from 1.
    """
    numbers = sorted({i + 1 for i in indexes})
    runs: list[list[int]] = []
    for number in numbers:
        if runs and number == runs[-1][-1] + 1:
            runs[-1].append(number)
        else:
            runs.append([number])
    parts = [f"{run[0]}" if len(run) == 1 else f"{run[0]}-{run[-1]}" for run in runs]
    if len(numbers) == 1:
        return f"statement {parts[0]}"
    listed = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + f" and {parts[-1]}"
    return f"statements {listed}"


def finding(
    code: str,
    *,
    severity: str,
    message: str,
    safer_alternative: SaferAlternative,
    migration: str | None = None,
    operation_index: int | None = None,
    statement_index: int | None = None,
    table: str | None = None,
) -> Finding:
    """A finding of the catalog's rule `code`, with the rule's slug, title and docs link."""
    rule = CATALOG[code]
    return Finding(
        code=code,
        rule=rule.slug,
        title=rule.title,
        severity=severity,
        message=message,
        migration=migration,
        operation_index=operation_index,
        statement_index=statement_index,
        table=table,
        safer_alternative=safer_alternative,
        docs=rule.docs,
    )


@dataclass
class AnalysisContext:
    """Everything a rule may read; built once per report."""

    statements: Sequence[StatementTrace]
    migrations: Sequence[MigrationEntry]
    spans: Sequence[LockSpan]
    blocking: Sequence[TableBlocking]
    reversibility: Sequence[Reversibility]
    queue: Sequence[LockQueueRisk]
    plan: Plan | None
    profile: ProductionProfile | None
    new_relations: set[str] = field(default_factory=set)
    # Per statement (by position), the strongest lock on each existing table while it ran.
    held: Sequence[tuple[HeldLock, ...]] = ()
    # The Backfill steps as sampled and estimated.
    backfills: Sequence[BackfillTiming] = ()
    # MySQL/MariaDB: the engine ("mariadb", "mysql"), and the clone's rows and foreign keys
    # per table the change touched (`child -> parent`), counted after the run.
    engine: str = "postgresql"
    table_rows: dict[str, int] = field(default_factory=dict)
    foreign_keys: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # SQLite: the tables Django remade.
    remakes: Sequence[TableRemake] = ()
    # Per migration of the plan that completed, the states around each of its operations.
    operation_states: Sequence[Sequence[Step]] = ()

    def operation(self, migration: str, index: int | None) -> Operation | None:
        if self.plan is None or index is None:
            return None
        for planned in self.plan.migrations:
            if f"{planned.app_label}.{planned.name}" == migration and 0 <= index < len(planned.operations):
                return planned.operations[index]
        return None

    def state_before(self, migration: str, index: int | None) -> ProjectState | None:
        """The project state just before the operation ran (cut to the models it reads), when
        its migration completed."""
        if self.plan is None or index is None:
            return None
        for position, planned in enumerate(self.plan.migrations):
            if f"{planned.app_label}.{planned.name}" == migration and position < len(self.operation_states):
                steps = self.operation_states[position]
                return steps[index].before if 0 <= index < len(steps) else None
        return None

    def is_new(self, table: str | None, statement_index: int | None) -> bool:
        """Whether `table` was created by the run up to and including that statement.

        Such a table is invisible to other sessions until commit and holds no production rows:
        work on it blocks nobody and breaks no running code. Without a statement (an operation
        that ran none), any relation the run created counts.
        """
        if table is None:
            return False
        if statement_index is None:
            return table in self.new_relations
        return any(table in s.created_relations for s in self.statements if s.index <= statement_index)

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

    @property
    def at_production_size(self) -> bool:
        """Whether times are scaled to production size: only with table stats uploaded."""
        return self.profile is not None and self.profile.has_sizes

    def size_note(self, table: str | None, estimate: Estimate | None) -> str:
        figures = self.profile.tables.get(table) if self.profile and table else None
        if figures is None:
            return "production size unknown (no table stats)"
        text = f"{figures.rows:,} rows, {figures.total_bytes / 1024 / 1024:,.1f} MiB in production"
        if estimate is not None and estimate.estimated_ms is not None:
            text += f"; estimated {(estimate.low_ms or 0.0) / 1000:,.2f}-{(estimate.high_ms or 0.0) / 1000:,.2f} s"
        return text


def estimated_ms(statement: StatementTrace) -> float | None:
    """The statement's estimated time at production size, once the analysis estimated it."""
    return statement.estimate.estimated_ms if statement.estimate is not None else None


def operation_code(operation: Operation) -> str:
    """The operation as it would be written in a migration file."""
    text, _imports = OperationWriter(operation, indentation=0).serialize()
    return text.rstrip(",\n")


# A Backfill step is written as a release bundle writes it: by the helper module the bundle
# ships, which a team's migration files import and the migration-files intake reads back.
_SERVICE_BACKFILL = "changeapi.intake.backfill"
BUNDLE_HELPER_MODULE = "schemagate_backfill"


def _as_shipped(text: str) -> str:
    return text.replace(f"{_SERVICE_BACKFILL}.Backfill(", f"{BUNDLE_HELPER_MODULE}.Backfill(")


def migration_example(operations: list[Operation], *, atomic: bool = True) -> str:
    """A whole migration file body holding `operations`, with the imports it needs."""
    imports = {"from django.db import migrations"}
    bodies = []
    for operation in operations:
        text, needed = OperationWriter(operation, indentation=2).serialize()
        imports.update(f"import {BUNDLE_HELPER_MODULE}" if line == f"import {_SERVICE_BACKFILL}" else line for line in needed)
        bodies.append(_as_shipped(text))
    if any("models." in body for body in bodies):
        imports.add("from django.db import models")
    header = "\n".join(sorted(imports))
    flag = "" if atomic else "    atomic = False\n\n"
    return f"{header}\n\n\nclass Migration(migrations.Migration):\n{flag}    operations = [\n" + "\n".join(bodies) + "\n    ]\n"


RuleFunction = Callable[[AnalysisContext], list[Finding]]


def run_rules(context: AnalysisContext, rules: Sequence[RuleFunction]) -> tuple[Finding, ...]:
    """All findings, most severe first, then in plan order."""
    findings = [finding for rule in rules for finding in rule(context)]
    order = {severity: i for i, severity in enumerate(SEVERITIES)}
    findings.sort(key=lambda f: (order[f.severity], f.statement_index if f.statement_index is not None else 10**6, f.code))
    return tuple(findings)


def finding_counts(findings: Sequence[Finding]) -> FindingCounts:
    """How many findings of each severity, for the report's summary."""
    return FindingCounts(**{severity: sum(1 for f in findings if f.severity == severity) for severity in SEVERITIES})
