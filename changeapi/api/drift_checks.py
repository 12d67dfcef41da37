"""HTTP endpoints of scheduled drift checks: the outcomes the project's schedule recorded.

The schedule itself is a project setting (`drift_check_interval_minutes`, PATCH
/projects/{slug}/); reading the checks needs view on the project.
"""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from changeapi.api.base import ProjectScopedViewSet
from changeapi.api.schema_snapshots import DriftCountsSerializer, DriftSerializer
from changeapi.api.views import ERRORS
from changeapi.models import DriftCheck


class DriftCheckSerializer(serializers.ModelSerializer):
    project: serializers.SlugRelatedField = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    snapshot = serializers.IntegerField(source="snapshot_id", read_only=True, help_text="The schema snapshot compared.")
    baseline_version = serializers.IntegerField(
        source="baseline.version", read_only=True, help_text="The baseline whose template it was compared with."
    )
    counts = DriftCountsSerializer(read_only=True)

    class Meta:
        model = DriftCheck
        fields = ["id", "project", "snapshot", "baseline_version", "status", "drifted_objects", "counts", "changed", "checked_at"]
        read_only_fields = fields


class DriftCheckDetailSerializer(DriftCheckSerializer):
    items = DriftSerializer(many=True, read_only=True)

    class Meta(DriftCheckSerializer.Meta):
        fields = [*DriftCheckSerializer.Meta.fields, "items"]
        read_only_fields = fields


class DriftCheckViewSet(ProjectScopedViewSet):
    """A project's scheduled drift checks, newest first."""

    queryset = DriftCheck.objects.select_related("project", "baseline")
    serializer_class = DriftCheckSerializer

    @extend_schema(
        operation_id="projects_drift_checks_list",
        tags=["schema-snapshots"],
        responses={200: DriftCheckSerializer(many=True), **ERRORS},
        description="The checks the project's drift schedule made: one per schema snapshot and baseline compared.",
    )
    def list(self, request: Request, slug: str) -> Response:
        project = self.visible_project(slug)
        page = self.paginate_queryset(self.get_queryset().filter(project=project).order_by("-id"))
        return self.get_paginated_response(DriftCheckSerializer(page, many=True).data)

    @extend_schema(
        operation_id="projects_drift_checks_retrieve",
        tags=["schema-snapshots"],
        responses={200: DriftCheckDetailSerializer, **ERRORS},
    )
    def retrieve(self, request: Request, slug: str, pk: str) -> Response:
        project = self.visible_project(slug)
        check = get_object_or_404(self.get_queryset(), project=project, pk=pk)
        return Response(DriftCheckDetailSerializer(check).data)
