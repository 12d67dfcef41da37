"""What the compatibility-finding tests of each engine submit: a table the change creates, a
data step the dry-run lists and never calls, and the findings of one code in a report."""

from __future__ import annotations

from typing import Any

from django.db import models
from django.db.migrations import operations as ops

from changeapi.dryrun.contract import Finding, Report


def findings_of(report: Report, code: str) -> list[Finding]:
    return [f for f in report.findings if f.code == code]


def fill_remarks(apps: Any, schema_editor: Any) -> None:
    """A data step: the dry-run lists it and never calls it."""
    raise AssertionError("data steps are never run")


def coupon_then_drop_and_rename() -> list[ops.base.Operation]:
    """A new table, then a drop and a rename on it: nothing a running version knows."""
    return [
        ops.CreateModel("Coupon", [("id", models.BigAutoField(primary_key=True)), ("code", models.CharField(max_length=20))]),
        ops.AddField("coupon", "label", models.CharField(max_length=20, null=True)),
        ops.RenameField("coupon", "code", "token"),
        ops.RemoveField("coupon", "label"),
    ]
