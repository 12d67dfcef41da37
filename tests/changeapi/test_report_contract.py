"""The report contract over a real dry-run: what is stored reads back as the same report, and
reports stored before the contract had a version still load, serve and render."""

from __future__ import annotations

import copy
import xml.etree.ElementTree as ET

import pytest

from changeapi.dryrun.contract import REPORT_VERSION, ReportFormatError, report_from_json, to_json
from changeapi.dryrun.render import report_markdown, report_svg
from changeapi.models import DryRun
from tests.approvals.test_release_flow import _submit

pytestmark = pytest.mark.django_db(transaction=True)

# A report as the engine stored it before reports carried a version (one added column, one
# index built while writes were blocked), trimmed to one statement of each kind.
STORED_WITHOUT_VERSION = {
    "engine": "postgresql",
    "server": "default",
    "server_version": "17.2",
    "shadow_database": "sg_dr_41",
    "clone_ms": 38.2,
    "started_at": "2025-05-02T09:14:03.120000+00:00",
    "finished_at": "2025-05-02T09:14:03.610000+00:00",
    "status": "succeeded",
    "error": None,
    "total_ms": 41.7,
    "summary": {
        "migrations": 1,
        "operations": 2,
        "statements": 2,
        "rewrites": [],
        "tables_scanned": ["shop_order"],
        "data_steps_not_executed": 0,
        "estimated_total_ms": None,
        "findings": {"high": 0, "medium": 1, "low": 0, "info": 0},
        "reversible": True,
    },
    "migrations": [
        {
            "app_label": "shop",
            "name": "0002_order_note",
            "atomic": True,
            "operations": [
                {"index": 0, "type": "AddField", "description": "Add field note to order", "executed": True, "note": ""},
                {
                    "index": 1,
                    "type": "AddIndex",
                    "description": "Create index order_note_idx on field(s) note of model order",
                    "executed": True,
                    "note": "",
                },
            ],
            "started_ms": 0.4,
            "finished_ms": 40.9,
        }
    ],
    "statements": [
        {
            "index": 0,
            "migration": "shop.0002_order_note",
            "operation_index": 0,
            "sql": 'ALTER TABLE "shop_order" ADD COLUMN "note" text NULL',
            "command": "ALTER TABLE",
            "target_tables": ["shop_order"],
            "concurrently": False,
            "transactional": True,
            "transaction": 1,
            "started_ms": 1.2,
            "duration_ms": 3.4,
            "notices": [],
            "events": [],
            "locks": [
                {
                    "relation": "shop_order",
                    "relation_kind": "table",
                    "table": "shop_order",
                    "mode": "AccessExclusiveLock",
                    "acquired_by_statement": True,
                    "blocks_reads": True,
                    "blocks_writes": True,
                    "blocks_ddl": True,
                    "source": "observed",
                }
            ],
            "rewrites": [],
            "rebuilt_indexes": [],
            "sequential_scans": [],
            "created_relations": [],
            "dropped_relations": [],
            "locks_source": "observed",
            "volatile_default_columns": [],
            "work_class": "catalog_only",
            "work_tables": ["shop_order"],
            "evidence": "no rewrite, no scan",
            "estimate": {
                "work_class": "catalog_only",
                "measured_ms": 3.4,
                "estimated_ms": 3.4,
                "low_ms": 3.4,
                "high_ms": 3.4,
                "scale": None,
                "exponent": None,
                "basis": "catalog only: does not grow with table size",
            },
            "held_locks": [
                {
                    "table": "shop_order",
                    "mode": "AccessExclusiveLock",
                    "blocks_reads": True,
                    "blocks_writes": True,
                    "source": "observed",
                }
            ],
        },
        {
            "index": 1,
            "migration": "shop.0002_order_note",
            "operation_index": 1,
            "sql": 'CREATE INDEX "order_note_idx" ON "shop_order" ("note")',
            "command": "CREATE INDEX",
            "target_tables": ["shop_order"],
            "concurrently": False,
            "transactional": True,
            "transaction": 1,
            "started_ms": 5.0,
            "duration_ms": 30.1,
            "notices": ['DEBUG: building index "order_note_idx" on table "shop_order" serially'],
            "events": [{"kind": "index_build", "table": "shop_order", "object": "order_note_idx"}],
            "locks": [
                {
                    "relation": "shop_order",
                    "relation_kind": "table",
                    "table": "shop_order",
                    "mode": "ShareLock",
                    "acquired_by_statement": True,
                    "blocks_reads": False,
                    "blocks_writes": True,
                    "blocks_ddl": True,
                    "source": "observed",
                }
            ],
            "rewrites": [],
            "rebuilt_indexes": [],
            "sequential_scans": [{"table": "shop_order", "count": 1}],
            "created_relations": ["order_note_idx"],
            "dropped_relations": [],
            "locks_source": "observed",
            "volatile_default_columns": [],
            "work_class": "index_build",
            "work_tables": ["shop_order"],
            "evidence": "index build on shop_order",
            "estimate": {
                "work_class": "index_build",
                "measured_ms": 30.1,
                "estimated_ms": None,
                "low_ms": None,
                "high_ms": None,
                "scale": None,
                "exponent": None,
                "basis": "not estimated: no table stats uploaded",
            },
            "held_locks": [
                {
                    "table": "shop_order",
                    "mode": "AccessExclusiveLock",
                    "blocks_reads": True,
                    "blocks_writes": True,
                    "source": "observed",
                }
            ],
        },
    ],
    "lock_spans": [
        {
            "table": "shop_order",
            "relation": "shop_order",
            "mode": "AccessExclusiveLock",
            "statement_index": 0,
            "from_ms": 1.2,
            "to_ms": 40.9,
            "held_ms": 39.7,
            "estimated_from_ms": 1.2,
            "estimated_to_ms": 40.9,
            "estimated_held_ms": 39.7,
            "blocks_reads": True,
            "blocks_writes": True,
            "blocks_ddl": True,
            "source": "observed",
            "new_relation": False,
        }
    ],
    "tables": [
        {
            "table": "shop_order",
            "strongest_lock": "AccessExclusiveLock",
            "reads_blocked_ms": 39.7,
            "writes_blocked_ms": 39.7,
            "reads_blocked_estimated_ms": 39.7,
            "writes_blocked_estimated_ms": 39.7,
        }
    ],
    "estimation": {
        "description": "t_prod = c + (t_shadow - c) * (bytes_prod / bytes_shadow) ** k per statement",
        "calibrated": False,
        "calibration_sizes": [],
        "exponents": [],
        "overhead_ms": 0.0,
        "maintenance_work_mem_bytes": None,
        "seeded_tables": [],
        "seed_warnings": [],
        "estimated": False,
    },
    "lock_queue": [],
    "reversibility": [
        {
            "migration": "shop.0002_order_note",
            "reversible": True,
            "checked": True,
            "reason": "",
            "backwards_sql": ['DROP INDEX IF EXISTS "order_note_idx"', 'ALTER TABLE "shop_order" DROP COLUMN "note" CASCADE'],
            "data_loss": [],
            "backwards_ms": 4.1,
            "data_steps_not_executed": 0,
        }
    ],
    "findings": [
        {
            "code": "SG101",
            "rule": "blocking-index-build",
            "title": "Index built while writes to the table are blocked",
            "severity": "medium",
            "message": "CREATE INDEX on shop_order blocks writes while it builds",
            "migration": "shop.0002_order_note",
            "operation_index": 1,
            "statement_index": 1,
            "table": "shop_order",
            "safer_alternative": {
                "summary": "Build the index concurrently, in a migration of its own",
                "steps": ["Use AddIndexConcurrently", "Set atomic = False on that migration"],
                "example": "from django.contrib.postgres.operations import AddIndexConcurrently",
            },
            "docs": "docs/findings.md#sg101-blocking-index-build",
        }
    ],
}


def _older(report: dict) -> dict:
    """The same report as the engine wrote it before production estimates and parsed commands."""
    older = copy.deepcopy(report)
    del older["estimation"], older["summary"]["estimated_total_ms"]
    for statement in older["statements"]:
        for key in ("command", "target_tables", "concurrently", "events", "locks_source"):
            del statement[key]
    for span in older["lock_spans"]:
        for key in ("estimated_from_ms", "estimated_to_ms", "estimated_held_ms", "blocks_ddl", "source", "new_relation"):
            del span[key]
    for table in older["tables"]:
        del table["reads_blocked_estimated_ms"], table["writes_blocked_estimated_ms"]
    return older


@pytest.fixture
def dry_run(project_with_baseline):
    change_request = _submit(project_with_baseline["api"])
    dry_run = DryRun.objects.get(pk=change_request["latest_dry_run"])
    assert dry_run.status == DryRun.Status.SUCCEEDED, dry_run.error
    return dry_run


def test_a_dry_run_report_reads_back_as_the_report_it_was_stored_from(dry_run):
    report = report_from_json(dry_run.report)

    assert report_from_json(to_json(report)) == report
    assert to_json(report) == dry_run.report


def test_a_dry_run_report_is_stored_with_its_version(dry_run):
    assert dry_run.report["report_version"] == REPORT_VERSION


# Fields added to the estimate and the model since, read from older reports at their defaults.
ADDED_ESTIMATE_FIELDS = {"rows_scale": None, "width_scale": None, "law": None, "range_factor": None}
ADDED_MODEL_FIELDS = {"noise": 0.0, "range_floor": 0.0, "bytes_share": 0.0, "jitter_ms": 0.0, "catalog_only": None}


def _as_version_3(report: dict) -> dict:
    """What version 3 keeps of an earlier report: each statement's acquired locks, without the
    flag, and no per-statement held locks; transactions are not known. Fields added later come
    at their defaults."""
    kept = copy.deepcopy(report)
    for statement in kept["statements"]:
        statement.pop("held_locks", None)
        if "locks" in statement:
            statement["locks"] = [
                {k: v for k, v in lock.items() if k != "acquired_by_statement"}
                for lock in statement["locks"]
                if lock.get("acquired_by_statement", True)
            ]
    for statement in kept["statements"]:
        if statement.get("estimate"):
            statement["estimate"].update(ADDED_ESTIMATE_FIELDS)
    if kept.get("estimation"):
        kept["estimation"].update(ADDED_MODEL_FIELDS)
    return {**kept, "transactions": [], "report_version": REPORT_VERSION}


def test_a_report_stored_without_a_version_keeps_every_key_and_value_of_this_version(dry_run):
    assert to_json(report_from_json(STORED_WITHOUT_VERSION)) == _as_version_3(STORED_WITHOUT_VERSION)


def test_a_version_2_report_keeps_on_each_statement_only_the_locks_it_acquired():
    stored = copy.deepcopy({**STORED_WITHOUT_VERSION, "report_version": 2})
    earlier = {**stored["statements"][0]["locks"][0], "acquired_by_statement": False}
    stored["statements"][1]["locks"] = [earlier, *stored["statements"][1]["locks"]]

    report = report_from_json(stored)

    assert len(report.statements[1].locks) == len(STORED_WITHOUT_VERSION["statements"][1]["locks"])


def test_a_report_lists_each_lock_on_the_statement_that_took_it_and_the_held_set_per_transaction(dry_run):
    report = report_from_json(dry_run.report)

    taken = [(lock.relation, lock.mode) for s in report.statements for lock in s.locks or ()]
    assert len(taken) == len(set(taken)), "a lock appears on the statement that acquired it, not on every later one"
    assert report.transactions and all(t.committed for t in report.transactions)
    assert all(t.first_statement <= t.last_statement for t in report.transactions)


def test_a_report_stored_without_a_version_renders_as_markdown_and_svg(dry_run, project_with_baseline):
    api = project_with_baseline["api"]
    DryRun.objects.filter(pk=dry_run.pk).update(report=STORED_WITHOUT_VERSION)

    markdown = api.get(f"/api/v1/dry-runs/{dry_run.pk}/report.md")
    svg = api.get(f"/api/v1/dry-runs/{dry_run.pk}/report.svg")

    assert markdown.status_code == 200 and svg.status_code == 200
    assert "[SG101](http://localhost:8000/docs/findings.md#sg101-blocking-index-build)" in markdown.content.decode()
    assert len([r for r in ET.fromstring(svg.content).iter("{http://www.w3.org/2000/svg}rect") if len(r)]) == 1


def test_a_report_from_before_production_estimates_reads_its_measured_times_as_the_estimates():
    report = report_from_json(_older(STORED_WITHOUT_VERSION))

    assert report.lock_spans[0].estimated_held_ms == report.lock_spans[0].held_ms == 39.7
    assert report.tables[0].writes_blocked_estimated_ms == 39.7
    assert report.estimation is None and report.summary.estimated_total_ms is None
    assert "Lock timeline on the shadow (measured)" in report_svg(report)
    assert report_markdown(report, public_url="http://localhost:8000").startswith("### Schemagate dry-run: succeeded")


def test_a_report_of_a_later_version_is_refused_rather_than_misread():
    with pytest.raises(ReportFormatError, match=f"report_version {REPORT_VERSION + 1}"):
        report_from_json({**STORED_WITHOUT_VERSION, "report_version": REPORT_VERSION + 1})


def test_a_stored_report_with_a_malformed_finding_is_refused_with_where():
    stored = copy.deepcopy(STORED_WITHOUT_VERSION)
    stored["findings"][0]["severity"] = 3

    with pytest.raises(ReportFormatError, match=r"report\.findings\[0\]\.severity is int, not str"):
        report_from_json(stored)
