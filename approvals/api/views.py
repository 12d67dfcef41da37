"""HTTP endpoints of reviews, release bundles, the audit trail and the signing key."""

from __future__ import annotations

import django_filters
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from approvals.api.serializers import (
    AuditEventSerializer,
    BundleCreateSerializer,
    ReleaseBundleSerializer,
    ReviewDecisionSerializer,
    ReviewSerializer,
    SigningKeySerializer,
)
from approvals.bundles.signing import public_key_pem
from approvals.models import AuditEvent, ReleaseBundle, Review
from approvals.services.bundles import bundle_seal
from approvals.services.reviews import review_decide
from changeapi.api.base import ProjectScopedViewSet, audit_context
from changeapi.api.views import ERRORS
from changeapi.errors import DomainError, PreconditionRequired, StaleRevision
from changeapi.models import ChangeRequest
from changeapi.selectors import latest_revision


class ChangeRequestReviewsViewSet(ProjectScopedViewSet):
    """Reviews live under their change request: /change-requests/{id}/reviews/."""

    queryset = ChangeRequest.objects.select_related("project")
    serializer_class = ReviewSerializer
    pagination_class = None
    filter_backends: list[type] = []

    @extend_schema(
        operation_id="change_requests_reviews_list", tags=["reviews"], responses={200: ReviewSerializer(many=True), **ERRORS}
    )
    def list(self, request: Request, pk: str) -> Response:
        change_request = self.get_object()
        reviews = Review.objects.filter(revision__change_request=change_request).select_related("reviewer", "revision")
        return Response(ReviewSerializer(reviews, many=True).data)

    @extend_schema(
        operation_id="change_requests_reviews_create",
        tags=["reviews"],
        request=ReviewDecisionSerializer,
        parameters=[
            OpenApiParameter("If-Match", str, OpenApiParameter.HEADER, required=False, description="ETag of the revision.")
        ],
        responses={
            201: ReviewSerializer,
            412: OpenApiResponse(description="Stale revision"),
            428: OpenApiResponse(description="Revision not given"),
            **ERRORS,
        },
        description="Approve, reject or request changes on the latest revision (given by id or If-Match ETag).",
    )
    def create(self, request: Request, pk: str) -> Response:
        change_request: ChangeRequest = self.get_object()
        serializer = ReviewDecisionSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        revision = self._decided_revision(request, change_request, data.get("revision"))
        review = review_decide(
            revision=revision,
            reviewer=request.user,
            decision=data["decision"],
            comment=data["comment"],
            context=audit_context(request),
        )
        return Response(ReviewSerializer(review).data, status=status.HTTP_201_CREATED)

    @staticmethod
    def _decided_revision(request: Request, change_request: ChangeRequest, revision_id: int | None):  # type: ignore[no-untyped-def]
        """The revision the reviewer saw: named by id or by If-Match; it must be the latest."""
        if_match = request.headers.get("If-Match")
        current = latest_revision(change_request)
        if revision_id is None and not if_match:
            raise PreconditionRequired("name the revision you reviewed: 'revision' in the body or If-Match with its ETag")
        if revision_id is not None:
            revision = change_request.revisions.filter(pk=revision_id).first()
            if revision is None:
                raise DomainError(f"revision {revision_id} is not a revision of this change request")
            return revision
        if if_match.strip() != current.etag:
            raise StaleRevision("If-Match does not match the latest revision's ETag")
        return current


class BundleFilter(django_filters.FilterSet):
    project = django_filters.CharFilter(field_name="project__slug")

    class Meta:
        model = ReleaseBundle
        fields = ["project"]


@extend_schema_view(
    list=extend_schema(operation_id="bundles_list", tags=["bundles"]),
    retrieve=extend_schema(operation_id="bundles_retrieve", tags=["bundles"], responses={200: ReleaseBundleSerializer, **ERRORS}),
)
class ReleaseBundleViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ProjectScopedViewSet):
    queryset = (
        ReleaseBundle.objects.select_related("project", "created_by").prefetch_related("items__change_request").defer("archive")
    )
    serializer_class = ReleaseBundleSerializer
    filterset_class = BundleFilter

    @extend_schema(
        operation_id="bundles_create",
        tags=["bundles"],
        request=BundleCreateSerializer,
        responses={201: ReleaseBundleSerializer, **ERRORS},
    )
    def create(self, request: Request) -> Response:
        serializer = BundleCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        project = self.visible_project(serializer.validated_data["project"])
        ids = serializer.validated_data["change_requests"]
        found = {cr.pk: cr for cr in ChangeRequest.objects.filter(project=project, pk__in=ids)}
        missing = [i for i in ids if i not in found]
        if missing:
            raise DomainError(
                f"no change request {missing[0]} in project {project.slug}",
                errors=[{"pointer": f"/change_requests/{ids.index(i)}", "detail": "not found"} for i in missing],
            )
        bundle = bundle_seal(
            project=project, change_requests=[found[i] for i in ids], actor=request.user, context=audit_context(request)
        )
        return Response(ReleaseBundleSerializer(self.get_queryset().get(pk=bundle.pk)).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        operation_id="bundles_download",
        tags=["bundles"],
        responses={(200, "application/gzip"): OpenApiTypes.BINARY, **ERRORS},
    )
    @action(detail=True, methods=["get"])
    def download(self, request: Request, pk: str) -> HttpResponse:
        bundle = ReleaseBundle.objects.select_related("project").get(pk=self.get_object().pk)
        response = HttpResponse(bytes(bundle.archive), content_type="application/gzip")
        response["Content-Disposition"] = f'attachment; filename="{bundle.filename}"'
        response["Digest"] = f"sha-256={bundle.sha256}"
        return response


class AuditEventFilter(django_filters.FilterSet):
    project = django_filters.CharFilter(field_name="project__slug")
    change_request = django_filters.NumberFilter(method="filter_change_request")

    class Meta:
        model = AuditEvent
        fields = ["project", "action"]

    def filter_change_request(self, queryset, name, value):  # type: ignore[no-untyped-def]
        return queryset.filter(target_type="changeapi.changerequest", target_id=str(value))


@extend_schema_view(list=extend_schema(operation_id="audit_events_list", tags=["audit"]))
class AuditEventViewSet(mixins.ListModelMixin, ProjectScopedViewSet):
    queryset = AuditEvent.objects.select_related("project", "actor")
    serializer_class = AuditEventSerializer
    filterset_class = AuditEventFilter


class SigningKeyView(APIView):
    """The public key bundles are signed with, so anyone can verify a bundle offline."""

    permission_classes = [AllowAny]
    authentication_classes: list[type] = []

    @extend_schema(operation_id="signing_key_retrieve", tags=["bundles"], responses={200: SigningKeySerializer})
    def get(self, request: Request) -> Response:
        return Response(SigningKeySerializer({"algorithm": "Ed25519", "public_key_pem": public_key_pem()}).data)
