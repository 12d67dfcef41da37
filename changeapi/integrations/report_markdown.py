"""A dry-run as Markdown for GitHub check runs, and which findings block a merge."""

from __future__ import annotations

from django.conf import settings

from changeapi.dryrun.contract import Finding, Report
from changeapi.dryrun.render.markdown import report_markdown
from changeapi.models import DryRun
from changeapi.selectors import dry_run_report

BLOCKING_SEVERITIES = ("critical", "high")
MAX_CHARS = 60_000  # GitHub caps a check run summary at 65,535 characters


def blocking_findings(report: Report | None) -> list[Finding]:
    """Findings of severity high (or above); a report without findings has none."""
    return [f for f in report.findings if f.severity in BLOCKING_SEVERITIES] if report is not None else []


def dry_run_markdown(dry_run: DryRun) -> str:
    change_request = dry_run.revision.change_request
    heading = f"**{change_request.project.slug}#{change_request.number}**, revision {dry_run.revision.number}\n\n"
    report = dry_run_report(dry_run=dry_run)
    if report is not None:
        body = report_markdown(report, public_url=settings.SCHEMAGATE_PUBLIC_URL)
    else:
        body = f"### Schemagate dry-run: {dry_run.status}\n\n> {dry_run.error or 'no report'}\n"
    text = heading + body
    return text if len(text) <= MAX_CHARS else text[:MAX_CHARS] + "\n\n… (truncated; the full report is in Schemagate)\n"
