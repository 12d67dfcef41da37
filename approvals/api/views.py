"""HTTP endpoints of reviews, approval policies, release bundles, the audit trail and the signing key."""

from __future__ import annotations

import django_filters
from django.conf import settings
from django.db.models import Q
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser, MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from approvals.api.serializers import (
    ApprovalPolicyCreateSerializer,
    ApprovalPolicySerializer,
    ApprovalPolicyUpdateSerializer,
    ApprovalStatusSerializer,
    AuditEventSerializer,
    BackfillProgressReportSerializer,
    BackfillRolloutSerializer,
    BundleAppliedSerializer,
    BundleCreateSerializer,
    BundleVerificationSerializer,
    BundleVerifyRequestSerializer,
    BundleVerifyUploadSerializer,
    ReleaseBundleSerializer,
    ReviewDecisionSerializer,
    ReviewSerializer,
    SigningKeySerializer,
)
from approvals.bundles.signing import public_key_pem
from approvals.bundles.verify import bundle_verify
from approvals.integrations.rollout_markdown import bundle_rollout_summary
from approvals.integrations.verification_markdown import bundle_verification_markdown
from approvals.models import ApprovalPolicy, ReleaseBundle, Review
from approvals.policies import approval_status
from approvals.rollout import bundle_backfill_rollout
from approvals.services.bundles import bundle_mark_applied, bundle_seal
from approvals.services.policies import policy_create, policy_delete, policy_update
from approvals.services.reviews import review_decide
from approvals.services.rollout import backfill_progress_report
from approvals.services.verification import bundle_verify_schema
from changeapi.api.base import CHECKED_BY_SERVICE, ProjectScopedViewSet, acting_user, audit_context
from changeapi.api.views import ERRORS, PROBLEM
from changeapi.errors import DomainError, PreconditionRequired, StaleRevision
from changeapi.models import AuditEvent, ChangeRequest, DryRun, Revision, SchemaSnapshot
from changeapi.permissions import MANAGE
from changeapi.selectors import latest_revision


class ChangeRequestReviewsViewSet(ProjectScopedViewSet):
    """Reviews live under their change request: /change-requests/{id}/reviews/."""

    write_permissions = {"create": CHECKED_BY_SERVICE}

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
            OpenApiParameter(
                "If-Match", str, OpenApiParameter.HEADER, required=False, description="ETag of the revision decided on."
            )
        ],
        responses={
            201: ReviewSerializer,
            412: PROBLEM,
            428: PROBLEM,
            **ERRORS,
        },
        description=(
            "Approve, reject or request changes on the latest revision. Name the revision you reviewed with "
            "`If-Match: <its ETag>` or `revision` in the body: 428 when neither is given, 412 when it is no "
            "longer the latest."
        ),
    )
    def create(self, request: Request, pk: str) -> Response:
        change_request: ChangeRequest = self.get_object()
        serializer = ReviewDecisionSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        revision = self._decided_revision(request, change_request, data.get("revision"))
        review = review_decide(
            revision=revision,
            reviewer=acting_user(request),
            decision=data["decision"],
            comment=data["comment"],
            context=audit_context(request),
        )
        return Response(ReviewSerializer(review).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        operation_id="change_requests_approval_retrieve",
        tags=["reviews"],
        responses={200: ApprovalStatusSerializer, **ERRORS},
        description="Where the latest revision stands against the project's approval policy, and why.",
    )
    def approval(self, request: Request, pk: str) -> Response:
        change_request = self.get_object()
        return Response(ApprovalStatusSerializer(approval_status(change_request=change_request)).data)

    @staticmethod
    def _decided_revision(request: Request, change_request: ChangeRequest, revision_id: int | None) -> Revision:
        """The revision the reviewer saw, named by id or by If-Match.

        A named revision that is not the latest is passed on, and the service refuses it
        with 412 under the change request's lock (where "latest" cannot change underneath).
        """
        if_match = (request.headers.get("If-Match") or "").strip()
        if if_match == "*":
            if_match = ""  # names no revision: the reviewer must say which one they saw
        if revision_id is None and not if_match:
            raise PreconditionRequired("name the revision you reviewed: 'revision' in the body or If-Match with its ETag")
        current = latest_revision(change_request)
        if if_match and current.etag not in [tag.strip() for tag in if_match.split(",")]:
            raise StaleRevision("If-Match does not match the latest revision's ETag")
        if revision_id is not None:
            revision = change_request.revisions.filter(pk=revision_id).first()
            if revision is None:
                raise DomainError(f"revision {revision_id} is not a revision of this change request")
            return revision
        return current


class ApprovalPolicyFilter(django_filters.FilterSet):
    project = django_filters.CharFilter(field_name="project__slug")

    class Meta:
        model = ApprovalPolicy
        fields = ["project"]


@extend_schema_view(
    list=extend_schema(operation_id="approval_policies_list", tags=["approval-policies"]),
    retrieve=extend_schema(
        operation_id="approval_policies_retrieve", tags=["approval-policies"], responses={200: ApprovalPolicySerializer, **ERRORS}
    ),
)
class ApprovalPolicyViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ProjectScopedViewSet):
    """A project's approval policy (at most one); reads need view_project, writes manage_project."""

    write_permissions = {"create": MANAGE, "partial_update": MANAGE, "destroy": MANAGE}

    queryset = ApprovalPolicy.objects.select_related("project").prefetch_related("group_requirements__group", "rules__group")
    serializer_class = ApprovalPolicySerializer
    filterset_class = ApprovalPolicyFilter

    @extend_schema(
        operation_id="approval_policies_create",
        tags=["approval-policies"],
        request=ApprovalPolicyCreateSerializer,
        responses={201: ApprovalPolicySerializer, **ERRORS},
    )
    def create(self, request: Request) -> Response:
        serializer = ApprovalPolicyCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.to_service()
        project = self.visible_project(data.pop("project"))
        self.require_write(project)
        policy = policy_create(project=project, actor=acting_user(request), context=audit_context(request), **data)
        return Response(ApprovalPolicySerializer(self.get_queryset().get(pk=policy.pk)).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        operation_id="approval_policies_update",
        tags=["approval-policies"],
        request=ApprovalPolicyUpdateSerializer,
        responses={200: ApprovalPolicySerializer, **ERRORS},
        description="Change the policy; `required_groups` and `rules`, when given, replace the existing ones.",
    )
    def partial_update(self, request: Request, pk: str) -> Response:
        policy = self.get_object()
        self.require_write(policy.project)
        serializer = ApprovalPolicyUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        policy_update(policy=policy, actor=acting_user(request), context=audit_context(request), **serializer.to_service())
        return Response(ApprovalPolicySerializer(self.get_queryset().get(pk=policy.pk)).data)

    @extend_schema(operation_id="approval_policies_destroy", tags=["approval-policies"], responses={204: None, **ERRORS})
    def destroy(self, request: Request, pk: str) -> Response:
        policy = self.get_object()
        self.require_write(policy.project)
        policy_delete(policy=policy, actor=acting_user(request), context=audit_context(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


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
    write_permissions = {
        "create": CHECKED_BY_SERVICE,
        "applied": CHECKED_BY_SERVICE,
        "verify": CHECKED_BY_SERVICE,
        "progress": CHECKED_BY_SERVICE,
    }
    queryset = (
        ReleaseBundle.objects.select_related(
            "project", "created_by", "baseline", "advanced_baseline", "applied_by", "verification__verified_by"
        )
        .prefetch_related("items__change_request", "backfill_progress__reported_by")
        .defer("archive", "dry_run_report")
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
            project=project, change_requests=[found[i] for i in ids], actor=acting_user(request), context=audit_context(request)
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

    @extend_schema(
        operation_id="bundles_applied",
        tags=["bundles"],
        request=BundleAppliedSerializer,
        responses={200: ReleaseBundleSerializer, **ERRORS},
        description="Mark the bundle applied by the deploy pipeline (release_bundle permission); once only, audited.",
    )
    @action(detail=True, methods=["post"])
    def applied(self, request: Request, pk: str) -> Response:
        serializer = BundleAppliedSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        bundle = bundle_mark_applied(
            bundle=self.get_object(),
            actor=acting_user(request),
            context=audit_context(request),
            note=serializer.validated_data["note"],
        )
        return Response(ReleaseBundleSerializer(self.get_queryset().get(pk=bundle.pk)).data)

    @extend_schema(
        operation_id="bundles_backfill_progress",
        tags=["bundles"],
        request=BackfillProgressReportSerializer,
        parameters=[OpenApiParameter("n", int, OpenApiParameter.PATH, description="The Backfill step, 1-based.")],
        responses={200: BackfillRolloutSerializer, **ERRORS},
        description="A running backfill command reports its progress (release_bundle permission, e.g. a project API "
        "key); stored as the step's latest progress and in its history, audited, and sent as bundle.backfill_progress "
        "(throttled), bundle.backfill_failing or bundle.backfill_finished. Idempotent on `sequence`.",
    )
    @action(detail=True, methods=["post"], url_path=r"phases/(?P<n>[0-9]+)/progress")
    def progress(self, request: Request, pk: str, n: str) -> Response:
        serializer = BackfillProgressReportSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        progress = backfill_progress_report(
            bundle=self.get_object(),
            phase=int(n),
            figures=serializer.to_figures(),
            actor=acting_user(request),
            context=audit_context(request),
        )
        rollout = bundle_backfill_rollout(bundle=self.get_queryset().get(pk=progress.bundle_id))
        return Response(BackfillRolloutSerializer(rollout[progress.phase - 1]).data)

    @extend_schema(
        operation_id="bundles_verify_schema",
        tags=["bundles"],
        request=BundleVerifyRequestSerializer,
        responses={200: ReleaseBundleSerializer, **ERRORS},
        description="Compare a schema snapshot of production, uploaded after the bundle was applied, with the schema "
        "the bundle leaves (release_bundle permission); the outcome is stored on the bundle, audited and sent as "
        "bundle.verified or bundle.verification_failed.",
    )
    @action(detail=True, methods=["post"])
    def verify(self, request: Request, pk: str) -> Response:
        serializer = BundleVerifyRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        bundle = (
            ReleaseBundle.objects.select_related("project", "advanced_baseline")
            .defer("archive", "advanced_baseline__source")
            .get(pk=self.get_object().pk)
        )
        snapshot = SchemaSnapshot.objects.filter(project=bundle.project, pk=serializer.validated_data["snapshot"]).first()
        if snapshot is None:
            raise DomainError(
                f"no schema snapshot {serializer.validated_data['snapshot']} in project {bundle.project.slug}",
                errors=[{"pointer": "/snapshot", "detail": "not found"}],
            )
        bundle_verify_schema(bundle=bundle, snapshot=snapshot, actor=acting_user(request), context=audit_context(request))
        return Response(ReleaseBundleSerializer(self.get_queryset().get(pk=bundle.pk)).data)

    @extend_schema(
        operation_id="bundles_verification_markdown",
        tags=["bundles"],
        responses={(200, "text/markdown"): OpenApiTypes.STR, **ERRORS},
        description="The bundle's post-deploy verification as Markdown (the summary of its GitHub check run): "
        "verified, the objects production has otherwise, or not verified yet.",
    )
    def verification_markdown(self, request: Request, pk: str) -> HttpResponse:
        text = bundle_verification_markdown(bundle=self.get_object(), public_url=settings.SCHEMAGATE_PUBLIC_URL)
        return HttpResponse(text, content_type="text/markdown; charset=utf-8")

    @extend_schema(
        operation_id="bundles_rollout_markdown",
        tags=["bundles"],
        responses={(200, "text/markdown"): OpenApiTypes.STR, **ERRORS},
        description="Where the bundle's backfills stand, as Markdown (the summary of its GitHub check run "
        "\"Schemagate rollout\"): each one's state, reported progress, rate and ETA beside the dry-run's estimate, "
        "its parity count and whether its contract phase may go ahead.",
    )
    def rollout_markdown(self, request: Request, pk: str) -> HttpResponse:
        summary = bundle_rollout_summary(bundle=self.get_object(), public_url=settings.SCHEMAGATE_PUBLIC_URL)
        return HttpResponse(summary.markdown, content_type="text/markdown; charset=utf-8")


class AuditEventFilter(django_filters.FilterSet):
    project = django_filters.CharFilter(field_name="project__slug")
    change_request = django_filters.NumberFilter(method="filter_change_request")

    class Meta:
        model = AuditEvent
        fields = ["project", "action"]

    def filter_change_request(self, queryset, name, value):  # type: ignore[no-untyped-def]
        """The change request's own events and those of its dry-runs."""
        dry_runs = [str(i) for i in DryRun.objects.filter(revision__change_request_id=value).values_list("id", flat=True)]
        return queryset.filter(
            Q(target_type="changeapi.changerequest", target_id=str(value))
            | Q(target_type="changeapi.dryrun", target_id__in=dry_runs)
        )


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


class ArchiveParser(BaseParser):
    """A raw archive upload, read up to the request body limit."""

    media_type = "application/gzip"

    def parse(self, stream, media_type=None, parser_context=None):  # type: ignore[no-untyped-def]
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        data = stream.read(limit + 1) if stream is not None else b""
        if len(data) > limit:
            raise ParseError(f"the archive is larger than {limit} bytes")
        return data


class BundleVerifyView(APIView):
    """Verify a bundle archive against this service's public key; anyone may ask."""

    permission_classes = [AllowAny]
    authentication_classes: list[type] = []
    parser_classes = [ArchiveParser, MultiPartParser]

    @extend_schema(
        operation_id="bundles_verify",
        tags=["bundles"],
        request={"application/gzip": OpenApiTypes.BINARY, "multipart/form-data": BundleVerifyUploadSerializer},
        responses={200: BundleVerificationSerializer, 400: PROBLEM},
        description="Checks the manifest's signature and every file's sha256; `valid` is false with the failing files listed.",
    )
    def post(self, request: Request) -> Response:
        if isinstance(request.data, bytes):
            archive = request.data
        else:
            upload = BundleVerifyUploadSerializer(data=request.data)
            upload.is_valid(raise_exception=True)
            file = upload.validated_data["file"]
            if file.size > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
                raise ParseError(f"the archive is larger than {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes")
            archive = file.read()
        result = bundle_verify(archive, public_key_pem=public_key_pem())
        manifest = result.manifest or {}
        body = {
            "valid": result.valid,
            "project": (manifest.get("project") or {}).get("slug") if isinstance(manifest.get("project"), dict) else None,
            "bundle": manifest.get("bundle") if isinstance(manifest.get("bundle"), int) else None,
            "files_checked": result.files_checked,
            "problems": result.problems,
        }
        return Response(BundleVerificationSerializer(body).data)
