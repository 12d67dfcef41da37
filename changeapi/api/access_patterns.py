"""HTTP endpoints for a project's access patterns: its key queries, explained in every dry-run.

Reading needs view on the project; writing needs manage. A pattern is prepared on a clone of
the current baseline when saved: SQL that does not parse or names something missing is a 400
problem+json pointing at the field, with the line and column PostgreSQL points at.
"""

from __future__ import annotations

from typing import Any

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from changeapi.api.base import ProjectScopedViewSet, acting_user, audit_context
from changeapi.api.views import ERRORS, PROBLEM
from changeapi.models import AccessPattern
from changeapi.permissions import MANAGE
from changeapi.services.access_patterns import access_pattern_create, access_pattern_delete, access_pattern_update

MAX_SQL_CHARS = 20_000
MAX_PARAMS = 100
WRITE_ERRORS = {**ERRORS, 413: PROBLEM, 503: PROBLEM}


@extend_schema_field(
    {
        "oneOf": [
            {"type": "object", "additionalProperties": {}},
            {"type": "array", "items": {}},
        ],
        "description": "Sample values: an object by placeholder name for %(name)s, or by position ('1', '2', ...) "
        "for $1 and %s; an array is read as positions 1, 2, ...",
    }
)
class SampleValuesField(serializers.JSONField):
    """Sample values as an object (or an array, stored as positions "1", "2", ...)."""

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        value = super().to_internal_value(data)
        if isinstance(value, list):
            value = {str(number): item for number, item in enumerate(value, 1)}
        if not isinstance(value, dict):
            raise serializers.ValidationError("give an object (by placeholder) or an array (by position)")
        if len(value) > MAX_PARAMS:
            raise serializers.ValidationError(f"at most {MAX_PARAMS} sample values")
        return value


class AccessPatternSerializer(serializers.ModelSerializer):
    project: serializers.SlugRelatedField = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    params = serializers.DictField(child=serializers.JSONField(), read_only=True)

    class Meta:
        model = AccessPattern
        fields = [
            "id",
            "project",
            "name",
            "sql",
            "params",
            "orm",
            "weight",
            "checked_baseline_version",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class AccessPatternInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    sql = serializers.CharField(max_length=MAX_SQL_CHARS, trim_whitespace=False)
    params = SampleValuesField(required=False, default=dict)
    orm = serializers.CharField(max_length=5000, required=False, allow_blank=True, default="")
    weight = serializers.FloatField(min_value=0, required=False, allow_null=True, default=None)

    def validate_sql(self, value: str) -> str:
        if not value.strip():
            raise serializers.ValidationError("the query is empty")
        return value


class AccessPatternUpdateSerializer(AccessPatternInputSerializer):
    """Any of the fields; new SQL or sample values are prepared on the baseline again."""


class AccessPatternViewSet(ProjectScopedViewSet):
    """A project's key queries. Every dry-run explains each before and after the change."""

    write_permissions = {"create": MANAGE, "partial_update": MANAGE, "destroy": MANAGE}

    queryset = AccessPattern.objects.select_related("project")
    serializer_class = AccessPatternSerializer
    pagination_class = None

    def _pattern(self, slug: str, pk: str) -> AccessPattern:
        project = self.visible_project(slug)
        return get_object_or_404(self.get_queryset(), project=project, pk=pk)

    @extend_schema(
        operation_id="projects_access_patterns_list",
        tags=["access-patterns"],
        responses={200: AccessPatternSerializer(many=True), **ERRORS},
    )
    def list(self, request: Request, slug: str) -> Response:
        project = self.visible_project(slug)
        return Response(AccessPatternSerializer(self.get_queryset().filter(project=project), many=True).data)

    @extend_schema(
        operation_id="projects_access_patterns_create",
        tags=["access-patterns"],
        request=AccessPatternInputSerializer,
        responses={201: AccessPatternSerializer, **WRITE_ERRORS},
        description="Add a key query. It is prepared on a clone of the current baseline first: SQL that does not "
        "parse, names a missing table or column, or a sample value that does not fit is a 400 whose `errors` give "
        "the `pointer` (/sql or /params/...) and, in the SQL, the `line` and `column`.",
    )
    def create(self, request: Request, slug: str) -> Response:
        project = self.visible_project(slug)
        self.require_write(project)
        serializer = AccessPatternInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        pattern = access_pattern_create(
            project=project, author=acting_user(request), context=audit_context(request), **serializer.validated_data
        )
        return Response(AccessPatternSerializer(pattern).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        operation_id="projects_access_patterns_retrieve",
        tags=["access-patterns"],
        responses={200: AccessPatternSerializer, **ERRORS},
    )
    def retrieve(self, request: Request, slug: str, pk: str) -> Response:
        return Response(AccessPatternSerializer(self._pattern(slug, pk)).data)

    @extend_schema(
        operation_id="projects_access_patterns_update",
        tags=["access-patterns"],
        request=AccessPatternUpdateSerializer,
        responses={200: AccessPatternSerializer, **WRITE_ERRORS},
        description="Change any field; new SQL or sample values are prepared on the current baseline again.",
    )
    def partial_update(self, request: Request, slug: str, pk: str) -> Response:
        pattern = self._pattern(slug, pk)
        self.require_write(pattern.project)
        serializer = AccessPatternUpdateSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        pattern = access_pattern_update(pattern=pattern, changes=dict(serializer.validated_data), context=audit_context(request))
        return Response(AccessPatternSerializer(pattern).data)

    @extend_schema(operation_id="projects_access_patterns_destroy", tags=["access-patterns"], responses={204: None, **ERRORS})
    def destroy(self, request: Request, slug: str, pk: str) -> Response:
        pattern = self._pattern(slug, pk)
        self.require_write(pattern.project)
        access_pattern_delete(pattern=pattern, context=audit_context(request))
        return Response(status=status.HTTP_204_NO_CONTENT)
