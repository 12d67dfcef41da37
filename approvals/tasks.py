"""Celery tasks of the GitHub and Slack channels: each takes ids (or Slack's payload) and calls one service.

Safe to deliver twice: deliveries and button presses are claimed with a compare-and-set on
their rows before anything is decided or posted.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task

from approvals.integrations.github import (
    github_bundle_rollout_report,
    github_bundle_verification_report,
    github_delivery_process,
    github_dry_run_report,
)
from approvals.integrations.github_client import GitHubError
from approvals.integrations.slack import slack_approval_message_post, slack_interaction_process, slack_nonces_purge
from approvals.models import BackfillProgress, ReleaseBundle
from approvals.services.rollout import backfills_stalled_notify
from approvals.services.verification import bundles_verify_pending
from changeapi.audit import AuditContext
from changeapi.models import DryRun, SchemaSnapshot

logger = logging.getLogger(__name__)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def github_delivery_task(delivery_id: int) -> None:
    github_delivery_process(delivery_id=delivery_id)


@shared_task(acks_late=True)
def slack_interaction_task(payload: dict[str, Any]) -> str:
    return slack_interaction_process(payload=payload)


VERIFICATION_EVENTS = ("bundle.verified", "bundle.verification_failed")
ROLLOUT_EVENTS = ("bundle.backfill_progress", "bundle.backfill_failing", "bundle.backfill_stalled", "bundle.backfill_finished")


@shared_task
def integrations_react_task(event: str, subject_type: str, subject_id: int) -> None:
    """What GitHub and Slack show about an event: a check run, an approval message."""
    if event in VERIFICATION_EVENTS and subject_type == "approvals.releasebundle":
        _bundle_verification_react(subject_id)
        return
    if event in ROLLOUT_EVENTS and subject_type == "approvals.backfillprogress":
        _bundle_rollout_react(subject_id)
        return
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


def _bundle_verification_react(bundle_id: int) -> None:
    bundle = ReleaseBundle.objects.select_related("project").defer("archive").filter(pk=bundle_id).first()
    if bundle is None:
        return
    try:
        github_bundle_verification_report(bundle=bundle)
    except GitHubError as exc:
        logger.warning("bundle %s: verification check run not reported: %s", bundle.pk, exc)


def _bundle_rollout_react(progress_id: int) -> None:
    progress = BackfillProgress.objects.filter(pk=progress_id).only("bundle_id").first()
    if progress is None:
        return
    bundle = (
        ReleaseBundle.objects.select_related("project")
        .prefetch_related("backfill_progress")
        .defer("archive")
        .filter(pk=progress.bundle_id)
        .first()
    )
    if bundle is None:
        return
    try:
        github_bundle_rollout_report(bundle=bundle)
    except GitHubError as exc:
        logger.warning("bundle %s: rollout check run not reported: %s", bundle.pk, exc)


@shared_task
def backfills_stalled_notify_task() -> int:
    """Tell subscribers of the backfills that stopped reporting (every few minutes, by beat)."""
    return len(backfills_stalled_notify())


@shared_task
def slack_nonces_purge_task() -> int:
    return slack_nonces_purge()


@shared_task
def bundles_verify_schema_task(snapshot_id: int) -> int:
    """Verify the bundles applied before a newly uploaded snapshot; those already verified are
    skipped, so a repeated delivery does nothing."""
    snapshot = SchemaSnapshot.objects.select_related("project", "created_by").get(pk=snapshot_id)
    context = AuditContext(user=snapshot.created_by, via="worker")
    return len(bundles_verify_pending(snapshot=snapshot, context=context))
