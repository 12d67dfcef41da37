"""GitHub: signed deliveries, processed once; pull requests with migrations become change requests;
comment commands act as the mapped reviewer; results go back as check runs."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from changeapi.models import ChangeRequest, GitHubDelivery
from tests.factories import UserFactory
from tests.support.fake_http import Canned, fake_http  # noqa: F401 - fixture
from tests.support.identities import confirmation_code, link_and_confirm, link_identity

pytestmark = pytest.mark.django_db(transaction=True)

SECRET = "github-webhook-secret-123"
REPO = "acme/shop"
MIGRATION_PATH = "shop/migrations/0002_order_note.py"
MIGRATION = """from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("shop", "0001_initial")]

    operations = [
        migrations.AddField(model_name="order", name="note", field=models.TextField(null=True)),
    ]
"""


@pytest.fixture
def github(project_with_baseline, fake_http, settings):  # noqa: ANN001, ANN201, F811
    settings.GITHUB_API_URL = fake_http.url
    settings.GITHUB_TOKEN = "ghp_test_token"
    response = project_with_baseline["api"].put(
        "/api/v1/projects/shop/integrations/github/", {"repository": REPO, "webhook_secret": SECRET}, format="json"
    )
    assert response.status_code == 200, response.content
    fake_http.respond(
        "GET",
        f"/repos/{REPO}/pulls/7/files",
        Canned(200, [{"filename": MIGRATION_PATH, "status": "added"}, {"filename": "README.md", "status": "modified"}]),
    )
    fake_http.respond("GET", f"/repos/{REPO}/contents/{MIGRATION_PATH}", Canned(200, MIGRATION))
    fake_http.respond("POST", f"/repos/{REPO}/check-runs", Canned(201, {"id": 1}))
    fake_http.respond("POST", f"/repos/{REPO}/issues/7/comments", Canned(201, {"id": 2}))
    return fake_http


def _deliver(client, event, payload, *, secret=SECRET, delivery=None, signature=None):  # noqa: ANN001, ANN202
    body = json.dumps(payload).encode()
    headers = {"HTTP_X_GITHUB_EVENT": event, "HTTP_X_GITHUB_DELIVERY": delivery or str(uuid.uuid4())}
    if signature is None:
        signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    if signature:
        headers["HTTP_X_HUB_SIGNATURE_256"] = signature
    return client.post("/api/v1/integrations/github/shop/webhook", body, content_type="application/json", **headers)


def _pull_request(action="opened", sha="a" * 40, author_id=1001):  # noqa: ANN001, ANN202
    return {
        "action": action,
        "repository": {"full_name": REPO},
        "pull_request": {
            "number": 7,
            "title": "Order notes",
            "body": "Adds a note.",
            "html_url": f"https://github.com/{REPO}/pull/7",
            "head": {"sha": sha},
            "user": {"id": author_id, "login": "dev"},
        },
    }


def _comment(text, user_id, login="someone"):  # noqa: ANN001, ANN202
    return {
        "action": "created",
        "repository": {"full_name": REPO},
        "issue": {"number": 7, "pull_request": {"url": "..."}},
        "comment": {"body": text, "user": {"id": user_id, "login": login, "type": "User"}},
    }


@pytest.mark.parametrize("signature", ["", "sha256=" + "0" * 64, "sha1=abc"])
def test_a_delivery_without_a_valid_signature_is_refused_with_401(github, client, signature):
    response = _deliver(client, "pull_request", _pull_request(), signature=signature)

    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"
    assert GitHubDelivery.objects.count() == 0
    assert github.requests == []


def test_a_delivery_signed_with_another_secret_is_refused(github, client):
    response = _deliver(client, "pull_request", _pull_request(), secret="not-the-secret-at-all")

    assert response.status_code == 401


def test_a_pull_request_with_migrations_becomes_a_change_request_with_a_check_run(github, client, project_with_baseline):
    response = _deliver(client, "pull_request", _pull_request())

    assert response.status_code == 202, response.content
    change_request = ChangeRequest.objects.get()
    assert change_request.title == "PR #7: Order notes"
    assert change_request.status == "ready_for_review"
    revision = change_request.revisions.get()
    assert revision.form == "migrations"
    assert [f["path"] for f in revision.source["files"]] == [MIGRATION_PATH]
    [files_call] = github.sent("GET", f"/repos/{REPO}/pulls/7/files")
    assert files_call.headers["authorization"] == "Bearer ghp_test_token"
    [check_run] = github.sent("POST", f"/repos/{REPO}/check-runs")
    sent = check_run.json()
    assert sent["head_sha"] == "a" * 40
    assert sent["status"] == "completed"
    assert sent["conclusion"] == "success"
    assert "Schemagate dry-run" in sent["output"]["summary"]


def test_a_redelivery_is_processed_once(github, client):
    first = _deliver(client, "pull_request", _pull_request(), delivery="delivery-1")
    again = _deliver(client, "pull_request", _pull_request(), delivery="delivery-1")

    assert first.status_code == 202
    assert again.status_code == 200
    assert again.json() == {"delivery": "delivery-1", "status": "duplicate"}
    assert ChangeRequest.objects.count() == 1
    assert len(github.sent("GET", f"/repos/{REPO}/pulls/7/files")) == 1


def test_each_push_adds_a_revision(github, client):
    _deliver(client, "pull_request", _pull_request())
    _deliver(client, "pull_request", _pull_request(action="synchronize", sha="b" * 40))

    change_request = ChangeRequest.objects.get()
    assert change_request.revisions.count() == 2
    check_runs = [r.json()["head_sha"] for r in github.sent("POST", f"/repos/{REPO}/check-runs")]
    assert check_runs == ["a" * 40, "b" * 40]


def test_a_pull_request_without_migration_files_is_ignored(github, client):
    github.respond("GET", f"/repos/{REPO}/pulls/7/files", Canned(200, [{"filename": "shop/views.py", "status": "added"}]))

    _deliver(client, "pull_request", _pull_request())

    assert ChangeRequest.objects.count() == 0
    assert GitHubDelivery.objects.get().status == "ignored"


def test_an_approve_comment_acts_as_the_reviewer_mapped_by_github_user_id(github, client, project_with_baseline):
    api = project_with_baseline["api"]
    UserFactory(username="reviewer")
    api.post("/api/v1/projects/shop/members/", {"username": "reviewer", "permissions": ["review_change"]}, format="json")
    _confirmed(client, api, "4242")
    _deliver(client, "pull_request", _pull_request())

    _deliver(
        client, "issue_comment", _comment("Looks fine.\n/schemagate approve aaaaaaaaaaaa", user_id=4242, login="renamed-login")
    )

    change_request = ChangeRequest.objects.get()
    assert change_request.status == "approved"
    reviews = api.get(f"/api/v1/change-requests/{change_request.pk}/reviews/").json()
    assert [(r["reviewer"], r["decision"]) for r in reviews] == [("reviewer", "approve")]
    reply = github.sent("POST", f"/repos/{REPO}/issues/7/comments")[-1]
    assert "approved" in reply.json()["body"]


def test_a_reject_comment_records_the_reason(github, client, project_with_baseline):
    api = project_with_baseline["api"]
    UserFactory(username="reviewer")
    api.post("/api/v1/projects/shop/members/", {"username": "reviewer", "permissions": ["review_change"]}, format="json")
    _confirmed(client, api, "4242")
    _deliver(client, "pull_request", _pull_request())

    _deliver(client, "issue_comment", _comment("/schemagate reject locks the orders table", user_id=4242))

    change_request = ChangeRequest.objects.get()
    assert change_request.status == "rejected"
    review = api.get(f"/api/v1/change-requests/{change_request.pk}/reviews/").json()[0]
    assert review["comment"] == "locks the orders table"


def test_a_comment_by_an_unmapped_github_user_decides_nothing(github, client):
    _deliver(client, "pull_request", _pull_request())

    _deliver(client, "issue_comment", _comment("/schemagate approve", user_id=999, login="reviewer"))

    assert ChangeRequest.objects.get().status == "ready_for_review"
    [reply] = github.sent("POST", f"/repos/{REPO}/issues/7/comments")
    assert "not linked" in reply.json()["body"]


def test_a_github_app_installation_token_is_used_when_an_app_is_configured(github, client, settings):
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    settings.GITHUB_APP_ID = "12345"
    settings.GITHUB_APP_PRIVATE_KEY = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    github.respond("POST", "/app/installations/99/access_tokens", Canned(201, {"token": "ghs_installation"}))

    _deliver(client, "pull_request", {**_pull_request(), "installation": {"id": 99}})

    [token_call] = github.sent("POST", "/app/installations/99/access_tokens")
    jwt = token_call.headers["authorization"].removeprefix("Bearer ")
    header, claims, signature = jwt.split(".")
    key.public_key().verify(
        _b64decode(signature), f"{header}.{claims}".encode(), padding.PKCS1v15(), hashes.SHA256()
    )  # raises unless signed by the app's key
    assert json.loads(_b64decode(claims))["iss"] == "12345"
    [check_run] = github.sent("POST", f"/repos/{REPO}/check-runs")
    assert check_run.headers["authorization"] == "Bearer ghs_installation"


def _b64decode(part: str) -> bytes:
    import base64

    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _confirmed(client, api, github_id, username="reviewer"):  # noqa: ANN001, ANN202
    """Link the GitHub id to the member, who confirms it with a comment from that account."""

    def send(code: str) -> None:
        _deliver(client, "issue_comment", _comment(f"/schemagate confirm {code}", user_id=int(github_id)))

    return link_and_confirm(api, provider="github", external_id=github_id, username=username, send=send)


def _linked_reviewer(client, api, github_id="4242"):  # noqa: ANN001, ANN202
    UserFactory(username="reviewer")
    api.post("/api/v1/projects/shop/members/", {"username": "reviewer", "permissions": ["review_change"]}, format="json")
    _confirmed(client, api, github_id)


def test_an_approve_comment_must_name_the_head_commit(github, client, project_with_baseline):
    _linked_reviewer(client, project_with_baseline["api"])
    _deliver(client, "pull_request", _pull_request())

    _deliver(client, "issue_comment", _comment("/schemagate approve", user_id=4242))
    _deliver(client, "issue_comment", _comment("/schemagate approve bbbbbbbbbbbb", user_id=4242))

    assert ChangeRequest.objects.get().status == "ready_for_review"
    replies = [r.json()["body"] for r in github.sent("POST", f"/repos/{REPO}/issues/7/comments")][1:]
    assert len(replies) == 2 and all("aaaaaaaaaaaa" in reply for reply in replies)


def test_the_pull_request_author_cannot_approve_it_by_comment(github, client, project_with_baseline):
    _linked_reviewer(client, project_with_baseline["api"], github_id="1001")
    _deliver(client, "pull_request", _pull_request(author_id=1001))

    _deliver(client, "issue_comment", _comment("/schemagate approve aaaaaaaaaaaa", user_id=1001))

    assert ChangeRequest.objects.get().status == "ready_for_review"
    reply = github.sent("POST", f"/repos/{REPO}/issues/7/comments")[-1]
    assert "cannot approve" in reply.json()["body"]


def test_whoever_pushed_a_commit_to_the_pull_request_cannot_approve_it(github, client, project_with_baseline):
    api = project_with_baseline["api"]
    _linked_reviewer(client, api)
    _deliver(client, "pull_request", _pull_request())
    pushed = {**_pull_request(action="synchronize", sha="b" * 40), "sender": {"id": 4242, "login": "reviewer"}}
    _deliver(client, "pull_request", pushed)

    _deliver(client, "issue_comment", _comment("/schemagate approve bbbbbbbbbbbb", user_id=4242))
    change_request = ChangeRequest.objects.get()
    through_api = api.get(f"/api/v1/change-requests/{change_request.pk}/")
    reviewer_api = APIClient()
    reviewer_api.force_authenticate(user=get_user_model().objects.get(username="reviewer"))
    direct = reviewer_api.post(
        f"/api/v1/change-requests/{change_request.pk}/reviews/",
        {"decision": "approve", "revision": through_api.json()["latest_revision"]["id"]},
        format="json",
    )

    assert change_request.status == "ready_for_review"
    assert direct.status_code == 403, direct.content


def test_a_link_acts_for_nobody_until_the_linked_member_confirms_it(github, client, project_with_baseline):
    api = project_with_baseline["api"]
    UserFactory(username="reviewer")
    api.post("/api/v1/projects/shop/members/", {"username": "reviewer", "permissions": ["review_change"]}, format="json")
    link_identity(api, provider="github", external_id="4242", username="reviewer")
    _deliver(client, "pull_request", _pull_request())

    _deliver(client, "issue_comment", _comment("/schemagate approve aaaaaaaaaaaa", user_id=4242))

    assert ChangeRequest.objects.get().status == "ready_for_review"
    assert "not linked" in github.sent("POST", f"/repos/{REPO}/issues/7/comments")[-1].json()["body"]


def test_only_the_linked_member_gets_the_code_and_only_from_the_linked_account_it_confirms(github, client, project_with_baseline):
    api = project_with_baseline["api"]
    UserFactory(username="reviewer")
    api.post("/api/v1/projects/shop/members/", {"username": "reviewer", "permissions": ["review_change"]}, format="json")
    identity = link_identity(api, provider="github", external_id="4242", username="reviewer")
    _deliver(client, "pull_request", _pull_request())

    by_manager = api.post(f"/api/v1/projects/shop/identities/{identity['id']}/confirmation-code/")
    code = confirmation_code(identity, username="reviewer")
    _deliver(client, "issue_comment", _comment(f"/schemagate confirm {code}", user_id=6666))

    assert by_manager.status_code == 403
    assert api.get("/api/v1/projects/shop/identities/").json()[0]["confirmed_at"] is None
