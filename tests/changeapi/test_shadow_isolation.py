"""One project's submitted SQL cannot see, stop or break another's dry-runs on a shared shadow server.

Each attack is submitted through the API as a member of one project (`shop`); a second
project (`rival`, another team, same baseline and so the same template) dry-runs afterwards,
or alongside, and must be untouched. Plain statements of these kinds are refused at intake
(tests/engine/intake/test_sql_policy.py); the attacks here hide them in DO blocks, which the
parser cannot see into, so that what stops them is the shadow's own isolation.
"""

from __future__ import annotations

import threading
from typing import Any

import psycopg
import pytest
from django.conf import settings
from rest_framework.test import APIClient

from changeapi.shadow import provision
from changeapi.shadow.servers import configured_servers
from tests.conftest import SHOP_BASELINE, clone_databases
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

ADD_NOTE = [
    {
        "app_label": "shop",
        "operations": [{"op": "AddField", "model_name": "order", "name": "note", "field": {"type": "TextField", "null": True}}],
    }
]


def run_sql(sql: str) -> list[dict[str, Any]]:
    return [{"app_label": "shop", "operations": [{"op": "RunSQL", "sql": sql}]}]


def dry_run(api: APIClient, project: str, migrations: list[dict[str, Any]]) -> dict[str, Any]:
    response = api.post(
        "/api/v1/change-requests/", {"project": project, "title": "Change", "operations": migrations}, format="json"
    )
    assert response.status_code == 202, response.content
    return api.get(f"/api/v1/dry-runs/{response.json()['latest_dry_run']}/").json()


@pytest.fixture
def rival(client_for: Any, project_with_baseline: dict[str, Any]) -> APIClient:
    """Another team's project with the same baseline: its dry-runs clone the same template."""
    api = client_for(UserFactory(username="rival-owner"))
    assert api.post("/api/v1/projects/", {"slug": "rival", "name": "Rival"}, format="json").status_code == 201
    response = api.post("/api/v1/projects/rival/baselines/", {"operations": SHOP_BASELINE}, format="json")
    assert response.status_code == 202, response.content
    assert api.get(f"/api/v1/baselines/{response.json()['id']}/").json()["status"] == "ready"
    return api


def assert_rival_dry_runs(rival: APIClient) -> None:
    result = dry_run(rival, "rival", ADD_NOTE)
    assert result["status"] == "succeeded", result.get("error")


@pytest.fixture
def other_job() -> Any:
    """Another job's clone with a statement in flight, as its own role: what an attacker would look for."""
    server = configured_servers()[0]
    name = f"{settings.SHADOW_DATABASE_PREFIX}dr_victim"
    provision.clone_create(server, template="template1", name=name)
    running = threading.Event()

    def victim() -> None:
        with psycopg.connect(**server.runner_conninfo(name), autocommit=True) as conn:  # type: ignore[arg-type]
            running.set()
            try:
                conn.execute("SELECT 'victim secret', pg_sleep(120)")
            except psycopg.errors.QueryCanceled:
                pass

    thread = threading.Thread(target=victim)
    thread.start()
    running.wait(10)
    yield server.job_role(name)
    with server.admin_connect() as conn:
        conn.execute("SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE usename = %s", [server.job_role(name)])
    thread.join(30)
    provision.clone_drop(server, name)


def test_a_dry_run_cannot_read_another_jobs_statements(project_with_baseline: dict[str, Any], other_job: str) -> None:
    peek = (
        "DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_stat_activity WHERE query LIKE '%victim secret%' "
        "AND usename <> current_user) THEN RAISE EXCEPTION 'saw another job''s SQL'; END IF; END $$"
    )
    result = dry_run(project_with_baseline["api"], "shop", run_sql(peek))
    assert result["status"] == "succeeded", result.get("error")


def test_a_dry_run_cannot_end_another_jobs_session(project_with_baseline: dict[str, Any], other_job: str) -> None:
    kill = f"DO $$ BEGIN PERFORM pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{other_job}'; END $$"
    result = dry_run(project_with_baseline["api"], "shop", run_sql(kill))
    assert result["status"] == "failed"
    assert result["report"]["error"]["sqlstate"] == "42501"


@pytest.mark.parametrize(
    "attack",
    [
        "ALTER ROLE CURRENT_USER SET default_transaction_read_only = on",
        "ALTER ROLE CURRENT_USER SET statement_timeout = 1",
        "ALTER ROLE CURRENT_USER PASSWORD ''changed''",
        "ALTER ROLE CURRENT_USER CONNECTION LIMIT 0",
    ],
)
def test_what_a_dry_run_sets_on_its_role_does_not_outlive_it(
    project_with_baseline: dict[str, Any], rival: APIClient, attack: str
) -> None:
    dry_run(project_with_baseline["api"], "shop", run_sql(f"DO $$ BEGIN EXECUTE '{attack}'; END $$"))

    assert_rival_dry_runs(rival)
    again = dry_run(project_with_baseline["api"], "shop", ADD_NOTE)
    assert again["status"] == "succeeded", again.get("error")
    assert clone_databases() == []


def test_a_dry_run_cannot_alter_spares_or_templates_of_anyone(project_with_baseline: dict[str, Any], rival: APIClient) -> None:
    prefix = settings.SHADOW_DATABASE_PREFIX
    vandal = (
        "DO $$ DECLARE d record; BEGIN "
        f"FOR d IN SELECT datname FROM pg_database WHERE starts_with(datname, '{prefix}') AND datname <> current_database() LOOP "
        "BEGIN EXECUTE format('ALTER DATABASE %I CONNECTION LIMIT 0', d.datname); "
        "RAISE EXCEPTION 'altered %', d.datname; EXCEPTION WHEN insufficient_privilege THEN NULL; END; "
        "BEGIN EXECUTE format('COMMENT ON DATABASE %I IS %L', d.datname, '{\"calibration\": null}'); "
        "RAISE EXCEPTION 'commented %', d.datname; EXCEPTION WHEN insufficient_privilege THEN NULL; END; "
        "END LOOP; END $$"
    )

    result = dry_run(project_with_baseline["api"], "shop", run_sql(vandal))

    assert result["status"] == "succeeded", result.get("error")
    server = configured_servers()[0]
    with server.admin_connect() as conn:
        limits = conn.execute("SELECT datname, datconnlimit FROM pg_database WHERE starts_with(datname, %s)", [prefix]).fetchall()
    assert all(limit == -1 for _, limit in limits), limits
    assert_rival_dry_runs(rival)


def test_a_job_role_owns_only_its_own_clone(project_with_baseline: dict[str, Any]) -> None:
    probe = (
        "DO $$ BEGIN IF (SELECT count(*) FROM pg_database d JOIN pg_roles r ON r.oid = d.datdba "
        "WHERE r.rolname = current_user) <> 1 OR (SELECT rolsuper OR rolcreaterole OR rolcreatedb FROM pg_roles "
        "WHERE rolname = current_user) THEN RAISE EXCEPTION 'more than its clone'; END IF; END $$"
    )
    result = dry_run(project_with_baseline["api"], "shop", run_sql(probe))
    assert result["status"] == "succeeded", result.get("error")


def test_a_dry_run_that_switches_its_timeout_off_is_cancelled_from_outside(
    project_with_baseline: dict[str, Any], settings: Any
) -> None:
    settings.SHADOW_STATEMENT_TIMEOUT_MS = 500
    api = project_with_baseline["api"]

    for sneaky in (
        "DO $$ BEGIN PERFORM set_config('statement_timeout', '0', false); PERFORM pg_sleep(30); END $$",
        "DO $$ BEGIN EXECUTE 'SET statement_timeout = 0'; PERFORM pg_sleep(30); END $$",
    ):
        result = dry_run(api, "shop", run_sql(sneaky))
        assert result["status"] == "failed"
        assert result["report"]["error"]["sqlstate"] == "57014"  # query_canceled
        assert result["report"]["statements"][0]["duration_ms"] < 20_000


def test_a_dry_run_that_fills_its_database_is_stopped_with_the_limit_named(
    project_with_baseline: dict[str, Any], rival: APIClient, settings: Any
) -> None:
    settings.SHADOW_MAX_CLONE_GROWTH_BYTES = 5 << 20
    filler = "CREATE TABLE shop_filler AS SELECT g, repeat('x', 200) AS pad FROM generate_series(1, 50000000) g"

    result = dry_run(project_with_baseline["api"], "shop", run_sql(filler))

    assert result["status"] == "failed"
    assert "SHADOW_MAX_CLONE_GROWTH_BYTES" in result["report"]["error"]["message"]
    assert clone_databases() == []
    assert_rival_dry_runs(rival)


def test_a_dry_run_cannot_spill_past_its_temporary_file_limit(project_with_baseline: dict[str, Any], settings: Any) -> None:
    settings.SHADOW_TEMP_FILE_LIMIT_KB = 1024
    big_sort = "PERFORM count(*) FROM (SELECT g FROM generate_series(1, 2000000) g ORDER BY random()) s"

    result = dry_run(project_with_baseline["api"], "shop", run_sql(f"DO $$ BEGIN {big_sort}; END $$"))

    assert result["status"] == "failed"
    assert result["report"]["error"]["sqlstate"] == "53400"  # configuration_limit_exceeded
    assert "temp_file_limit" in result["report"]["error"]["message"]


def test_a_dry_run_cannot_lift_its_temporary_file_limit(project_with_baseline: dict[str, Any]) -> None:
    lift = "DO $$ BEGIN PERFORM set_config('temp_file_limit', '-1', false); END $$"

    result = dry_run(project_with_baseline["api"], "shop", run_sql(lift))

    assert result["status"] == "failed"
    assert result["report"]["error"]["sqlstate"] == "42501"  # insufficient_privilege


def test_plain_sql_that_would_lift_limits_or_leave_the_transaction_is_refused_at_intake(
    project_with_baseline: dict[str, Any],
) -> None:
    api = project_with_baseline["api"]
    for sql in (
        "SET statement_timeout = 0; SELECT pg_sleep(75)",
        "COMMIT; BEGIN; ALTER TABLE shop_order ALTER COLUMN total TYPE bigint; COMMIT; BEGIN",
        "ALTER ROLE CURRENT_USER SET default_transaction_read_only = on",
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity",
    ):
        response = api.post(
            "/api/v1/change-requests/", {"project": "shop", "title": "x", "operations": run_sql(sql)}, format="json"
        )
        assert response.status_code == 400, response.content
        assert response.json()["errors"][0]["pointer"] == "/operations/0/operations/0/sql"
