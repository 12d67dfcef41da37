"""Markdown and SVG renderings of a report with production estimates."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from django.db import models
from django.db.migrations import operations as ops

from changeapi.dryrun.analysis.findings import statement_numbers
from changeapi.dryrun.contract import Estimate, report_from_json
from changeapi.dryrun.render import report_markdown, report_svg
from tests.engine.analysis.conftest import plan_of, small
from tests.factories import FindingFactory, ReportFactory, StatementTraceFactory, SummaryFactory

PUBLIC_URL = "https://schemagate.example.com"
NOT_ESTIMATED = Estimate(
    work_class="rewrite",
    measured_ms=1.0,
    estimated_ms=None,
    low_ms=None,
    high_ms=None,
    scale=None,
    exponent=None,
    basis="not estimated: no table stats uploaded",
)

CHANGE = plan_of(
    [ops.AddField("order", "flag", models.BooleanField(null=True)), ops.AlterField("order", "total", models.BigIntegerField())]
)


def test_svg_of_an_estimated_report_draws_the_production_timeline(dry_run):
    svg = report_svg(report_from_json(dry_run(CHANGE, profile=small())))

    assert ET.fromstring(svg).find("{http://www.w3.org/2000/svg}title").text == "Lock timeline at production size (estimated)"


def test_markdown_shows_measured_and_estimated_time_and_the_model(dry_run):
    report = dry_run(CHANGE, profile=small(queries_per_second=200.0, oldest_transaction_seconds=1.0))

    text = report_markdown(report_from_json(report), public_url=PUBLIC_URL)

    assert "| # | SQL | Work | Locks held | Time |" in text
    assert "at production size (" in text and "not estimated" not in text
    assert "#### Lock queue risk" in text
    assert "Estimation model" in text and "linear in rows, c = " in text and "n_log_n in rows" in text


def test_markdown_numbers_statements_from_one_and_counts_in_the_right_number():
    report = ReportFactory(
        summary=SummaryFactory(statements=1),
        statements=(StatementTraceFactory(index=0),),
        findings=(FindingFactory(statement_index=0),),
    )

    text = report_markdown(report, public_url=PUBLIC_URL)

    assert "1 statement · 1 finding (1 high)" in text
    assert "| 1 | `ALTER TABLE shop_order" in text
    assert "| #1 |" in text


def test_markdown_links_point_under_the_public_url():
    report = ReportFactory(findings=(FindingFactory(statement_index=0),))

    text = report_markdown(report, public_url=PUBLIC_URL + "/")

    assert "[SG102](https://schemagate.example.com/docs/findings.md#sg102-table-rewrite)" in text
    assert "](docs/" not in text


def test_markdown_gives_each_statement_one_line_of_timing_saying_why_it_was_not_estimated():
    report = ReportFactory(
        summary=SummaryFactory(statements=1, estimated_total_ms=None),
        statements=(StatementTraceFactory(index=0, estimate=NOT_ESTIMATED),),
    )

    text = report_markdown(report, public_url=PUBLIC_URL)

    [row] = [line for line in text.splitlines() if line.startswith("| 1 | `ALTER TABLE")]
    assert row.endswith("| 1 ms on the shadow; not estimated: no table stats uploaded |"), row
    assert "at production size" not in text


def test_markdown_gives_a_catalog_only_statement_its_estimate_in_tenths_of_a_millisecond():
    catalog_only = Estimate(
        work_class="catalog_only",
        measured_ms=0.8,
        estimated_ms=0.6,
        low_ms=0.1,
        high_ms=7.3,
        scale=None,
        exponent=None,
        basis="catalog only: constant",
        law="constant",
    )
    report = ReportFactory(statements=(StatementTraceFactory(index=0, estimate=catalog_only, duration_ms=0.8),))

    text = report_markdown(report, public_url=PUBLIC_URL)

    [row] = [line for line in text.splitlines() if line.startswith("| 1 | `ALTER TABLE")]
    assert row.endswith("catalog only, does not grow with table size: about 0.6 ms (0.1 ms–7.3 ms) |"), row


def test_statement_numbers_count_from_one_in_the_right_number():
    assert statement_numbers([0]) == "statement 1"
    assert statement_numbers([0, 1, 2]) == "statements 1-3"
    assert statement_numbers([3, 0, 5, 6]) == "statements 1, 4 and 6-7"
    assert statement_numbers([1, 2]) == "statements 2-3"
