"""Reviews of revisions under approval policies, release bundles, and the append-only audit trail."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import models
from django.db.models import Q

from changeapi.models import Baseline, ChangeRequest, DryRun, Project, Revision, SchemaSnapshot


class ReviewDecision(models.TextChoices):
    APPROVE = "approve", "Approve"
    REJECT = "reject", "Reject"
    REQUEST_CHANGES = "request_changes", "Request changes"


class Review(models.Model):
    """A reviewer's decision on one revision, made on the dry-run report they saw.

    It never carries over to a later revision, nor to a later dry-run of the same revision
    (a rerun on a moved baseline, or after a reopen): what was approved is what was seen.
    """

    Decision = ReviewDecision

    revision = models.ForeignKey(Revision, on_delete=models.PROTECT, related_name="reviews")
    dry_run = models.ForeignKey(
        DryRun,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="reviews",
        help_text="The latest dry-run of the revision when the decision was made.",
    )
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    decision = models.CharField(max_length=16, choices=ReviewDecision.choices)
    comment = models.TextField(blank=True)
    via = models.CharField(max_length=64, blank=True, help_text="session, token or integration name")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(decision__in=[v for v, _ in ReviewDecision.choices]), name="review_decision_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.decision} by {self.reviewer_id} on revision {self.revision_id}"


class ReleaseBundle(models.Model):
    """Approved change requests of one project, packed in order into a reproducible archive.

    Immutable once sealed (on PostgreSQL a trigger refuses any change but the one-time mark
    `applied_at`/`applied_by`, and any delete). `baseline` is the baseline it was built on and
    `advanced_baseline` the version sealing it created; `dry_run_report` is the dry-run of the
    whole bundle, kept so the archive can be rebuilt and compared.
    """

    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="bundles")
    number = models.PositiveIntegerField()
    change_requests: models.ManyToManyField[ChangeRequest, BundleItem] = models.ManyToManyField(
        ChangeRequest, through="BundleItem", related_name="bundles"
    )
    archive = models.BinaryField()
    sha256 = models.CharField(max_length=64)
    manifest = models.JSONField()
    baseline = models.ForeignKey(Baseline, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    advanced_baseline = models.ForeignKey(Baseline, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    dry_run_report = models.JSONField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    applied_at = models.DateTimeField(null=True, blank=True)
    applied_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["-id"]
        constraints = [models.UniqueConstraint(fields=["project", "number"], name="bundle_number_unique")]

    def __str__(self) -> str:
        return f"bundle {self.number} of project {self.project_id}"

    @property
    def filename(self) -> str:
        return f"{self.project.slug}-bundle-{self.number}.tar.gz"


class BundleVerificationStatus(models.TextChoices):
    VERIFIED = "verified", "Verified"
    FAILED = "failed", "Failed"


class BundleVerification(models.Model):
    """Whether production, as a schema snapshot read it after the bundle was applied, has the
    schema the bundle was meant to leave.

    Kept apart from the bundle, which is immutable once sealed. `expected` is the catalog of
    the baseline sealing created (the previous baseline's migrations plus the bundle's), read
    on a clone of its template; `differences` are the objects production has otherwise, as in
    a drift report. A later verification (say, after a fix on production) replaces this one;
    each is in the audit trail. Written only by `bundle_verify_schema`.
    """

    Status = BundleVerificationStatus

    bundle = models.OneToOneField(ReleaseBundle, on_delete=models.PROTECT, related_name="verification")
    snapshot = models.ForeignKey(SchemaSnapshot, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=16, choices=BundleVerificationStatus.choices)
    expected = models.JSONField(help_text="The catalog the bundle was meant to leave.")
    differences = models.JSONField(default=list, blank=True)
    verified_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    verified_at = models.DateTimeField()

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=[v for v, _ in BundleVerificationStatus.choices]), name="bundle_verification_status_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.status} verification of bundle {self.bundle_id}"


class BundleItem(models.Model):
    """A change request's place in a bundle, and the revision that was approved."""

    bundle = models.ForeignKey(ReleaseBundle, on_delete=models.CASCADE, related_name="items")
    change_request = models.ForeignKey(ChangeRequest, on_delete=models.PROTECT)
    revision = models.ForeignKey(Revision, on_delete=models.PROTECT, related_name="+")
    dry_run = models.ForeignKey(DryRun, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    position = models.PositiveSmallIntegerField()

    class Meta:
        ordering = ["bundle_id", "position"]
        constraints = [
            models.UniqueConstraint(fields=["bundle", "position"], name="bundle_item_position_unique"),
            models.UniqueConstraint(fields=["change_request"], name="bundle_item_released_once"),
        ]

    def __str__(self) -> str:
        return f"#{self.position} of bundle {self.bundle_id}"


class ApprovalPolicy(models.Model):
    """What a project needs before a change request is approved, beyond its approval count.

    The number of approvals stays on `Project.required_approvals` (one source of truth, also
    used when a project has no policy). A policy adds reviewer groups that must each approve,
    risk rules that demand approvals from a group when the dry-run report shows a risk, and
    whether bot accounts may approve at all.
    """

    project = models.OneToOneField(Project, on_delete=models.CASCADE, related_name="approval_policy")
    required_groups: models.ManyToManyField[Group, ApprovalPolicyGroup] = models.ManyToManyField(
        Group, through="ApprovalPolicyGroup", related_name="+", blank=True
    )
    allow_bot_approvals = models.BooleanField(
        default=False, help_text="Whether members of the bots group may approve (never their own changes)."
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["project_id"]
        verbose_name_plural = "approval policies"

    def __str__(self) -> str:
        return f"approval policy of {self.project}"


class ApprovalPolicyGroup(models.Model):
    """A reviewer group that must approve every change request of the policy's project.

    An explicit row protects the group: deleting a group a policy depends on is refused
    rather than silently weakening the policy.
    """

    policy = models.ForeignKey(ApprovalPolicy, on_delete=models.CASCADE, related_name="group_requirements")
    group = models.ForeignKey(Group, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["policy_id", "group__name"]
        constraints = [models.UniqueConstraint(fields=["policy", "group"], name="approval_policy_group_unique")]

    def __str__(self) -> str:
        return f"{self.group} on {self.policy}"


class ApprovalRuleKind(models.TextChoices):
    FINDING_SEVERITY_AT_LEAST = "finding_severity_at_least", "A finding of at least this severity"
    LOCK_MODE_AT_LEAST = "lock_mode_at_least", "A lock of at least this mode"
    REWRITES_TABLE = "rewrites_table", "A table rewrite"
    SCANS_TABLE = "scans_table", "A full table scan"


class ApprovalRule(models.Model):
    """A risk rule: when the dry-run report matches, `approvals` members of `group` must approve.

    `threshold` is a severity (finding_severity_at_least) or a PostgreSQL lock mode
    (lock_mode_at_least); `table` narrows lock, rewrite and scan rules to one table.
    """

    Kind = ApprovalRuleKind

    policy = models.ForeignKey(ApprovalPolicy, on_delete=models.CASCADE, related_name="rules")
    position = models.PositiveSmallIntegerField()
    kind = models.CharField(max_length=32, choices=ApprovalRuleKind.choices)
    threshold = models.CharField(max_length=32, blank=True)
    table = models.CharField(max_length=200, blank=True)
    group = models.ForeignKey(Group, on_delete=models.PROTECT, related_name="+")
    approvals = models.PositiveSmallIntegerField(default=1)

    class Meta:
        ordering = ["policy_id", "position"]
        constraints = [
            models.UniqueConstraint(fields=["policy", "position"], name="approval_rule_position_unique"),
            models.CheckConstraint(
                condition=Q(kind__in=[v for v, _ in ApprovalRuleKind.choices]), name="approval_rule_kind_valid"
            ),
            models.CheckConstraint(condition=Q(approvals__gte=1), name="approval_rule_approvals_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.threshold or self.table} -> {self.approvals} from {self.group}"


class BackfillProgress(models.Model):
    """What the running backfill of one of a bundle's Backfill steps (its phase `phase`, 1-based
    in the manifest's `backfills`) last reported: the rollout state is read from it.

    Kept apart from the bundle, which is immutable once sealed. Counts are the command's totals
    since its first batch (from its checkpoint), so a report replaces the previous one; each is
    also kept in `BackfillProgressReport`. `errors_grew` says the last report counted more errors
    than the one before it. Written only by `backfill_progress_report`.
    """

    bundle = models.ForeignKey(ReleaseBundle, on_delete=models.PROTECT, related_name="backfill_progress")
    phase = models.PositiveSmallIntegerField()
    sequence = models.BigIntegerField(help_text="The client's sequence number of the report shown.")
    batches = models.BigIntegerField()
    rows = models.BigIntegerField()
    errors = models.BigIntegerField()
    rate_rows_per_s = models.FloatField()
    eta_s = models.FloatField(null=True, blank=True)
    finished = models.BooleanField()
    parity_remaining = models.BigIntegerField(null=True, blank=True)
    errors_grew = models.BooleanField(default=False)
    first_reported_at = models.DateTimeField()
    reported_at = models.DateTimeField()
    reported_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    progress_notified_at = models.DateTimeField(null=True, blank=True, help_text="When bundle.backfill_progress was last sent.")
    stalled_notified_at = models.DateTimeField(
        null=True, blank=True, help_text="When bundle.backfill_stalled was sent for the silence since `reported_at`."
    )

    class Meta:
        ordering = ["bundle_id", "phase"]
        constraints = [
            models.UniqueConstraint(fields=["bundle", "phase"], name="backfill_progress_phase_unique"),
            models.CheckConstraint(
                condition=Q(phase__gte=1, batches__gte=0, rows__gte=0, errors__gte=0, rate_rows_per_s__gte=0),
                name="backfill_progress_non_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"backfill {self.phase} of bundle {self.bundle_id}: {self.rows} rows"


class BackfillProgressReport(models.Model):
    """One progress report as the backfill sent it, append-only: the history of a rollout.

    `(bundle, phase, sequence)` is unique, so a retried POST of the same report is stored once.
    """

    bundle = models.ForeignKey(ReleaseBundle, on_delete=models.PROTECT, related_name="+")
    phase = models.PositiveSmallIntegerField()
    sequence = models.BigIntegerField()
    batches = models.BigIntegerField()
    rows = models.BigIntegerField()
    errors = models.BigIntegerField()
    rate_rows_per_s = models.FloatField()
    eta_s = models.FloatField(null=True, blank=True)
    finished = models.BooleanField()
    parity_remaining = models.BigIntegerField(null=True, blank=True)
    reported_at = models.DateTimeField()
    reported_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["bundle_id", "phase", "sequence"]
        constraints = [
            models.UniqueConstraint(fields=["bundle", "phase", "sequence"], name="backfill_report_sequence_unique"),
        ]

    def __str__(self) -> str:
        return f"report {self.sequence} of backfill {self.phase} of bundle {self.bundle_id}"
