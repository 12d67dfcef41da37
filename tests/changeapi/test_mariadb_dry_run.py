"""A MySQL project's change request dry-runs end to end on the local MariaDB: the baseline's
template is built there, the change runs on a clone of it, and the report says, per statement,
what the server allows and did."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from changeapi.api.report_serializers import ReversibilitySerializer
from changeapi.dryrun.contract import report_from_json
from changeapi.models import ChangeRequest, ShadowDatabase
from changeapi.services.shadows import shadow_chores_wait, shadows_reap
from changeapi.shadow.mysql_databases import (
    admin_cursor,
    database_create,
    database_drop,
    database_exists,
    databases_named,
    job_user_create,
    job_user_name,
)
from tests.conftest import SHOP_BASELINE
from tests.factories import UserFactory
from tests.support.mariadb import MARIADB, MARIADB_URL

pytestmark = pytest.mark.django_db(transaction=True)

WIDEN_TOTAL = {
    "app_label": "shop",
    "operations": [
        {"op": "AddField", "model_name": "order", "name": "note", "field": {"type": "TextField", "null": True}},
        {"op": "AlterField", "model_name": "order", "name": "total", "field": {"type": "BigIntegerField"}},
    ],
}


@pytest.fixture
def mysql_shop(client_for, settings) -> Iterator[object]:
    settings.SHADOW_SERVERS = [*settings.SHADOW_SERVERS, MARIADB_URL]
    settings.SCHEMAGATE_SEED_MAX_ROWS = 5_000
    api = client_for(UserFactory(username="owner"))
    project = {"slug": "shop", "name": "Shop", "engine": "mysql", "engine_version": 10}
    assert api.post("/api/v1/projects/", project, format="json").status_code == 201
    yield api
    shadow_chores_wait()
    for name in databases_named(MARIADB, settings.SHADOW_DATABASE_PREFIX):
        database_drop(MARIADB, name)


def test_a_mysql_projects_change_request_dry_runs_on_mariadb_end_to_end(mysql_shop):
    api = mysql_shop
    baseline = api.post("/api/v1/projects/shop/baselines/", {"operations": SHOP_BASELINE}, format="json").json()
    assert api.get(f"/api/v1/baselines/{baseline['id']}/").json()["status"] == "ready"
    stats = {"project": "shop", "tables": [{"table": "shop_order", "rows": 5_000, "total_bytes": 800_000}]}
    assert api.post("/api/v1/table-stats/", stats, format="json").status_code == 200
    body = {
        "project": "shop",
        "title": "widen the total",
        "operations": [WIDEN_TOTAL],
    }

    created = api.post("/api/v1/change-requests/", body, format="json")
    assert created.status_code == 202, created.content
    dry_run = api.get(f"/api/v1/dry-runs/{created.json()['latest_dry_run']}/").json()

    assert dry_run["status"] == "succeeded", dry_run["error"]
    assert ChangeRequest.objects.get(pk=created.json()["id"]).status == "ready_for_review"
    report = report_from_json(dry_run["report"])
    assert report.engine == "mariadb" and report.server == MARIADB.key and "MariaDB" in report.server_version
    add, alter = report.statements
    assert add.online_ddl is not None and (add.online_ddl.algorithm, add.online_ddl.lock) == ("INSTANT", "NONE")
    assert alter.sql == "ALTER TABLE `shop_order` MODIFY `total` bigint NOT NULL"
    assert alter.online_ddl is not None
    assert (alter.online_ddl.algorithm, alter.online_ddl.lock, alter.online_ddl.rebuilt) == ("COPY", "SHARED", True)
    assert alter.online_ddl.rows_copied == 5_000  # the clone was seeded from the uploaded stats
    assert dry_run["report"]["statements"][1]["commits_on_its_own"] is True
    assert ShadowDatabase.objects.filter(server=MARIADB.key, kind=ShadowDatabase.Kind.TEMPLATE).count() == 2
    markdown = api.get(f"/api/v1/dry-runs/{dry_run['id']}/report.md").content.decode()
    assert f"MariaDB {report.server_version} on {MARIADB.key}" in markdown
    assert "ALGORITHM=COPY, LOCK=SHARED, rebuilt (5,000 rows copied), blocks writes; commits on its own" in markdown
    assert api.get(f"/api/v1/dry-runs/{dry_run['id']}/report.svg").status_code == 200


def test_the_reaper_drops_a_dead_workers_mariadb_clone_and_user_and_nothing_unregistered(mysql_shop, settings):
    orphan = f"{settings.SHADOW_DATABASE_PREFIX}dr_999999"
    building = f"{settings.SHADOW_DATABASE_PREFIX}tpl_being_built"
    for name in (orphan, building):
        database_create(MARIADB, name)
    job_user_create(MARIADB, orphan, statement_seconds=1)
    # The worker "died" after dropping the clone's database but not its user.
    gone = f"{settings.SHADOW_DATABASE_PREFIX}dr_999998"
    database_create(MARIADB, gone)
    job_user_create(MARIADB, gone, statement_seconds=1)
    with admin_cursor(MARIADB) as cursor:
        cursor.execute(f"DROP DATABASE `{gone}`")

    [result] = [r for r in shadows_reap() if r.server == MARIADB.key]

    assert orphan in result.dropped and building in result.kept
    assert not database_exists(MARIADB, orphan) and database_exists(MARIADB, building)
    assert job_user_name(gone) in result.dropped_roles
    with admin_cursor(MARIADB) as cursor:
        cursor.execute("SELECT count(*) FROM mysql.user WHERE user IN (%s, %s)", [job_user_name(orphan), job_user_name(gone)])
        assert cursor.fetchone()[0] == 0


def test_a_mysql_projects_dry_run_report_lists_this_engines_findings(mysql_shop):
    api = mysql_shop
    baseline = api.post("/api/v1/projects/shop/baselines/", {"operations": SHOP_BASELINE}, format="json").json()
    assert api.get(f"/api/v1/baselines/{baseline['id']}/").json()["status"] == "ready"
    stats = {"project": "shop", "tables": [{"table": "shop_order", "rows": 2_000_000, "total_bytes": 800_000_000}]}
    assert api.post("/api/v1/table-stats/", stats, format="json").status_code == 200
    referrer = {"type": "ForeignKey", "to": "shop.customer", "on_delete": "CASCADE", "null": True, "related_name": "+"}
    body = {
        "project": "shop",
        "title": "widen the total, refer a customer",
        "operations": [
            {
                "app_label": "shop",
                "operations": [
                    {"op": "AddField", "model_name": "order", "name": "note", "field": {"type": "TextField", "null": True}},
                    {"op": "AlterField", "model_name": "order", "name": "total", "field": {"type": "BigIntegerField"}},
                ],
            },
            {
                "app_label": "shop",
                "operations": [{"op": "AddField", "model_name": "order", "name": "referrer", "field": referrer}],
            },
        ],
    }

    created = api.post("/api/v1/change-requests/", body, format="json")
    assert created.status_code == 202, created.content
    dry_run = api.get(f"/api/v1/dry-runs/{created.json()['latest_dry_run']}/").json()

    assert dry_run["status"] == "succeeded", dry_run["error"]
    findings = {f["code"]: f for f in dry_run["report"]["findings"]}
    assert set(findings) == {"SG601", "SG602", "SG603", "SG604", "SG605"}
    assert findings["SG601"]["severity"] == "high" and "2,000,000 rows in production" in findings["SG601"]["message"]
    assert findings["SG604"]["severity"] == "high" and findings["SG604"]["table"] == "shop_order"
    assert findings["SG602"]["safer_alternative"]["example"] == "ALTER TABLE `shop_order` DROP COLUMN `note`;"
    assert all(f["docs"].startswith(f"docs/findings.md#{code.lower()}-mysql-") for code, f in findings.items())
    assert dry_run["report"]["summary"]["findings"]["high"] == 2
    markdown = api.get(f"/api/v1/dry-runs/{dry_run['id']}/report.md").content.decode()
    assert all(code in markdown for code in findings) and "pt-online-schema-change" in markdown


def test_a_mysql_projects_report_estimates_a_copy_at_the_uploaded_production_size(mysql_shop):
    api = mysql_shop
    baseline = api.post("/api/v1/projects/shop/baselines/", {"operations": SHOP_BASELINE}, format="json").json()
    assert api.get(f"/api/v1/baselines/{baseline['id']}/").json()["status"] == "ready"
    # Ten times the seed cap (5,000): the clone holds 5,000 orders, production 50,000.
    stats = {"project": "shop", "tables": [{"table": "shop_order", "rows": 50_000, "total_bytes": 8_000_000}]}
    assert api.post("/api/v1/table-stats/", stats, format="json").status_code == 200
    operations = [
        {"op": "AddField", "model_name": "order", "name": "note", "field": {"type": "TextField", "null": True}},
        {"op": "AlterField", "model_name": "order", "name": "total", "field": {"type": "BigIntegerField"}},
    ]
    body = {"project": "shop", "title": "widen the total", "operations": [{"app_label": "shop", "operations": operations}]}

    created = api.post("/api/v1/change-requests/", body, format="json")
    dry_run = api.get(f"/api/v1/dry-runs/{created.json()['latest_dry_run']}/").json()

    assert dry_run["status"] == "succeeded", dry_run["error"]
    report = report_from_json(dry_run["report"])
    add, alter = (s.estimate for s in report.statements)
    assert add is not None and (add.work_class, add.estimated_ms) == ("catalog_only", add.measured_ms)
    assert alter is not None and (alter.work_class, alter.law, alter.rows_scale) == ("rewrite", "linear", 10.0)
    assert alter.estimated_ms is not None and alter.estimated_ms > alter.measured_ms
    assert report.summary.estimated_total_ms is not None
    assert report.estimation is not None and "one-row copy" in report.estimation.description
    markdown = api.get(f"/api/v1/dry-runs/{dry_run['id']}/report.md").content.decode()
    assert "at production size" in markdown and "rewrite; ALGORITHM=COPY, LOCK=SHARED" in markdown


def test_a_mysql_projects_report_carries_the_reversal_of_the_change_through_the_api(mysql_shop):
    api = mysql_shop
    baseline = api.post("/api/v1/projects/shop/baselines/", {"operations": SHOP_BASELINE}, format="json").json()
    assert api.get(f"/api/v1/baselines/{baseline['id']}/").json()["status"] == "ready"
    body = {
        "project": "shop",
        "title": "widen the total, then an index in plain SQL",
        "operations": [
            WIDEN_TOTAL,
            {"app_label": "shop", "operations": [{"op": "RunSQL", "sql": "CREATE INDEX order_total_ix ON shop_order (total)"}]},
        ],
    }

    created = api.post("/api/v1/change-requests/", body, format="json")
    assert created.status_code == 202, created.content
    dry_run = api.get(f"/api/v1/dry-runs/{created.json()['latest_dry_run']}/").json()

    assert dry_run["status"] == "succeeded", dry_run["error"]
    published = ReversibilitySerializer(data=dry_run["report"]["reversibility"], many=True)
    assert published.is_valid(), published.errors
    first, second = dry_run["report"]["reversibility"]
    assert (second["checked"], second["reversible"], second["reason"]) == (True, False, "RunSQL without reverse_sql")
    assert (first["checked"], first["reason"]) == (False, "not checked: shop.0003_auto cannot be reversed first")
    assert "SG302" in {f["code"] for f in dry_run["report"]["findings"]}
    assert dry_run["report"]["summary"]["reversible"] is False
    markdown = api.get(f"/api/v1/dry-runs/{dry_run['id']}/report.md").content.decode()
    assert "- `shop.0003_auto`: **irreversible** — RunSQL without reverse_sql" in markdown
