"""Slack: signed, fresh, first-seen requests only; a status command; Approve / Reject buttons
acted on as the mapped reviewer, acknowledged at once and answered through the response_url."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from urllib.parse import urlencode

import pytest
from django.test import Client

from changeapi.models import ChangeRequest
from tests.conftest import ADD_NOTE_AND_INDEX
from tests.factories import UserFactory
from tests.support.fake_http import Canned, fake_http  # noqa: F401 - fixture
from tests.support.identities import confirmation_code, link_identity

pytestmark = pytest.mark.django_db(transaction=True)

SIGNING_SECRET = "slack-signing-secret"


@pytest.fixture
def slack(project_with_baseline, fake_http, settings):  # noqa: ANN001, ANN201, F811
    settings.SLACK_SIGNING_SECRET = SIGNING_SECRET
    settings.SLACK_API_URL = fake_http.url
    settings.SLACK_BOT_TOKEN = "xoxb-test"
    settings.SCHEMAGATE_WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    fake_http.respond("POST", "/chat.postMessage", Canned(200, {"ok": True, "ts": "1.2"}))
    fake_http.respond("POST", "/actions/T1/reply", Canned(200, "ok"))
    api = project_with_baseline["api"]
    assert api.put("/api/v1/projects/shop/integrations/slack/", {"channel": "C0REVIEW"}, format="json").status_code == 200
    UserFactory(username="reviewer")
    api.post("/api/v1/projects/shop/members/", {"username": "reviewer", "permissions": ["review_change"]}, format="json")
    identity = link_identity(api, provider="slack", external_id="UREVIEWER", username="reviewer")
    confirmed = _signed_post(
        Client(), "/api/v1/integrations/slack/commands", _command(f"confirm {confirmation_code(identity, username='reviewer')}")
    )
    assert "Linked" in confirmed.json()["text"], confirmed.content
    return fake_http


def _signed_post(client, path, body: bytes, *, timestamp=None, secret=SIGNING_SECRET, signature=None):  # noqa: ANN001, ANN202
    timestamp = str(int(time.time()) if timestamp is None else timestamp)
    if signature is None:
        signature = "v0=" + hmac.new(secret.encode(), f"v0:{timestamp}:".encode() + body, hashlib.sha256).hexdigest()
    return client.post(
        path,
        body,
        content_type="application/x-www-form-urlencoded",
        HTTP_X_SLACK_REQUEST_TIMESTAMP=timestamp,
        HTTP_X_SLACK_SIGNATURE=signature,
    )


def _command(text: str, user_id: str = "UREVIEWER") -> bytes:
    return urlencode({"command": "/schemagate", "text": text, "user_id": user_id, "team_id": "T1"}).encode()


def _submit(project_with_baseline):  # noqa: ANN001, ANN202
    response = project_with_baseline["api"].post(
        "/api/v1/change-requests/", {"project": "shop", "title": "Order notes", "operations": ADD_NOTE_AND_INDEX}, format="json"
    )
    assert response.status_code == 202, response.content
    return response.json()


def _button(slack_server, action_id: str, user_id: str = "UREVIEWER") -> bytes:  # noqa: ANN001
    [message] = slack_server.sent("POST", "/chat.postMessage")
    buttons = {e["action_id"]: e for e in message.json()["blocks"][1]["elements"]}
    payload = {
        "type": "block_actions",
        "user": {"id": user_id},
        "team": {"id": "T1"},
        "actions": [{"action_id": action_id, "value": buttons[action_id]["value"]}],
        "response_url": f"{slack_server.url}/actions/T1/reply",
    }
    return urlencode({"payload": json.dumps(payload)}).encode()


@pytest.mark.parametrize("signature", ["", "v0=" + "0" * 64])
def test_an_unsigned_or_badly_signed_command_is_refused_with_401(slack, client, signature):
    response = _signed_post(client, "/api/v1/integrations/slack/commands", _command("status 1"), signature=signature)

    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"


def test_a_command_signed_more_than_five_minutes_ago_is_refused(slack, client):
    response = _signed_post(client, "/api/v1/integrations/slack/commands", _command("status 1"), timestamp=int(time.time()) - 301)

    assert response.status_code == 401
    assert "window" in response.json()["detail"]


def test_a_replayed_signed_request_is_refused(slack, client):
    body, timestamp = _command("status 1"), int(time.time())
    first = _signed_post(client, "/api/v1/integrations/slack/commands", body, timestamp=timestamp)
    replay = _signed_post(client, "/api/v1/integrations/slack/commands", body, timestamp=timestamp)

    assert first.status_code == 200
    assert replay.status_code == 401
    assert "replay" in replay.json()["detail"]


def test_the_status_command_answers_the_mapped_user(slack, client, project_with_baseline):
    change = _submit(project_with_baseline)

    response = _signed_post(client, "/api/v1/integrations/slack/commands", _command(f"status {change['id']}"))

    assert response.status_code == 200
    answer = response.json()
    assert answer["response_type"] == "ephemeral"
    assert "shop#1" in answer["text"] and "ready_for_review" in answer["text"]


def test_the_status_command_reveals_nothing_to_an_unmapped_user(slack, client, project_with_baseline):
    change = _submit(project_with_baseline)

    response = _signed_post(
        client, "/api/v1/integrations/slack/commands", _command(f"status {change['id']}", user_id="USTRANGER")
    )

    assert response.status_code == 200
    assert "Order notes" not in response.json()["text"]


def test_a_change_ready_for_review_posts_an_approval_message_with_buttons(slack, project_with_baseline):
    change = _submit(project_with_baseline)

    [message] = slack.sent("POST", "/chat.postMessage")
    sent = message.json()
    assert message.headers["authorization"] == "Bearer xoxb-test"
    assert sent["channel"] == "C0REVIEW"
    actions = [e["action_id"] for e in sent["blocks"][1]["elements"]]
    assert actions == ["schemagate_approve", "schemagate_reject"]
    assert json.loads(sent["blocks"][1]["elements"][0]["value"])["change_request"] == change["id"]


def test_the_approve_button_decides_as_the_mapped_reviewer_and_replies_to_slack(slack, client, project_with_baseline):
    change = _submit(project_with_baseline)

    started = time.monotonic()
    response = _signed_post(client, "/api/v1/integrations/slack/interactive", _button(slack, "schemagate_approve"))

    assert response.status_code == 200
    assert time.monotonic() - started < 3
    assert ChangeRequest.objects.get(pk=change["id"]).status == "approved"
    reviews = project_with_baseline["api"].get(f"/api/v1/change-requests/{change['id']}/reviews/").json()
    assert [(r["reviewer"], r["decision"]) for r in reviews] == [("reviewer", "approve")]
    [reply] = slack.sent("POST", "/actions/T1/reply")
    assert reply.json()["replace_original"] is True
    assert "approve by reviewer" in reply.json()["text"]


def test_a_button_pressed_by_an_unmapped_user_decides_nothing(slack, client, project_with_baseline):
    change = _submit(project_with_baseline)

    response = _signed_post(
        client, "/api/v1/integrations/slack/interactive", _button(slack, "schemagate_approve", user_id="USTRANGER")
    )

    assert response.status_code == 200
    assert ChangeRequest.objects.get(pk=change["id"]).status == "ready_for_review"
    [reply] = slack.sent("POST", "/actions/T1/reply")
    assert "not linked" in reply.json()["text"]


def test_the_reject_button_rejects(slack, client, project_with_baseline):
    change = _submit(project_with_baseline)

    _signed_post(client, "/api/v1/integrations/slack/interactive", _button(slack, "schemagate_reject"))

    assert ChangeRequest.objects.get(pk=change["id"]).status == "rejected"


def test_a_slack_id_linked_to_another_member_but_never_confirmed_cannot_press_approve(slack, client, project_with_baseline):
    # The owner links their own Slack id to the reviewer, to approve their own change as them.
    link_identity(project_with_baseline["api"], provider="slack", external_id="UOWNER", username="reviewer")
    _submit(project_with_baseline)

    _signed_post(client, "/api/v1/integrations/slack/interactive", _button(slack, "schemagate_approve", user_id="UOWNER"))

    assert ChangeRequest.objects.get().status == "ready_for_review"
