"""No secret ever appears in a report, an audit event, an API response or a log line.

One exercise drives the service the way a team does (an API key for CI, a webhook subscriber,
GitHub and Slack integrations, dry-runs that succeed, fail and meet a shadow server that is
down, with a password in every admin URL) and then each test scans one place for every secret
in play: SECRET_KEY, the shadow runner's password, the admin URL passwords, the API key, the
webhook signing secret, the GitHub webhook secret and token, the Slack signing secret and token.
The one response allowed to hold a secret is the one that issues it, once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from django.apps import apps
from django.core import serializers
from django.test import Client, override_settings
from django.views.debug import get_default_exception_reporter_filter
from rest_framework.test import APIClient

from changeapi.models import AuditEvent, DryRun, GitHubIntegration, ShadowDatabase, WebhookSubscription
from changeapi.shadow.servers import ShadowServer
from tests.conftest import ADD_NOTE_AND_INDEX, SHOP_BASELINE
from tests.factories import UserFactory
from tests.support.fake_http import Canned, fake_http  # noqa: F401 - fixture

pytestmark = pytest.mark.django_db(transaction=True)

ADMIN_PASSWORD = "adm1n-" + secrets.token_hex(12)
DOWN_PASSWORD = "d0wn-" + secrets.token_hex(12)
SECRET_KEY = secrets.token_urlsafe(64)
GITHUB_WEBHOOK_SECRET = "ghws-" + secrets.token_hex(16)
GITHUB_TOKEN = "ghp_" + secrets.token_hex(18)
SLACK_SIGNING_SECRET = "slss-" + secrets.token_hex(16)
SLACK_BOT_TOKEN = "xoxb-" + secrets.token_hex(16)
REPO = "acme/shop"
MIGRATION_PATH = "shop/migrations/0002_order_note.py"
MIGRATION = """from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("shop", "0001_initial")]

    operations = [
        migrations.AddField(model_name="order", name="note", field=models.TextField(null=True)),
    ]
"""
# Stored on purpose, because the service must sign or verify with them: never shown, never logged.
SECRET_COLUMNS = {(WebhookSubscription, "secret"), (GitHubIntegration, "webhook_secret")}


@dataclass
class Exercise:
    """What the exercise saw: every secret in play and every API response it received."""

    secrets: dict[str, str]
    responses: list[tuple[str, str]] = field(default_factory=list)  # (request, body)
    issuing: list[tuple[str, str]] = field(default_factory=list)  # the responses that issue a secret
    logs: list[str] = field(default_factory=list)
    # What the database held when the exercise ended.
    reports: list[tuple[int, Any, str]] = field(default_factory=list)  # (dry-run, report, error)
    audit_events: list[dict[str, Any]] = field(default_factory=list)
    stored_rows: list[tuple[str, str]] = field(default_factory=list)

    def leaks(self, text: str) -> list[str]:
        return [name for name, value in self.secrets.items() if value and value in text]


class RecordingClient:
    """An API client that keeps every response body it gets."""

    def __init__(self, client: Client, seen: list[tuple[str, str]]) -> None:
        self.client = client
        self.seen = seen

    def __getattr__(self, method: str) -> Any:
        call = getattr(self.client, method)

        def send(path: str, *args: Any, **kwargs: Any) -> Any:
            response = call(path, *args, **kwargs)
            self.seen.append((f"{method.upper()} {path} -> {response.status_code}", _body(response)))
            return response

        return send


def _body(response: Any) -> str:
    content = b"".join(response.streaming_content) if getattr(response, "streaming", False) else response.content
    headers = "\n".join(f"{k}: {v}" for k, v in response.items())
    return headers + "\n\n" + content.decode("utf-8", errors="replace")


def _github_delivery(client: RecordingClient, event: str, payload: dict[str, Any], secret: str) -> Any:
    body = json.dumps(payload).encode()
    signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return client.post(
        "/api/v1/integrations/github/shop/webhook",
        body,
        content_type="application/json",
        HTTP_X_GITHUB_EVENT=event,
        HTTP_X_GITHUB_DELIVERY=str(uuid.uuid4()),
        HTTP_X_HUB_SIGNATURE_256=signature,
    )


def _slack_command(client: RecordingClient, text: str, secret: str) -> Any:
    body = urlencode({"command": "/schemagate", "text": text, "user_id": "UOWNER", "team_id": "T1"}).encode()
    timestamp = str(int(time.time()))
    signature = "v0=" + hmac.new(secret.encode(), f"v0:{timestamp}:".encode() + body, hashlib.sha256).hexdigest()
    return client.post(
        "/api/v1/integrations/slack/commands",
        body,
        content_type="application/x-www-form-urlencoded",
        HTTP_X_SLACK_REQUEST_TIMESTAMP=timestamp,
        HTTP_X_SLACK_SIGNATURE=signature,
    )


def _submit(client: RecordingClient, title: str, migrations: list[dict[str, Any]], **headers: str) -> dict[str, Any]:
    response = client.post(
        "/api/v1/change-requests/", {"project": "shop", "title": title, "operations": migrations}, format="json", **headers
    )
    assert response.status_code == 202, response.content
    return response.json()


# The exercise is long (dry-runs, integrations, every endpoint) and each test only reads what it
# saw: it runs once per module, for the first test that needs it.
_EXERCISED: list[Exercise] = []


@pytest.fixture
def exercise(settings, caplog, fake_http) -> Exercise:  # noqa: F811
    if not _EXERCISED:
        _EXERCISED.append(_exercise(settings, caplog, fake_http))
    return _EXERCISED[0]


def _exercise(settings: Any, caplog: Any, fake_http: Any) -> Exercise:  # noqa: F811
    admin_url = f"postgres://postgres:{ADMIN_PASSWORD}@127.0.0.1:5432/postgres"
    down_url = f"postgres://postgres:{quote(DOWN_PASSWORD)}@127.0.0.1:1/postgres"
    settings.SECRET_KEY = SECRET_KEY
    settings.SHADOW_SERVERS = [admin_url]
    settings.GITHUB_API_URL = fake_http.url
    settings.GITHUB_TOKEN = GITHUB_TOKEN
    settings.SLACK_API_URL = fake_http.url
    settings.SLACK_SIGNING_SECRET = SLACK_SIGNING_SECRET
    settings.SLACK_BOT_TOKEN = SLACK_BOT_TOKEN
    settings.SCHEMAGATE_WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    caplog.set_level(logging.DEBUG)
    seen = Exercise(
        secrets={
            "SECRET_KEY": SECRET_KEY,
            "admin URL password": ADMIN_PASSWORD,
            "admin URL password of the server that is down": DOWN_PASSWORD,
            "GitHub webhook secret": GITHUB_WEBHOOK_SECRET,
            "GitHub token": GITHUB_TOKEN,
            "Slack signing secret": SLACK_SIGNING_SECRET,
            "Slack bot token": SLACK_BOT_TOKEN,
        }
    )
    fake_http.respond("POST", "/hooks", Canned(200, "ok"))
    fake_http.respond("POST", "/chat.postMessage", Canned(200, {"ok": True, "ts": "1.2"}))
    fake_http.respond("GET", f"/repos/{REPO}/pulls/7/files", Canned(200, [{"filename": MIGRATION_PATH, "status": "added"}]))
    fake_http.respond("GET", f"/repos/{REPO}/contents/{MIGRATION_PATH}", Canned(200, MIGRATION))
    fake_http.respond("POST", f"/repos/{REPO}/check-runs", Canned(401, {"message": "Bad credentials"}))
    fake_http.respond("POST", f"/repos/{REPO}/issues/7/comments", Canned(201, {"id": 2}))

    owner = UserFactory(username="owner")
    api_client = APIClient()
    api_client.force_authenticate(user=owner)
    api = RecordingClient(api_client, seen.responses)
    anonymous = RecordingClient(APIClient(), seen.responses)

    assert api.post("/api/v1/projects/", {"slug": "shop", "name": "Shop"}, format="json").status_code == 201
    assert api.post("/api/v1/projects/shop/baselines/", {"operations": SHOP_BASELINE}, format="json").status_code == 202

    # Secrets issued once: an API key (asked for with an Idempotency-Key, as a CI script would),
    # a webhook signing secret.
    issued = api_client.post(
        "/api/v1/projects/shop/api-keys/",
        {"name": "ci", "permissions": ["submit_change"]},
        format="json",
        HTTP_IDEMPOTENCY_KEY="issue-ci-key",
    )
    assert issued.status_code == 201, issued.content
    key = issued.json()["key"]
    seen.secrets["API key"] = key
    seen.secrets["API key secret part"] = key.rsplit("_", 1)[1]
    seen.issuing.append(("POST api-keys", _body(issued)))
    subscribed = api_client.post(
        "/api/v1/projects/shop/webhooks/",
        {"url": f"{fake_http.url}/hooks", "event_types": ["change_request.submitted", "dry_run.finished"]},
        format="json",
    )
    assert subscribed.status_code == 201, subscribed.content
    whsec = subscribed.json()["secret"]
    seen.secrets["webhook secret"] = whsec
    seen.secrets["webhook key"] = whsec.removeprefix("whsec_")
    seen.secrets["webhook key (hex)"] = base64.b64decode(whsec.removeprefix("whsec_")).hex()
    seen.issuing.append(("POST webhooks", _body(subscribed)))
    github = api.put(
        "/api/v1/projects/shop/integrations/github/",
        {"repository": REPO, "webhook_secret": GITHUB_WEBHOOK_SECRET},
        format="json",
    )
    assert github.status_code == 200, github.content
    assert api.put("/api/v1/projects/shop/integrations/slack/", {"channel": "C0REVIEW"}, format="json").status_code == 200
    api.post(
        "/api/v1/projects/shop/identities/", {"provider": "slack", "external_id": "UOWNER", "username": "owner"}, format="json"
    )

    # CI submits with the key: a dry-run that succeeds, one whose SQL fails, a retried request.
    ci = RecordingClient(APIClient(HTTP_AUTHORIZATION=f"Bearer {key}"), seen.responses)
    good = _submit(ci, "Notes", ADD_NOTE_AND_INDEX, HTTP_IDEMPOTENCY_KEY="ci-run-1")
    _submit(ci, "Notes", ADD_NOTE_AND_INDEX, HTTP_IDEMPOTENCY_KEY="ci-run-1")
    bad_sql = [{"app_label": "shop", "operations": [{"op": "RunSQL", "sql": "SELECT 1/0"}]}]
    failing = _submit(ci, "Broken", bad_sql)
    # A shadow server that is down, its admin URL holding a password.
    with override_settings(SHADOW_SERVERS=[down_url]):
        unreachable = _submit(ci, "Outage", ADD_NOTE_AND_INDEX)
        api.get("/healthz")
    for change in (good, failing, unreachable):
        api.get(f"/api/v1/change-requests/{change['id']}/")
        dry_run = change["latest_dry_run"]
        api.get(f"/api/v1/dry-runs/{dry_run}/")
        api.get(f"/api/v1/dry-runs/{dry_run}/report.md/")
        api.get(f"/api/v1/dry-runs/{dry_run}/report.svg/")
    assert DryRun.objects.get(pk=unreachable["latest_dry_run"]).status == "failed"
    assert DryRun.objects.get(pk=failing["latest_dry_run"]).status == "failed"

    # GitHub and Slack, signed and forged; a key that is wrong, then revoked.
    assert _github_delivery(anonymous, "pull_request", _pull_request(), GITHUB_WEBHOOK_SECRET).status_code == 202
    assert _github_delivery(anonymous, "pull_request", _pull_request(), "forged-secret-000000").status_code == 401
    assert _slack_command(anonymous, f"status {good['id']}", SLACK_SIGNING_SECRET).status_code == 200
    assert _slack_command(anonymous, "status 1", "forged").status_code == 401
    wrong = key[:-4] + ("0000" if not key.endswith("0000") else "1111")
    RecordingClient(APIClient(HTTP_AUTHORIZATION=f"Bearer {wrong}"), seen.responses).get("/api/v1/change-requests/")
    api_key_id = issued.json()["id"]
    api.post(f"/api/v1/projects/shop/api-keys/{api_key_id}/revoke/")
    ci.get("/api/v1/change-requests/")

    # Everything a manager can read back.
    for path in (
        "/api/v1/projects/shop/",
        "/api/v1/projects/shop/api-keys/",
        f"/api/v1/projects/shop/api-keys/{api_key_id}/",
        "/api/v1/projects/shop/webhooks/",
        f"/api/v1/projects/shop/webhooks/{subscribed.json()['id']}/deliveries/",
        "/api/v1/projects/shop/integrations/github/",
        "/api/v1/projects/shop/integrations/slack/",
        "/api/v1/change-requests/",
        "/api/v1/dry-runs/",
        "/api/v1/audit-events/",
    ):
        api.get(path)
    seen.logs = [_formatted(record) for record in caplog.records]
    # The password of every shadow job of the exercise (clones, templates being built, spares).
    server = ShadowServer(admin_url)
    for name in ShadowDatabase.objects.values_list("name", flat=True):
        for database in (name, f"{name}_building"):
            seen.secrets[f"job password of {database}"] = server.job_password(server.job_role(database))
    seen.reports = list(DryRun.objects.values_list("pk", "report", "error"))
    seen.audit_events = list(AuditEvent.objects.values("pk", "action", "before", "after", "via", "target_type", "target_id"))
    seen.stored_rows = _stored_rows()
    return seen


def _pull_request() -> dict[str, Any]:
    return {
        "action": "opened",
        "repository": {"full_name": REPO},
        "pull_request": {
            "number": 7,
            "title": "Order notes",
            "body": "Adds a note.",
            "html_url": f"https://github.com/{REPO}/pull/7",
            "head": {"sha": "a" * 40},
            "user": {"id": 1001, "login": "dev"},
        },
    }


def _formatted(record: logging.LogRecord) -> str:
    text = f"{record.name} {record.levelname} {record.getMessage()}"
    if record.exc_info:
        text += "\n" + logging.Formatter().formatException(record.exc_info)
    return text


def _stored_rows() -> list[tuple[str, str]]:
    """Every row the service stores, as JSON, without the columns that must hold a secret."""
    rows = []
    for model in [*apps.get_app_config("changeapi").get_models(), *apps.get_app_config("approvals").get_models()]:
        skipped = [name for kind, name in SECRET_COLUMNS if kind is model]
        fields = [f.name for f in model._meta.concrete_fields if f.name not in skipped]
        for obj in model.objects.all():
            data = serializers.serialize("json", [obj], fields=fields)
            for f in model._meta.concrete_fields:
                value = getattr(obj, f.attname)
                if isinstance(value, (bytes, memoryview)) and f.name not in skipped:
                    data += "\n" + bytes(value).decode("utf-8", errors="replace")
            rows.append((f"{model._meta.label} {obj.pk}", data))
    return rows


def test_no_dry_run_report_holds_a_secret(exercise):
    reports = exercise.reports

    assert len(reports) >= 4
    leaks = {pk: exercise.leaks(json.dumps(report) + error) for pk, report, error in reports}
    assert {pk: found for pk, found in leaks.items() if found} == {}


def test_the_outage_report_names_the_server_by_host_and_port_only(exercise):
    (error,) = [error for _, _, error in exercise.reports if "127.0.0.1:1" in error]

    assert "unavailable" in error
    assert "postgres://" not in error


def test_no_audit_event_holds_a_secret(exercise):
    events = exercise.audit_events

    assert {"api_key.created", "webhook_subscription.created", "github_integration.set"} <= {e["action"] for e in events}
    leaks = {e["action"]: exercise.leaks(json.dumps(e, default=str)) for e in events}
    assert {action: found for action, found in leaks.items() if found} == {}


def test_no_api_response_holds_a_secret_except_the_one_that_issues_it(exercise):
    assert len(exercise.responses) > 30
    assert not [request for request, _ in exercise.responses if " -> 5" in request or " -> 30" in request]
    leaks = {request: exercise.leaks(body) for request, body in exercise.responses}

    assert {request: found for request, found in leaks.items() if found} == {}
    issued_key, issued_webhook = (body for _, body in exercise.issuing)
    assert exercise.secrets["API key"] in issued_key
    assert exercise.secrets["webhook secret"] in issued_webhook


def test_no_log_line_holds_a_secret(exercise):
    assert exercise.logs, "the exercise logged nothing: is capture working?"
    leaks = {line: exercise.leaks(line) for line in exercise.logs}

    assert {line: found for line, found in leaks.items() if found} == {}


def test_no_stored_row_holds_a_secret_outside_the_columns_that_must(exercise):
    leaks = {row: exercise.leaks(data) for row, data in exercise.stored_rows}

    assert {row: found for row, found in leaks.items() if found} == {}


def test_error_reports_hide_the_password_in_every_url_valued_setting(settings):
    settings.SHADOW_SERVERS = [f"postgres://postgres:{ADMIN_PASSWORD}@db.internal:5432/postgres"]
    settings.CELERY_BROKER_URL = f"redis://:{ADMIN_PASSWORD}@redis.internal:6379/0"
    settings.SECRET_KEY = SECRET_KEY

    shown = json.dumps(get_default_exception_reporter_filter().get_safe_settings(), default=str)

    assert ADMIN_PASSWORD not in shown
    assert SECRET_KEY not in shown
    assert "db.internal:5432" in shown
