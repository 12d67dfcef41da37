"""Hostile Python over HTTP does nothing: a located 400 with nothing stored, or an inert data step.

Each payload would create a canary file if any of it ran, in the request or in the dry-run
that follows an accepted submission.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from rest_framework.test import APIClient

from changeapi.models import AuditEvent, ChangeRequest, DryRun, Revision

pytestmark = pytest.mark.django_db(transaction=True)

FILENAME = "shop/migrations/0002_evil.py"


def migration_file(operations: str, prelude: str = "") -> str:
    return (
        "import os\n"
        "from django.db import migrations, models\n"
        f"{prelude}\n\n"
        "class Migration(migrations.Migration):\n"
        "    dependencies = [('shop', '0001_initial')]\n"
        "    operations = [\n"
        f"        {operations}\n"
        "    ]\n"
    )


def models_source(order_body: str) -> str:
    return (
        "import os\n"
        "from django.db import models\n\n\n"
        "class Customer(models.Model):\n"
        "    id = models.BigAutoField(primary_key=True)\n"
        "    email = models.EmailField(unique=True)\n\n\n"
        "class Order(models.Model):\n"
        "    id = models.BigAutoField(primary_key=True)\n"
        "    total = models.IntegerField()\n"
        "    customer = models.ForeignKey(Customer, on_delete=models.CASCADE)\n"
        f"    {order_body}\n"
    )


def post(api: APIClient, **form: Any) -> Any:
    return api.post("/api/v1/change-requests/", {"project": "shop", "title": "Innocent", **form}, format="json")


def post_file(api: APIClient, content: str) -> Any:
    return post(api, migration_files=[{"path": FILENAME, "content": content}])


def post_models(api: APIClient, content: str) -> Any:
    return post(api, models={"apps": [{"app_label": "shop", "content": content}]})


def assert_refused_at(response: Any, *, file: str, line: int) -> dict[str, Any]:
    """A 400 problem naming the file, line and column of the offending code."""
    assert response.status_code == 400, response.content
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    error = body["errors"][0]
    assert (error["file"], error["line"]) == (file, line)
    assert error["column"] >= 1
    return body


def assert_nothing_stored() -> None:
    assert not ChangeRequest.objects.exists()
    assert not Revision.objects.exists()
    assert not DryRun.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="change_request.").exists()


@pytest.fixture
def canary(tmp_path: Path) -> Path:
    return tmp_path / "CANARY"


# The operation line of `migration_file` is line 8; the field line of `models_source` is 14.
OPERATION_LINE = 8
FIELD_LINE = 14


def test_dunder_import_in_a_migration_file_is_refused_at_its_location(project_with_baseline, canary):
    response = post_file(project_with_baseline["api"], migration_file(f"__import__('os').system('touch {canary}'),"))

    body = assert_refused_at(response, file=FILENAME, line=OPERATION_LINE)
    assert "__import__" in body["detail"]
    assert_nothing_stored()
    assert not canary.exists()


def test_attribute_escapes_in_a_migration_file_are_refused_at_their_location(project_with_baseline, canary):
    escape = f"().__class__.__mro__[1].__subclasses__()[0]('touch {canary}'),"

    response = post_file(project_with_baseline["api"], migration_file(escape))

    assert_refused_at(response, file=FILENAME, line=OPERATION_LINE)
    assert_nothing_stored()
    assert not canary.exists()


def test_eval_in_a_migration_file_is_refused_at_its_location(project_with_baseline, canary):
    payload = f"migrations.RunSQL(eval(\"__import__('os').system('touch {canary}')\")),"

    response = post_file(project_with_baseline["api"], migration_file(payload))

    assert_refused_at(response, file=FILENAME, line=OPERATION_LINE)
    assert_nothing_stored()
    assert not canary.exists()


def test_open_in_a_migration_file_is_refused_at_its_location(project_with_baseline, canary):
    response = post_file(project_with_baseline["api"], migration_file(f"migrations.RunSQL(open('{canary}', 'w').name),"))

    assert_refused_at(response, file=FILENAME, line=OPERATION_LINE)
    assert_nothing_stored()
    assert not canary.exists()


def test_a_field_default_calling_os_remove_in_a_migration_file_is_refused(project_with_baseline, tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("keep")
    add_field = f"migrations.AddField('order', 'code', models.TextField(default=os.remove('{victim}'))),"

    response = post_file(project_with_baseline["api"], migration_file(add_field))

    body = assert_refused_at(response, file=FILENAME, line=OPERATION_LINE)
    assert "os.remove" in body["detail"]
    assert_nothing_stored()
    assert victim.read_text() == "keep"


def test_a_field_default_calling_os_remove_in_models_source_is_refused(project_with_baseline, tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("keep")

    response = post_models(project_with_baseline["api"], models_source(f"code = models.TextField(default=os.remove('{victim}'))"))

    body = assert_refused_at(response, file="shop/models.py", line=FIELD_LINE)
    assert "os.remove" in body["detail"]
    assert_nothing_stored()
    assert victim.read_text() == "keep"


def test_dunder_import_in_models_source_is_refused_at_its_location(project_with_baseline, canary):
    body = f"code = models.TextField(default=__import__('os').system('touch {canary}'))"

    response = post_models(project_with_baseline["api"], models_source(body))

    assert_refused_at(response, file="shop/models.py", line=FIELD_LINE)
    assert_nothing_stored()
    assert not canary.exists()


def test_a_hostile_baseline_is_refused_and_not_stored(project_with_baseline, canary):
    api = project_with_baseline["api"]
    baselines_before = api.get("/api/v1/projects/shop/baselines/").json()

    response = api.post(
        "/api/v1/projects/shop/baselines/",
        {"migration_files": [{"path": FILENAME, "content": migration_file(f"__import__('os').system('touch {canary}'),")}]},
        format="json",
    )

    assert_refused_at(response, file=FILENAME, line=OPERATION_LINE)
    assert api.get("/api/v1/projects/shop/baselines/").json() == baselines_before
    assert not canary.exists()


def test_run_python_that_writes_a_file_is_an_inert_step_that_never_runs(project_with_baseline, canary):
    api = project_with_baseline["api"]
    prelude = f"\n\ndef forwards(apps, schema_editor):\n    open('{canary}', 'w').write('ran')\n"

    response = post_file(api, migration_file("migrations.RunPython(forwards, migrations.RunPython.noop),", prelude))

    assert response.status_code == 202, response.content
    dry_run = api.get(f"/api/v1/dry-runs/{response.json()['latest_dry_run']}/").json()
    assert dry_run["status"] == "succeeded", dry_run
    [step] = dry_run["report"]["migrations"][0]["operations"]
    assert (step["type"], step["executed"]) == ("DataMigrationStep", False)
    assert dry_run["report"]["statements"] == []
    assert not canary.exists()


def test_a_field_default_naming_a_migration_file_function_that_removes_a_file_is_never_called(project_with_baseline, tmp_path):
    api = project_with_baseline["api"]
    victim = tmp_path / "victim"
    victim.write_text("keep")
    prelude = f"\n\ndef make_code():\n    os.remove('{victim}')\n    return 'x'\n"
    add_field = "migrations.AddField('order', 'code', models.TextField(default=make_code)),"

    response = post_file(api, migration_file(add_field, prelude))

    # Kept as a reference by name, as Django would write it; Django asks for the default to
    # fill existing rows, and the dry-run says the function is project code it does not run.
    assert response.status_code == 202, response.content
    dry_run = api.get(f"/api/v1/dry-runs/{response.json()['latest_dry_run']}/").json()
    assert dry_run["status"] == "failed"
    assert "make_code" in dry_run["report"]["error"]["message"]
    assert victim.read_text() == "keep"


def test_a_field_default_naming_a_models_function_that_removes_a_file_is_never_called(project_with_baseline, tmp_path):
    api = project_with_baseline["api"]
    victim = tmp_path / "victim"
    victim.write_text("keep")
    function = f"def make_code():\n    os.remove('{victim}')\n    return 'x'\n\n\nclass Customer"
    source = models_source("code = models.TextField(default=make_code)").replace("class Customer", function)

    response = post_models(api, source)

    assert response.status_code == 202, response.content
    dry_run = api.get(f"/api/v1/dry-runs/{response.json()['latest_dry_run']}/").json()
    assert dry_run["status"] == "failed"
    assert dry_run["report"]["error"]["message"].startswith("shop.models.make_code is project code that the service does not run")
    assert victim.read_text() == "keep"


def test_a_number_too_large_to_compute_is_refused_at_once_in_the_request(project_with_baseline):
    started = time.thread_time()
    add_field = "migrations.AddField('order', 'n', models.IntegerField(default=int(Decimal('1e1000000')))),"

    response = post_file(project_with_baseline["api"], migration_file(add_field, "from decimal import Decimal"))

    assert_refused_at(response, file=FILENAME, line=OPERATION_LINE)
    assert time.thread_time() - started < 5
    assert_nothing_stored()


def test_a_loop_that_never_ends_is_refused_with_the_limit_named(project_with_baseline):
    response = post_file(project_with_baseline["api"], migration_file("", "while True:\n    pass"))

    assert response.status_code == 422, response.content
    assert response.json()["limit"]["name"] == "SCHEMAGATE_MAX_INTAKE_STEPS"
    assert_nothing_stored()
