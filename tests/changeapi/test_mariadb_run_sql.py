"""A MySQL project's RunSQL over HTTP: MySQL-dialect SQL is accepted and runs on the MariaDB
shadow as submitted, and its report's Markdown shows it whole with what the server said; SQL
that would escape the dry-run is a located 400, and nothing runs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from changeapi.models import ChangeRequest
from changeapi.services.shadows import shadow_chores_wait
from changeapi.shadow.mysql_databases import database_drop, databases_named
from tests.conftest import SHOP_BASELINE
from tests.factories import UserFactory
from tests.support.mariadb import MARIADB, MARIADB_URL

pytestmark = pytest.mark.django_db(transaction=True)

INSTANT_COLUMN = "ALTER TABLE `shop_order` ADD COLUMN `coupon` varchar(20) NULL, ALGORITHM=INSTANT, LOCK=NONE"


@pytest.fixture
def api(client_for, settings) -> Iterator[Any]:  # noqa: ANN001
    settings.SHADOW_SERVERS = [*settings.SHADOW_SERVERS, MARIADB_URL]
    api = client_for(UserFactory(username="owner"))
    project = {"slug": "shop", "name": "Shop", "engine": "mysql", "engine_version": 10}
    assert api.post("/api/v1/projects/", project, format="json").status_code == 201
    baseline = api.post("/api/v1/projects/shop/baselines/", {"operations": SHOP_BASELINE}, format="json").json()
    assert api.get(f"/api/v1/baselines/{baseline['id']}/").json()["status"] == "ready"
    yield api
    shadow_chores_wait()
    for name in databases_named(MARIADB, settings.SHADOW_DATABASE_PREFIX):
        database_drop(MARIADB, name)


def _run_sql(sql: str, reverse_sql: str = "ALTER TABLE `shop_order` DROP COLUMN `coupon`") -> dict[str, Any]:
    operation = {"op": "RunSQL", "sql": sql, "reverse_sql": reverse_sql}
    return {"project": "shop", "title": "raw SQL", "operations": [{"app_label": "shop", "operations": [operation]}]}


def test_mysql_dialect_run_sql_is_accepted_and_runs_on_the_mariadb_shadow_as_submitted(api):
    created = api.post("/api/v1/change-requests/", _run_sql(INSTANT_COLUMN), format="json")

    assert created.status_code == 202, created.content
    dry_run = api.get(f"/api/v1/dry-runs/{created.json()['latest_dry_run']}/").json()
    assert dry_run["status"] == "succeeded", dry_run["error"]
    [statement] = dry_run["report"]["statements"]
    assert statement["sql"] == INSTANT_COLUMN and statement["commits_on_its_own"] is True


def test_the_markdown_report_shows_a_mysql_statement_as_one_code_span_with_what_the_server_said(api):
    created = api.post("/api/v1/change-requests/", _run_sql(INSTANT_COLUMN), format="json")

    markdown = api.get(f"/api/v1/dry-runs/{created.json()['latest_dry_run']}/report.md").content.decode()

    # The SQL's own backticks would end a `…` span: the span is delimited by two of them.
    row = next(line for line in markdown.splitlines() if line.startswith("| 1 | "))
    assert row.startswith("| 1 | `` ALTER TABLE `shop_order` ADD COLUMN `coupon` varchar(20) NULL, ALGORITHM=INSTANT")
    assert " `` | ALGORITHM=INSTANT, LOCK=NONE; commits on its own | LOCK=NONE on shop_order |" in row


def test_run_sql_that_would_lift_the_dry_runs_lock_wait_is_a_located_400_and_nothing_is_stored(api):
    response = api.post(
        "/api/v1/change-requests/", _run_sql("SET SESSION lock_wait_timeout = 31536000; " + INSTANT_COLUMN), format="json"
    )

    assert response.status_code == 400, response.content
    assert response["Content-Type"].startswith("application/problem+json")
    [error] = response.json()["errors"]
    assert error["pointer"] == "/operations/0/operations/0/sql"
    assert "'SET SESSION lock_wait_timeout = 31536000' is refused" in error["detail"]
    assert ChangeRequest.objects.count() == 0
