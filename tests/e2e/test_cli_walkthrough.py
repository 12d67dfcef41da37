"""The README's walkthrough with the `schemagate` command-line client, against a live server.

Every step a person takes goes through the CLI's `main` with the environment it reads
(SCHEMAGATE_URL, SCHEMAGATE_TOKEN) and the exit code a CI job would see; only the set-up
(project, baseline, members) and sealing the bundle, which the CLI does not do, use the API.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from changeapi.cli.commands import Output
from changeapi.cli.main import main
from tests.conftest import ADD_NOTE_AND_INDEX, SHOP_BASELINE
from tests.e2e.test_generated_client_flow import _with_file_changed
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[2]


class Run:
    """One CLI invocation: its exit code, stdout and stderr."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, url: str, token: str | None, *argv: str) -> None:
        monkeypatch.setenv("SCHEMAGATE_URL", url)
        if token is None:
            monkeypatch.delenv("SCHEMAGATE_TOKEN", raising=False)
        else:
            monkeypatch.setenv("SCHEMAGATE_TOKEN", token)
        out, err = io.StringIO(), io.StringIO()
        self.code = main(list(argv), Output(out=out, err=err))
        self.out, self.err = out.getvalue(), err.getvalue()

    @property
    def change_request(self) -> str:
        """The id `submit` printed first: `change request <id> (<project>#<number>): <status>`."""
        return self.out.split()[2]


@pytest.fixture
def shop(live_server, tmp_path):  # noqa: ANN001, ANN201
    """The demo's world: `shop` with its baseline, alice (author), bob (reviewer), admin (owner)."""
    users = {name: UserFactory(username=name) for name in ("alice", "bob", "admin")}
    admin = APIClient()
    admin.force_authenticate(users["admin"])
    assert admin.post("/api/v1/projects/", {"slug": "shop", "name": "Shop"}, format="json").status_code == 201
    assert admin.post("/api/v1/projects/shop/baselines/", {"operations": SHOP_BASELINE}, format="json").status_code == 202
    for name, permission in (("alice", "submit_change"), ("bob", "review_change")):
        member = {"username": name, "permissions": [permission]}
        assert admin.post("/api/v1/projects/shop/members/", member, format="json").status_code == 200
    change = tmp_path / "order_notes.json"
    change.write_text(json.dumps(ADD_NOTE_AND_INDEX))
    tokens = {name: Token.objects.create(user=user).key for name, user in users.items()}
    return {"url": live_server.url, "tokens": tokens, "admin": admin, "change": change, "dir": tmp_path}


def test_the_readme_walkthrough_runs_end_to_end_with_the_cli(shop, monkeypatch):
    url, tokens = shop["url"], shop["tokens"]

    # 1-2. Alice submits and waits; the findings are below high, so a CI job passes.
    submitted = Run(
        monkeypatch, url, tokens["alice"], "submit", "--project", "shop", str(shop["change"]), "--wait", "--fail-on", "high"
    )
    assert submitted.code == 0, submitted.err
    assert submitted.out.startswith(f"change request {submitted.change_request} (shop#1): ")
    assert "SG101" in submitted.out and "(statement 2)" in submitted.out
    assert " succeeded: 2 findings" in submitted.out
    cr = submitted.change_request

    report = Run(monkeypatch, url, tokens["alice"], "report", cr, "--format", "json")
    assert report.code == 0
    statements = json.loads(report.out)["statements"]
    assert [s["work_class"] for s in statements] == ["catalog_only", "index_build"]

    # 3. The same report as Markdown, with links that work outside the repository.
    markdown = Run(monkeypatch, url, tokens["alice"], "report", cr, "--format", "md")
    assert markdown.code == 0
    assert markdown.out.startswith("### Schemagate dry-run: succeeded")
    assert "(http://localhost:8000/docs/findings.md#sg101-blocking-index-build)" in markdown.out

    # 4. Alice cannot approve her own change: refused, exit 2, with the service's reason.
    own = Run(monkeypatch, url, tokens["alice"], "approve", cr)
    assert own.code == 2
    assert "Permission denied (403)" in own.err and "review_change" in own.err

    # 5. Bob approves; the status says so.
    approved = Run(monkeypatch, url, tokens["bob"], "approve", cr, "--comment", "nullable column and a small table: fine")
    assert approved.code == 0, approved.err
    assert approved.out.strip() == f"bob approved revision 1 of change request {cr}: approved"
    status = Run(monkeypatch, url, tokens["alice"], "status", cr)
    assert status.code == 0 and " 'order_notes': approved; revision 1, dry-run " in status.out

    # 6. Admin seals the bundle (through the API) and downloads it.
    bundle = shop["admin"].post("/api/v1/bundles/", {"project": "shop", "change_requests": [int(cr)]}, format="json").json()
    archive = shop["dir"] / bundle["filename"]
    archive.write_bytes(shop["admin"].get(bundle["download_url"]).content)

    # 7. The bundle verifies, with no token; an edited one does not.
    verified = Run(monkeypatch, url, None, "bundle", "verify", str(archive))
    assert verified.code == 0, verified.err
    assert verified.out.strip() == f"OK {archive.name}: bundle 1 of shop, signature valid, 3 files match the manifest"
    tampered = shop["dir"] / "tampered.tar.gz"
    tampered.write_bytes(_with_file_changed(archive.read_bytes(), ".sql"))
    refused = Run(monkeypatch, url, None, "bundle", "verify", str(tampered))
    assert refused.code == 1
    assert refused.out.startswith("INVALID tampered.tar.gz") and ".sql" in refused.out


def test_findings_at_the_fail_on_severity_fail_the_job(shop, monkeypatch):
    run = Run(
        monkeypatch,
        shop["url"],
        shop["tokens"]["alice"],
        "submit",
        "--project",
        "shop",
        str(shop["change"]),
        "--fail-on",
        "medium",
    )

    assert run.code == 1
    assert "1 at or above medium: failing" in run.out


def test_waiting_shows_progress_on_stderr_and_only_results_on_stdout(shop, monkeypatch):
    run = Run(monkeypatch, shop["url"], shop["tokens"]["alice"], "submit", "--project", "shop", str(shop["change"]), "--wait")

    assert run.code == 0
    assert f"{shop['url']}/api/v1/change-requests/{run.change_request}/" in run.err
    assert "/api/v1/" not in run.out


def test_migration_files_are_submitted_as_the_migrations_form(shop, monkeypatch):
    migration = shop["dir"] / "shop" / "migrations" / "0002_order_note.py"
    migration.parent.mkdir(parents=True)
    migration.write_text(
        "from django.db import migrations, models\n\n\n"
        "class Migration(migrations.Migration):\n"
        "    dependencies = [('shop', '0001_initial')]\n"
        "    operations = [migrations.AddField('order', 'note', models.TextField(null=True))]\n"
    )

    run = Run(monkeypatch, shop["url"], shop["tokens"]["alice"], "submit", "--project", "shop", str(migration), "--wait")

    assert run.code == 0, run.err
    change = shop["admin"].get(f"/api/v1/change-requests/{run.change_request}/").json()
    assert change["title"] == "0002_order_note"
    assert change["latest_revision"]["source"]["migration_files"][0]["path"] == "shop/migrations/0002_order_note.py"


def test_a_refused_submission_exits_2_naming_where_it_is_wrong(shop, monkeypatch):
    bad = shop["dir"] / "bad.json"
    bad.write_text(
        json.dumps([{"app_label": "shop", "operations": [{"op": "RemoveField", "model_name": "invoice", "name": "x"}]}])
    )

    run = Run(monkeypatch, shop["url"], shop["tokens"]["alice"], "submit", "--project", "shop", str(bad))

    assert run.code == 2
    assert "/operations/0/operations/0" in run.err


def test_files_of_two_forms_are_a_usage_error_before_anything_is_sent(shop, monkeypatch):
    models = shop["dir"] / "shop" / "models.py"
    models.parent.mkdir(parents=True)
    models.write_text("from django.db import models\n")

    run = Run(monkeypatch, shop["url"], shop["tokens"]["alice"], "submit", "--project", "shop", str(models), str(shop["change"]))

    assert run.code == 2
    assert "one submission has one form" in run.err
    assert shop["admin"].get("/api/v1/change-requests/").json()["results"] == []


def test_a_wrong_token_is_a_usage_error(shop, monkeypatch):
    run = Run(monkeypatch, shop["url"], "not-a-token", "status", "1")  # refused before any lookup

    assert run.code == 2
    assert "(401)" in run.err


def test_an_unreachable_service_is_exit_3(monkeypatch):
    run = Run(monkeypatch, "http://127.0.0.1:9", "t", "status", "1")

    assert run.code == 3
    assert "cannot be reached" in run.err


def test_help_documents_the_configuration_and_exit_codes():
    result = subprocess.run(
        [sys.executable, "-m", "changeapi.cli", "--help"], capture_output=True, text=True, cwd=ROOT, env={"PYTHONPATH": str(ROOT)}
    )

    assert result.returncode == 0
    assert "SCHEMAGATE_URL" in result.stdout and "SCHEMAGATE_TOKEN" in result.stdout
    assert all(f"\n  {code}  " in result.stdout for code in "0123")
