"""How risk rules read a dry-run report; a report is a plain value, so these need no database.

Findings are part of the report's contract (`Report.findings`); these cases pin down how a
rule reads them, whichever engine version wrote the report.
"""

from __future__ import annotations

from approvals.policies import rule_matches
from tests.factories import FindingFactory, LockFactory, ReportFactory, StatementTraceFactory


def _finding(severity, code="PG001", statement_index=0, title="Column added with a volatile default"):
    return FindingFactory(severity=severity, code=code, statement_index=statement_index, title=title)


def test_severity_rule_matches_findings_at_or_above_its_threshold():
    report = ReportFactory(findings=(_finding("medium", "PG010"), _finding("high", "PG020", 2), _finding("critical", "PG030", 3)))

    reasons = rule_matches(kind="finding_severity_at_least", threshold="high", table="", report=report)

    assert reasons == [
        "high finding PG020 at statement 3: Column added with a volatile default",
        "critical finding PG030 at statement 4: Column added with a volatile default",
    ]


def test_severity_rule_does_not_match_findings_below_its_threshold():
    report = ReportFactory(findings=(_finding("info"), _finding("low"), _finding("medium")))

    assert rule_matches(kind="finding_severity_at_least", threshold="high", table="", report=report) == []


def test_report_without_findings_matches_no_severity_rule():
    assert rule_matches(kind="finding_severity_at_least", threshold="info", table="", report=ReportFactory()) == []


def test_findings_of_unknown_severity_are_ignored_and_a_missing_title_is_left_out():
    report = ReportFactory(findings=(_finding("apocalyptic"), _finding("high", title="")))

    assert rule_matches(kind="finding_severity_at_least", threshold="high", table="", report=report) == [
        "high finding PG001 at statement 1"
    ]


def test_missing_report_matches_no_rule():
    assert rule_matches(kind="lock_mode_at_least", threshold="AccessShareLock", table="", report=None) == []


def test_lock_rule_ignores_tables_the_change_itself_creates():
    report = ReportFactory(
        statements=(
            StatementTraceFactory(index=0, created_relations=("shop_coupon",), locks=(LockFactory(relation="shop_coupon"),)),
            StatementTraceFactory(index=1, locks=(LockFactory(relation="shop_order", mode="ShareRowExclusiveLock"),)),
        )
    )

    assert rule_matches(kind="lock_mode_at_least", threshold="ShareLock", table="", report=report) == [
        "statement 2 takes ShareRowExclusiveLock on shop_order"
    ]


def test_lock_rule_on_one_table_ignores_locks_on_others():
    report = ReportFactory(statements=(StatementTraceFactory(index=0, locks=(LockFactory(relation="shop_order"),)),))

    assert rule_matches(kind="lock_mode_at_least", threshold="ShareLock", table="shop_customer", report=report) == []
