"""Submitted SQL runs only as an unprivileged role on a throwaway clone, and failures are reported."""

from __future__ import annotations

import pytest

from changeapi.models import ChangeRequest
from tests.approvals.test_release_flow import _submit
from tests.conftest import clone_databases

pytestmark = pytest.mark.django_db(transaction=True)


def _run_sql(sql: str) -> list[dict]:
    return [{"app_label": "shop", "operations": [{"op": "RunSQL", "sql": sql}]}]


def test_run_sql_cannot_copy_to_a_program(project_with_baseline, tmp_path):
    canary = tmp_path / "canary"
    api = project_with_baseline["api"]

    # Plain COPY ... PROGRAM is refused at intake; inside a DO block the role refuses it.
    attack = f"DO $$ BEGIN EXECUTE 'COPY (SELECT 1) TO PROGRAM ''touch {canary}'''; END $$"
    change_request = _submit(api, _run_sql(attack))
    dry_run = api.get(f"/api/v1/dry-runs/{change_request['latest_dry_run']}/").json()

    assert dry_run["status"] == "failed"
    assert dry_run["report"]["error"]["sqlstate"] == "42501"  # insufficient_privilege
    assert (
        "pg_execute_server_program" in dry_run["report"]["error"]["message"]
        or "superuser" in dry_run["report"]["error"]["message"]
    )
    assert not canary.exists()


def test_run_sql_cannot_become_superuser(project_with_baseline):
    api = project_with_baseline["api"]

    change_request = _submit(api, _run_sql("DO $$ BEGIN EXECUTE 'ALTER ROLE CURRENT_USER SUPERUSER'; END $$"))
    dry_run = api.get(f"/api/v1/dry-runs/{change_request['latest_dry_run']}/").json()

    assert dry_run["status"] == "failed"
    assert dry_run["report"]["error"]["sqlstate"] == "42501"


def test_failing_statement_fails_the_dry_run_with_the_database_error_and_leaves_no_clone(project_with_baseline):
    api = project_with_baseline["api"]
    migrations = [
        {
            "app_label": "shop",
            "operations": [
                {"op": "AddField", "model_name": "order", "name": "note", "field": {"type": "TextField", "null": True}},
                {"op": "RunSQL", "sql": "ALTER TABLE shop_order ADD CONSTRAINT broken CHECK (no_such_column > 0)"},
            ],
        }
    ]

    change_request = _submit(api, migrations)
    dry_run = api.get(f"/api/v1/dry-runs/{change_request['latest_dry_run']}/").json()

    assert dry_run["status"] == "failed"
    error = dry_run["report"]["error"]
    assert error["sqlstate"] == "42703"  # undefined_column
    assert "no_such_column" in error["message"]
    assert error["statement_index"] == 1
    assert dry_run["report"]["statements"][1]["error"]
    assert ChangeRequest.objects.get(pk=change_request["id"]).status == "dry_run_failed"
    assert clone_databases() == []


def test_statement_timeout_stops_a_runaway_statement(project_with_baseline, settings):
    settings.SHADOW_STATEMENT_TIMEOUT_MS = 300
    api = project_with_baseline["api"]

    change_request = _submit(api, _run_sql("SELECT pg_sleep(5)"))
    dry_run = api.get(f"/api/v1/dry-runs/{change_request['latest_dry_run']}/").json()

    assert dry_run["status"] == "failed"
    assert dry_run["report"]["error"]["sqlstate"] == "57014"  # query_canceled
