"""Celery tasks of the integrations: each takes ids (or Slack's payload), loads, calls one service.

All are safe to deliver twice: deliveries and webhook events are claimed with a
compare-and-set on their rows before anything is sent or decided.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task
from django.utils import timezone

from changeapi.api.idempotency import idempotency_records_purge
from changeapi.integrations.github import GitHubError, github_delivery_process, github_dry_run_report
from changeapi.integrations.slack import slack_approval_message_post, slack_interaction_process, slack_nonces_purge
from changeapi.models import DryRun, WebhookDelivery
from changeapi.services.webhooks import webhook_deliveries_due, webhook_delivery_attempt

logger = logging.getLogger(__name__)


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=50)
def webhook_delivery_task(self, delivery_id: int) -> None:  # type: ignore[no-untyped-def]
    """One attempt; on a worker, while the delivery stays pending, retry when its next attempt is due.

    Run in-process (no broker, at the commit of a request), it makes that one attempt only: an
    eager retry would ignore the countdown and make every attempt at once, inside the request.
    The periodic `webhook_deliveries_due_task` makes the later attempts.
    """
    delivery = webhook_delivery_attempt(delivery_id=delivery_id)
    if delivery is None or delivery.status != WebhookDelivery.Status.PENDING or delivery.next_attempt_at is None:
        return
    if self.request.is_eager:
        return
    countdown = max(0.0, (delivery.next_attempt_at - timezone.now()).total_seconds())
    raise self.retry(countdown=countdown)


@shared_task
def webhook_deliveries_due_task() -> list[int]:
    """Beat (`send-due-webhooks`): attempt every delivery whose next attempt is due, oldest first:
    the retries of deliveries first tried in a request, and those whose retry message was lost
    (a worker died, a broker restarted)."""
    due = webhook_deliveries_due()
    for delivery_id in due:
        webhook_delivery_task.delay(delivery_id)
    return due


@shared_task(acks_late=True, reject_on_worker_lost=True)
def github_delivery_task(delivery_id: int) -> None:
    github_delivery_process(delivery_id=delivery_id)


@shared_task(acks_late=True)
def slack_interaction_task(payload: dict[str, Any]) -> str:
    return slack_interaction_process(payload=payload)


@shared_task
def integrations_react_task(event: str, subject_type: str, subject_id: int) -> None:
    """What GitHub and Slack show about an event: a check run, an approval message."""
    if event != "dry_run.finished" or subject_type != "changeapi.dryrun":
        return
    dry_run = DryRun.objects.select_related("revision__change_request__project").filter(pk=subject_id).first()
    if dry_run is None:
        return
    try:
        github_dry_run_report(dry_run=dry_run)
    except GitHubError as exc:
        logger.warning("dry-run %s: check run not reported: %s", dry_run.pk, exc)
    slack_approval_message_post(dry_run=dry_run)


@shared_task
def integration_records_purge_task() -> dict[str, int]:
    return {"idempotency_records": idempotency_records_purge(), "slack_nonces": slack_nonces_purge()}
