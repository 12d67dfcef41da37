"""Markdown and SVG renderings of a report with production estimates."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from django.db import models
from django.db.migrations import operations as ops

from changeapi.dryrun.contract import report_from_json
from changeapi.dryrun.render import report_markdown, report_svg
from tests.engine.analysis.conftest import plan_of, small
from tests.factories import FindingFactory, ReportFactory, StatementTraceFactory, SummaryFactory

CHANGE = plan_of(
    [ops.AddField("order", "flag", models.BooleanField(null=True)), ops.AlterField("order", "total", models.BigIntegerField())]
)


def test_svg_of_an_estimated_report_draws_the_production_timeline(dry_run):
    svg = report_svg(report_from_json(dry_run(CHANGE, profile=small())))

    assert ET.fromstring(svg).find("{http://www.w3.org/2000/svg}title").text == "Lock timeline at production size (estimated)"


def test_markdown_shows_measured_and_estimated_time_and_the_model(dry_run):
    report = dry_run(CHANGE, profile=small(queries_per_second=200.0, oldest_transaction_seconds=1.0))

    text = report_markdown(report_from_json(report))

    assert "| Shadow | At production size |" in text
    assert "#### Lock queue risk" in text
    assert "Estimation model" in text and "k = " in text


def test_markdown_numbers_statements_from_one_and_counts_in_the_right_number():
    report = ReportFactory(
        summary=SummaryFactory(statements=1),
        statements=(StatementTraceFactory(index=0),),
        findings=(FindingFactory(statement_index=0),),
    )

    text = report_markdown(report)

    assert "1 statement · 1 finding (1 high)" in text
    assert "| 1 | `ALTER TABLE shop_order" in text
    assert "[SG102](docs/findings.md#sg102-table-rewrite) | #1 |" in text
