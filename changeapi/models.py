"""Projects, baselines, change requests with their revisions, and dry-runs.

Rules that must hold whatever code writes the rows (unique numbering, allowed statuses,
positive counts) are database constraints, not only Python checks.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase


def _in_choices(field: str, choices: type[models.TextChoices]) -> Q:
    return Q(**{f"{field}__in": [value for value, _ in choices.choices]})


class DatabaseEngine(models.TextChoices):
    POSTGRESQL = "postgresql", "PostgreSQL"
    MYSQL = "mysql", "MySQL / MariaDB"
    SQLITE = "sqlite", "SQLite"


# A scheduled drift check at most every quarter of an hour (each costs a clone of the template
# when a new snapshot or baseline arrived) and at least once a week.
DRIFT_CHECK_MIN_MINUTES = 15
DRIFT_CHECK_MAX_MINUTES = 7 * 24 * 60


class Project(models.Model):
    """One target database reviewed by one team.

    Access to everything below a project (baselines, change requests, dry-runs, reviews,
    bundles) is derived from object permissions granted on the project itself, which keeps
    the permission tables small and makes "another project's user sees nothing" one rule.
    """

    Engine = DatabaseEngine

    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    engine = models.CharField(max_length=16, choices=DatabaseEngine.choices, default=DatabaseEngine.POSTGRESQL)
    engine_version = models.PositiveSmallIntegerField(default=15)
    required_approvals = models.PositiveSmallIntegerField(default=1)
    lock_timeout_ms = models.PositiveIntegerField(
        default=3000, help_text="lock_timeout written before each statement of a release bundle."
    )
    intake_settings = models.JSONField(
        default=dict,
        blank=True,
        help_text="How submitted Python is read: field_map (custom field -> base field), references, "
        "setting_values, auth_user_model, default_auto_field.",
    )
    current_baseline = models.ForeignKey("Baseline", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    drift_check_interval_minutes = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="How often the latest schema snapshot is compared with the current baseline; null: never on a schedule.",
    )
    drift_check_due_at = models.DateTimeField(
        null=True, blank=True, help_text="When the next scheduled drift check is due; null when there is no schedule."
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["slug"]
        permissions = [
            ("submit_change", "Can submit change requests"),
            ("review_change", "Can review change requests"),
            ("release_bundle", "Can release bundles"),
            ("manage_project", "Can manage the project and its members"),
        ]
        constraints = [
            models.CheckConstraint(condition=_in_choices("engine", DatabaseEngine), name="project_engine_valid"),
            models.CheckConstraint(condition=Q(required_approvals__gte=1), name="project_required_approvals_positive"),
            models.CheckConstraint(condition=Q(engine_version__gte=1), name="project_engine_version_positive"),
            models.CheckConstraint(
                condition=Q(drift_check_interval_minutes__isnull=True, drift_check_due_at__isnull=True)
                | Q(
                    drift_check_interval_minutes__gte=DRIFT_CHECK_MIN_MINUTES,
                    drift_check_interval_minutes__lte=DRIFT_CHECK_MAX_MINUTES,
                    drift_check_due_at__isnull=False,
                ),
                name="project_drift_schedule_valid",
            ),
        ]

    def __str__(self) -> str:
        return self.slug


class ProjectUserObjectPermission(UserObjectPermissionBase):
    """Direct foreign-key permission rows: faster than generic ones, and deleted with the project."""

    content_object = models.ForeignKey(Project, on_delete=models.CASCADE)


class ProjectGroupObjectPermission(GroupObjectPermissionBase):
    content_object = models.ForeignKey(Project, on_delete=models.CASCADE)


class BaselineStatus(models.TextChoices):
    BUILDING = "building", "Building"
    READY = "ready", "Ready"
    FAILED = "failed", "Failed"


class BaselineManager(models.Manager["Baseline"]):
    """Baselines without their submitted source unless it is asked for.

    The source of a real history is hundreds of migration files (a third of a megabyte of
    JSON for 400), and almost nothing reads it: the baseline's plan is read from it once per
    process and cached. `baseline.source` still loads it, with one query, when it is read.
    """

    def get_queryset(self) -> models.QuerySet[Baseline]:
        return super().get_queryset().defer("source")


class Baseline(models.Model):
    """The schema a project has in production, as migrations; versions only go up.

    Status: building -> ready | failed. A ready baseline has a template database on each
    shadow server it was used on; a released bundle creates the next version.
    """

    Status = BaselineStatus

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="baselines")
    version = models.PositiveIntegerField()
    form = models.CharField(max_length=16, default="operations")
    source = models.JSONField(help_text="The submitted baseline, as received.")
    sha256 = models.CharField(max_length=64)
    status = models.CharField(max_length=16, choices=BaselineStatus.choices, default=BaselineStatus.BUILDING)
    error = models.TextField(blank=True)
    migration_count = models.PositiveIntegerField(default=0)
    operation_count = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = BaselineManager()

    class Meta:
        # Also the manager behind `dry_run.baseline` and other related lookups.
        base_manager_name = "objects"
        ordering = ["project_id", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["project", "version"], name="baseline_version_unique"),
            models.CheckConstraint(condition=_in_choices("status", BaselineStatus), name="baseline_status_valid"),
            models.CheckConstraint(condition=Q(version__gte=1), name="baseline_version_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.project.slug} baseline v{self.version}"

    @property
    def template_name(self) -> str:
        """Name of this baseline's template database on every shadow server.

        Named by content, so a template can never be mistaken for another baseline's, and
        identical baselines share one.
        """
        return f"{settings.SHADOW_DATABASE_PREFIX}tpl_{self.sha256[:24]}"


class TableStats(models.Model):
    """Production size of one table (no data): drives seeding and extrapolation.

    `columns` holds the optional per-column figures of `pg_stats` (shares, widths, counts,
    never values) that shape the seeded rows; `indexes` the size of each index.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="table_stats")
    table_name = models.CharField(max_length=200)
    row_count = models.BigIntegerField()
    total_bytes = models.BigIntegerField()
    columns = models.JSONField(
        default=list, blank=True, help_text="[{column, null_frac, avg_width, n_distinct, correlation}] from pg_stats."
    )
    indexes = models.JSONField(default=list, blank=True, help_text="[{index, bytes}] from pg_relation_size.")
    uploaded_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["project_id", "table_name"]
        constraints = [
            models.UniqueConstraint(fields=["project", "table_name"], name="table_stats_unique_table"),
            models.CheckConstraint(condition=Q(row_count__gte=0) & Q(total_bytes__gte=0), name="table_stats_non_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.table_name}: {self.row_count} rows"


class ChangeRequestStatus(models.TextChoices):
    SUBMITTED = "submitted", "Submitted"
    DRY_RUNNING = "dry_running", "Dry-running"
    READY_FOR_REVIEW = "ready_for_review", "Ready for review"
    DRY_RUN_FAILED = "dry_run_failed", "Dry-run failed"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    CHANGES_REQUESTED = "changes_requested", "Changes requested"
    RELEASED = "released", "Released"
    WITHDRAWN = "withdrawn", "Withdrawn"


class ChangeRequest(models.Model):
    """A proposed schema change under review.

    Transitions (performed only by services; drawn in docs/state-machine.md):
    submitted -> dry_running -> ready_for_review | dry_run_failed;
    ready_for_review | changes_requested | approved -> approved | ready_for_review |
    changes_requested | rejected (by the decisions on record, under the approval policy);
    dry_run_failed -> changes_requested | rejected; approved -> released;
    a new revision returns any open state to submitted; withdrawn from any open state;
    withdrawn -> submitted (reopen, with a new dry-run).
    """

    Status = ChangeRequestStatus

    CLOSED_STATES = frozenset({ChangeRequestStatus.RELEASED, ChangeRequestStatus.WITHDRAWN, ChangeRequestStatus.REJECTED})

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="change_requests")
    number = models.PositiveIntegerField()
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=24, choices=ChangeRequestStatus.choices, default=ChangeRequestStatus.SUBMITTED)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["project", "number"], name="change_request_number_unique"),
            models.CheckConstraint(condition=_in_choices("status", ChangeRequestStatus), name="change_request_status_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.project.slug}#{self.number}"


class RevisionForm(models.TextChoices):
    OPERATIONS = "operations", "Operations JSON"
    MIGRATIONS = "migrations", "Migration files"
    MODELS = "models", "Models source"


class Revision(models.Model):
    """One immutable submission of a change request; dry-runs and reviews belong to it."""

    Form = RevisionForm

    change_request = models.ForeignKey(ChangeRequest, on_delete=models.CASCADE, related_name="revisions")
    number = models.PositiveIntegerField()
    form = models.CharField(max_length=16, choices=RevisionForm.choices)
    source = models.JSONField(help_text="The submitted content, as received.")
    sha256 = models.CharField(max_length=64)
    operations = models.JSONField(help_text="Normalized operations: one entry per migration.")
    baseline = models.ForeignKey(Baseline, on_delete=models.PROTECT, related_name="+")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    # Authorship follows the person, whatever channel submitted: the owner of the API key
    # that submitted, the mapped author of a pull request and the mapped pushers of its
    # commits. None of them may approve the change.
    contributors = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="+", blank=True)
    external_authors = models.JSONField(
        default=list,
        blank=True,
        help_text='Identities in other systems that wrote this revision, e.g. "github:123" for a pull request author or pusher.',
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["change_request_id", "number"]
        constraints = [
            models.UniqueConstraint(fields=["change_request", "number"], name="revision_number_unique"),
            models.CheckConstraint(condition=_in_choices("form", RevisionForm), name="revision_form_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.change_request} r{self.number}"

    @property
    def etag(self) -> str:
        return f'"rev-{self.pk}-{self.sha256[:16]}"'


class DryRunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class DryRun(models.Model):
    """One dry-run job of a revision on one shadow server; the row is the job's source of truth.

    Status: queued -> running -> succeeded | failed; running -> queued when its lease
    expired (the worker died) and the job is reclaimed. A worker claims a row with a
    compare-and-set and holds a lease it renews while it works; only the lease holder can
    write the result, so a duplicate delivery or a presumed-dead worker changes nothing.
    """

    Status = DryRunStatus

    revision = models.ForeignKey(Revision, on_delete=models.CASCADE, related_name="dry_runs")
    baseline = models.ForeignKey(Baseline, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=16, choices=DryRunStatus.choices, default=DryRunStatus.QUEUED)
    server = models.CharField(max_length=200, blank=True)
    progress_done = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(default=0)
    report = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    lease_owner = models.CharField(max_length=64, blank=True, help_text="Token of the worker holding the job.")
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["status", "lease_expires_at"], name="dry_run_status_lease_idx")]
        constraints = [
            models.CheckConstraint(condition=_in_choices("status", DryRunStatus), name="dry_run_status_valid"),
            models.CheckConstraint(
                condition=~Q(status="running") | Q(lease_expires_at__isnull=False), name="dry_run_running_has_lease"
            ),
            models.CheckConstraint(condition=Q(progress_done__lte=models.F("progress_total")), name="dry_run_progress_bounded"),
        ]

    def __str__(self) -> str:
        return f"dry-run {self.pk} of {self.revision}"


class ShadowDatabaseKind(models.TextChoices):
    TEMPLATE = "template", "Template"
    CLONE = "clone", "Clone"
    SPARE = "spare", "Spare clone"


class ShadowDatabase(models.Model):
    """Registry of databases the service created on shadow servers, so the reaper drops only those."""

    Kind = ShadowDatabaseKind

    server = models.CharField(max_length=200)
    name = models.CharField(max_length=63)
    kind = models.CharField(max_length=16, choices=ShadowDatabaseKind.choices)
    dry_run = models.ForeignKey(DryRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    baseline = models.ForeignKey(Baseline, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    dropped_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["server", "name"], condition=Q(dropped_at__isnull=True), name="shadow_database_live_unique"
            ),
            models.CheckConstraint(condition=_in_choices("kind", ShadowDatabaseKind), name="shadow_database_kind_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.name} on {self.server}"


# --- Integrations: API keys, idempotency, GitHub, Slack, outbound webhooks -----------------------


class ApiKey(models.Model):
    """A project-scoped credential for CI bots; only the SHA-256 of the key is stored.

    Each key authenticates as its own service account (`user`, a member of the "bots" group)
    that holds the key's permissions on the key's project only, so object permissions keep
    flowing through django-guardian and a key can never reach another project. Revoking the
    key deactivates that account. The full key (`sg_<prefix>_<secret>`) is shown once.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True, help_text="Public part of the key, used to find it.")
    key_sha256 = models.CharField(max_length=64, help_text="SHA-256 (hex) of the whole key; the key itself is not stored.")
    permissions = models.JSONField(default=list, help_text="Project permissions the key grants (a subset).")
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="api_key")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.project.slug} key {self.prefix} ({self.name})"


class IdempotencyRecord(models.Model):
    """The first response to a POST carrying an `Idempotency-Key`, replayed for retries.

    Scoped per caller (a user, or an API key's own service account). A record without a
    response is in flight; records expire and are purged.
    """

    owner = models.CharField(max_length=64, help_text="Whose key space: 'user:<id>'.")
    key = models.CharField(max_length=255)
    method = models.CharField(max_length=8)
    path = models.CharField(max_length=2000)
    fingerprint = models.CharField(max_length=64, help_text="SHA-256 of method, path and body.")
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_headers = models.JSONField(default=dict, blank=True)
    response_body = models.BinaryField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["owner", "key"], name="idempotency_owner_key_unique")]
        indexes = [models.Index(fields=["expires_at"], name="idempotency_expires_idx")]

    def __str__(self) -> str:
        return f"{self.owner} {self.key}"


class IntegrationProvider(models.TextChoices):
    GITHUB = "github", "GitHub"
    SLACK = "slack", "Slack"


class ExternalIdentity(models.Model):
    """Maps a GitHub or Slack user id (never a login or name, which can change) to a user.

    Per project: a manager links the ids of the people reviewing that project. The mapped user
    still needs the project permission for whatever the integration asks of them. A link acts
    only once confirmed: the mapped user asks for a one-time code and sends it from that
    GitHub or Slack account, which proves both are the same person (a manager cannot map
    their own Slack id to a colleague and approve as them).
    """

    Provider = IntegrationProvider

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="external_identities")
    provider = models.CharField(max_length=16, choices=IntegrationProvider.choices)
    external_id = models.CharField(max_length=64)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="external_identities")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    confirmation_code_sha256 = models.CharField(max_length=64, blank=True, default="")
    confirmation_expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["project_id", "provider", "external_id"]
        constraints = [
            models.UniqueConstraint(fields=["project", "provider", "external_id"], name="external_identity_unique"),
            models.CheckConstraint(
                condition=_in_choices("provider", IntegrationProvider), name="external_identity_provider_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.provider}:{self.external_id} -> {self.user_id}"


class GitHubIntegration(models.Model):
    """A project's GitHub repository: the webhook secret and the service account PRs submit as."""

    project = models.OneToOneField(Project, on_delete=models.CASCADE, related_name="github")
    repository = models.CharField(max_length=200, help_text="owner/name")
    webhook_secret = models.CharField(max_length=200, help_text="Shared secret of the webhook (HMAC key; kept to verify).")
    installation_id = models.BigIntegerField(null=True, blank=True, help_text="GitHub App installation, from the last event.")
    bot = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.project.slug} <- {self.repository}"


class GitHubDeliveryStatus(models.TextChoices):
    RECEIVED = "received", "Received"
    PROCESSING = "processing", "Processing"
    PROCESSED = "processed", "Processed"
    IGNORED = "ignored", "Ignored"
    FAILED = "failed", "Failed"


class GitHubDelivery(models.Model):
    """One webhook delivery, kept by its X-GitHub-Delivery id so a redelivery is processed once.

    Status: received -> processing -> processed | ignored | failed; the task that moves it
    from received to processing (a compare-and-set) is the only one to process it.
    """

    Status = GitHubDeliveryStatus

    delivery_id = models.CharField(max_length=100, unique=True)
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    event = models.CharField(max_length=64)
    payload = models.JSONField()
    status = models.CharField(max_length=16, choices=GitHubDeliveryStatus.choices, default=GitHubDeliveryStatus.RECEIVED)
    outcome = models.TextField(blank=True)
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(condition=_in_choices("status", GitHubDeliveryStatus), name="github_delivery_status_valid")
        ]

    def __str__(self) -> str:
        return f"{self.event} {self.delivery_id}"


class PullRequestLink(models.Model):
    """The change request that follows one pull request; each push adds a revision."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    repository = models.CharField(max_length=200)
    number = models.PositiveIntegerField()
    change_request = models.OneToOneField(ChangeRequest, on_delete=models.CASCADE, related_name="pull_request")
    head_sha = models.CharField(max_length=40)
    revision = models.ForeignKey(Revision, on_delete=models.CASCADE, related_name="+", help_text="Revision of head_sha.")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "repository", "number"], name="pull_request_link_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.repository}#{self.number}"


class SlackIntegration(models.Model):
    """Where a project's approval messages go in Slack."""

    project = models.OneToOneField(Project, on_delete=models.CASCADE, related_name="slack")
    channel = models.CharField(max_length=64, help_text="Slack channel id, e.g. C0123456.")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.project.slug} -> {self.channel}"


class SlackRequestNonce(models.Model):
    """Signatures of Slack requests seen in the last minutes: the same signed request is refused twice."""

    signature_sha256 = models.CharField(max_length=64, unique=True)
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)

    def __str__(self) -> str:
        return self.signature_sha256[:12]


class WebhookSubscription(models.Model):
    """An outbound webhook: a project's events of the chosen types POSTed to a URL, signed.

    The `whsec_` secret is kept (it signs every delivery) and shown in full only on creation.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="webhook_subscriptions")
    url = models.URLField(max_length=2000)
    event_types = models.JSONField(default=list)
    secret = models.CharField(max_length=100)
    is_active = models.BooleanField(default=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.project.slug} -> {self.url}"


class WebhookDeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class WebhookDelivery(models.Model):
    """One event for one subscription, with its attempts; the row is the source of truth.

    Status: pending -> succeeded | failed (after the last attempt). A worker claims a pending
    delivery until `claimed_until`, so two workers never send the same attempt.
    """

    Status = WebhookDeliveryStatus

    subscription = models.ForeignKey(WebhookSubscription, on_delete=models.CASCADE, related_name="deliveries")
    message_id = models.CharField(max_length=64, unique=True, help_text="webhook-id: the same on every attempt.")
    event_type = models.CharField(max_length=64)
    payload = models.JSONField()
    status = models.CharField(max_length=16, choices=WebhookDeliveryStatus.choices, default=WebhookDeliveryStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    claimed_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="webhook_delivery_due_idx")]
        constraints = [
            models.CheckConstraint(condition=_in_choices("status", WebhookDeliveryStatus), name="webhook_delivery_status_valid")
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.message_id}"


class WebhookAttempt(models.Model):
    """One HTTP attempt of a delivery: what the subscriber answered, and when the next try is."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveSmallIntegerField()
    attempted_at = models.DateTimeField(auto_now_add=True)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response_excerpt = models.TextField(blank=True)
    error = models.TextField(blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["delivery_id", "number"]
        constraints = [models.UniqueConstraint(fields=["delivery", "number"], name="webhook_attempt_number_unique")]

    def __str__(self) -> str:
        return f"attempt {self.number} of {self.delivery_id}"


# --- Production activity: traffic per table, for the lock queue estimate ---------------------------


class TableActivity(models.Model):
    """Production traffic on one table (no data), uploaded with the table stats.

    A blocking lock request waits behind the oldest open transaction on its table and queues
    every later query meanwhile; these figures size that queue and the recommended lock_timeout.
    Kept apart from TableStats because traffic changes daily while sizes decide the seeded
    template, which must not be rebuilt for a new traffic sample.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="table_activity")
    table_name = models.CharField(max_length=200)
    queries_per_second = models.FloatField(help_text="All queries touching the table, per second.")
    writes_per_second = models.FloatField(null=True, blank=True, help_text="INSERT/UPDATE/DELETE per second, if known.")
    oldest_transaction_seconds = models.FloatField(
        null=True, blank=True, help_text="Age of the oldest transaction usually open on the table."
    )
    uploaded_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["project_id", "table_name"]
        constraints = [
            models.UniqueConstraint(fields=["project", "table_name"], name="table_activity_unique_table"),
            models.CheckConstraint(
                condition=Q(queries_per_second__gte=0)
                & (Q(writes_per_second__isnull=True) | Q(writes_per_second__gte=0))
                & (Q(oldest_transaction_seconds__isnull=True) | Q(oldest_transaction_seconds__gte=0)),
                name="table_activity_non_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.table_name}: {self.queries_per_second:g} qps"


# --- Schema snapshots: production's catalog, compared with the migrations ---------------------------


class SchemaSnapshot(models.Model):
    """Production's schema as the catalog query (docs/drift.md) read it: structure, never data.

    Dry-runs trust that production equals the replay of the migrations; a snapshot is what
    production really has, so the drift between the two can be reported before a change
    relies on an index, column or constraint that is not there (or is there twice). Never
    changed once uploaded: a new snapshot is a new row.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="schema_snapshots")
    content = models.JSONField(help_text="The catalog query's output, as validated.")
    server_version = models.CharField(max_length=200)
    server_version_num = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    table_count = models.PositiveIntegerField()
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["project_id", "-id"]

    def __str__(self) -> str:
        return f"{self.project.slug} schema snapshot {self.pk}"


class DriftCheckStatus(models.TextChoices):
    CLEAN = "clean", "Clean"
    DRIFTED = "drifted", "Drifted"


class DriftCheck(models.Model):
    """One scheduled comparison of a project's latest schema snapshot with its current baseline.

    A CI job uploads snapshots; the project's schedule (`drift_check_interval_minutes`) compares
    the newest with the baseline and keeps the outcome, so drift that appears between two
    change requests is noticed without anyone asking. The same snapshot against the same
    baseline always gives the same answer, so that pair is checked once (a unique constraint):
    a schedule without new uploads does no work, and a check delivered twice adds nothing.
    `fingerprint` names the set of drifted objects, so an event goes out only when drift
    appears, changes or goes away. Written only by `schema_drift_check`.
    """

    Status = DriftCheckStatus

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="drift_checks")
    snapshot = models.ForeignKey(SchemaSnapshot, on_delete=models.CASCADE, related_name="drift_checks")
    baseline = models.ForeignKey(Baseline, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=16, choices=DriftCheckStatus.choices)
    drifted_objects = models.PositiveIntegerField()
    counts = models.JSONField(help_text="Drifted objects per severity: high, medium, low, info.")
    items = models.JSONField(default=list, blank=True, help_text="The drift report's items, as GET .../drift/ shows them.")
    fingerprint = models.CharField(max_length=64, help_text="SHA-256 of the drifted objects and what differs in each.")
    changed = models.BooleanField(help_text="Whether the drifted objects differ from the project's previous check.")
    checked_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["project_id", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["snapshot", "baseline"], name="drift_check_once_per_snapshot_and_baseline"),
            models.CheckConstraint(condition=_in_choices("status", DriftCheckStatus), name="drift_check_status_valid"),
            models.CheckConstraint(
                condition=Q(status=DriftCheckStatus.CLEAN, drifted_objects=0)
                | Q(status=DriftCheckStatus.DRIFTED, drifted_objects__gt=0),
                name="drift_check_status_matches_objects",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.status} drift check {self.pk} of snapshot {self.snapshot_id}"


# --- Access patterns: the team's key queries, explained before and after every change -------------


class AccessPattern(models.Model):
    """One of a project's key queries, explained on the shadow before and after every change.

    Reviewers see which plans a change makes worse or better, and which indexes no query
    uses. The SQL is prepared on a clone of the current baseline whenever it or its sample
    values change, so a stored pattern parsed and named only existing tables and columns then.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="access_patterns")
    name = models.CharField(max_length=100)
    sql = models.TextField(help_text="The query, with %(name)s, %s or $1 placeholders.")
    params = models.JSONField(
        default=dict,
        blank=True,
        help_text="Sample value per placeholder: by name for %(name)s, by position ('1', '2', ...) for $1 and %s.",
    )
    orm = models.TextField(blank=True, help_text="The Django ORM expression the query comes from, for reviewers.")
    weight = models.FloatField(null=True, blank=True, help_text="Calls per second in production, if known.")
    checked_baseline_version = models.PositiveIntegerField(
        null=True, blank=True, help_text="The baseline version the SQL was last prepared on."
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["project_id", "name"]
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="access_pattern_name_unique"),
            models.CheckConstraint(
                condition=Q(weight__isnull=True) | Q(weight__gte=0), name="access_pattern_weight_non_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.project.slug}: {self.name}"


class AuditEvent(models.Model):
    """One state change: who did what to which object, when, from where, before and after.

    Append-only: on PostgreSQL a trigger refuses UPDATE and DELETE, so not even a bug in this
    service (or a person with the service's credentials) can rewrite history quietly.
    """

    project = models.ForeignKey(Project, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    via = models.CharField(max_length=64, blank=True, help_text="session, token, integration name, worker")
    action = models.CharField(max_length=64)
    target_type = models.CharField(max_length=64)
    target_id = models.CharField(max_length=64)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    source_ip = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        # The table keeps the name it was created with when the trail lived in `approvals`.
        db_table = "approvals_auditevent"
        ordering = ["id"]
        indexes = [models.Index(fields=["target_type", "target_id"], name="audit_target_idx")]

    def __str__(self) -> str:
        return f"{self.action} {self.target_type}:{self.target_id}"
