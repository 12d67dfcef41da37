"""HTTP endpoints for schema snapshots (production's catalog) and their drift from the migrations.

The body of an upload is the output of the catalog query in docs/drift.md, as it is. Reading
needs view on the project; uploading needs manage, like table stats. A malformed snapshot is a
400 problem+json whose `errors[].pointer` is the JSON path of the value.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Hashable, Mapping
from typing import Any

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from changeapi.api.base import ProjectScopedViewSet, acting_user, audit_context
from changeapi.api.serializers import BaselineSerializer
from changeapi.api.views import ERRORS, PROBLEM
from changeapi.dryrun.drift import DriftKind, DriftStatus, Severity
from changeapi.dryrun.legacy import ReviewKind
from changeapi.intake.names import is_app_label
from changeapi.models import Project, SchemaSnapshot
from changeapi.permissions import MANAGE
from changeapi.services.legacy_baselines import legacy_baseline_create
from changeapi.services.schema_dumps import schema_dump_catalog
from changeapi.services.schema_snapshots import SnapshotEngineMismatch, schema_snapshot_drift, schema_snapshot_upload
from changeapi.shadow.servers import ENGINE_NAMES

NAME_CHARS = 63  # PostgreSQL's identifiers hold at most 63 bytes
# Per engine: MySQL/MariaDB's identifiers hold 64 characters; SQLite sets no limit, so its
# names (and those the query makes for keys, after their table) are bounded here.
ENGINE_NAME_CHARS = {"postgresql": NAME_CHARS, "mysql": 64, "sqlite": 255}
# The least server_version_num the service reads, per engine (PostgreSQL 9.0, MySQL 5.7, SQLite 3).
ENGINE_MIN_VERSION_NUM = {"postgresql": 90000, "mysql": 50700, "sqlite": 3_000_000}
MAX_TABLES = 5000
MAX_COLUMNS = 1600  # PostgreSQL's limit per table
MAX_INDEXES = 50_000
MAX_CONSTRAINTS = 50_000
MAX_SEQUENCES = 10_000
MAX_EXTENSIONS = 500
MAX_DEFINITION_CHARS = 20_000
DRIFT_ERRORS = {**ERRORS, 503: PROBLEM}
LEGACY_ERRORS = {**ERRORS, 422: PROBLEM, 503: PROBLEM}
DUMP_ERRORS = {**ERRORS, 413: PROBLEM, 422: PROBLEM, 503: PROBLEM}
MAX_DUMP_CHARS = 20_000_000
# Named in SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"], so other `type` enums keep their names.
CONSTRAINT_TYPES = ("primary_key", "unique", "foreign_key", "check", "exclusion")
IDENTITY_KINDS = ("always", "by_default")


def _engine_of(serializer: serializers.Field) -> str:
    """The engine of the snapshot being read (set by its root serializer), PostgreSQL's by default."""
    return str(serializer.context.get("engine", "postgresql"))


class CatalogNameField(serializers.CharField):
    """A catalog name: any text the engine allows in a quoted identifier, up to the engine's
    limit (never put into SQL here)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(max_length=max(ENGINE_NAME_CHARS.values()), trim_whitespace=False, **kwargs)

    def to_internal_value(self, data: Any) -> str:
        value = super().to_internal_value(data)
        limit = ENGINE_NAME_CHARS.get(_engine_of(self), NAME_CHARS)
        if len(value) > limit:
            raise serializers.ValidationError(f"Ensure this field has no more than {limit} characters.")
        return value


def _name(**kwargs: Any) -> serializers.CharField:
    return CatalogNameField(**kwargs)


def _definition(**kwargs: Any) -> serializers.CharField:
    return serializers.CharField(max_length=MAX_DEFINITION_CHARS, trim_whitespace=False, **kwargs)


def _refuse_duplicates(items: list[dict[str, Any]], key: Callable[[dict[str, Any]], Hashable], field: str, what: str) -> None:
    """A name listed twice is refused at each later occurrence's path, e.g. /tables/4/name."""
    seen = Counter(key(item) for item in items)
    if all(count == 1 for count in seen.values()):
        return
    errors: list[dict[str, Any]] = []
    first: set[Hashable] = set()
    for item in items:
        k = key(item)
        errors.append({field: [f"{what} listed twice"]} if seen[k] > 1 and k in first else {})
        first.add(k)
    raise serializers.ValidationError(errors)


class ColumnSnapshotSerializer(serializers.Serializer):
    name = _name()
    type = serializers.CharField(max_length=1000, help_text="format_type(): e.g. character varying(200).")
    nullable = serializers.BooleanField()
    default = _definition(required=False, allow_null=True, help_text="pg_get_expr() of the column default.")
    collation = _name(required=False, allow_null=True)
    identity = serializers.ChoiceField(choices=IDENTITY_KINDS, required=False, allow_null=True)


class TableSnapshotSerializer(serializers.Serializer):
    name = _name()
    partitioned = serializers.BooleanField(required=False, default=False)
    columns = ColumnSnapshotSerializer(many=True, max_length=MAX_COLUMNS)  # type: ignore[call-arg]

    def validate_columns(self, columns: list[dict[str, Any]]) -> list[dict[str, Any]]:
        _refuse_duplicates(columns, lambda c: c["name"], "name", "column")
        return columns


class IndexSnapshotSerializer(serializers.Serializer):
    name = _name()
    table = _name()
    definition = _definition(help_text="pg_get_indexdef().")
    unique = serializers.BooleanField()
    primary = serializers.BooleanField(required=False, default=False)
    valid = serializers.BooleanField(help_text="pg_index.indisvalid: false after a failed CREATE INDEX CONCURRENTLY.")
    predicate = _definition(required=False, allow_null=True, help_text="The WHERE of a partial index.")


class ConstraintSnapshotSerializer(serializers.Serializer):
    name = _name()
    table = _name()
    type = serializers.ChoiceField(choices=CONSTRAINT_TYPES)
    definition = _definition(help_text="pg_get_constraintdef().")
    validated = serializers.BooleanField(help_text="pg_constraint.convalidated: false for NOT VALID.")


class SequenceSnapshotSerializer(serializers.Serializer):
    name = _name()
    type = serializers.CharField(max_length=100)
    owned_by = serializers.CharField(max_length=2 * NAME_CHARS + 1, required=False, allow_null=True, trim_whitespace=False)


class ExtensionSnapshotSerializer(serializers.Serializer):
    name = _name()
    version = serializers.CharField(max_length=100)


class SchemaSnapshotUploadSerializer(serializers.Serializer):
    """The catalog query's output, as it is: PostgreSQL's (no `engine`), MySQL/MariaDB's or SQLite's.

    The engine must be the project's: a snapshot of another engine is a 422 at `/engine`, before
    anything else of it is read. Names are bounded by the engine's limit (63 characters on
    PostgreSQL, 64 on MySQL/MariaDB, 255 on SQLite); sequences and extensions are PostgreSQL's alone.
    """

    engine = serializers.ChoiceField(
        choices=Project.Engine.choices,
        required=False,
        help_text="The engine the query ran on; PostgreSQL's query writes none (postgresql).",
    )
    server_version = serializers.CharField(max_length=200)
    server_version_num = serializers.IntegerField(
        min_value=1,
        max_value=10_000_000,
        help_text="server_version_num on PostgreSQL; major * 10000 + minor * 100 + patch on MySQL/MariaDB; "
        "SQLITE_VERSION_NUMBER on SQLite.",
    )
    schema = _name()
    tables = TableSnapshotSerializer(many=True, max_length=MAX_TABLES)  # type: ignore[call-arg]
    indexes = IndexSnapshotSerializer(many=True, max_length=MAX_INDEXES)  # type: ignore[call-arg]
    constraints = ConstraintSnapshotSerializer(many=True, max_length=MAX_CONSTRAINTS)  # type: ignore[call-arg]
    sequences = SequenceSnapshotSerializer(many=True, max_length=MAX_SEQUENCES)  # type: ignore[call-arg]
    extensions = ExtensionSnapshotSerializer(many=True, max_length=MAX_EXTENSIONS)  # type: ignore[call-arg]

    def validate_tables(self, tables: list[dict[str, Any]]) -> list[dict[str, Any]]:
        _refuse_duplicates(tables, lambda t: t["name"], "name", "table")
        return tables

    def to_internal_value(self, data: Any) -> Any:
        """Read which engine wrote the snapshot first: the 422 for another engine than the
        project's, and the limits the fields apply, depend on it."""
        engine = data.get("engine", "postgresql") if isinstance(data, Mapping) else None
        if isinstance(engine, str) and engine in ENGINE_NAME_CHARS:
            wanted = self.context.get("project_engine")
            if wanted is not None and engine != wanted:
                raise SnapshotEngineMismatch(
                    f"the snapshot was read on {ENGINE_NAMES[engine]}, and the project's engine is "
                    f"{ENGINE_NAMES.get(wanted, wanted)}: run the catalog query of its engine (docs/drift.md)",
                    errors=[{"pointer": "/engine", "detail": f"{engine} is not the project's engine ({wanted})"}],
                )
            self._context["engine"] = engine
        return super().to_internal_value(data)

    def validate_server_version_num(self, value: int) -> int:
        least = ENGINE_MIN_VERSION_NUM.get(_engine_of(self), ENGINE_MIN_VERSION_NUM["postgresql"])
        if value < least:
            raise serializers.ValidationError(f"Ensure this value is greater than or equal to {least}.")
        return value

    def validate_indexes(self, indexes: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if _engine_of(self) == "mysql":  # MySQL names an index within its table (each has a PRIMARY)
            _refuse_duplicates(indexes, lambda i: (i["table"], i["name"]), "name", "index of this table")
        else:
            _refuse_duplicates(indexes, lambda i: i["name"], "name", "index")
        return indexes

    def validate_constraints(self, constraints: list[dict[str, Any]]) -> list[dict[str, Any]]:
        _refuse_duplicates(constraints, lambda k: (k["table"], k["name"]), "name", "constraint of this table")
        return constraints

    def validate_sequences(self, sequences: list[dict[str, Any]]) -> list[dict[str, Any]]:
        _refuse_duplicates(sequences, lambda s: s["name"], "name", "sequence")
        return sequences

    def validate_extensions(self, extensions: list[dict[str, Any]]) -> list[dict[str, Any]]:
        _refuse_duplicates(extensions, lambda e: e["name"], "name", "extension")
        return extensions

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """Indexes and constraints belong to a table of the snapshot, at their own path if not;
        only PostgreSQL has sequences and extensions."""
        tables = {t["name"] for t in attrs["tables"]}
        errors: dict[str, Any] = {}
        if _engine_of(self) != "postgresql":
            for key in ("sequences", "extensions"):
                if attrs[key]:
                    errors[key] = [f"only a PostgreSQL snapshot has {key}"]
        for key in ("indexes", "constraints"):
            found = [{} if item["table"] in tables else {"table": ["no such table in this snapshot"]} for item in attrs[key]]
            if any(found):
                errors[key] = found
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


class SchemaSnapshotSerializer(serializers.ModelSerializer):
    project: serializers.SlugRelatedField = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    uploaded_by: serializers.SlugRelatedField = serializers.SlugRelatedField(
        source="created_by", slug_field="username", read_only=True
    )

    class Meta:
        model = SchemaSnapshot
        fields = ["id", "project", "server_version", "server_version_num", "table_count", "sha256", "uploaded_by", "created_at"]
        read_only_fields = fields


class SchemaSnapshotDetailSerializer(SchemaSnapshotSerializer):
    content = SchemaSnapshotUploadSerializer(read_only=True)

    class Meta(SchemaSnapshotSerializer.Meta):
        fields = [*SchemaSnapshotSerializer.Meta.fields, "content"]
        read_only_fields = fields


class SchemaDumpUploadSerializer(serializers.Serializer):
    dump = serializers.CharField(
        max_length=MAX_DUMP_CHARS,
        trim_whitespace=False,
        help_text="The output of `pg_dump --schema-only` of production's database, as it is (plain format).",
    )


class SkippedStatementSerializer(serializers.Serializer):
    what = serializers.CharField(help_text="What the statement makes, which the snapshot leaves out.")
    line = serializers.IntegerField(help_text="Its first line in the dump.")


class SchemaDumpSnapshotSerializer(SchemaSnapshotDetailSerializer):
    skipped = SkippedStatementSerializer(many=True, read_only=True)

    class Meta(SchemaSnapshotDetailSerializer.Meta):
        fields = [*SchemaSnapshotDetailSerializer.Meta.fields, "skipped"]
        read_only_fields = fields


class DriftSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=[k.value for k in DriftKind])
    status = serializers.ChoiceField(choices=[s.value for s in DriftStatus])
    severity = serializers.ChoiceField(choices=[s.value for s in Severity])
    name = serializers.CharField()
    table = serializers.CharField(allow_null=True)
    detail = serializers.CharField()
    consequence = serializers.CharField(help_text="What it means for changes, and what to do.")
    expected = serializers.DictField(allow_null=True, help_text="The object as the migrations have it.")
    actual = serializers.DictField(allow_null=True, help_text="The object as production has it.")


class DriftCountsSerializer(serializers.Serializer):
    high = serializers.IntegerField()
    medium = serializers.IntegerField()
    low = serializers.IntegerField()
    info = serializers.IntegerField()


class DriftReportSerializer(serializers.Serializer):
    snapshot = serializers.IntegerField()
    baseline_version = serializers.IntegerField(help_text="The baseline whose template production is compared with.")
    drifted = serializers.BooleanField()
    production_version = serializers.CharField()
    shadow_version = serializers.CharField()
    counts = DriftCountsSerializer()
    items = DriftSerializer(many=True)


class LegacyBaselineCreateSerializer(serializers.Serializer):
    app_label = serializers.CharField(
        required=False, default="legacy", max_length=100, help_text="The Django app the derived models belong to."
    )

    def validate_app_label(self, value: str) -> str:
        if not is_app_label(value):
            raise serializers.ValidationError("an app label is a Python identifier that is not a keyword")
        return value


class ReviewPointSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=[k.value for k in ReviewKind])
    table = serializers.CharField()
    model = serializers.CharField(allow_null=True, help_text="The model inspectdb named for the table.")
    column = serializers.CharField(allow_null=True)
    detail = serializers.CharField(help_text="What to check, and what the baseline assumed.")


class MigrationFileTextSerializer(serializers.Serializer):
    app_label = serializers.CharField()
    name = serializers.CharField()
    path = serializers.CharField()
    content = serializers.CharField(help_text="The migration as makemigrations writes it (without its header).")


class LegacyBaselineSerializer(serializers.Serializer):
    baseline = BaselineSerializer()
    app_label = serializers.CharField()
    models_source = serializers.CharField(help_text="inspectdb's models.py for the snapshot, managed models.")
    migration = MigrationFileTextSerializer()
    review_points = ReviewPointSerializer(many=True)


class SchemaSnapshotViewSet(ProjectScopedViewSet):
    """Production's schema per project, uploaded from the catalog query, and its drift."""

    write_permissions = {"create": MANAGE, "legacy_baseline": MANAGE, "from_dump": MANAGE}

    queryset = SchemaSnapshot.objects.select_related("project", "created_by")
    serializer_class = SchemaSnapshotSerializer

    @extend_schema(
        operation_id="projects_schema_snapshots_list",
        tags=["schema-snapshots"],
        responses={200: SchemaSnapshotSerializer(many=True), **ERRORS},
    )
    def list(self, request: Request, slug: str) -> Response:
        project = self.visible_project(slug)
        page = self.paginate_queryset(self.get_queryset().filter(project=project))
        return self.get_paginated_response(SchemaSnapshotSerializer(page, many=True).data)

    @extend_schema(
        operation_id="projects_schema_snapshots_create",
        tags=["schema-snapshots"],
        request=SchemaSnapshotUploadSerializer,
        responses={201: SchemaSnapshotDetailSerializer, **ERRORS, 413: PROBLEM, 422: PROBLEM},
        description="Upload production's schema: the output of the catalog query of docs/drift.md for the project's "
        "engine (PostgreSQL, MySQL/MariaDB or SQLite), as it is. Only the catalog (tables, columns, indexes, "
        "constraints, and on PostgreSQL sequences and extensions) is read, never data. A snapshot of another engine "
        "than the project's is a 422 at `/engine`.",
    )
    def create(self, request: Request, slug: str) -> Response:
        project = self.visible_project(slug)
        self.require_write(project)
        serializer = SchemaSnapshotUploadSerializer(data=request.data, context={"project_engine": project.engine})
        serializer.is_valid(raise_exception=True)
        snapshot = schema_snapshot_upload(
            project=project, content=serializer.validated_data, author=acting_user(request), context=audit_context(request)
        )
        return Response(
            SchemaSnapshotDetailSerializer(snapshot).data,
            status=status.HTTP_201_CREATED,
            headers={"Location": f"/api/v1/projects/{project.slug}/schema-snapshots/{snapshot.pk}/"},
        )

    @extend_schema(
        operation_id="projects_schema_snapshots_from_dump",
        tags=["schema-snapshots"],
        request=SchemaDumpUploadSerializer,
        responses={201: SchemaDumpSnapshotSerializer, **DUMP_ERRORS},
        description="Upload production's schema as a `pg_dump --schema-only` script instead of the catalog query's "
        "output. The script is read by PostgreSQL's parser, restored (statement by statement, each written again "
        "from its parse tree) on a fresh shadow database as a role of its own, and read back with the catalog "
        "query; that catalog is stored as the snapshot. Ownership, grants, comments and settings are skipped; "
        "functions, triggers, views, extensions and other schemas are skipped and listed in `skipped`; anything "
        "else (data, roles, DO blocks) is a 422 naming its line.",
    )
    def from_dump(self, request: Request, slug: str) -> Response:
        project = self.visible_project(slug)
        self.require_write(project)
        upload = SchemaDumpUploadSerializer(data=request.data)
        upload.is_valid(raise_exception=True)
        restored = schema_dump_catalog(project=project, dump=upload.validated_data["dump"])
        serializer = SchemaSnapshotUploadSerializer(data=restored.content, context={"project_engine": project.engine})
        serializer.is_valid(raise_exception=True)
        snapshot = schema_snapshot_upload(
            project=project, content=serializer.validated_data, author=acting_user(request), context=audit_context(request)
        )
        body = SchemaSnapshotDetailSerializer(snapshot).data
        return Response(
            {**body, "skipped": SkippedStatementSerializer(restored.skipped, many=True).data},
            status=status.HTTP_201_CREATED,
            headers={"Location": f"/api/v1/projects/{project.slug}/schema-snapshots/{snapshot.pk}/"},
        )

    @extend_schema(
        operation_id="projects_schema_snapshots_retrieve",
        tags=["schema-snapshots"],
        responses={200: SchemaSnapshotDetailSerializer, **ERRORS},
    )
    def retrieve(self, request: Request, slug: str, pk: str) -> Response:
        project = self.visible_project(slug)
        return Response(SchemaSnapshotDetailSerializer(get_object_or_404(self.get_queryset(), project=project, pk=pk)).data)

    @extend_schema(
        operation_id="schema_snapshots_drift",
        tags=["schema-snapshots"],
        responses={200: DriftReportSerializer, **DRIFT_ERRORS},
        description="The snapshot against the template of the project's current baseline, object by object: "
        "missing, extra, different, INVALID indexes and NOT VALID constraints, each with a severity and what it "
        "means for changes. A 409 when the project has no ready baseline.",
    )
    def drift(self, request: Request, pk: str) -> Response:
        snapshot = get_object_or_404(self.get_queryset(), pk=pk)
        baseline, report = schema_snapshot_drift(snapshot=snapshot)
        body = {"snapshot": snapshot.pk, "baseline_version": baseline.version, **report.as_dict()}
        return Response(DriftReportSerializer(body).data)

    @extend_schema(
        operation_id="projects_schema_snapshots_legacy_baseline",
        tags=["schema-snapshots"],
        request=LegacyBaselineCreateSerializer,
        responses={202: LegacyBaselineSerializer, **LEGACY_ERRORS},
        description="A baseline from the snapshot alone, for a database that never had Django migrations: the "
        "snapshot is restored on a fresh shadow database, Django's inspectdb derives models there, and their "
        "initial migration (as makemigrations writes it) becomes the project's next baseline, whose template is "
        "built in the background. Returns the models source, the migration and the review points a person must "
        "check. A 422 locates a snapshot value that cannot be restored or used by Django.",
    )
    def legacy_baseline(self, request: Request, slug: str, pk: str) -> Response:
        project = self.visible_project(slug)
        snapshot = get_object_or_404(self.get_queryset(), project=project, pk=pk)
        self.require_write(project)
        serializer = LegacyBaselineCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        legacy = legacy_baseline_create(
            snapshot=snapshot,
            app_label=serializer.validated_data["app_label"],
            author=acting_user(request),
            context=audit_context(request),
        )
        legacy.baseline.refresh_from_db()
        body = {
            "baseline": legacy.baseline,
            "app_label": legacy.app_label,
            "models_source": legacy.models_source,
            "migration": legacy.migration,
            "review_points": legacy.review_points,
        }
        return Response(
            LegacyBaselineSerializer(body).data,
            status=status.HTTP_202_ACCEPTED,
            headers={"Location": f"/api/v1/baselines/{legacy.baseline.pk}/"},
        )
