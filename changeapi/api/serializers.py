"""Input and output shapes of the changeapi endpoints; no business rules live here."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from changeapi.api.operation_schemas import MigrationDocumentSerializer
from changeapi.api.report_serializers import DryRunReportSerializer
from changeapi.models import Baseline, ChangeRequest, DryRun, Project, Revision
from changeapi.permissions import PROJECT_PERMISSIONS


class ProjectSerializer(serializers.ModelSerializer):
    current_baseline_version = serializers.IntegerField(source="current_baseline.version", read_only=True, allow_null=True)

    class Meta:
        model = Project
        fields = [
            "slug",
            "name",
            "engine",
            "engine_version",
            "required_approvals",
            "lock_timeout_ms",
            "current_baseline_version",
            "created_at",
        ]
        read_only_fields = ["created_at"]
        extra_kwargs = {
            "required_approvals": {"min_value": 1, "max_value": 20},
            "engine_version": {"min_value": 9, "max_value": 99},
        }


class ProjectUpdateSerializer(serializers.ModelSerializer):
    class Meta:
        model = Project
        fields = ["name", "required_approvals", "lock_timeout_ms"]
        extra_kwargs = {"required_approvals": {"min_value": 1, "max_value": 20}}


class MemberSerializer(serializers.Serializer):
    username = serializers.CharField()
    permissions = serializers.ListField(child=serializers.ChoiceField(choices=list(PROJECT_PERMISSIONS)))

    def validate_username(self, value: str) -> str:
        if not get_user_model().objects.filter(username=value).exists():
            raise serializers.ValidationError("no such user")
        return value


class BaselineCreateSerializer(serializers.Serializer):
    migrations = MigrationDocumentSerializer(many=True, help_text="The baseline schema as migrations (operations form).")


class BaselineSerializer(serializers.ModelSerializer):
    project = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta:
        model = Baseline
        fields = [
            "id",
            "project",
            "version",
            "form",
            "sha256",
            "status",
            "error",
            "migration_count",
            "operation_count",
            "created_at",
        ]
        read_only_fields = fields


class ChangeRequestSubmitSerializer(serializers.Serializer):
    project = serializers.SlugField()
    title = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    migrations = MigrationDocumentSerializer(many=True, help_text="The change as migrations of Django operations.")


class RevisionSubmitSerializer(serializers.Serializer):
    migrations = MigrationDocumentSerializer(many=True)


class PlannedOperationSerializer(serializers.Serializer):
    type = serializers.CharField()
    description = serializers.CharField()


class PlannedMigrationSerializer(serializers.Serializer):
    app_label = serializers.CharField()
    name = serializers.CharField()
    atomic = serializers.BooleanField()
    dependencies = serializers.ListField(child=serializers.ListField(child=serializers.CharField()))
    operations = PlannedOperationSerializer(many=True)


class DryRunSerializer(serializers.ModelSerializer):
    change_request = serializers.IntegerField(source="revision.change_request_id", read_only=True)
    revision_number = serializers.IntegerField(source="revision.number", read_only=True)
    report = serializers.SerializerMethodField()

    class Meta:
        model = DryRun
        fields = [
            "id",
            "change_request",
            "revision",
            "revision_number",
            "baseline",
            "status",
            "server",
            "progress_done",
            "progress_total",
            "error",
            "attempts",
            "created_at",
            "started_at",
            "finished_at",
            "report",
        ]
        read_only_fields = fields

    @extend_schema_field(DryRunReportSerializer(allow_null=True))
    def get_report(self, obj: DryRun) -> dict[str, Any] | None:
        return obj.report


class RevisionSerializer(serializers.ModelSerializer):
    operations = PlannedMigrationSerializer(many=True, read_only=True)
    source = serializers.SerializerMethodField()
    baseline_version = serializers.IntegerField(source="baseline.version", read_only=True)
    etag = serializers.CharField(read_only=True)

    class Meta:
        model = Revision
        fields = [
            "id",
            "change_request",
            "number",
            "form",
            "sha256",
            "etag",
            "baseline_version",
            "operations",
            "source",
            "created_at",
        ]
        read_only_fields = fields

    @extend_schema_field(MigrationDocumentSerializer(many=True))
    def get_source(self, obj: Revision) -> Any:
        return obj.source


class ChangeRequestSerializer(serializers.ModelSerializer):
    project = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    author = serializers.CharField(source="author.username", read_only=True)
    latest_revision = serializers.SerializerMethodField()
    latest_dry_run = serializers.SerializerMethodField()

    class Meta:
        model = ChangeRequest
        fields = [
            "id",
            "project",
            "number",
            "title",
            "description",
            "author",
            "status",
            "latest_revision",
            "latest_dry_run",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    @extend_schema_field(RevisionSerializer)
    def get_latest_revision(self, obj: ChangeRequest) -> dict[str, Any]:
        revisions = list(obj.revisions.all())
        return RevisionSerializer(revisions[-1]).data if revisions else None  # type: ignore[return-value]

    @extend_schema_field(serializers.IntegerField(allow_null=True))
    def get_latest_dry_run(self, obj: ChangeRequest) -> int | None:
        revisions = list(obj.revisions.all())
        if not revisions:
            return None
        runs = sorted(revisions[-1].dry_runs.all(), key=lambda d: d.pk)
        return runs[-1].pk if runs else None
