"""Every configured limit refuses with a problem+json naming it, and stores nothing."""

from __future__ import annotations

import pytest
from django.core.cache import cache

from changeapi.models import ChangeRequest, DryRun, Revision
from tests.approvals.test_release_flow import _submit
from tests.conftest import clone_databases

pytestmark = pytest.mark.django_db(transaction=True)


def _post(api, body):  # noqa: ANN001
    return api.post("/api/v1/change-requests/", {"project": "shop", "title": "limits", **body}, format="json")


def _assert_limit(response, setting: str) -> None:  # noqa: ANN001
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["limit"]["name"] == setting
    assert not ChangeRequest.objects.exists()
    assert not Revision.objects.exists()


def _add_fields(count: int) -> list[dict]:
    return [
        {
            "app_label": "shop",
            "operations": [
                {"op": "AddField", "model_name": "order", "name": f"f{i}", "field": {"type": "IntegerField", "null": True}}
                for i in range(count)
            ],
        }
    ]


def test_request_body_over_the_limit_is_refused(project_with_baseline, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2_000

    response = _post(project_with_baseline["api"], {"operations": _add_fields(100)})

    assert response.status_code == 413
    _assert_limit(response, "SCHEMAGATE_MAX_BODY_BYTES")


def test_too_many_operations_are_refused(project_with_baseline, settings):
    settings.SCHEMAGATE_MAX_OPERATIONS = 3

    response = _post(project_with_baseline["api"], {"operations": _add_fields(4)})

    assert response.status_code == 413
    _assert_limit(response, "SCHEMAGATE_MAX_OPERATIONS")


def test_too_many_migration_files_are_refused(project_with_baseline, settings):
    settings.SCHEMAGATE_MAX_MIGRATIONS = 1
    files = [{"path": f"shop/migrations/000{i}_x.py", "content": "from django.db import migrations\n"} for i in (2, 3)]

    response = _post(project_with_baseline["api"], {"migration_files": files})

    assert response.status_code == 413
    _assert_limit(response, "SCHEMAGATE_MAX_MIGRATIONS")


def test_source_over_the_size_limit_is_refused(project_with_baseline, settings):
    settings.SCHEMAGATE_MAX_SOURCE_BYTES = 100
    content = "from django.db import migrations\n" + "# padding\n" * 50

    response = _post(
        project_with_baseline["api"], {"migration_files": [{"path": "shop/migrations/0002_x.py", "content": content}]}
    )

    assert response.status_code == 413
    _assert_limit(response, "SCHEMAGATE_MAX_SOURCE_BYTES")


def test_source_nested_deeper_than_the_limit_is_refused(project_with_baseline, settings):
    settings.SCHEMAGATE_MAX_AST_DEPTH = 20
    content = "X = " + "[" * 30 + "]" * 30 + "\n"

    response = _post(
        project_with_baseline["api"], {"migration_files": [{"path": "shop/migrations/0002_x.py", "content": content}]}
    )

    assert response.status_code == 413
    _assert_limit(response, "SCHEMAGATE_MAX_AST_DEPTH")
    assert response.json()["errors"][0]["file"] == "shop/migrations/0002_x.py"


def test_submissions_over_the_rate_limit_are_refused(project_with_baseline, settings):
    cache.clear()
    settings.SCHEMAGATE_SUBMIT_RATE_LIMIT = "1/min"
    api = project_with_baseline["api"]
    _submit(api)

    response = _post(api, {"operations": _add_fields(1)})

    assert response.status_code == 429
    assert response.json()["limit"]["name"] == "SCHEMAGATE_SUBMIT_RATE_LIMIT"
    assert ChangeRequest.objects.count() == 1
    cache.clear()


def test_a_dry_run_over_its_wall_time_is_stopped_and_explained(project_with_baseline, settings):
    settings.SCHEMAGATE_DRY_RUN_WALL_SECONDS = 1
    sql = "SELECT pg_sleep(10)"  # within the 60 s statement timeout: only the wall time stops it
    migrations = [{"app_label": "shop", "operations": [{"op": "RunSQL", "sql": sql}]}]

    change_request = _submit(project_with_baseline["api"], migrations)

    dry_run = DryRun.objects.get(pk=change_request["latest_dry_run"])
    assert dry_run.status == "failed"
    assert "SCHEMAGATE_DRY_RUN_WALL_SECONDS" in dry_run.error
    assert clone_databases() == []


def test_a_shadow_server_at_its_concurrency_limit_makes_the_job_wait_then_fail_with_the_reason(project_with_baseline, settings):
    settings.SHADOW_MAX_CONCURRENT_PER_SERVER = 0

    change_request = _submit(project_with_baseline["api"])

    dry_run = DryRun.objects.get(pk=change_request["latest_dry_run"])
    assert dry_run.status == "failed"
    assert "SHADOW_MAX_CONCURRENT_PER_SERVER" in dry_run.error
    assert ChangeRequest.objects.get(pk=change_request["id"]).status == "dry_run_failed"
