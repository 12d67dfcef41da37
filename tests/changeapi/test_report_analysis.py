"""The dry-run report over HTTP: findings, estimation, reversibility, and its renderings."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from changeapi.dryrun.contract import report_from_json
from changeapi.dryrun.render import report_markdown, report_svg
from tests.approvals.test_release_flow import _submit

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def report(project_with_baseline):
    api = project_with_baseline["api"]
    change_request = _submit(api)
    dry_run = api.get(f"/api/v1/dry-runs/{change_request['latest_dry_run']}/").json()
    assert dry_run["status"] == "succeeded", dry_run["error"]
    return dry_run["report"]


def test_report_names_the_blocking_index_build_with_its_statement(report):
    finding = next(f for f in report["findings"] if f["code"] == "SG101")

    assert report["statements"][finding["statement_index"]]["sql"].startswith("CREATE INDEX")
    assert finding["docs"] == "docs/findings.md#sg101-blocking-index-build"


def test_report_gives_backwards_sql_for_each_migration(report):
    reversal = report["reversibility"][0]

    assert reversal["reversible"] is True
    assert any("DROP INDEX" in sql for sql in reversal["backwards_sql"])
    assert any("DROP COLUMN" in sql for sql in reversal["backwards_sql"])


def test_report_without_table_stats_says_nothing_was_estimated(report):
    assert report["estimation"]["estimated"] is False
    assert report["summary"]["estimated_total_ms"] is None


def test_markdown_rendering_lists_findings_statements_and_reversibility(report):
    text = report_markdown(report_from_json(report), public_url="http://localhost:8000")

    assert text.startswith("### Schemagate dry-run: succeeded")
    assert "[SG101](http://localhost:8000/docs/findings.md#sg101-blocking-index-build)" in text
    assert "#### Statements" in text and "#### Reversibility" in text


def test_svg_rendering_draws_one_bar_per_lock_span(report):
    root = ET.fromstring(report_svg(report_from_json(report)))

    bars = [r for r in root.iter("{http://www.w3.org/2000/svg}rect") if r.find("{http://www.w3.org/2000/svg}title") is not None]
    assert len(bars) == len(report["lock_spans"])


def test_a_lock_held_across_statements_names_them_from_one_without_a_production_figure(report):
    finding = next(f for f in report["findings"] if f["code"] == "SG106")

    assert "taken by statement 1," in finding["message"]
    assert "through statement 2 (index build)" in finding["message"]
    assert "at production size" not in finding["message"]
