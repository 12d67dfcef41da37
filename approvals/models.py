"""Reviews of revisions, release bundles, and the append-only audit trail."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from changeapi.models import ChangeRequest, Project, Revision


class ReviewDecision(models.TextChoices):
    APPROVE = "approve", "Approve"
    REJECT = "reject", "Reject"
    REQUEST_CHANGES = "request_changes", "Request changes"


class Review(models.Model):
    """A reviewer's decision on one revision; it never carries over to a later revision."""

    Decision = ReviewDecision

    revision = models.ForeignKey(Revision, on_delete=models.PROTECT, related_name="reviews")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    decision = models.CharField(max_length=16, choices=ReviewDecision.choices)
    comment = models.TextField(blank=True)
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
    """Approved change requests of one project, packed in order into a reproducible archive."""

    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="bundles")
    number = models.PositiveIntegerField()
    change_requests = models.ManyToManyField(ChangeRequest, through="BundleItem", related_name="bundles")
    archive = models.BinaryField()
    sha256 = models.CharField(max_length=64)
    manifest = models.JSONField()
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        constraints = [models.UniqueConstraint(fields=["project", "number"], name="bundle_number_unique")]

    def __str__(self) -> str:
        return f"bundle {self.number} of project {self.project_id}"

    @property
    def filename(self) -> str:
        return f"{self.project.slug}-bundle-{self.number}.tar.gz"


class BundleItem(models.Model):
    """A change request's place in a bundle, and the revision that was approved."""

    bundle = models.ForeignKey(ReleaseBundle, on_delete=models.CASCADE, related_name="items")
    change_request = models.ForeignKey(ChangeRequest, on_delete=models.PROTECT)
    revision = models.ForeignKey(Revision, on_delete=models.PROTECT, related_name="+")
    position = models.PositiveSmallIntegerField()

    class Meta:
        ordering = ["bundle_id", "position"]
        constraints = [
            models.UniqueConstraint(fields=["bundle", "position"], name="bundle_item_position_unique"),
            models.UniqueConstraint(fields=["change_request"], name="bundle_item_released_once"),
        ]

    def __str__(self) -> str:
        return f"#{self.position} of bundle {self.bundle_id}"


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
        ordering = ["id"]
        indexes = [models.Index(fields=["target_type", "target_id"], name="audit_target_idx")]

    def __str__(self) -> str:
        return f"{self.action} {self.target_type}:{self.target_id}"
