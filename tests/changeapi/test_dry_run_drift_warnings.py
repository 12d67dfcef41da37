"""A dry-run's report warns when its change touches an object production has otherwise than
the migrations say, per the project's latest schema snapshot."""

from __future__ import annotations

from typing import Any

import pytest

from changeapi.dryrun.contract import report_from_json
from tests.approvals.test_release_flow import _submit
from tests.changeapi.test_schema_drift import QUERY, _production

pytestmark = pytest.mark.django_db(transaction=True)

ADD_REGION: list[dict[str, Any]] = [
    {
        "app_label": "shop",
        "operations": [
            {"op": "AddField", "model_name": "customer", "name": "region", "field": {"type": "TextField", "null": True}}
        ],
    }
]


def _upload_snapshot(api, *statements: str) -> None:
    with _production() as conn:
        for statement in statements:
            conn.execute(statement)
        snapshot = conn.execute(QUERY).fetchone()[0]
    response = api.post("/api/v1/projects/shop/schema-snapshots/", snapshot, format="json")
    assert response.status_code == 201, response.content


def _report(api, change_request) -> dict[str, Any]:
    dry_run = api.get(f"/api/v1/dry-runs/{change_request['latest_dry_run']}/").json()
    assert dry_run["status"] == "succeeded", dry_run["error"]
    return dry_run["report"]


def test_an_add_index_of_a_name_production_already_has_is_warned_about(project_with_baseline):
    api = project_with_baseline["api"]
    _upload_snapshot(api, "CREATE INDEX order_total_idx ON shop_order (total)")

    report = _report(api, _submit(api))

    (warning,) = report["schema_drift"]["touched"]
    assert (warning["kind"], warning["status"], warning["name"]) == ("index", "extra", "order_total_idx")
    assert "an AddIndex of the same name will fail" in warning["consequence"]
    create_index = next(s for s in report["statements"] if s["sql"].startswith("CREATE INDEX"))
    assert create_index["index"] in warning["statement_indexes"]


def test_the_markdown_report_shows_the_touched_drift(project_with_baseline):
    api = project_with_baseline["api"]
    _upload_snapshot(api, "CREATE INDEX order_total_idx ON shop_order (total)")
    change_request = _submit(api)

    markdown = api.get(f"/api/v1/dry-runs/{change_request['latest_dry_run']}/report.md").content.decode()

    assert "#### Production has drifted" in markdown
    assert "index order_total_idx (extra)" in markdown


def test_drift_on_tables_the_change_does_not_touch_is_counted_but_not_warned_about(project_with_baseline):
    api = project_with_baseline["api"]
    _upload_snapshot(api, "CREATE INDEX order_total_idx ON shop_order (total)")

    drift = _report(api, _submit(api, ADD_REGION))["schema_drift"]

    assert (drift["touched"], drift["drifted_objects"], drift["baseline_version"]) == ([], 1, 1)


def test_a_report_without_a_snapshot_has_no_drift_section(project_with_baseline):
    api = project_with_baseline["api"]

    report = _report(api, _submit(api))

    assert "schema_drift" not in report
    assert report_from_json(report).schema_drift is None


def test_the_drift_section_reads_back_into_the_report_contract(project_with_baseline):
    api = project_with_baseline["api"]
    _upload_snapshot(api, "ALTER TABLE shop_order ADD CONSTRAINT shop_order_total_positive CHECK (total > 0) NOT VALID")

    drift = report_from_json(_report(api, _submit(api))).schema_drift

    assert drift is not None
    assert [(w.status, w.name) for w in drift.touched] == [("not_valid", "shop_order_total_positive")]


def test_a_seeded_template_is_compared_by_its_schema_alone(project_with_baseline):
    api = project_with_baseline["api"]
    stats = {"project": "shop", "tables": [{"table": "shop_order", "rows": 500, "total_bytes": 65536}]}
    assert api.post("/api/v1/table-stats/", stats, format="json").status_code == 200
    _upload_snapshot(api, "CREATE INDEX order_total_idx ON shop_order (total)")

    drift = _report(api, _submit(api))["schema_drift"]

    assert drift["drifted_objects"] == 1
    assert [w["name"] for w in drift["touched"]] == ["order_total_idx"]
