"""Input and output shapes of reviews, approval policies, bundles and audit events."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from approvals.models import ApprovalPolicy, ApprovalRule, BackfillProgress, BundleVerification, ReleaseBundle, Review
from approvals.rollout import BackfillState, bundle_backfill_rollout
from approvals.services.rollout import ProgressFigures
from changeapi.api.schema_snapshots import DriftSerializer
from changeapi.models import AuditEvent, Project


class ReviewSerializer(serializers.ModelSerializer):
    reviewer = serializers.CharField(source="reviewer.username", read_only=True)
    revision_number = serializers.IntegerField(source="revision.number", read_only=True)

    class Meta:
        model = Review
        fields = ["id", "revision", "revision_number", "dry_run", "reviewer", "decision", "comment", "via", "created_at"]
        read_only_fields = fields


class ReviewDecisionSerializer(serializers.Serializer):
    decision = serializers.ChoiceField(choices=Review.Decision.choices)
    comment = serializers.CharField(required=False, allow_blank=True, default="", max_length=10000)
    revision = serializers.IntegerField(
        required=False, help_text="Id of the revision decided on; or send If-Match with the revision's ETag."
    )


class ApprovalRuleSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=ApprovalRule.Kind.choices)
    threshold = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        max_length=32,
        help_text="A severity (info, low, medium, high, critical) or a PostgreSQL lock mode (e.g. AccessExclusiveLock).",
    )
    table = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=200, help_text="Only this table; empty means any table."
    )
    group = serializers.CharField(source="group.name", max_length=150, help_text="Name of the reviewer group that must approve.")
    approvals = serializers.IntegerField(required=False, default=1, min_value=1, max_value=20)


class ApprovalPolicySerializer(serializers.ModelSerializer):
    project: serializers.SlugRelatedField[Project] = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    required_approvals = serializers.IntegerField(source="project.required_approvals", read_only=True)
    required_groups = serializers.SerializerMethodField()
    rules = ApprovalRuleSerializer(many=True, read_only=True)

    class Meta:
        model = ApprovalPolicy
        fields = [
            "id",
            "project",
            "required_approvals",
            "required_groups",
            "allow_bot_approvals",
            "rules",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_required_groups(self, obj: ApprovalPolicy) -> list[str]:
        return sorted(requirement.group.name for requirement in obj.group_requirements.all())


class ApprovalPolicyUpdateSerializer(serializers.Serializer):
    required_approvals = serializers.IntegerField(
        required=False, min_value=1, max_value=20, help_text="Distinct approvals needed (the project's count)."
    )
    required_groups = serializers.ListField(
        child=serializers.CharField(max_length=150),
        required=False,
        max_length=20,
        help_text="Groups that must each give at least one approval.",
    )
    allow_bot_approvals = serializers.BooleanField(required=False)
    rules = ApprovalRuleSerializer(many=True, required=False, help_text="Risk rules, replacing the existing ones.")

    def to_service(self) -> dict[str, Any]:
        """Validated data as keyword arguments of the policy services (rule groups by name)."""
        data = dict(self.validated_data)
        if "rules" in data:
            data["rules"] = [{**rule, "group": rule["group"]["name"]} for rule in data["rules"]]
        return data


class ApprovalPolicyCreateSerializer(ApprovalPolicyUpdateSerializer):
    project = serializers.SlugField()


class RequirementSerializer(serializers.Serializer):
    group = serializers.CharField()
    approvals_required = serializers.IntegerField()
    approved_by = serializers.ListField(child=serializers.CharField())
    reasons = serializers.ListField(child=serializers.CharField())
    satisfied = serializers.BooleanField()


class ApprovalStatusSerializer(serializers.Serializer):
    revision = serializers.IntegerField(source="revision.pk")
    revision_number = serializers.IntegerField(source="revision.number")
    dry_run = serializers.IntegerField(source="dry_run.pk", allow_null=True, default=None)
    required_approvals = serializers.IntegerField()
    approved_by = serializers.ListField(child=serializers.CharField())
    changes_requested_by = serializers.ListField(child=serializers.CharField())
    requirements = RequirementSerializer(many=True)
    satisfied = serializers.BooleanField()


class BundleCreateSerializer(serializers.Serializer):
    project = serializers.SlugField()
    change_requests = serializers.ListField(
        child=serializers.IntegerField(), min_length=1, max_length=50, help_text="Change request ids, in release order."
    )


class BundleItemSerializer(serializers.Serializer):
    position = serializers.IntegerField()
    change_request = serializers.IntegerField(source="change_request_id")
    number = serializers.IntegerField(source="change_request.number")
    revision = serializers.IntegerField(source="revision_id")


class BundleVerificationStatusSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=BundleVerification.Status.choices)
    snapshot = serializers.IntegerField(source="snapshot_id", help_text="The schema snapshot of production compared.")
    verified_by = serializers.CharField(source="verified_by.username")
    verified_at = serializers.DateTimeField()
    differences = DriftSerializer(
        many=True, help_text="The objects production has otherwise than the bundle leaves them; empty when verified."
    )


class BundleVerifyRequestSerializer(serializers.Serializer):
    snapshot = serializers.IntegerField(
        min_value=1, help_text="A schema snapshot of the project, uploaded after the bundle was applied."
    )


MAX_COUNT = 10**15
MAX_SECONDS = 10.0**9


class BackfillProgressReportSerializer(serializers.Serializer):
    """What a running backfill command sends: its totals since the first batch."""

    sequence = serializers.IntegerField(
        min_value=0, max_value=2**63 - 1, help_text="Increasing per report; a retried report repeats it and is stored once."
    )
    batches = serializers.IntegerField(min_value=0, max_value=MAX_COUNT)
    rows = serializers.IntegerField(min_value=0, max_value=MAX_COUNT)
    rate_rows_per_s = serializers.FloatField(min_value=0, max_value=MAX_SECONDS)
    eta_s = serializers.FloatField(min_value=0, max_value=MAX_SECONDS, allow_null=True, required=False, default=None)
    finished = serializers.BooleanField()
    parity_remaining = serializers.IntegerField(
        min_value=0, max_value=MAX_COUNT, allow_null=True, required=False, default=None, help_text="Null: no parity check."
    )

    def get_fields(self) -> dict[str, serializers.Field]:
        # `errors` is the Serializer's own attribute: the field is declared here, not on the class.
        fields = super().get_fields()
        fields["errors"] = serializers.IntegerField(min_value=0, max_value=MAX_COUNT, help_text="Batches that failed so far.")
        return fields

    def to_figures(self) -> ProgressFigures:
        return ProgressFigures(**self.validated_data)


class BackfillProgressSerializer(serializers.ModelSerializer):
    reported_by = serializers.CharField(source="reported_by.username", read_only=True)

    class Meta:
        model = BackfillProgress
        fields = [
            "sequence",
            "batches",
            "rows",
            "errors",
            "rate_rows_per_s",
            "eta_s",
            "finished",
            "parity_remaining",
            "first_reported_at",
            "reported_at",
            "reported_by",
        ]
        read_only_fields = fields


class BackfillRolloutSerializer(serializers.Serializer):
    phase = serializers.IntegerField(help_text="1-based, in the manifest's `backfills` order.")
    migration = serializers.CharField()
    command = serializers.CharField()
    state = serializers.ChoiceField(choices=BackfillState.choices)
    contract_ready = serializers.BooleanField(
        help_text="The backfill finished and its parity check counted zero: the migrations after it may be applied."
    )
    progress = BackfillProgressSerializer(allow_null=True, help_text="The last report; null before the first.")


class ReleaseBundleSerializer(serializers.ModelSerializer):
    project: serializers.SlugRelatedField[Project] = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    created_by = serializers.CharField(source="created_by.username", read_only=True)
    items = BundleItemSerializer(many=True, read_only=True)
    download_url = serializers.SerializerMethodField()
    baseline_version = serializers.IntegerField(
        source="baseline.version", read_only=True, allow_null=True, default=None, help_text="The baseline it was built on."
    )
    advanced_baseline_version = serializers.IntegerField(
        source="advanced_baseline.version",
        read_only=True,
        allow_null=True,
        default=None,
        help_text="The baseline version sealing it created.",
    )
    applied_by = serializers.CharField(source="applied_by.username", read_only=True, allow_null=True, default=None)
    verification = serializers.SerializerMethodField(help_text="Production's schema after the bundle was applied, compared.")
    backfills = serializers.SerializerMethodField(help_text="The rollout of each Backfill step, from its reported progress.")

    class Meta:
        model = ReleaseBundle
        fields = [
            "id",
            "project",
            "number",
            "sha256",
            "filename",
            "items",
            "baseline_version",
            "advanced_baseline_version",
            "created_by",
            "created_at",
            "applied_at",
            "applied_by",
            "verification",
            "backfills",
            "download_url",
        ]
        read_only_fields = fields

    @extend_schema_field(BackfillRolloutSerializer(many=True))
    def get_backfills(self, obj: ReleaseBundle) -> list[dict[str, Any]]:
        return list(BackfillRolloutSerializer(bundle_backfill_rollout(bundle=obj), many=True).data)

    @extend_schema_field(BundleVerificationStatusSerializer(allow_null=True))
    def get_verification(self, obj: ReleaseBundle) -> dict[str, Any] | None:
        verification = getattr(obj, "verification", None)  # select_related by the views; None when there is none
        return BundleVerificationStatusSerializer(verification).data if verification is not None else None

    def get_download_url(self, obj: ReleaseBundle) -> str:
        return f"/api/v1/bundles/{obj.pk}/download/"


class BundleAppliedSerializer(serializers.Serializer):
    note = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=500, help_text="E.g. the pipeline run that applied it."
    )


class BundleVerifyUploadSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="The bundle archive (.tar.gz).")


class BundleProblemSerializer(serializers.Serializer):
    file = serializers.CharField(help_text="Path in the archive; empty when the archive itself is unreadable.")
    problem = serializers.CharField()


class BundleVerificationSerializer(serializers.Serializer):
    valid = serializers.BooleanField()
    project = serializers.CharField(allow_null=True)
    bundle = serializers.IntegerField(allow_null=True)
    files_checked = serializers.IntegerField()
    problems = BundleProblemSerializer(many=True)


class AuditEventSerializer(serializers.ModelSerializer):
    project: serializers.SlugRelatedField[Project] = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    actor = serializers.CharField(source="actor.username", read_only=True, allow_null=True, default=None)

    class Meta:
        model = AuditEvent
        fields = [
            "id",
            "project",
            "actor",
            "via",
            "action",
            "target_type",
            "target_id",
            "before",
            "after",
            "source_ip",
            "created_at",
        ]
        read_only_fields = fields


class SigningKeySerializer(serializers.Serializer):
    algorithm = serializers.CharField()
    public_key_pem = serializers.CharField()
