"""Rules about whether the dry-run itself can be trusted: SG501.

Lock-based policy rules read the locks each statement took inside the migration's
transaction; SQL that commits that transaction and begins another (from a DO block, where
intake's parser cannot see) would make them read nothing. Such a run stops and says so.
"""

from __future__ import annotations

from changeapi.dryrun.analysis.findings import AnalysisContext, RuleFunction, finding
from changeapi.dryrun.contract import Finding, SaferAlternative


def transaction_boundary(ctx: AnalysisContext) -> list[Finding]:
    """SG501: a statement of the change ended the transaction Django's executor opened."""
    return [
        finding(
            "SG501",
            severity="high",
            message=f"Statement {s.index + 1} committed or rolled back the migration's transaction and began another: "
            "Django's atomicity is gone, and the locks the statements after it take were not traced.",
            safer_alternative=SaferAlternative(
                summary="Let Django own the transaction: no COMMIT, ROLLBACK or BEGIN in RunSQL or DO blocks.",
                steps=(
                    "Remove the transaction control from the SQL.",
                    "For work that must run outside a transaction (CREATE INDEX CONCURRENTLY), put it in a migration "
                    "with atomic = False.",
                ),
            ),
            migration=s.migration,
            operation_index=s.operation_index,
            statement_index=s.index,
        )
        for s in ctx.statements
        if s.transaction_boundary
    ]


RULES: list[RuleFunction] = [transaction_boundary]
