"""HTTP endpoints for production table stats and activity: list them, upload them.

The figures (row counts, bytes, column statistics, queries per second; never data) come from a read-only query
on production (docs/table-stats.md: pg_class and pg_stats on PostgreSQL, information_schema.TABLES on MySQL/MariaDB,
count(*) and dbstat on a SQLite file). Reading needs view on the project; uploading needs manage, since new sizes
reseed the project's shadow template.
"""

from __future__ import annotations

from typing import Any

import django_filters
from drf_spectacular.utils import extend_schema, extend_schema_field, extend_schema_view
from rest_framework import mixins, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from changeapi.api.base import ProjectScopedViewSet, audit_context
from changeapi.api.views import ERRORS
from changeapi.models import TableActivity, TableStats
from changeapi.permissions import MANAGE
from changeapi.services.table_stats import ColumnUpload, IndexUpload, TableUpload, table_stats_upload

MAX_TABLES = 5000
MAX_COLUMNS = 1600  # PostgreSQL's limit per table
MAX_INDEXES = 1000
BIGINT_MAX = 2**63 - 1  # the columns are bigint
IDENTIFIER = r"^[A-Za-z_][A-Za-z0-9_$]*$"


def _refuse_duplicates(items: list[dict[str, Any]], key: str, what: str) -> None:
    names = [item[key] for item in items]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise serializers.ValidationError(f"{what} listed twice: {', '.join(duplicates)}")


class ColumnFiguresSerializer(serializers.Serializer):
    """One column's figures from pg_stats: shares, widths and counts, never values."""

    column = serializers.RegexField(IDENTIFIER, max_length=200)
    null_frac = serializers.FloatField(
        min_value=0, max_value=1, required=False, allow_null=True, help_text="Fraction of rows that are NULL."
    )
    avg_width = serializers.IntegerField(
        min_value=0, max_value=2**31 - 1, required=False, allow_null=True, help_text="Average width of a value, bytes."
    )
    n_distinct = serializers.FloatField(
        min_value=-1,
        max_value=BIGINT_MAX,
        required=False,
        allow_null=True,
        help_text="Above 0: distinct values; -1 to 0: minus the fraction of rows that are distinct; 0: unknown.",
    )
    correlation = serializers.FloatField(
        min_value=-1,
        max_value=1,
        required=False,
        allow_null=True,
        help_text="Statistical correlation of physical row order with value order.",
    )


class IndexSizeSerializer(serializers.Serializer):
    index = serializers.RegexField(IDENTIFIER, max_length=200)
    bytes = serializers.IntegerField(min_value=0, max_value=BIGINT_MAX, help_text="pg_relation_size of the index.")


class TableFiguresSerializer(serializers.Serializer):
    """One table as uploaded: size from pg_class (MySQL/MariaDB: information_schema.TABLES),
    traffic (optional) from pg_stat_user_tables samples."""

    table = serializers.RegexField(IDENTIFIER, max_length=200)
    rows = serializers.IntegerField(
        min_value=0,
        max_value=BIGINT_MAX,
        help_text="PostgreSQL: pg_class.reltuples; MySQL/MariaDB: information_schema.TABLES.TABLE_ROWS.",
    )
    total_bytes = serializers.IntegerField(
        min_value=0,
        max_value=BIGINT_MAX,
        help_text="PostgreSQL: pg_total_relation_size (heap, indexes and TOAST); MySQL/MariaDB: DATA_LENGTH + INDEX_LENGTH.",
    )
    queries_per_second = serializers.FloatField(min_value=0, required=False, allow_null=True)
    writes_per_second = serializers.FloatField(min_value=0, required=False, allow_null=True)
    oldest_transaction_seconds = serializers.FloatField(min_value=0, required=False, allow_null=True)
    columns = ColumnFiguresSerializer(many=True, required=False, max_length=MAX_COLUMNS)  # type: ignore[call-arg]
    indexes = IndexSizeSerializer(many=True, required=False, max_length=MAX_INDEXES)  # type: ignore[call-arg]

    def validate_columns(self, columns: list[dict[str, Any]]) -> list[dict[str, Any]]:
        _refuse_duplicates(columns, "column", "columns")
        return columns

    def validate_indexes(self, indexes: list[dict[str, Any]]) -> list[dict[str, Any]]:
        _refuse_duplicates(indexes, "index", "indexes")
        return indexes

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        traffic = ("writes_per_second", "oldest_transaction_seconds")
        if attrs.get("queries_per_second") is None and any(attrs.get(k) is not None for k in traffic):
            raise serializers.ValidationError({"queries_per_second": "required when other activity figures are given"})
        return attrs


class TableStatsUploadSerializer(serializers.Serializer):
    project = serializers.SlugField()
    replace = serializers.BooleanField(default=True, help_text="Forget tables of the project that are not in this upload.")
    tables = TableFiguresSerializer(many=True, allow_empty=False, max_length=MAX_TABLES)  # type: ignore[call-arg]

    def validate_tables(self, tables: list[dict[str, Any]]) -> list[dict[str, Any]]:
        _refuse_duplicates(tables, "table", "tables")
        return tables


class TableStatsSerializer(serializers.ModelSerializer):
    project: serializers.SlugRelatedField = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    table = serializers.CharField(source="table_name", read_only=True)
    rows = serializers.IntegerField(source="row_count", read_only=True)
    queries_per_second = serializers.SerializerMethodField()
    writes_per_second = serializers.SerializerMethodField()
    oldest_transaction_seconds = serializers.SerializerMethodField()
    columns = ColumnFiguresSerializer(many=True, read_only=True)
    indexes = IndexSizeSerializer(many=True, read_only=True)

    class Meta:
        model = TableStats
        fields = [
            "id",
            "project",
            "table",
            "rows",
            "total_bytes",
            "queries_per_second",
            "writes_per_second",
            "oldest_transaction_seconds",
            "columns",
            "indexes",
            "uploaded_at",
        ]
        read_only_fields = fields

    def _activity(self, obj: TableStats) -> TableActivity | None:
        return self.context.get("activity", {}).get((obj.project_id, obj.table_name))

    @extend_schema_field(serializers.FloatField(allow_null=True))
    def get_queries_per_second(self, obj: TableStats) -> float | None:
        activity = self._activity(obj)
        return activity.queries_per_second if activity else None

    @extend_schema_field(serializers.FloatField(allow_null=True))
    def get_writes_per_second(self, obj: TableStats) -> float | None:
        activity = self._activity(obj)
        return activity.writes_per_second if activity else None

    @extend_schema_field(serializers.FloatField(allow_null=True))
    def get_oldest_transaction_seconds(self, obj: TableStats) -> float | None:
        activity = self._activity(obj)
        return activity.oldest_transaction_seconds if activity else None


class TableStatsFilter(django_filters.FilterSet):
    project = django_filters.CharFilter(field_name="project__slug")

    class Meta:
        model = TableStats
        fields = ["project"]


def _table_upload(table: dict[str, Any]) -> TableUpload:
    columns = [ColumnUpload(**column) for column in table.pop("columns", [])]
    indexes = [IndexUpload(**index) for index in table.pop("indexes", [])]
    return TableUpload(**table, columns=columns, indexes=indexes)


def _activity_map(stats: list[TableStats]) -> dict[tuple[int, str], TableActivity]:
    projects = {s.project_id for s in stats}
    activity = TableActivity.objects.filter(project_id__in=projects, table_name__in={s.table_name for s in stats})
    return {(a.project_id, a.table_name): a for a in activity}


@extend_schema_view(
    list=extend_schema(operation_id="table_stats_list", tags=["table-stats"]),
)
class TableStatsViewSet(mixins.ListModelMixin, ProjectScopedViewSet):
    """Production sizes and traffic per table, per project."""

    write_permissions = {"create": MANAGE}

    queryset = TableStats.objects.select_related("project")
    serializer_class = TableStatsSerializer
    filterset_class = TableStatsFilter

    def get_serializer_context(self) -> dict[str, Any]:
        context = super().get_serializer_context()
        context["activity"] = getattr(self, "_activity", {})
        return context

    def paginate_queryset(self, queryset: Any) -> list[Any] | None:
        page = super().paginate_queryset(queryset)
        self._activity = _activity_map(list(page if page is not None else queryset))
        return page

    @extend_schema(
        operation_id="table_stats_upload",
        tags=["table-stats"],
        request=TableStatsUploadSerializer,
        # Every table stored, as one plain list: not a page, whatever the list endpoint pages.
        responses={200: {"type": "array", "items": {"$ref": "#/components/schemas/TableStats"}}, **ERRORS},
        description=(
            "Upload production row counts and sizes per table (from pg_class, information_schema.TABLES on "
            "MySQL/MariaDB, or count(*) and dbstat on SQLite; optionally per-column statistics from pg_stats, index sizes and traffic). The next dry-run seeds its shadow in proportion, shaped by the column "
            "statistics, and estimates timings at this size."
        ),
    )
    def create(self, request: Request) -> Response:
        serializer = TableStatsUploadSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        project = self.visible_project(data["project"])
        self.require_write(project)
        stats = table_stats_upload(
            project=project,
            tables=[_table_upload(table) for table in data["tables"]],
            replace=data["replace"],
            context=audit_context(request),
        )
        context = {"activity": _activity_map(stats)}
        return Response(TableStatsSerializer(stats, many=True, context=context).data, status=status.HTTP_200_OK)
