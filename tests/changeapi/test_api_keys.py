"""Project API keys for CI bots: shown once, hashed, scoped to one project, revocable, expiring."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from changeapi.models import ApiKey
from tests.approvals.review_helpers import decide, submit
from tests.conftest import ADD_NOTE_AND_INDEX
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _issue(api, slug="shop", permissions=("submit_change",), **extra):  # noqa: ANN001
    response = api.post(
        f"/api/v1/projects/{slug}/api-keys/", {"name": "ci", "permissions": list(permissions), **extra}, format="json"
    )
    assert response.status_code == 201, response.content
    return response.json()


def _bearer(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


def _submit(client: APIClient, project: str = "shop"):  # noqa: ANN201
    return client.post(
        "/api/v1/change-requests/", {"project": project, "title": "Notes", "operations": ADD_NOTE_AND_INDEX}, format="json"
    )


def test_a_new_key_is_shown_once_and_only_its_hash_is_stored(project_with_baseline):
    api = project_with_baseline["api"]
    issued = _issue(api)

    assert issued["key"].startswith(f"sg_{issued['prefix']}_")
    assert issued["permissions"] == ["view_project", "submit_change"]
    stored = ApiKey.objects.get(pk=issued["id"])
    assert stored.key_sha256 == hashlib.sha256(issued["key"].encode()).hexdigest()
    assert issued["key"] not in str(ApiKey.objects.filter(pk=issued["id"]).values().first())
    listed = api.get("/api/v1/projects/shop/api-keys/").json()
    assert [k["prefix"] for k in listed] == [issued["prefix"]]
    assert "key" not in listed[0]


def test_a_key_submits_change_requests_as_its_own_bot_account(project_with_baseline):
    key = _issue(project_with_baseline["api"])["key"]

    response = _submit(_bearer(key))

    assert response.status_code == 202, response.content
    assert response["Location"] == f"/api/v1/change-requests/{response.json()['id']}/"
    stored = ApiKey.objects.select_related("user").get(prefix=key.split("_")[1])
    assert response.json()["author"] == stored.user.username
    assert stored.user.groups.filter(name="bots").exists()
    assert stored.last_used_at is not None


def test_a_key_of_one_project_sees_nothing_of_another(project_with_baseline, client_for):
    owner_api = project_with_baseline["api"]
    other = UserFactory(username="other-owner")
    other_api = client_for(other)
    assert other_api.post("/api/v1/projects/", {"slug": "billing", "name": "Billing"}, format="json").status_code == 201
    shop_change = _submit(owner_api).json()
    billing_key = _issue(other_api, slug="billing", permissions=["submit_change", "review_change"])["key"]
    bot = _bearer(billing_key)

    assert bot.get(f"/api/v1/change-requests/{shop_change['id']}/").status_code == 404
    assert bot.get("/api/v1/projects/shop/").status_code == 404
    assert [p["slug"] for p in bot.get("/api/v1/projects/").json()["results"]] == ["billing"]
    assert _submit(bot, project="shop").status_code == 404


def test_a_revoked_key_is_refused_with_a_401_problem(project_with_baseline):
    api = project_with_baseline["api"]
    issued = _issue(api)
    revoked = api.post(f"/api/v1/projects/shop/api-keys/{issued['id']}/revoke/")
    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"] is not None

    response = _bearer(issued["key"]).get("/api/v1/projects/shop/")

    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"
    assert "revoked" in response.json()["detail"]


def test_an_expired_key_is_refused_with_a_401_problem(project_with_baseline):
    issued = _issue(project_with_baseline["api"], expires_at=(timezone.now() + dt.timedelta(days=1)).isoformat())
    assert _bearer(issued["key"]).get("/api/v1/projects/shop/").status_code == 200
    ApiKey.objects.filter(pk=issued["id"]).update(expires_at=timezone.now() - dt.timedelta(seconds=1))

    response = _bearer(issued["key"]).get("/api/v1/projects/shop/")

    assert response.status_code == 401
    assert "expired" in response.json()["detail"]


def test_a_forged_key_with_a_real_prefix_is_refused(project_with_baseline):
    issued = _issue(project_with_baseline["api"])

    response = _bearer(f"sg_{issued['prefix']}_{'x' * 43}").get("/api/v1/projects/shop/")

    assert response.status_code == 401


def test_a_key_cannot_manage_its_project_nor_exceed_its_creator(project_with_baseline, client_for):
    api = project_with_baseline["api"]
    refused = api.post("/api/v1/projects/shop/api-keys/", {"name": "ci", "permissions": ["manage_project"]}, format="json")
    assert refused.status_code == 400
    submitter = UserFactory(username="submitter")
    api.post(
        "/api/v1/projects/shop/members/",
        {"username": "submitter", "permissions": ["manage_project", "submit_change"]},
        format="json",
    )

    beyond = client_for(submitter).post(
        "/api/v1/projects/shop/api-keys/", {"name": "ci", "permissions": ["release_bundle"]}, format="json"
    )

    assert beyond.status_code == 403


def test_a_bot_key_cannot_approve_where_the_policy_does_not_allow_bots(project_with_baseline):
    api = project_with_baseline["api"]
    change = _submit(api).json()
    key = _issue(api, permissions=["review_change"])["key"]

    response = _bearer(key).post(
        f"/api/v1/change-requests/{change['id']}/reviews/",
        {"decision": "approve", "revision": change["latest_revision"]["id"]},
        format="json",
    )

    assert response.status_code == 403
    assert "bot" in response.json()["detail"]


def test_api_key_endpoints_need_manage_project(project_with_baseline, client_for):
    api = project_with_baseline["api"]
    viewer = UserFactory(username="viewer")
    api.post("/api/v1/projects/shop/members/", {"username": "viewer", "permissions": ["view_project"]}, format="json")
    stranger = UserFactory(username="stranger")
    body = {"name": "ci", "permissions": ["view_project"]}

    assert APIClient().post("/api/v1/projects/shop/api-keys/", body, format="json").status_code == 401
    assert client_for(stranger).post("/api/v1/projects/shop/api-keys/", body, format="json").status_code == 404
    assert client_for(viewer).post("/api/v1/projects/shop/api-keys/", body, format="json").status_code == 403
    assert client_for(viewer).get("/api/v1/projects/shop/api-keys/").status_code == 403


def test_user_tokens_still_work_as_bearer_tokens(project_with_baseline):
    token = Token.objects.create(user=project_with_baseline["owner"])

    response = _bearer(token.key).get("/api/v1/projects/shop/")

    assert response.status_code == 200


def test_the_cli_submits_a_pull_requests_migrations_with_a_key_once_per_content(project_with_baseline, live_server, tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    key = _issue(project_with_baseline["api"])["key"]
    root = Path(__file__).resolve().parents[2]
    migration = tmp_path / "shop" / "migrations" / "0002_order_note.py"
    migration.parent.mkdir(parents=True)
    migration.write_text(
        "from django.db import migrations, models\n\n\n"
        "class Migration(migrations.Migration):\n"
        '    dependencies = [("shop", "0001_initial")]\n'
        '    operations = [migrations.AddField("order", "note", models.TextField(null=True))]\n'
    )
    env = {**os.environ, "PYTHONPATH": str(root), "SCHEMAGATE_URL": live_server.url, "SCHEMAGATE_TOKEN": key}

    def run() -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "changeapi.cli", "submit", "--project", "shop", "shop/migrations/0002_order_note.py"]
        return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)

    first = run()
    again = run()

    assert first.returncode == 0, first.stdout + first.stderr
    assert "(shop#1)" in first.stdout
    assert again.stdout == first.stdout, "a re-run replays the first submission"
    from changeapi.models import ChangeRequest

    assert ChangeRequest.objects.get().revisions.get().source["files"][0]["path"] == "shop/migrations/0002_order_note.py"


def test_a_person_cannot_approve_what_they_submitted_through_their_own_key(project_with_baseline):
    api = project_with_baseline["api"]
    key = _issue(api)["key"]
    submitted = _submit(_bearer(key))
    assert submitted.status_code == 202, submitted.content

    response = decide(api, submitted.json(), "approve")

    assert response.status_code == 403, response.content
    assert "API key" in response.json()["detail"]


def test_a_persons_own_bot_key_cannot_approve_their_change(project_with_baseline):
    api = project_with_baseline["api"]
    policy = api.post("/api/v1/approval-policies/", {"project": "shop", "allow_bot_approvals": True}, format="json")
    assert policy.status_code == 201, policy.content
    key = _issue(api, permissions=("review_change",))["key"]
    change_request = submit(api)

    response = decide(_bearer(key), change_request, "approve")

    assert response.status_code == 403, response.content
    assert "author" in response.json()["detail"]
