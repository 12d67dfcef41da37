"""GitHub: pull requests with migration files become change requests, comments decide them,
and dry-run results, backfill rollouts and post-deploy verifications go back as check runs.

A webhook delivery is verified (HMAC over the raw body), stored under its X-GitHub-Delivery
id (a redelivery is answered, not processed again) and processed by a task, so GitHub gets its
answer well within 10 seconds. Comment commands act as the GitHub user mapped by id to a
Schemagate user; every rule of review_decide applies to them.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import PurePosixPath
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from approvals.integrations.github_client import (
    ROLLOUT_CHECK_RUN_NAME,
    VERIFICATION_CHECK_RUN_NAME,
    GitHubError,
    github_client,
)
from approvals.integrations.rollout_markdown import bundle_rollout_summary
from approvals.integrations.verification_markdown import bundle_verification_markdown
from approvals.models import BundleVerification, ReleaseBundle
from approvals.services.reviews import review_decide
from changeapi import dispatch
from changeapi.audit import AuditContext, audit_record
from changeapi.errors import DomainError
from changeapi.intake.errors import IntakeError
from changeapi.integrations.identities import confirmed_identity_user, external_identity_confirm
from changeapi.integrations.report_markdown import blocking_findings, dry_run_markdown
from changeapi.integrations.signatures import github_signature_valid
from changeapi.models import (
    DryRun,
    ExternalIdentity,
    GitHubDelivery,
    GitHubIntegration,
    Project,
    PullRequestLink,
    Revision,
)
from changeapi.permissions import SUBMIT, VIEW, has_project_perm, project_perms_set
from changeapi.selectors import dry_run_report, latest_revision
from changeapi.services.api_keys import service_account_create
from changeapi.services.change_requests import change_request_submit, revision_submit
from changeapi.types import User

logger = logging.getLogger(__name__)

PULL_REQUEST_ACTIONS = frozenset({"opened", "synchronize", "reopened"})
COMMAND = re.compile(r"^/schemagate\s+(approve|reject|confirm)\b[ \t]*(.*)$", re.MULTILINE)


class SignatureInvalid(Exception):
    """The delivery is not signed with the project's webhook secret."""


# --- configuration -------------------------------------------------------------------------------


@transaction.atomic
def github_integration_set(*, project: Project, repository: str, webhook_secret: str, context: AuditContext) -> GitHubIntegration:
    """Connect a repository; pull requests submit as the project's GitHub service account."""
    integration = GitHubIntegration.objects.filter(project=project).first()
    if integration is None:
        bot = service_account_create(username=f"github-{project.slug}"[:150])
        project_perms_set(project=project, user=bot, permissions=[VIEW, SUBMIT])
        integration = GitHubIntegration(project=project, bot=bot)
    integration.repository = repository
    integration.webhook_secret = webhook_secret
    integration.save()
    audit_record(
        context=context, action="github_integration.set", target=integration, project=project, after={"repository": repository}
    )
    return integration


# --- receiving deliveries ------------------------------------------------------------------------


def github_delivery_receive(
    *, project_slug: str, body: bytes, signature: str | None, event: str, delivery_id: str
) -> tuple[GitHubDelivery, bool]:
    """Verify and record a delivery, queueing it once; returns (delivery, is_new).

    An unknown project and a bad signature are the same refusal, so the endpoint reveals
    nothing about which projects exist.
    """
    integration = GitHubIntegration.objects.select_related("project").filter(project__slug=project_slug).first()
    secret = integration.webhook_secret if integration is not None else ""
    if integration is None or not github_signature_valid(secret=secret, body=body, header=signature):
        raise SignatureInvalid("X-Hub-Signature-256 is missing or does not match the body")
    if not delivery_id or len(delivery_id) > 100:
        raise DomainError("X-GitHub-Delivery is missing")
    try:
        payload = json.loads(body)
    except ValueError as exc:
        raise DomainError("the body is not JSON") from exc
    if not isinstance(payload, dict):
        raise DomainError("the body is not a JSON object")
    try:
        with transaction.atomic():
            delivery = GitHubDelivery.objects.create(
                delivery_id=delivery_id, project=integration.project, event=event[:64], payload=payload
            )
            dispatch.enqueue_on_commit(dispatch.GITHUB_DELIVERY, delivery.pk)
    except IntegrityError:
        return GitHubDelivery.objects.get(delivery_id=delivery_id), False
    return delivery, True


def github_delivery_process(*, delivery_id: int) -> GitHubDelivery | None:
    """Process a delivery exactly once (the claim is a compare-and-set on its status)."""
    claimed = GitHubDelivery.objects.filter(pk=delivery_id, status=GitHubDelivery.Status.RECEIVED).update(
        status=GitHubDelivery.Status.PROCESSING
    )
    if not claimed:
        return None
    delivery = GitHubDelivery.objects.select_related("project").get(pk=delivery_id)
    integration = GitHubIntegration.objects.select_related("project", "bot").get(project=delivery.project)
    payload = delivery.payload
    installation = (payload.get("installation") or {}).get("id")
    if installation and installation != integration.installation_id:
        integration.installation_id = installation
        integration.save(update_fields=["installation_id"])
    status: str = GitHubDelivery.Status.IGNORED
    outcome = f"event {delivery.event} is not handled"
    try:
        repository = (payload.get("repository") or {}).get("full_name", "")
        if repository.lower() != integration.repository.lower():
            outcome = f"repository {repository!r} is not the project's ({integration.repository})"
        elif delivery.event == "pull_request":
            status, outcome = _pull_request(integration, payload)
        elif delivery.event == "issue_comment":
            status, outcome = _issue_comment(integration, payload)
        elif delivery.event == "ping":
            outcome = "ping"
    except GitHubError as exc:
        logger.warning("GitHub delivery %s failed: %s", delivery.delivery_id, exc)
        status, outcome = GitHubDelivery.Status.FAILED, str(exc)
    delivery.status = status
    delivery.outcome = outcome[:5000]
    delivery.processed_at = timezone.now()
    delivery.save(update_fields=["status", "outcome", "processed_at"])
    return delivery


def is_migration_file(path: str) -> bool:
    """`<app>/migrations/<name>.py`, at any depth, but not the package's __init__.py."""
    parts = PurePosixPath(path)
    return parts.suffix == ".py" and parts.parent.name == "migrations" and parts.name != "__init__.py"


def _mapped_user(integration: GitHubIntegration, github_user_id: Any) -> User | None:
    if github_user_id is None:
        return None
    return confirmed_identity_user(
        project=integration.project, provider=ExternalIdentity.Provider.GITHUB, external_id=str(github_user_id)
    )


def _pull_request(integration: GitHubIntegration, payload: dict[str, Any]) -> tuple[str, str]:
    if payload.get("action") not in PULL_REQUEST_ACTIONS:
        return GitHubDelivery.Status.IGNORED, f"pull_request action {payload.get('action')!r} is not handled"
    pull = payload["pull_request"]
    repository, number, head_sha = integration.repository, int(pull["number"]), pull["head"]["sha"]
    link = PullRequestLink.objects.filter(project=integration.project, repository=repository, number=number).first()
    if link is not None and link.head_sha == head_sha:
        return GitHubDelivery.Status.IGNORED, f"{head_sha[:12]} was already submitted"
    client = github_client(integration)
    changed = [f for f in client.pull_request_files(repository, number) if f.get("status") != "removed"]
    paths = sorted(f["filename"] for f in changed if is_migration_file(f["filename"]))
    if not paths:
        return GitHubDelivery.Status.IGNORED, "the pull request changes no migration files"
    source = {"files": [{"path": path, "content": client.file_text(repository, path, head_sha)} for path in paths]}
    author = _mapped_user(integration, (pull.get("user") or {}).get("id"))
    if author is None or not has_project_perm(author, integration.project, SUBMIT):
        author = integration.bot
    # The pull request's author and whoever pushed this head wrote the revision, whichever
    # account submits it: none of them may approve it, on GitHub or elsewhere.
    writers = [(pull.get("user") or {}).get("id"), (payload.get("sender") or {}).get("id")]
    external_authors = [f"github:{writer}" for writer in writers if writer is not None]
    contributors = [user for user in (_mapped_user(integration, writer) for writer in writers) if user is not None]
    context = AuditContext(user=author, via="github")
    try:
        with transaction.atomic():
            if link is None:
                change_request = change_request_submit(
                    project=integration.project,
                    author=author,
                    title=f"PR #{number}: {pull.get('title', '')}"[:200],
                    description=f"{pull.get('html_url', '')}\n\n{pull.get('body') or ''}"[:20000],
                    form="migrations",
                    source=source,
                    context=context,
                    contributors=contributors,
                    external_authors=external_authors,
                )
                revision = latest_revision(change_request)
                PullRequestLink.objects.create(
                    project=integration.project,
                    repository=repository,
                    number=number,
                    change_request=change_request,
                    head_sha=head_sha,
                    revision=revision,
                )
                return GitHubDelivery.Status.PROCESSED, f"change request #{change_request.number} submitted"
            revision = revision_submit(
                change_request=link.change_request,
                author=author,
                form="migrations",
                source=source,
                context=context,
                contributors=contributors,
                external_authors=external_authors,
            )
            link.head_sha, link.revision = head_sha, revision
            link.save(update_fields=["head_sha", "revision"])
            return GitHubDelivery.Status.PROCESSED, f"revision {revision.number} of #{link.change_request.number} submitted"
    except (IntakeError, DomainError) as exc:
        detail = str(exc) if isinstance(exc, IntakeError) else exc.detail
        client.check_run_create(
            repository,
            head_sha=head_sha,
            conclusion="failure",
            title="Schemagate could not take the migrations",
            summary=f"The migration files of this pull request were refused:\n\n```\n{detail}\n```",
            url=settings.SCHEMAGATE_PUBLIC_URL,
        )
        return GitHubDelivery.Status.FAILED, f"refused: {detail}"


def parse_command(body: str) -> tuple[str, str] | None:
    """`/schemagate approve <head sha>`, `/schemagate reject <reason>` or `/schemagate confirm <code>`
    on a line of its own."""
    match = COMMAND.search(body or "")
    if match is None:
        return None
    return match.group(1), match.group(2).strip()


def _issue_comment(integration: GitHubIntegration, payload: dict[str, Any]) -> tuple[str, str]:
    issue, comment = payload.get("issue") or {}, payload.get("comment") or {}
    command = parse_command(comment.get("body", ""))
    if payload.get("action") != "created" or "pull_request" not in issue or command is None:
        return GitHubDelivery.Status.IGNORED, "not a Schemagate command on a pull request"
    if (comment.get("user") or {}).get("type") == "Bot":
        return GitHubDelivery.Status.IGNORED, "comments by bots are not commands"
    number = int(issue["number"])
    client = github_client(integration)
    link = (
        PullRequestLink.objects.select_related("change_request__project")
        .filter(project=integration.project, repository=integration.repository, number=number)
        .first()
    )
    login = (comment.get("user") or {}).get("login", "")
    decision, reason = command
    if decision == "confirm":
        identity = external_identity_confirm(
            project=integration.project,
            provider=ExternalIdentity.Provider.GITHUB,
            external_id=str((comment.get("user") or {}).get("id")),
            code=reason,
            context=AuditContext(user=None, via="github"),
        )
        text = (
            f"@{login}: linked; your GitHub account now acts as {identity.user.get_username()} in Schemagate."
            if identity is not None
            else f"@{login}: that code is not valid for your GitHub account (codes last one hour)."
        )
        client.comment_create(integration.repository, number, text)
        return GitHubDelivery.Status.PROCESSED, "identity confirmed" if identity else "confirmation refused"
    if link is None:
        client.comment_create(integration.repository, number, "Schemagate has no change request for this pull request.")
        return GitHubDelivery.Status.IGNORED, "no change request for this pull request"
    user = _mapped_user(integration, (comment.get("user") or {}).get("id"))
    if user is None:
        client.comment_create(
            integration.repository, number, f"@{login}: your GitHub account is not linked to a Schemagate user of this project."
        )
        return GitHubDelivery.Status.IGNORED, f"GitHub user {login} is not mapped"
    if decision == "reject" and not reason:
        client.comment_create(integration.repository, number, "Give a reason: `/schemagate reject <reason>`.")
        return GitHubDelivery.Status.IGNORED, "reject without a reason"
    change_request = link.change_request
    commenter = f"github:{(comment.get('user') or {}).get('id')}"
    if (
        decision == "approve"
        and Revision.objects.filter(change_request=change_request, external_authors__contains=[commenter]).exists()
    ):
        client.comment_create(
            integration.repository, number, f"@{login}: you wrote or pushed part of this pull request, so you cannot approve it."
        )
        return GitHubDelivery.Status.PROCESSED, f"approve refused: {login} is an author"
    if decision == "approve" and not _names_head(reason, link.head_sha):
        client.comment_create(
            integration.repository,
            number,
            f"@{login}: name the commit you approve, e.g. `/schemagate approve {link.head_sha[:12]}`; the pull request "
            "is now at that commit.",
        )
        return GitHubDelivery.Status.PROCESSED, "approve refused: the head commit was not named"
    reason = "" if decision == "approve" else reason
    try:
        review_decide(
            revision=link.revision or latest_revision(change_request),
            reviewer=user,
            decision=decision,
            comment=reason or f"approved from GitHub at {link.head_sha[:12]}",
            context=AuditContext(user=user, via="github"),
        )
    except DomainError as exc:
        client.comment_create(integration.repository, number, f"@{login}: Schemagate refused to {decision}: {exc.detail}")
        return GitHubDelivery.Status.PROCESSED, f"{decision} refused: {exc.detail}"
    change_request.refresh_from_db(fields=["status"])
    client.comment_create(
        integration.repository,
        number,
        f"Schemagate: {decision}d by {user.get_username()}; change request #{change_request.number} is now {change_request.status}.",
    )
    return GitHubDelivery.Status.PROCESSED, f"{decision} by {user.get_username()}"


def _names_head(text: str, head_sha: str) -> bool:
    """Whether an approve command names the head commit (at least 7 hex digits of it)."""
    named = (text.split() or [""])[0].lower()
    return len(named) >= 7 and bool(re.fullmatch(r"[0-9a-f]{7,40}", named)) and head_sha.lower().startswith(named)


def github_dry_run_report(*, dry_run: DryRun) -> bool:
    """Report a finished dry-run as a check run on the pushed commit it belongs to."""
    link = (
        PullRequestLink.objects.filter(change_request_id=dry_run.revision.change_request_id, revision_id=dry_run.revision_id)
        .select_related("change_request")
        .first()
    )
    if link is None:
        return False
    integration = GitHubIntegration.objects.filter(project_id=link.project_id).first()
    if integration is None:
        return False
    report = dry_run_report(dry_run=dry_run)
    blocking = blocking_findings(report)
    failed = dry_run.status != DryRun.Status.SUCCEEDED or bool(blocking)
    if dry_run.status != DryRun.Status.SUCCEEDED:
        title = "The dry-run failed"
    elif blocking:
        title = f"{len(blocking)} high-severity finding(s)"
    else:
        title = "No high-severity findings"
    drift = report.schema_drift if report is not None else None
    if drift is not None and drift.touched:
        # Seen in the pull request's list of checks without opening it: the dry-run ran on the
        # schema the migrations say, and production differs on objects this change uses.
        count = len(drift.touched)
        title += f"; production has drifted on {count} {'object' if count == 1 else 'objects'} it touches"
    github_client(integration).check_run_create(
        link.repository,
        head_sha=link.head_sha,
        conclusion="failure" if failed else "success",
        title=title,
        summary=dry_run_markdown(dry_run),
        url=f"{settings.SCHEMAGATE_PUBLIC_URL}/api/v1/dry-runs/{dry_run.pk}/",
    )
    return True


def github_bundle_verification_report(*, bundle: ReleaseBundle) -> int:
    """Report a bundle's post-deploy verification as a check run ("Schemagate verification") on
    the pull request of each of its change requests that came from GitHub; returns how many.

    Each verification is a new check run on the pull request's head, so a failed one checked
    again (a new snapshot, or POST /bundles/{id}/verify/) shows its latest outcome on GitHub.
    """
    verification = BundleVerification.objects.filter(bundle=bundle).select_related("verified_by").first()
    integration = GitHubIntegration.objects.filter(project_id=bundle.project_id).first()
    if verification is None or integration is None:
        return 0
    links = PullRequestLink.objects.filter(
        project_id=bundle.project_id, change_request_id__in=bundle.items.values("change_request_id")
    ).order_by("number")
    if not links:
        return 0
    bundle.verification = verification
    verified = verification.status == BundleVerification.Status.VERIFIED
    count = len(verification.differences)
    title = (
        f"Bundle {bundle.number} verified in production"
        if verified
        else f"Bundle {bundle.number}: production differs in {count} {'object' if count == 1 else 'objects'}"
    )
    summary = bundle_verification_markdown(bundle=bundle, public_url=settings.SCHEMAGATE_PUBLIC_URL)
    client = github_client(integration)
    for link in links:
        client.check_run_create(
            link.repository,
            head_sha=link.head_sha,
            conclusion="success" if verified else "failure",
            title=title,
            summary=summary,
            url=f"{settings.SCHEMAGATE_PUBLIC_URL}/api/v1/bundles/{bundle.pk}/",
            name=VERIFICATION_CHECK_RUN_NAME,
        )
    return len(links)


def github_bundle_rollout_report(*, bundle: ReleaseBundle) -> int:
    """Report where a bundle's backfills stand as a check run ("Schemagate rollout") on the pull
    request of each of its change requests that came from GitHub; returns how many.

    Sent on each backfill event (progress at most once per throttle period, failing, stalled,
    finished), each a new check run on the pull request's head, so GitHub shows the latest:
    in progress while the backfills run, a failure while one is failing or stalled, a success
    once every contract phase is ready.
    """
    integration = GitHubIntegration.objects.filter(project_id=bundle.project_id).first()
    if integration is None:
        return 0
    links = list(
        PullRequestLink.objects.filter(
            project_id=bundle.project_id, change_request_id__in=bundle.items.values("change_request_id")
        ).order_by("number")
    )
    if not links:
        return 0
    summary = bundle_rollout_summary(bundle=bundle, public_url=settings.SCHEMAGATE_PUBLIC_URL)
    client = github_client(integration)
    for link in links:
        client.check_run_create(
            link.repository,
            head_sha=link.head_sha,
            conclusion=summary.conclusion,
            title=summary.title,
            summary=summary.markdown,
            url=f"{settings.SCHEMAGATE_PUBLIC_URL}/api/v1/bundles/{bundle.pk}/rollout.md",
            name=ROLLOUT_CHECK_RUN_NAME,
        )
    return len(links)
