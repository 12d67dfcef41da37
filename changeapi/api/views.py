"""HTTP endpoints of projects, baselines, change requests, revisions and dry-runs.

Views translate HTTP to one service call; visibility comes from `ProjectScopedViewSet`.
"""

from __future__ import annotations

from typing import Any

import django_filters
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Prefetch
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from changeapi.api.base import ANY_USER, AUTHOR_OR_MANAGE, ProjectScopedViewSet, acting_user, audit_context, require
from changeapi.api.renderers import dry_run_renderers
from changeapi.api.serializers import (
    BaselineCreateSerializer,
    BaselineSerializer,
    ChangeRequestSerializer,
    ChangeRequestSubmitSerializer,
    DryRunSerializer,
    MemberSerializer,
    ProjectSerializer,
    ProjectUpdateSerializer,
    RevisionSerializer,
    RevisionSubmitSerializer,
)
from changeapi.dryrun.contract import Report
from changeapi.dryrun.render import report_markdown, report_png, report_svg
from changeapi.dryrun.render.png import PngUnavailable
from changeapi.errors import InvalidState, RenderingUnavailable
from changeapi.models import Baseline, ChangeRequest, DryRun, Project, Revision
from changeapi.permissions import MANAGE, PROJECT_PERMISSIONS, SUBMIT, has_project_perm, project_perms
from changeapi.selectors import dry_run_report
from changeapi.services.baselines import baseline_create
from changeapi.services.change_requests import (
    change_request_reopen,
    change_request_submit,
    change_request_withdraw,
    revision_submit,
)
from changeapi.services.dry_runs import dry_run_rerun
from changeapi.services.projects import project_create, project_member_set, project_settings_update

PROBLEM = OpenApiResponse(description="Problem details (RFC 9457), as application/problem+json.")
ERRORS = {400: PROBLEM, 401: PROBLEM, 403: PROBLEM, 404: PROBLEM, 409: PROBLEM}


@extend_schema_view(
    list=extend_schema(operation_id="projects_list", tags=["projects"]),
    retrieve=extend_schema(operation_id="projects_retrieve", tags=["projects"], responses={200: ProjectSerializer, **ERRORS}),
)
class ProjectViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ProjectScopedViewSet):
    write_permissions = {"create": ANY_USER, "partial_update": MANAGE, "set_member": MANAGE, "create_baseline": MANAGE}
    queryset = Project.objects.select_related("current_baseline").defer("current_baseline__source").order_by("-id")
    serializer_class = ProjectSerializer
    lookup_field = "slug"
    project_path = "pk"

    @extend_schema(
        operation_id="projects_create", tags=["projects"], request=ProjectSerializer, responses={201: ProjectSerializer, **ERRORS}
    )
    def create(self, request: Request) -> Response:
        serializer = ProjectSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        project = project_create(creator=acting_user(request), context=audit_context(request), **serializer.validated_data)
        return Response(ProjectSerializer(project).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        operation_id="projects_update",
        tags=["projects"],
        request=ProjectUpdateSerializer,
        responses={200: ProjectSerializer, **ERRORS},
    )
    def partial_update(self, request: Request, slug: str) -> Response:
        project = self.get_object()
        self.require_write(project)
        serializer = ProjectUpdateSerializer(project, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        project = project_settings_update(
            project=project, changes=dict(serializer.validated_data), context=audit_context(request)
        )
        return Response(ProjectSerializer(project).data)

    @extend_schema(
        operation_id="projects_members_list", tags=["projects"], responses={200: MemberSerializer(many=True), **ERRORS}
    )
    @action(detail=True, methods=["get"], url_path="members", pagination_class=None)
    def members(self, request: Request, slug: str) -> Response:
        project = self.get_object()
        users = (
            get_user_model().objects.filter(projectuserobjectpermission__content_object=project).distinct().order_by("username")
        )
        data = [{"username": u.get_username(), "permissions": sorted(project_perms(u, project))} for u in users]
        return Response(MemberSerializer(data, many=True).data)

    @extend_schema(
        operation_id="projects_members_set",
        tags=["projects"],
        request=MemberSerializer,
        responses={200: MemberSerializer, **ERRORS},
    )
    @members.mapping.post
    def set_member(self, request: Request, slug: str) -> Response:
        project = self.get_object()
        self.require_write(project)
        serializer = MemberSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = get_user_model().objects.get(username=serializer.validated_data["username"])
        perms = project_member_set(
            project=project, user=user, permissions=serializer.validated_data["permissions"], context=audit_context(request)
        )
        ordered = [p for p in PROJECT_PERMISSIONS if p in perms]
        return Response(MemberSerializer({"username": user.get_username(), "permissions": ordered}).data)

    @extend_schema(
        operation_id="projects_baselines_list", tags=["baselines"], responses={200: BaselineSerializer(many=True), **ERRORS}
    )
    @action(detail=True, methods=["get"], url_path="baselines", pagination_class=None)
    def baselines(self, request: Request, slug: str) -> Response:
        project = self.get_object()
        return Response(BaselineSerializer(project.baselines.select_related("project").order_by("-version"), many=True).data)

    @extend_schema(
        operation_id="projects_baselines_create",
        tags=["baselines"],
        request=BaselineCreateSerializer,
        responses={202: BaselineSerializer, **ERRORS},
        description="Upload the production schema as migrations; its template database is built in the background.",
    )
    @baselines.mapping.post
    def create_baseline(self, request: Request, slug: str) -> Response:
        project = self.get_object()
        self.require_write(project)
        serializer = BaselineCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        form, source = serializer.submission()
        baseline = baseline_create(
            project=project,
            author=acting_user(request),
            form=form,
            source=source,
            context=audit_context(request),
        )
        baseline.refresh_from_db()
        return Response(
            BaselineSerializer(baseline).data,
            status=status.HTTP_202_ACCEPTED,
            headers={"Location": f"/api/v1/baselines/{baseline.pk}/", **serializer.deprecation_headers},
        )


@extend_schema_view(
    list=extend_schema(operation_id="baselines_list", tags=["baselines"]),
    retrieve=extend_schema(operation_id="baselines_retrieve", tags=["baselines"], responses={200: BaselineSerializer, **ERRORS}),
)
class BaselineViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ProjectScopedViewSet):
    queryset = Baseline.objects.select_related("project")
    serializer_class = BaselineSerializer
    filterset_fields = {"project__slug": ["exact"]}


class ChangeRequestFilter(django_filters.FilterSet):
    project = django_filters.CharFilter(field_name="project__slug")
    status = django_filters.ChoiceFilter(choices=ChangeRequest.Status.choices)

    class Meta:
        model = ChangeRequest
        fields = ["project", "status"]


def _change_request_queryset() -> Any:
    revisions = (
        Revision.objects.select_related("baseline")
        .defer("baseline__source")
        .prefetch_related(Prefetch("dry_runs", queryset=DryRun.objects.only("id", "revision_id")))
        .order_by("number")
    )
    return ChangeRequest.objects.select_related("project", "author").prefetch_related(Prefetch("revisions", queryset=revisions))


@extend_schema_view(
    list=extend_schema(operation_id="change_requests_list", tags=["change-requests"]),
    retrieve=extend_schema(
        operation_id="change_requests_retrieve", tags=["change-requests"], responses={200: ChangeRequestSerializer, **ERRORS}
    ),
)
class ChangeRequestViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ProjectScopedViewSet):
    write_permissions = {"create": SUBMIT, "create_revision": SUBMIT, "withdraw": AUTHOR_OR_MANAGE, "reopen": AUTHOR_OR_MANAGE}
    queryset = _change_request_queryset()
    serializer_class = ChangeRequestSerializer
    filterset_class = ChangeRequestFilter

    @extend_schema(
        operation_id="change_requests_submit",
        tags=["change-requests"],
        request=ChangeRequestSubmitSerializer,
        responses={202: ChangeRequestSerializer, **ERRORS},
        description="Submit a change; it is parsed now and dry-run in the background (poll latest_dry_run).",
    )
    def create(self, request: Request) -> Response:
        serializer = ChangeRequestSubmitSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        project = self.visible_project(data["project"])
        self.require_write(project)
        form, source = serializer.submission()
        change_request = change_request_submit(
            project=project,
            author=acting_user(request),
            title=data["title"],
            description=data["description"],
            form=form,
            source=source,
            context=audit_context(request),
        )
        fresh = self.get_queryset().get(pk=change_request.pk)
        return Response(
            ChangeRequestSerializer(fresh).data,
            status=status.HTTP_202_ACCEPTED,
            headers={"Location": f"/api/v1/change-requests/{fresh.pk}/", **serializer.deprecation_headers},
        )

    @extend_schema(
        operation_id="change_requests_revisions_list",
        tags=["change-requests"],
        responses={200: RevisionSerializer(many=True), **ERRORS},
    )
    @action(detail=True, methods=["get"], url_path="revisions", pagination_class=None)
    def revisions(self, request: Request, pk: str) -> Response:
        change_request = self.get_object()
        revisions = change_request.revisions.select_related("baseline").defer("baseline__source").order_by("number")
        return Response(RevisionSerializer(revisions, many=True).data)

    @extend_schema(
        operation_id="change_requests_revisions_create",
        tags=["change-requests"],
        request=RevisionSubmitSerializer,
        responses={202: RevisionSerializer, **ERRORS},
    )
    @revisions.mapping.post
    def create_revision(self, request: Request, pk: str) -> Response:
        change_request = self.get_object()
        self.require_write(change_request.project)
        serializer = RevisionSubmitSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        form, source = serializer.submission()
        revision = revision_submit(
            change_request=change_request,
            author=acting_user(request),
            form=form,
            source=source,
            context=audit_context(request),
        )
        return Response(
            RevisionSerializer(revision).data, status=status.HTTP_202_ACCEPTED, headers=serializer.deprecation_headers
        )

    @extend_schema(
        operation_id="change_requests_withdraw",
        tags=["change-requests"],
        request=None,
        responses={200: ChangeRequestSerializer, **ERRORS},
    )
    @action(detail=True, methods=["post"])
    def withdraw(self, request: Request, pk: str) -> Response:
        change_request = self.get_object()
        if change_request.author_id != request.user.pk:
            require(request, change_request.project, MANAGE)
        change_request_withdraw(change_request=change_request, actor=acting_user(request), context=audit_context(request))
        return Response(ChangeRequestSerializer(self.get_queryset().get(pk=change_request.pk)).data)

    @extend_schema(
        operation_id="change_requests_reopen",
        tags=["change-requests"],
        request=None,
        responses={202: ChangeRequestSerializer, **ERRORS},
        description="Reopen a withdrawn change request: its latest revision is dry-run again and review starts over.",
    )
    @action(detail=True, methods=["post"])
    def reopen(self, request: Request, pk: str) -> Response:
        change_request = self.get_object()
        is_author = change_request.author_id == request.user.pk
        if not (is_author and has_project_perm(request.user, change_request.project, SUBMIT)):
            require(request, change_request.project, MANAGE)
        change_request_reopen(change_request=change_request, actor=acting_user(request), context=audit_context(request))
        fresh = self.get_queryset().get(pk=change_request.pk)
        return Response(ChangeRequestSerializer(fresh).data, status=status.HTTP_202_ACCEPTED)


@extend_schema_view(
    retrieve=extend_schema(
        operation_id="revisions_retrieve", tags=["change-requests"], responses={200: RevisionSerializer, **ERRORS}
    ),
)
class RevisionViewSet(mixins.RetrieveModelMixin, ProjectScopedViewSet):
    queryset = Revision.objects.select_related("baseline", "change_request").defer("baseline__source")
    serializer_class = RevisionSerializer
    project_path = "change_request__project"

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        revision = self.get_object()
        return Response(RevisionSerializer(revision).data, headers={"ETag": revision.etag})


class DryRunFilter(django_filters.FilterSet):
    change_request = django_filters.NumberFilter(field_name="revision__change_request_id")
    revision = django_filters.NumberFilter(field_name="revision_id")
    status = django_filters.ChoiceFilter(choices=DryRun.Status.choices)

    class Meta:
        model = DryRun
        fields = ["change_request", "revision", "status"]


@extend_schema_view(
    list=extend_schema(operation_id="dry_runs_list", tags=["dry-runs"]),
    retrieve=extend_schema(operation_id="dry_runs_retrieve", tags=["dry-runs"], responses={200: DryRunSerializer, **ERRORS}),
)
class DryRunViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ProjectScopedViewSet):
    write_permissions = {"rerun": SUBMIT}
    renderer_classes = dry_run_renderers()
    queryset = DryRun.objects.select_related("revision")
    serializer_class = DryRunSerializer
    filterset_class = DryRunFilter
    project_path = "revision__change_request__project"

    def _report(self) -> Report:
        dry_run = self.get_object()
        report = dry_run_report(dry_run=dry_run)
        if report is None:
            raise InvalidState(f"dry-run {dry_run.pk} is {dry_run.status}: it has no report yet")
        return report

    @extend_schema(
        operation_id="dry_runs_report_markdown",
        tags=["dry-runs"],
        responses={(200, "text/markdown"): OpenApiTypes.STR, **ERRORS},
        description="The report as Markdown, e.g. for a pull request comment.",
    )
    def markdown(self, request: Request, pk: str) -> HttpResponse:
        text = report_markdown(self._report(), public_url=settings.SCHEMAGATE_PUBLIC_URL)
        return HttpResponse(text, content_type="text/markdown; charset=utf-8")

    @extend_schema(
        operation_id="dry_runs_report_svg",
        tags=["dry-runs"],
        responses={(200, "image/svg+xml"): OpenApiTypes.STR, **ERRORS},
        description=(
            "The lock timeline: one lane per lock held (relation and mode), statements as numbered columns, "
            "bars coloured by what they block."
        ),
    )
    def timeline(self, request: Request, pk: str) -> HttpResponse:
        return HttpResponse(report_svg(self._report()), content_type="image/svg+xml")

    @extend_schema(
        operation_id="dry_runs_report_png",
        tags=["dry-runs"],
        responses={(200, "image/png"): OpenApiTypes.BINARY, **ERRORS, 503: PROBLEM},
        description="The lock timeline as a PNG image, for places that show no SVG (e.g. a pull request comment).",
    )
    def timeline_png(self, request: Request, pk: str) -> HttpResponse:
        report = self._report()
        try:
            return HttpResponse(report_png(report), content_type="image/png")
        except PngUnavailable as error:
            raise RenderingUnavailable(str(error)) from error

    @extend_schema(
        operation_id="dry_runs_rerun",
        tags=["dry-runs"],
        request=None,
        responses={202: DryRunSerializer, **ERRORS},
        description="Dry-run the same (latest) revision again, e.g. after the shadow server was unavailable.",
    )
    @action(detail=True, methods=["post"])
    def rerun(self, request: Request, pk: str) -> Response:
        dry_run = self.get_object()
        self.require_write(dry_run.revision.change_request.project)
        fresh = dry_run_rerun(dry_run=dry_run, context=audit_context(request))
        fresh.refresh_from_db()
        return Response(
            DryRunSerializer(fresh).data, status=status.HTTP_202_ACCEPTED, headers={"Location": f"/api/v1/dry-runs/{fresh.pk}/"}
        )
