"""HTTP endpoints of a project's API keys: issue (shown once), list, revoke. Managers only."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from changeapi.api.base import ProjectScopedViewSet, acting_user, audit_context, require
from changeapi.api.integration_serializers import ApiKeyCreateSerializer, ApiKeyIssuedSerializer, ApiKeySerializer
from changeapi.api.views import ERRORS
from changeapi.models import ApiKey
from changeapi.permissions import MANAGE
from changeapi.services.api_keys import api_key_create, api_key_revoke


class ApiKeyViewSet(ProjectScopedViewSet):
    """/projects/{slug}/api-keys/: keys for CI bots, scoped to the project."""

    write_permissions = {"create": MANAGE, "revoke": MANAGE}

    queryset = ApiKey.objects.select_related("project", "created_by")
    serializer_class = ApiKeySerializer
    pagination_class = None
    filter_backends: list[type] = []

    def _managed_project(self, request: Request, slug: str):  # type: ignore[no-untyped-def]
        project = self.visible_project(slug)
        # Listing keys needs manage_project as much as changing them.
        require(request, project, self.write_permissions.get(self.action or "", MANAGE))
        return project

    @extend_schema(
        operation_id="projects_api_keys_list", tags=["api-keys"], responses={200: ApiKeySerializer(many=True), **ERRORS}
    )
    def list(self, request: Request, slug: str) -> Response:
        project = self._managed_project(request, slug)
        return Response(ApiKeySerializer(self.get_queryset().filter(project=project).order_by("-id"), many=True).data)

    @extend_schema(
        operation_id="projects_api_keys_create",
        tags=["api-keys"],
        request=ApiKeyCreateSerializer,
        responses={201: ApiKeyIssuedSerializer, **ERRORS},
        description="Issue a key; the response holds the whole key, which is never shown again. "
        "Use it as `Authorization: Bearer sg_...`.",
    )
    def create(self, request: Request, slug: str) -> Response:
        project = self._managed_project(request, slug)
        serializer = ApiKeyCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        issued = api_key_create(
            project=project, creator=acting_user(request), context=audit_context(request), **serializer.validated_data
        )
        data = ApiKeyIssuedSerializer(issued.api_key).data
        data["key"] = issued.key
        location = f"/api/v1/projects/{slug}/api-keys/{issued.api_key.pk}/"
        # no-store: the key is shown once; neither caches nor idempotency replays keep it.
        return Response(data, status=status.HTTP_201_CREATED, headers={"Location": location, "Cache-Control": "no-store"})

    @extend_schema(operation_id="projects_api_keys_retrieve", tags=["api-keys"], responses={200: ApiKeySerializer, **ERRORS})
    def retrieve(self, request: Request, slug: str, pk: str) -> Response:
        project = self._managed_project(request, slug)
        return Response(ApiKeySerializer(self._key(project, pk)).data)

    @extend_schema(
        operation_id="projects_api_keys_revoke", tags=["api-keys"], request=None, responses={200: ApiKeySerializer, **ERRORS}
    )
    def revoke(self, request: Request, slug: str, pk: str) -> Response:
        project = self._managed_project(request, slug)
        api_key = api_key_revoke(api_key=self._key(project, pk), actor=acting_user(request), context=audit_context(request))
        return Response(ApiKeySerializer(api_key).data)

    def _key(self, project, pk: str) -> ApiKey:  # type: ignore[no-untyped-def]
        return get_object_or_404(self.get_queryset(), project=project, pk=pk)
