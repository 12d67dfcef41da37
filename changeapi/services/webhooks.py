"""Outbound webhooks: subscriptions, emitting events, and delivering them with retries.

Services call `webhooks_emit` once per event inside their own transaction; deliveries are
rows written in that transaction and sent after it commits, so an event is never announced
for a change that was rolled back. Each delivery is signed per Standard Webhooks and retried
with exponential backoff; every attempt is logged. The first attempt follows the commit (in the
request's process when there is no broker); retries are made only when due, by a worker or by
the periodic `webhook_deliveries_due_task`, so no request waits out a subscriber's backoff.
Destinations inside our own network are refused (see `changeapi.integrations.ssrf`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import time
import uuid
from typing import Any

from django.conf import settings
from django.db import models, transaction
from django.db.models import Q
from django.utils import timezone

from changeapi import dispatch
from changeapi.audit import AuditContext, audit_record
from changeapi.errors import DomainError
from changeapi.integrations.http import OutboundError, http_send
from changeapi.integrations.signatures import webhook_secret_new, webhook_signature
from changeapi.integrations.ssrf import UnsafeDestination, destination_resolve
from changeapi.models import (
    ChangeRequest,
    DriftCheck,
    DryRun,
    Project,
    Revision,
    WebhookAttempt,
    WebhookDelivery,
    WebhookSubscription,
)
from changeapi.selectors import dry_run_report
from changeapi.types import User

EVENT_TYPES = (
    "change_request.submitted",
    "change_request.revised",
    "dry_run.finished",
    "review.decided",
    "bundle.sealed",
    "bundle.verified",
    "bundle.verification_failed",
    "bundle.backfill_progress",
    "bundle.backfill_failing",
    "bundle.backfill_finished",
    "bundle.backfill_stalled",
    "schema_drift.detected",
    "schema_drift.resolved",
)
EXCERPT_CHARS = 1000


class UnsafeWebhookDestination(DomainError):
    status = 400
    code = "unsafe-destination"
    title = "The webhook URL is not allowed"


@transaction.atomic
def webhook_subscription_create(
    *, project: Project, creator: User, url: str, event_types: list[str], context: AuditContext
) -> WebhookSubscription:
    """Subscribe a URL to events of a project; the URL must not point into our network."""
    unknown = set(event_types) - set(EVENT_TYPES)
    if unknown or not event_types:
        raise DomainError(f"event_types must be a non-empty subset of: {', '.join(EVENT_TYPES)}")
    try:
        destination_resolve(url)
    except UnsafeDestination as exc:
        raise UnsafeWebhookDestination(str(exc)) from exc
    subscription = WebhookSubscription.objects.create(
        project=project, url=url, event_types=sorted(set(event_types)), secret=webhook_secret_new(), created_by=creator
    )
    audit_record(
        context=context,
        action="webhook_subscription.created",
        target=subscription,
        project=project,
        after={"url": url, "event_types": subscription.event_types},
    )
    return subscription


@transaction.atomic
def webhook_subscription_delete(*, subscription: WebhookSubscription, context: AuditContext) -> None:
    audit_record(
        context=context,
        action="webhook_subscription.deleted",
        target=subscription,
        project=subscription.project,
        before={"url": subscription.url, "event_types": subscription.event_types},
    )
    subscription.delete()


def _change_request_data(change_request: ChangeRequest) -> dict[str, Any]:
    return {
        "id": change_request.pk,
        "project": change_request.project.slug,
        "number": change_request.number,
        "title": change_request.title,
        "status": change_request.status,
        "url": f"{settings.SCHEMAGATE_PUBLIC_URL}/api/v1/change-requests/{change_request.pk}/",
    }


def _verification_data(bundle: Any) -> dict[str, Any]:
    """A bundle's post-deploy verification, once it has one (the model is the approvals app's)."""
    verification = getattr(bundle, "verification", None)  # None too when the reverse row does not exist
    if verification is None:
        return {}
    return {
        "verification": {
            "status": verification.status,
            "snapshot": verification.snapshot_id,
            "differences": [
                {"kind": d["kind"], "status": d["status"], "name": d["name"], "table": d["table"]}
                for d in verification.differences[:100]
            ],
        }
    }


def _drift_check_data(check: DriftCheck) -> dict[str, Any]:
    """A scheduled drift check: what was compared, and the drifted objects (the first 100)."""
    return {
        "id": check.pk,
        "status": check.status,
        "snapshot": check.snapshot_id,
        "baseline_version": check.baseline.version,
        "drifted_objects": check.drifted_objects,
        "counts": check.counts,
        "items": [{k: d[k] for k in ("kind", "status", "severity", "name", "table", "consequence")} for d in check.items[:100]],
        "url": f"{settings.SCHEMAGATE_PUBLIC_URL}/api/v1/projects/{check.project.slug}/drift-checks/{check.pk}/",
    }


def event_data(subject: models.Model) -> dict[str, Any]:
    """The `data` of an event about a change request, revision, dry-run, review, bundle or drift check."""
    if isinstance(subject, ChangeRequest):
        return {"change_request": _change_request_data(subject)}
    if isinstance(subject, Revision):
        return {
            "change_request": _change_request_data(subject.change_request),
            "revision": {"id": subject.pk, "number": subject.number, "sha256": subject.sha256},
        }
    if isinstance(subject, DryRun):
        report = dry_run_report(dry_run=subject)
        return {
            "change_request": _change_request_data(subject.revision.change_request),
            "dry_run": {
                "id": subject.pk,
                "status": subject.status,
                "revision": subject.revision.number,
                "error": subject.error[:500],
                "findings": dataclasses.asdict(report.summary.findings) if report is not None else {},
                "url": f"{settings.SCHEMAGATE_PUBLIC_URL}/api/v1/dry-runs/{subject.pk}/",
            },
        }
    if isinstance(subject, DriftCheck):
        return {"drift_check": _drift_check_data(subject)}
    label = subject._meta.label_lower
    if label == "approvals.review":
        review: Any = subject
        return {
            "change_request": _change_request_data(review.revision.change_request),
            "review": {
                "id": review.pk,
                "decision": review.decision,
                "reviewer": review.reviewer.get_username(),
                "revision": review.revision.number,
                "comment": review.comment[:500],
            },
        }
    if label == "approvals.releasebundle":
        bundle: Any = subject
        return {
            "bundle": {
                "id": bundle.pk,
                "number": bundle.number,
                "sha256": bundle.sha256,
                "change_requests": list(bundle.change_requests.order_by("number").values_list("number", flat=True)),
                **_verification_data(bundle),
            }
        }
    if label == "approvals.backfillprogress":
        progress: Any = subject
        return {
            "bundle": {"id": progress.bundle.pk, "number": progress.bundle.number, "sha256": progress.bundle.sha256},
            "backfill": {
                "phase": progress.phase,
                "batches": progress.batches,
                "rows": progress.rows,
                "errors": progress.errors,
                "rate_rows_per_s": progress.rate_rows_per_s,
                "eta_s": progress.eta_s,
                "finished": progress.finished,
                "parity_remaining": progress.parity_remaining,
                "contract_ready": progress.finished and progress.parity_remaining == 0,
                "url": f"{settings.SCHEMAGATE_PUBLIC_URL}/api/v1/bundles/{progress.bundle.pk}/",
            },
        }
    return {label.split(".")[-1]: {"id": subject.pk}}


def webhooks_emit(*, project: Project, event: str, subject: models.Model) -> list[WebhookDelivery]:
    """Record `event` about `subject` for every matching subscription; send after commit.

    Call it inside the service's transaction. Integrations that react to the event (a GitHub
    check run, a Slack approval message) are queued at the same moment.
    """
    if event not in EVENT_TYPES:
        raise ValueError(f"unknown webhook event {event!r}")
    payload = {"type": event, "timestamp": timezone.now().isoformat(), "data": {"project": project.slug, **event_data(subject)}}
    now = timezone.now()
    deliveries = [
        WebhookDelivery.objects.create(
            subscription=subscription,
            message_id=f"msg_{uuid.uuid4().hex}",
            event_type=event,
            payload=payload,
            next_attempt_at=now,
        )
        for subscription in WebhookSubscription.objects.filter(project=project, is_active=True)
        if event in subscription.event_types
    ]
    for delivery in deliveries:
        dispatch.enqueue_on_commit(dispatch.WEBHOOK_DELIVERY, delivery.pk)
    dispatch.enqueue_on_commit(dispatch.INTEGRATIONS_REACT, event, subject._meta.label_lower, subject.pk)
    return deliveries


def backoff_seconds(attempt: int) -> int:
    """Wait after the given failed attempt: base * 2^(attempt-1), capped."""
    base = settings.SCHEMAGATE_WEBHOOK_BACKOFF_SECONDS
    return int(min(settings.SCHEMAGATE_WEBHOOK_BACKOFF_MAX_SECONDS, base * 2 ** (attempt - 1)))


def _claim(delivery_id: int, now: dt.datetime) -> WebhookDelivery | None:
    """Hold a pending delivery whose next attempt is due; a message that comes early (a retry
    sent twice, a periodic sweep racing a worker) finds nothing to do, so the backoff holds."""
    lease = now + dt.timedelta(seconds=settings.SCHEMAGATE_OUTBOUND_TIMEOUT_SECONDS + 30)
    claimed = (
        WebhookDelivery.objects.filter(pk=delivery_id, status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=now)
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
        .update(claimed_until=lease)
    )
    if not claimed:
        return None
    return WebhookDelivery.objects.select_related("subscription").get(pk=delivery_id)


def signed_request(delivery: WebhookDelivery, timestamp: int) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(delivery.payload, separators=(",", ":"), sort_keys=True).encode()
    headers = {
        "Content-Type": "application/json",
        "webhook-id": delivery.message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": webhook_signature(
            secret=delivery.subscription.secret, message_id=delivery.message_id, timestamp=timestamp, body=body
        ),
    }
    return body, headers


def webhook_delivery_attempt(*, delivery_id: int) -> WebhookDelivery | None:
    """Make the next attempt of a pending delivery and log it; None if not ours to send now.

    2xx is success. A refused destination fails the delivery for good; any other failure
    schedules the next attempt, until SCHEMAGATE_WEBHOOK_MAX_ATTEMPTS.
    """
    now = timezone.now()
    delivery = _claim(delivery_id, now)
    if delivery is None:
        return None
    number = delivery.attempts + 1
    status_code: int | None = None
    excerpt = error = ""
    duration_ms = 0
    permanent = not delivery.subscription.is_active
    if permanent:
        error = "the subscription is disabled"
    else:
        body, headers = signed_request(delivery, int(time.time()))
        try:
            result = http_send("POST", delivery.subscription.url, body=body, headers=headers, guard=True)
            status_code, duration_ms = result.status, result.duration_ms
            excerpt = result.body[:EXCERPT_CHARS].decode("utf-8", errors="replace")
        except UnsafeDestination as exc:
            error, permanent = f"destination refused: {exc}", True
        except OutboundError as exc:
            error = str(exc)
    finished = timezone.now()
    next_attempt_at = None
    if status_code is not None and 200 <= status_code < 300:
        delivery.status = WebhookDelivery.Status.SUCCEEDED
        delivery.delivered_at = finished
    elif permanent or number >= settings.SCHEMAGATE_WEBHOOK_MAX_ATTEMPTS:
        delivery.status = WebhookDelivery.Status.FAILED
    else:
        next_attempt_at = finished + dt.timedelta(seconds=backoff_seconds(number))
    with transaction.atomic():
        WebhookAttempt.objects.create(
            delivery=delivery,
            number=number,
            status_code=status_code,
            response_excerpt=excerpt,
            error=error[:2000],
            duration_ms=duration_ms,
            next_attempt_at=next_attempt_at,
        )
        delivery.attempts = number
        delivery.next_attempt_at = next_attempt_at
        delivery.claimed_until = None
        delivery.save(update_fields=["status", "delivered_at", "attempts", "next_attempt_at", "claimed_until"])
    return delivery


def webhook_deliveries_due(*, now: dt.datetime | None = None) -> list[int]:
    """Pending deliveries whose next attempt is due and that no worker holds (lost messages)."""
    now = now or timezone.now()
    return list(
        WebhookDelivery.objects.filter(status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=now)
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:500]
    )
