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

    class Meta:
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
    """Production size of one table (no data): drives seeding and extrapolation."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="table_stats")
    table_name = models.CharField(max_length=200)
    row_count = models.BigIntegerField()
    total_bytes = models.BigIntegerField()
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
