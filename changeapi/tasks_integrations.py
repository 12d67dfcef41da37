"""Celery tasks of outbound webhooks and stored request answers: each takes ids, calls one service.

Safe to deliver twice: deliveries are claimed with a compare-and-set on their rows before
anything is sent.
"""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from changeapi.models import WebhookDelivery
from changeapi.services.idempotency import idempotency_records_purge
from changeapi.services.webhooks import webhook_deliveries_due, webhook_delivery_attempt


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


@shared_task
def idempotency_records_purge_task() -> int:
    return idempotency_records_purge()
