"""Input and output shapes of the changeapi endpoints; no business rules live here."""

from __future__ import annotations

import json
from functools import cached_property
from typing import Any

from django.contrib.auth import get_user_model
from drf_spectacular.utils import extend_schema_field, extend_schema_serializer
from rest_framework import serializers

from changeapi.api.operation_schemas import MigrationDocumentSerializer
from changeapi.api.report_serializers import DryRunReportSerializer
from changeapi.dryrun.contract import JsonValue, to_json
from changeapi.intake.python_source.config import OperationMapping
from changeapi.intake.submission import source_settings
from changeapi.models import DRIFT_CHECK_MAX_MINUTES, DRIFT_CHECK_MIN_MINUTES, Baseline, ChangeRequest, DryRun, Project, Revision
from changeapi.permissions import PROJECT_PERMISSIONS
from changeapi.selectors import dry_run_report


class FieldMappingSerializer(serializers.Serializer):
    base = serializers.CharField(help_text="Dotted path of the Django base field, e.g. 'django.db.models.DecimalField'.")
    kwargs = serializers.DictField(child=serializers.JSONField(), required=False)
    unknown_kwargs = serializers.ChoiceField(choices=["keep", "error"], required=False)
    db_types = serializers.DictField(
        child=serializers.CharField(max_length=100),
        required=False,
        help_text="The custom class's column type by vendor where its db_type() differs from the base's, "
        "e.g. {'mysql': 'bigint unsigned'}.",
    )


class OperationMappingSerializer(serializers.Serializer):
    as_ = serializers.ChoiceField(
        choices=OperationMapping.KINDS,
        help_text="How the custom operation stands in: as a Django operation, as the operation its class keeps "
        "in an attribute, as a state-only change, or as a data step that is not executed.",
    )
    operation = serializers.CharField(
        required=False, help_text="Dotted path of the Django operation, e.g. 'django.db.migrations.AddField'."
    )
    attribute = serializers.CharField(required=False, help_text="The class attribute that holds the operation.")

    def get_fields(self) -> dict[str, serializers.Field]:
        # `as` is a Python keyword: the JSON key is "as".
        fields = super().get_fields()
        fields["as"] = fields.pop("as_")
        return fields


class IntakeSettingsSerializer(serializers.Serializer):
    """How the project's submitted Python is read (custom fields, referenced functions, settings)."""

    field_map = serializers.DictField(child=FieldMappingSerializer(), required=False)
    references = serializers.DictField(
        child=serializers.JSONField(),
        required=False,
        help_text="Project functions referred to (never run), with an optional stand-in.",
    )
    setting_values = serializers.DictField(child=serializers.JSONField(), required=False)
    auth_user_model = serializers.CharField(required=False)
    default_auto_field = serializers.CharField(required=False, allow_null=True)
    operation_map = serializers.DictField(
        child=OperationMappingSerializer(),
        required=False,
        help_text="Custom migration operation classes (dotted path) and how each stands in; see docs/intake.md.",
    )
    installed_apps = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        allow_null=True,
        help_text="The project's INSTALLED_APPS, for apps.is_installed() in files; default: the submitted apps.",
    )


class ProjectSerializer(serializers.ModelSerializer):
    current_baseline_version = serializers.IntegerField(source="current_baseline.version", read_only=True, allow_null=True)
    intake_settings = IntakeSettingsSerializer(read_only=True)

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
            "intake_settings",
            "drift_check_interval_minutes",
            "drift_check_due_at",
            "created_at",
        ]
        read_only_fields = ["created_at", "drift_check_interval_minutes", "drift_check_due_at"]
        extra_kwargs = {
            "required_approvals": {"min_value": 1, "max_value": 20},
            "engine_version": {
                "min_value": 1,
                "max_value": 99,
                "help_text": "Major version of the production database: PostgreSQL 9 to 99, MySQL 5 to 9 or "
                "MariaDB 10 on, SQLite 3 (default: 15, 10 and 3).",
            },
        }


class ProjectUpdateSerializer(serializers.ModelSerializer):
    intake_settings = IntakeSettingsSerializer(required=False)

    def validate_intake_settings(self, value: dict[str, Any]) -> dict[str, Any]:
        plain = json.loads(json.dumps(value))
        try:
            source_settings(plain)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise serializers.ValidationError(f"invalid intake settings: {exc}") from exc
        return plain

    class Meta:
        model = Project
        fields = ["name", "required_approvals", "lock_timeout_ms", "intake_settings", "drift_check_interval_minutes"]
        extra_kwargs = {
            "required_approvals": {"min_value": 1, "max_value": 20},
            "drift_check_interval_minutes": {
                "min_value": DRIFT_CHECK_MIN_MINUTES,
                "max_value": DRIFT_CHECK_MAX_MINUTES,
                "help_text": "Compare the latest schema snapshot with the current baseline this often "
                "(docs/drift.md); null stops the schedule.",
            },
        }


class MemberSerializer(serializers.Serializer):
    username = serializers.CharField()
    permissions = serializers.ListField(child=serializers.ChoiceField(choices=list(PROJECT_PERMISSIONS)))

    def validate_username(self, value: str) -> str:
        if not get_user_model().objects.filter(username=value).exists():
            raise serializers.ValidationError("no such user")
        return value


class MigrationFileSerializer(serializers.Serializer):
    path = serializers.CharField(required=False, help_text="e.g. 'shop/migrations/0002_order_note.py'; gives app and name.")
    app_label = serializers.CharField(required=False)
    name = serializers.CharField(required=False, help_text="Migration name without '.py'.")
    content = serializers.CharField(trim_whitespace=False, help_text="The file's text; read, never executed.")


class ModelsAppSerializer(serializers.Serializer):
    app_label = serializers.CharField()
    path = serializers.CharField(required=False)
    content = serializers.CharField(trim_whitespace=False, help_text="The proposed models.py; read, never executed.")


class RenamesSerializer(serializers.Serializer):
    models = serializers.DictField(child=serializers.CharField(), required=False, help_text="{'shop.Old': 'New'}")
    fields = serializers.DictField(child=serializers.CharField(), required=False, help_text="{'shop.Order.old': 'new'}")  # type: ignore[assignment]  # a declared field; DRF's metaclass moves it off the class


class ModelsSourceSerializer(serializers.Serializer):
    apps = ModelsAppSerializer(many=True, min_length=1)  # type: ignore[call-arg]  # many=True passes it to the ListSerializer
    renames = RenamesSerializer(required=False, help_text="Renames are applied only when stated here.")
    defaults = serializers.DictField(
        child=serializers.JSONField(),
        required=False,
        help_text="One-off defaults for new non-null fields: {'shop.Order.note': ''}.",
    )


# The operations form was sent as `migrations` before the field was named for its form; the old
# name is accepted, with a Warning header, until it is removed in 0.2.
DEPRECATED_OPERATIONS_FIELD = "migrations"
DEPRECATION_WARNING = (
    '299 - "the field migrations is deprecated and will be removed in 0.2: send the operations form as operations"'
)


@extend_schema_serializer(deprecate_fields=[DEPRECATED_OPERATIONS_FIELD])
class SubmissionSerializer(serializers.Serializer):
    """Exactly one of the three forms of a model diff, each in the field named for its form."""

    operations = MigrationDocumentSerializer(many=True, required=False, help_text="Operations form: Django operations as JSON.")
    migrations = MigrationDocumentSerializer(
        many=True, required=False, help_text="Deprecated name of `operations`, accepted until 0.2 with a `Warning` header."
    )
    migration_files = MigrationFileSerializer(
        many=True, required=False, help_text="Migration files as makemigrations writes them."
    )
    models = ModelsSourceSerializer(required=False, help_text="Proposed models.py per app, diffed against the baseline.")

    FORM_OF = {"operations": "operations", "migration_files": "migrations", "models": "models"}

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if DEPRECATED_OPERATIONS_FIELD in attrs:
            if "operations" in attrs:
                raise serializers.ValidationError(
                    {DEPRECATED_OPERATIONS_FIELD: "give operations or its deprecated name migrations, not both"}
                )
            attrs["operations"] = attrs.pop(DEPRECATED_OPERATIONS_FIELD)
        given = [key for key in self.FORM_OF if attrs.get(key)]
        if len(given) != 1:
            raise serializers.ValidationError("give exactly one of: operations, migration_files, models")
        return attrs

    @property
    def deprecation_headers(self) -> dict[str, str]:
        """A `Warning` header when the request used the deprecated field name, else nothing."""
        data = self.initial_data if isinstance(getattr(self, "initial_data", None), dict) else {}
        return {"Warning": DEPRECATION_WARNING} if DEPRECATED_OPERATIONS_FIELD in data else {}

    def submission(self) -> tuple[str, Any]:
        """(form, source as stored), as plain JSON types."""
        data = self.validated_data
        key = next(key for key in self.FORM_OF if data.get(key))
        value = json.loads(json.dumps(data[key]))
        if key == "migration_files":
            value = {"files": value}
        return self.FORM_OF[key], value


def source_as_submitted(form: str, source: Any) -> dict[str, Any]:
    if form == "migrations":
        return {"migration_files": source.get("files", [])}
    if form == "models":
        return {"models": source}
    return {"operations": source}


class BaselineCreateSerializer(SubmissionSerializer):
    """The production schema: operations, the whole migration history of every app, or models."""


class BaselineSerializer(serializers.ModelSerializer):
    project: serializers.SlugRelatedField[Project] = serializers.SlugRelatedField(slug_field="slug", read_only=True)

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


class ChangeRequestSubmitSerializer(SubmissionSerializer):
    project = serializers.SlugField()
    title = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, default="", max_length=20000)


class RevisionSubmitSerializer(SubmissionSerializer):
    """A new revision, in any of the three forms."""


class PlannedOperationSerializer(serializers.Serializer):
    type = serializers.CharField()
    description = serializers.CharField()
    source = serializers.CharField(required=False, help_text="For a data step (RunPython): its code, kept for review, never run.")  # type: ignore[assignment]  # a declared field; DRF's metaclass moves it off the class
    reverse_source = serializers.CharField(required=False, allow_blank=True)


class PlannedMigrationSerializer(serializers.Serializer):
    app_label = serializers.CharField()
    name = serializers.CharField()
    atomic = serializers.BooleanField()
    dependencies = serializers.ListField(child=serializers.ListField(child=serializers.CharField()))
    operations = PlannedOperationSerializer(many=True)
    migration_file = serializers.CharField(required=False, help_text="For the models form: the file makemigrations would write.")


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
    def get_report(self, obj: DryRun) -> dict[str, JsonValue] | None:
        report = dry_run_report(dry_run=obj)
        return to_json(report) if report is not None else None


class RevisionSerializer(serializers.ModelSerializer):
    operations = PlannedMigrationSerializer(many=True, read_only=True)
    source = serializers.SerializerMethodField()  # type: ignore[assignment]  # a declared field; DRF's metaclass moves it off the class
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

    @extend_schema_field(SubmissionSerializer)
    def get_source(self, obj: Revision) -> Any:
        """The submission as it was sent, under the request field of its form."""
        return source_as_submitted(obj.form, obj.source)


class ChangeRequestSerializer(serializers.ModelSerializer):
    project: serializers.SlugRelatedField[Project] = serializers.SlugRelatedField(slug_field="slug", read_only=True)
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

    @cached_property
    def _revision_serializer(self) -> RevisionSerializer:
        # One serializer for every row of a page: building its fields per row cost more than the queries.
        return RevisionSerializer(context=self.context)

    @extend_schema_field(RevisionSerializer)
    def get_latest_revision(self, obj: ChangeRequest) -> dict[str, Any]:
        revisions = list(obj.revisions.all())
        return self._revision_serializer.to_representation(revisions[-1]) if revisions else None  # type: ignore[return-value]

    @extend_schema_field(serializers.IntegerField(allow_null=True))
    def get_latest_dry_run(self, obj: ChangeRequest) -> int | None:
        revisions = list(obj.revisions.all())
        if not revisions:
            return None
        runs = sorted(revisions[-1].dry_runs.all(), key=lambda d: d.pk)
        return runs[-1].pk if runs else None
