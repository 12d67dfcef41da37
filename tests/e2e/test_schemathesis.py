"""Schemathesis against a real server process on the committed openapi.yaml.

The server (gunicorn, as in production) runs on 127.0.0.1 against this test's database, seeded
with a project, a baseline, a released and an open change request, so path parameters point at
objects that exist. Every response must be no 5xx and conform to the schema: status code,
content type, headers and body.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.db import connection
from gunicorn.config import KNOWN_SETTINGS
from rest_framework.authtoken.models import Token

from tests.conftest import ADD_NOTE_AND_INDEX
from tests.factories import UserFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
]
# Subscribing a webhook makes the server send events to the generated URL: not from a test.
DISABLED_OPERATIONS = ["projects_webhooks_create"]
# The same cases on every run: a failure reproduces, and a pass is not luck.
SEED = 20250101
# The run takes about two minutes here; past this it is stopped and fails.
RUN_TIMEOUT_SECONDS = 300


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _database_url() -> str:
    db = connection.settings_dict
    credentials = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{credentials}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@contextmanager
def _server(log: Path) -> Iterator[str]:
    """gunicorn on a free loopback port, on the test database; outbound integrations go nowhere."""
    port = _free_port()
    dead_end = f"http://127.0.0.1:{_free_port()}"
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "SCHEMAGATE_RATE_LIMIT": "100000/min",
        "SCHEMAGATE_SUBMIT_RATE_LIMIT": "100000/min",
        "GITHUB_API_URL": dead_end,
        "SLACK_API_URL": dead_end,
        "SCHEMAGATE_OUTBOUND_TIMEOUT_SECONDS": "1",
        "DJANGO_LOG_LEVEL": "WARNING",
    }
    env.pop("CELERY_BROKER_URL", None)  # tasks run in the server process, as on one machine
    command = [sys.executable, "-m", "gunicorn", "config.wsgi:application", "--bind", f"127.0.0.1:{port}"]
    command += ["--workers", "2", "--timeout", "120", "--graceful-timeout", "60"]
    if any("--no-control-socket" in (setting.cli or []) for setting in KNOWN_SETTINGS):
        command.append("--no-control-socket")  # newer gunicorn opens one in $HOME otherwise
    with log.open("w") as output:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    urllib.request.urlopen(f"{url}/healthz", timeout=2).close()
                    break
                except OSError:
                    if process.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"the server did not start:\n{log.read_text()}") from None
                    time.sleep(0.2)
            yield url
        finally:
            process.terminate()
            process.wait(timeout=90)


def _seed(project_with_baseline, client_for) -> dict[str, int]:  # noqa: ANN001
    """A released change request (with its bundle) and an open one; ids for the path parameters."""
    owner_api = project_with_baseline["api"]
    reviewer_api = client_for(UserFactory(username="reviewer"))
    owner_api.post("/api/v1/projects/shop/members/", {"username": "reviewer", "permissions": ["review_change"]}, format="json")

    def submit(title: str) -> dict:
        response = owner_api.post(
            "/api/v1/change-requests/", {"project": "shop", "title": title, "operations": ADD_NOTE_AND_INDEX}, format="json"
        )
        assert response.status_code == 202, response.content
        return response.json()

    released = submit("Order notes")
    approved = reviewer_api.post(
        f"/api/v1/change-requests/{released['id']}/reviews/",
        {"decision": "approve", "revision": released["latest_revision"]["id"]},
        format="json",
    )
    assert approved.status_code == 201, approved.content
    bundle = owner_api.post("/api/v1/bundles/", {"project": "shop", "change_requests": [released["id"]]}, format="json")
    assert bundle.status_code == 201, bundle.content
    open_change = submit("Order notes again")
    key = owner_api.post("/api/v1/projects/shop/api-keys/", {"name": "ci", "permissions": ["submit_change"]}, format="json")
    assert key.status_code == 201, key.content
    return {
        "change_request": open_change["id"],
        "revision": open_change["latest_revision"]["id"],
        "dry_run": open_change["latest_dry_run"],
        "bundle": bundle.json()["id"],
        "baseline": owner_api.get("/api/v1/projects/shop/baselines/").json()[0]["id"],
        "api_key": key.json()["id"],
    }


def _config(ids: dict[str, int]) -> str:
    """schemathesis.toml: path parameters of the seeded objects, and the operations left out."""
    pinned = {
        "/api/v1/change-requests/": ids["change_request"],
        "/api/v1/revisions/": ids["revision"],
        "/api/v1/dry-runs/": ids["dry_run"],
        "/api/v1/bundles/": ids["bundle"],
        "/api/v1/baselines/": ids["baseline"],
        "/api/v1/projects/{slug}/api-keys/": ids["api_key"],
    }
    hooks = Path(__file__).resolve().parent / "schemathesis_hooks.py"
    lines = [f"hooks = '{hooks}'", "", "[parameters]", '"path.slug" = "shop"', '"path.project_slug" = "shop"']
    for prefix, value in pinned.items():
        regex = "^" + re.escape(prefix + "{id}")
        lines += ["", "[[operations]]", f"include-path-regex = '{regex}'", f'parameters = {{ "path.id" = {value} }}']
    for operation_id in DISABLED_OPERATIONS:
        lines += ["", "[[operations]]", f'include-operation-id = "{operation_id}"', "enabled = false"]
    return "\n".join(lines) + "\n"


def test_schemathesis_finds_no_server_errors_or_schema_violations(project_with_baseline, client_for, tmp_path):
    ids = _seed(project_with_baseline, client_for)
    token = Token.objects.create(user=project_with_baseline["owner"]).key
    config = tmp_path / "schemathesis.toml"
    config.write_text(_config(ids))
    log = tmp_path / "server.log"

    with _server(log) as url:
        started = time.monotonic()
        run = subprocess.run(
            [str(Path(sys.executable).parent / "schemathesis"), "--config-file", str(config), "--no-color"]
            + ["run", str(ROOT / "openapi.yaml"), "--url", url, "--header", f"Authorization: Bearer {token}"]
            + ["--checks", ",".join(CHECKS), "--max-examples", "15", "--workers", "2", "--seed", str(SEED)]
            + ["--request-timeout", "60", "--generation-database", "none"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT_SECONDS,
        )
        elapsed = time.monotonic() - started
    print(run.stdout[-4000:])
    print(f"schemathesis: {elapsed:.0f} s")
    assert run.returncode == 0, f"{run.stdout[-30000:]}\n{run.stderr[-3000:]}\n--- server log ---\n{log.read_text()[-20000:]}"
