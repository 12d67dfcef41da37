"""A SQLite project's change request dry-runs end to end in a SQLite shadow directory: the
baseline's template file is built there, the change runs on a copy of it, and the report says,
per statement, what ran, the database's write lock, and the tables Django remade."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from changeapi.api.report_serializers import DryRunReportSerializer, ReversibilitySerializer
from changeapi.dryrun.contract import report_from_json
from changeapi.models import ChangeRequest, ShadowDatabase
from changeapi.services.shadows import shadow_chores_wait, shadows_reap
from changeapi.shadow.engine_servers import sqlite_server
from changeapi.shadow.sqlite_files import build_lock, building_name, database_create, databases_named
from tests.conftest import SHOP_BASELINE
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

WIDEN_TOTAL = [
    {
        "app_label": "shop",
        "operations": [
            {"op": "AddField", "model_name": "order", "name": "note", "field": {"type": "TextField", "null": True}},
            {"op": "AlterField", "model_name": "order", "name": "total", "field": {"type": "BigIntegerField"}},
        ],
    }
]


@pytest.fixture
def sqlite_shop(client_for: Any, settings: Any, tmp_path: Path) -> Iterator[tuple[Any, Path]]:
    directory = tmp_path / "shadows"
    directory.mkdir()
    settings.SHADOW_SERVERS = [*settings.SHADOW_SERVERS, f"sqlite://{directory}"]
    settings.SCHEMAGATE_SEED_MAX_ROWS = 5_000
    api = client_for(UserFactory(username="owner"))
    project = {"slug": "shop", "name": "Shop", "engine": "sqlite", "engine_version": 3}
    assert api.post("/api/v1/projects/", project, format="json").status_code == 201
    baseline = api.post("/api/v1/projects/shop/baselines/", {"operations": SHOP_BASELINE}, format="json").json()
    assert api.get(f"/api/v1/baselines/{baseline['id']}/").json()["status"] == "ready"
    yield api, directory
    shadow_chores_wait()


def _submit(api: Any, operations: list[dict[str, Any]], *, rows: int) -> dict[str, Any]:
    stats = {"project": "shop", "tables": [{"table": "shop_order", "rows": rows, "total_bytes": rows * 40}]}
    assert api.post("/api/v1/table-stats/", stats, format="json").status_code == 200
    created = api.post("/api/v1/change-requests/", {"project": "shop", "title": "t", "operations": operations}, format="json")
    assert created.status_code == 202, created.content
    return {"id": created.json()["id"], **api.get(f"/api/v1/dry-runs/{created.json()['latest_dry_run']}/").json()}


def test_a_sqlite_projects_change_request_dry_runs_end_to_end_and_reports_the_remake(sqlite_shop):
    api, directory = sqlite_shop

    dry_run = _submit(api, WIDEN_TOTAL, rows=5_000)

    assert dry_run["status"] == "succeeded", dry_run["error"]
    assert ChangeRequest.objects.get(revisions__dry_runs__pk=dry_run["id"]).status == "ready_for_review"
    report = report_from_json(dry_run["report"])
    assert report.engine == "sqlite" and report.server == f"sqlite:{directory}"
    assert report.statements[0].sql == 'ALTER TABLE "shop_order" ADD COLUMN "note" text NULL'
    [remake] = report.remakes
    assert (remake.table, remake.rows, remake.operation_index) == ("shop_order", 5_000, 1)
    assert [report.statements[i].command for i in remake.statement_indexes] == [
        "CREATE TABLE",
        "INSERT",
        "DROP TABLE",
        "ALTER TABLE",
        "CREATE INDEX",
    ]
    [blocked] = report.tables
    assert (blocked.table, blocked.strongest_lock, blocked.reads_blocked_ms) == ("database", "RESERVED", 0.0)
    assert blocked.writes_blocked_ms >= remake.duration_ms
    [finding] = report.findings
    assert finding.code == "SG701" and "5,000 rows in production" in finding.message
    markdown = api.get(f"/api/v1/dry-runs/{dry_run['id']}/report.md").content.decode()
    assert f"SQLite {report.server_version} on sqlite:{directory}" in markdown
    assert "| shop_order | #2, #3, #4, #5, #6 |" in markdown and "RESERVED on database" in markdown
    assert '| 3 | `INSERT INTO "new__shop_order"' in markdown and "| remake of shop_order |" in markdown
    svg = api.get(f"/api/v1/dry-runs/{dry_run['id']}/report.svg")
    assert svg.status_code == 200 and b"RESERVED" in svg.content


def test_a_sqlite_dry_run_leaves_only_its_template_and_a_ready_spare(sqlite_shop, settings):
    api, directory = sqlite_shop

    dry_run = _submit(api, WIDEN_TOTAL, rows=100)
    shadow_chores_wait()

    assert dry_run["status"] == "succeeded", dry_run["error"]
    names = databases_named(sqlite_server(f"sqlite://{directory}"), settings.SHADOW_DATABASE_PREFIX)
    templates = set(ShadowDatabase.objects.filter(kind=ShadowDatabase.Kind.TEMPLATE).values_list("name", flat=True))
    assert not any("_dr_" in name for name in names)  # the clone was deleted
    assert templates <= set(names)
    assert any("_sp_" in name for name in names)


def test_a_large_table_remake_is_a_high_finding_with_its_production_estimate(sqlite_shop):
    api, _ = sqlite_shop

    dry_run = _submit(api, WIDEN_TOTAL, rows=2_000_000)

    findings = {f["code"]: f for f in dry_run["report"]["findings"]}
    assert findings["SG701"]["severity"] == "high"
    assert "2,000,000 rows in production, so about" in findings["SG701"]["message"]
    assert findings["SG701"]["docs"] == "docs/findings.md#sg701-sqlite-table-remake"


def test_the_reaper_deletes_a_dead_workers_sqlite_clone_and_nothing_unregistered(sqlite_shop, settings):
    _, directory = sqlite_shop
    server = sqlite_server(f"sqlite://{directory}")
    prefix = settings.SHADOW_DATABASE_PREFIX
    for name in (f"{prefix}dr_999999", f"{prefix}tpl_being_built"):
        database_create(server, name)
    (directory / "unrelated.sqlite3").write_bytes(b"")

    [result] = [r for r in shadows_reap() if r.server == server.key]

    assert f"{prefix}dr_999999" in result.dropped and f"{prefix}tpl_being_built" in result.kept
    assert (directory / "unrelated.sqlite3").exists() and (directory / f"{prefix}tpl_being_built.sqlite3").exists()
    assert not (directory / f"{prefix}dr_999999.sqlite3").exists()


def test_the_reaper_deletes_a_template_build_a_dead_worker_left_but_not_one_under_way(sqlite_shop, settings):
    _, directory = sqlite_shop
    server = sqlite_server(f"sqlite://{directory}")
    prefix = settings.SHADOW_DATABASE_PREFIX
    dead, alive = f"{prefix}tpl_dead", f"{prefix}tpl_alive"
    for template in (dead, alive):
        database_create(server, building_name(template))

    with build_lock(server, alive):
        [result] = [r for r in shadows_reap() if r.server == server.key]

    assert building_name(dead) in result.dropped and building_name(alive) in result.kept


def test_a_sqlite_report_through_the_api_carries_the_estimates_at_production_size(sqlite_shop):
    api, _ = sqlite_shop

    dry_run = _submit(api, WIDEN_TOTAL, rows=50_000)  # the template is seeded at the cap, 5,000 rows

    report = dry_run["report"]
    [remake] = report["remakes"]
    copy = report["statements"][remake["statement_indexes"][1]]
    assert (copy["work_class"], copy["estimate"]["law"], copy["estimate"]["rows_scale"]) == ("rewrite", "linear", 10.0)
    assert remake["estimate"]["estimated_ms"] > remake["duration_ms"]
    assert remake["estimate"]["low_ms"] <= remake["estimate"]["estimated_ms"] <= remake["estimate"]["high_ms"]
    assert report["estimation"]["calibrated"] is False and report["estimation"]["estimated"] is True
    assert "not calibrated" in report["estimation"]["description"].lower()
    assert report["summary"]["estimated_total_ms"] > report["total_ms"]
    [span] = report["lock_spans"]
    assert span["estimated_held_ms"] >= remake["estimate"]["estimated_ms"]
    markdown = api.get(f"/api/v1/dry-runs/{dry_run['id']}/report.md").content.decode()
    assert re.search(r"\| shop_order \| [^\n]* \| 5,000 \| [\d.,]+ m?s \([\d.,]+ m?s to [\d.,]+ m?s\) \|", markdown)


def _documented_sqlite_script() -> str:
    text = (Path(__file__).resolve().parents[2] / "docs" / "table-stats.md").read_text()
    [script] = [s for s in re.findall(r"```python\n(.*?)```", text, re.S) if "dbstat" in s]
    return script


def test_the_documented_sqlite_script_reads_sizes_only_and_its_output_is_a_valid_upload(sqlite_shop, tmp_path):
    api, _ = sqlite_shop
    path = tmp_path / "production.sqlite3"
    database = sqlite3.connect(path)
    database.executescript(
        """
        CREATE TABLE shop_order (id integer PRIMARY KEY AUTOINCREMENT, code varchar(20) NOT NULL);
        CREATE INDEX shop_order_code ON shop_order (code);
        CREATE VIEW shop_order_view AS SELECT id FROM shop_order;
        WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000)
        INSERT INTO shop_order (code) SELECT 'c' || i FROM n;
        """
    )
    database.close()
    script = tmp_path / "sqlite_table_stats.py"
    script.write_text(_documented_sqlite_script())
    before = path.read_bytes()

    printed = subprocess.run([sys.executable, str(script), str(path)], capture_output=True, text=True, check=True).stdout
    tables = json.loads(printed)
    response = api.post("/api/v1/table-stats/", {"project": "shop", "tables": tables}, format="json")

    assert response.status_code == 200, response.content
    [order] = tables  # base tables only: no view, no sqlite_sequence
    assert (order["table"], order["rows"], set(order)) == ("shop_order", 3000, {"table", "rows", "total_bytes"})
    assert order["total_bytes"] > 3000 * len("c3000")  # the table's pages and its index's
    assert path.read_bytes() == before


def test_a_sqlite_projects_report_carries_the_reversal_of_the_change_through_the_api(sqlite_shop):
    api, _ = sqlite_shop

    dry_run = _submit(api, WIDEN_TOTAL, rows=100)

    assert dry_run["status"] == "succeeded", dry_run["error"]
    published = ReversibilitySerializer(data=dry_run["report"]["reversibility"], many=True)
    assert published.is_valid(), published.errors
    [entry] = dry_run["report"]["reversibility"]
    assert (entry["checked"], entry["reversible"], entry["reason"]) == (True, True, "")
    backwards = entry["backwards_sql"]
    assert backwards[0].startswith('CREATE TABLE "new__shop_order" (') and '"total" integer NOT NULL' in backwards[0]
    assert backwards[-1] == 'ALTER TABLE "shop_order" DROP COLUMN "note"'
    assert dry_run["report"]["summary"]["reversible"] is True
    markdown = api.get(f"/api/v1/dry-runs/{dry_run['id']}/report.md").content.decode()
    assert "- `shop.0002_order_note_alter_order_total`: **reversible**" in markdown
    assert '  ALTER TABLE "shop_order" DROP COLUMN "note";' in markdown


def test_a_sqlite_report_is_valid_against_the_published_report_serializer_as_a_whole(sqlite_shop):
    api, _ = sqlite_shop

    dry_run = _submit(api, WIDEN_TOTAL, rows=100)

    assert dry_run["status"] == "succeeded", dry_run["error"]
    published = DryRunReportSerializer(data=dry_run["report"])
    assert published.is_valid(), published.errors
