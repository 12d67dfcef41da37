"""Slack: a signed slash command (`/schemagate status 42`) and Approve / Reject buttons.

Requests are verified (v0 signature over the raw body, 5-minute window, and each signed
request accepted once). Slack wants an answer within 3 seconds: the status command is a
quick read answered directly; a button press is acknowledged at once and its decision is
made by a task, which reports back through the `response_url`. Slack user ids are mapped per
project to Schemagate users, who need the project permission for what they do.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import logging
import re
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from approvals.models import Review
from approvals.services.reviews import review_decide
from changeapi import dispatch
from changeapi.audit import AuditContext, audit_record
from changeapi.errors import DomainError
from changeapi.integrations.http import OutboundError, http_send
from changeapi.integrations.identities import confirmed_identity_user, external_identity_confirm
from changeapi.integrations.report_markdown import blocking_findings
from changeapi.integrations.signatures import slack_signature_problem
from changeapi.integrations.ssrf import UnsafeDestination
from changeapi.models import ChangeRequest, DryRun, ExternalIdentity, Project, SlackIntegration, SlackRequestNonce
from changeapi.permissions import VIEW, has_project_perm
from changeapi.selectors import dry_run_report, latest_dry_run, latest_revision
from changeapi.types import User

logger = logging.getLogger(__name__)

STATUS_COMMAND = re.compile(r"^\s*status\s+(?:(?P<slug>[-a-zA-Z0-9_]+)#(?P<number>\d+)|#?(?P<id>\d+))\s*$")
CONFIRM_COMMAND = re.compile(r"^\s*confirm\s+(?P<code>[0-9a-f]{16})\s*$")
ACTIONS = {"schemagate_approve": Review.Decision.APPROVE, "schemagate_reject": Review.Decision.REJECT}


class SlackRequestRefused(Exception):
    """The request is not authentic, or is a replay."""


def slack_request_verify(*, body: bytes, timestamp: str | None, signature: str | None) -> None:
    """Raise SlackRequestRefused unless the request is signed, fresh and seen for the first time."""
    problem = slack_signature_problem(
        secret=settings.SLACK_SIGNING_SECRET,
        body=body,
        timestamp=timestamp,
        signature=signature,
        now=time.time(),
        tolerance=settings.SLACK_TIMESTAMP_TOLERANCE_SECONDS,
    )
    if problem:
        raise SlackRequestRefused(problem)
    try:
        with transaction.atomic():
            SlackRequestNonce.objects.create(signature_sha256=hashlib.sha256((signature or "").encode()).hexdigest())
    except IntegrityError as exc:
        raise SlackRequestRefused("this signed request was already received (replay)") from exc


@transaction.atomic
def slack_integration_set(*, project: Project, channel: str, context: AuditContext) -> SlackIntegration:
    integration, _ = SlackIntegration.objects.update_or_create(project=project, defaults={"channel": channel})
    audit_record(context=context, action="slack_integration.set", target=integration, project=project, after={"channel": channel})
    return integration


def _mapped_user(project: Project, slack_user_id: str) -> User | None:
    return confirmed_identity_user(project=project, provider=ExternalIdentity.Provider.SLACK, external_id=slack_user_id)


def _find_change_request(text: str) -> ChangeRequest | None:
    match = STATUS_COMMAND.match(text)
    if match is None:
        return None
    queryset = ChangeRequest.objects.select_related("project")
    if match["id"]:
        return queryset.filter(pk=int(match["id"])).first()
    return queryset.filter(project__slug=match["slug"], number=int(match["number"])).first()


def _ephemeral(text: str) -> dict[str, Any]:
    return {"response_type": "ephemeral", "text": text}


def slack_command(*, slack_user_id: str, text: str) -> dict[str, Any]:
    """Answer `/schemagate status <id | project#number>` for the mapped user (a quick read), and
    `/schemagate confirm <code>`, which confirms the link of this Slack account."""
    confirm = CONFIRM_COMMAND.match(text or "")
    if confirm is not None:
        identity = external_identity_confirm(
            provider=ExternalIdentity.Provider.SLACK,
            external_id=slack_user_id,
            code=confirm["code"],
            context=AuditContext(user=None, via="slack"),
        )
        if identity is None:
            return _ephemeral("That code is not valid for your Slack account (codes last one hour).")
        return _ephemeral(f"Linked: your Slack account now acts as {identity.user.get_username()} in {identity.project.slug}.")
    if not STATUS_COMMAND.match(text or ""):
        return _ephemeral("Usage: `/schemagate status 42` (change request id) or `/schemagate status shop#3`.")
    change_request = _find_change_request(text)
    user = _mapped_user(change_request.project, slack_user_id) if change_request is not None else None
    # "Not linked", "no permission" and "no such request" read alike, so nothing leaks.
    if change_request is None or user is None or not has_project_perm(user, change_request.project, VIEW):
        return _ephemeral("No change request by that name is visible to your linked Schemagate account.")
    revision = latest_revision(change_request)
    dry_run = latest_dry_run(revision)
    findings = ""
    report = dry_run_report(dry_run=dry_run)
    if report is not None:
        counts = dataclasses.asdict(report.summary.findings)
        findings = ", ".join(f"{n} {severity}" for severity, n in counts.items() if n) or "no findings"
    lines = [
        f"*{change_request.project.slug}#{change_request.number}* {change_request.title}",
        f"Status: *{change_request.status}*, revision {revision.number}",
        f"Dry-run: {dry_run.status if dry_run else 'none'}" + (f" ({findings})" if findings else ""),
        f"{settings.SCHEMAGATE_PUBLIC_URL}/api/v1/change-requests/{change_request.pk}/",
    ]
    return _ephemeral("\n".join(lines))


class MalformedInteraction(DomainError):
    code = "malformed-interaction"
    title = "The Slack interaction is not of the shape Slack sends"


@dataclass(frozen=True)
class ButtonPress:
    """What is read of a press of one of our buttons: which, its value, who, where to reply."""

    action_id: str
    value: str
    slack_user_id: str
    response_url: str


def _malformed(detail: str, pointer: str) -> MalformedInteraction:
    return MalformedInteraction(f"payload {pointer}: {detail}", errors=[{"pointer": pointer, "detail": detail}])


def _text_member(doc: dict[str, Any], key: str, pointer: str) -> str:
    value = doc.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _malformed("must be a string", f"{pointer}/{key}")
    return value


def _button_press(payload: dict[str, Any]) -> ButtonPress | None:
    """The press of one of our buttons in a signed payload; None for any other interaction.

    Signed only means Slack's secret was used: a payload of the wrong shape is refused with the
    pointer (inside the payload) of what is wrong, never read as if it were right.
    """
    if payload.get("type") != "block_actions":
        return None
    actions = payload.get("actions")
    if not isinstance(actions, list) or not actions:
        raise _malformed("must be a non-empty list of actions", "/actions")
    action = actions[0]
    if not isinstance(action, dict):
        raise _malformed("an action must be an object", "/actions/0")
    action_id = _text_member(action, "action_id", "/actions/0")
    if action_id not in ACTIONS:
        return None
    user = payload.get("user")
    if not isinstance(user, dict):
        raise _malformed("must be an object with the user's id", "/user")
    return ButtonPress(
        action_id=action_id,
        value=_text_member(action, "value", "/actions/0"),
        slack_user_id=_text_member(user, "id", "/user"),
        response_url=_text_member(payload, "response_url", ""),
    )


def slack_interaction_accept(*, payload: dict[str, Any]) -> None:
    """Acknowledge a button press now; the decision is made by a task after commit.

    Raises MalformedInteraction for a press of our buttons in a payload of the wrong shape.
    """
    if _button_press(payload) is None:
        return
    with transaction.atomic():
        dispatch.enqueue_on_commit(dispatch.SLACK_INTERACTION, payload)


def _respond(response_url: str, message: dict[str, Any]) -> None:
    if not response_url:
        return
    try:
        http_send("POST", response_url, json_body=message, guard=True)
    except (OutboundError, UnsafeDestination) as exc:
        logger.warning("Slack response_url refused or unreachable: %s", exc)


def slack_interaction_process(*, payload: dict[str, Any]) -> str:
    """Make the decision of an Approve / Reject button as the mapped reviewer; reply to Slack."""
    try:
        press = _button_press(payload)
    except MalformedInteraction:
        return "ignored: malformed payload"
    if press is None:
        return "ignored: not one of our buttons"
    response_url = press.response_url
    decision = ACTIONS[press.action_id]
    try:
        value = json.loads(press.value or "{}")
        change_request_id, revision_id = int(value["change_request"]), int(value["revision"])
    except (ValueError, KeyError, TypeError, OverflowError, RecursionError):
        return "ignored: malformed button value"
    change_request = ChangeRequest.objects.select_related("project").filter(pk=change_request_id).first()
    user = _mapped_user(change_request.project, press.slack_user_id) if change_request is not None else None
    if change_request is None or user is None:
        _respond(
            response_url,
            {**_ephemeral("Your Slack account is not linked to a reviewer of this project."), "replace_original": False},
        )
        return "refused: not mapped"
    revision = change_request.revisions.filter(pk=revision_id).first()
    if revision is None:
        return "ignored: unknown revision"
    try:
        review_decide(
            revision=revision,
            reviewer=user,
            decision=decision,
            comment=f"{decision} from Slack",
            context=AuditContext(user=user, via="slack"),
        )
    except DomainError as exc:
        _respond(response_url, {**_ephemeral(f"Refused: {exc.detail}"), "replace_original": False})
        return f"refused: {exc.detail}"
    change_request.refresh_from_db(fields=["status"])
    text = (
        f"*{change_request.project.slug}#{change_request.number}* {change_request.title}: "
        f"{decision} by {user.get_username()}; now *{change_request.status}*."
    )
    _respond(response_url, {"replace_original": True, "text": text})
    return f"{decision} by {user.get_username()}"


def approval_message(dry_run: DryRun) -> dict[str, Any]:
    """The message with Approve / Reject buttons for a change request ready for review."""
    change_request = dry_run.revision.change_request
    blocking = blocking_findings(dry_run_report(dry_run=dry_run))
    value = json.dumps({"change_request": change_request.pk, "revision": dry_run.revision_id})
    summary = (
        f"*{change_request.project.slug}#{change_request.number}* {change_request.title}\n"
        f"Revision {dry_run.revision.number} is ready for review: "
        + (f"{len(blocking)} high-severity finding(s)." if blocking else "no high-severity findings.")
    )
    return {
        "text": f"{change_request.project.slug}#{change_request.number} is ready for review",
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": summary}},
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "action_id": "schemagate_approve",
                        "style": "primary",
                        "text": {"type": "plain_text", "text": "Approve"},
                        "value": value,
                    },
                    {
                        "type": "button",
                        "action_id": "schemagate_reject",
                        "style": "danger",
                        "text": {"type": "plain_text", "text": "Reject"},
                        "value": value,
                    },
                ],
            },
        ],
    }


def slack_approval_message_post(*, dry_run: DryRun) -> bool:
    """Post the approval message when the dry-run left its change request ready for review."""
    change_request = dry_run.revision.change_request
    integration = SlackIntegration.objects.filter(project_id=change_request.project_id).first()
    if integration is None or not settings.SLACK_BOT_TOKEN:
        return False
    change_request.refresh_from_db(fields=["status"])
    if (
        change_request.status != ChangeRequest.Status.READY_FOR_REVIEW
        or latest_revision(change_request).pk != dry_run.revision_id
    ):
        return False
    message = {"channel": integration.channel, **approval_message(dry_run)}
    try:
        result = http_send(
            "POST",
            f"{settings.SLACK_API_URL.rstrip('/')}/chat.postMessage",
            json_body=message,
            headers={"Authorization": f"Bearer {settings.SLACK_BOT_TOKEN}", "Content-Type": "application/json; charset=utf-8"},
        )
    except OutboundError as exc:
        logger.warning("Slack unreachable: %s", exc)
        return False
    return result.ok and bool((result.json() or {}).get("ok"))


def slack_nonces_purge(*, now: dt.datetime | None = None) -> int:
    cutoff = (now or timezone.now()) - dt.timedelta(seconds=2 * settings.SLACK_TIMESTAMP_TOLERANCE_SECONDS)
    return SlackRequestNonce.objects.filter(received_at__lt=cutoff).delete()[0]
