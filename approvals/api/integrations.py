"""GitHub and Slack on the API: their signed receivers and each project's settings for them.

The receivers authenticate by signature, not by user: GitHub's deliveries (HMAC over the raw
body), Slack's slash command and button presses (v0 signatures within five minutes).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import ParseError
from rest_framework.parsers import FormParser
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from approvals.integrations.github import SignatureInvalid, github_delivery_receive, github_integration_set
from approvals.integrations.slack import (
    SlackRequestRefused,
    slack_command,
    slack_integration_set,
    slack_interaction_accept,
    slack_request_verify,
)
from changeapi.api.base import audit_context
from changeapi.api.integration_serializers import (
    GitHubIntegrationInputSerializer,
    GitHubIntegrationSerializer,
    GitHubWebhookAckSerializer,
    SlackCommandFormSerializer,
    SlackIntegrationSerializer,
    SlackInteractionFormSerializer,
    SlackMessageSerializer,
)
from changeapi.api.integrations import ProjectSettingsViewSet
from changeapi.api.parsers import SafeJSONParser, form_values_check, json_document_load
from changeapi.api.views import ERRORS, PROBLEM
from changeapi.errors import DomainError, NotFound
from changeapi.models import GitHubIntegration, SlackIntegration
from changeapi.permissions import MANAGE


class SignatureRejected(DomainError):
    status = 401
    code = "invalid-signature"
    title = "The request signature is missing or invalid"


SIGNED_ERRORS = {400: PROBLEM, 401: PROBLEM}


class GitHubWebhookView(APIView):
    """POST /integrations/github/{project_slug}/webhook: GitHub's deliveries for a project."""

    authentication_classes: list[type] = []
    permission_classes = [AllowAny]
    parser_classes = [SafeJSONParser]

    @extend_schema(
        operation_id="integrations_github_webhook",
        tags=["integrations"],
        request=OpenApiTypes.OBJECT,
        parameters=[
            OpenApiParameter("X-Hub-Signature-256", str, OpenApiParameter.HEADER, required=True),
            OpenApiParameter("X-GitHub-Event", str, OpenApiParameter.HEADER, required=True),
            OpenApiParameter("X-GitHub-Delivery", str, OpenApiParameter.HEADER, required=True),
        ],
        responses={202: GitHubWebhookAckSerializer, 200: GitHubWebhookAckSerializer, **SIGNED_ERRORS},
        auth=[],
        description="Signed with the project's webhook secret (`X-Hub-Signature-256`). A delivery is processed "
        "once: a redelivery with the same `X-GitHub-Delivery` is answered 200 `duplicate`.",
    )
    def post(self, request: Request, project_slug: str) -> Response:
        body = request.body  # the raw bytes the signature covers; request.data is never read
        _refuse_unstorable_json(body)
        try:
            delivery, is_new = github_delivery_receive(
                project_slug=project_slug,
                body=body,
                signature=request.headers.get("X-Hub-Signature-256"),
                event=request.headers.get("X-GitHub-Event", ""),
                delivery_id=request.headers.get("X-GitHub-Delivery", ""),
            )
        except SignatureInvalid as exc:
            raise SignatureRejected(str(exc)) from exc
        ack = {"delivery": delivery.delivery_id, "status": "queued" if is_new else "duplicate"}
        return Response(ack, status=status.HTTP_202_ACCEPTED if is_new else status.HTTP_200_OK)


def _refuse_unstorable_json(body: bytes) -> None:
    """What the API's parser refuses in any JSON body (too deep, NUL, lone surrogates) is refused
    here too; a body that is not JSON at all is left to the signature check and the receiver."""
    try:
        json_document_load(body.decode("utf-8"))
    except (UnicodeDecodeError, ParseError):
        return


def _verified_form(request: Request) -> dict[str, str]:
    body = request.body
    try:
        slack_request_verify(
            body=body,
            timestamp=request.headers.get("X-Slack-Request-Timestamp"),
            signature=request.headers.get("X-Slack-Signature"),
        )
    except SlackRequestRefused as exc:
        raise SignatureRejected(str(exc)) from exc
    form = {key: values[0] for key, values in parse_qs(body.decode("utf-8", errors="replace")).items()}
    form_values_check(form)
    return form


SLACK_HEADERS = [
    OpenApiParameter("X-Slack-Signature", str, OpenApiParameter.HEADER, required=True),
    OpenApiParameter("X-Slack-Request-Timestamp", str, OpenApiParameter.HEADER, required=True),
]


class SlackCommandView(APIView):
    """POST /integrations/slack/commands: the `/schemagate` slash command."""

    authentication_classes: list[type] = []
    permission_classes = [AllowAny]
    parser_classes = [FormParser]

    @extend_schema(
        operation_id="integrations_slack_command",
        tags=["integrations"],
        request={"application/x-www-form-urlencoded": SlackCommandFormSerializer},
        parameters=SLACK_HEADERS,
        responses={200: SlackMessageSerializer, **SIGNED_ERRORS},
        auth=[],
        description="`/schemagate status 42` (change request id) or `/schemagate status shop#3`, answered to the "
        "Slack user's linked account. Signed (v0); requests older than five minutes or seen before are refused.",
    )
    def post(self, request: Request) -> Response:
        form = _verified_form(request)
        return Response(slack_command(slack_user_id=form.get("user_id", ""), text=form.get("text", "")))


class SlackInteractiveView(APIView):
    """POST /integrations/slack/interactive: Approve / Reject button presses."""

    authentication_classes: list[type] = []
    permission_classes = [AllowAny]
    parser_classes = [FormParser]

    @extend_schema(
        operation_id="integrations_slack_interactive",
        tags=["integrations"],
        request={"application/x-www-form-urlencoded": SlackInteractionFormSerializer},
        parameters=SLACK_HEADERS,
        responses={200: OpenApiResponse(description="Acknowledged; the outcome is posted to the response_url."), **SIGNED_ERRORS},
        auth=[],
        description="Acknowledged at once; the decision is made as the linked reviewer by a background task.",
    )
    def post(self, request: Request) -> Response:
        form = _verified_form(request)
        try:
            payload = json_document_load(form.get("payload", ""))
        except ParseError as exc:
            raise DomainError("the payload field is not JSON") from exc
        if not isinstance(payload, dict):
            raise DomainError("the payload field is not a JSON object")
        slack_interaction_accept(payload=payload)
        return Response(status=status.HTTP_200_OK)


class GitHubIntegrationViewSet(ProjectSettingsViewSet):
    write_permissions = {"update": MANAGE}
    queryset = GitHubIntegration.objects.select_related("project", "bot")
    # One per project, found by its slug (DRF's OPTIONS metadata looks the object up for PUT).
    lookup_field = "project__slug"
    lookup_url_kwarg = "slug"
    serializer_class = GitHubIntegrationSerializer

    @staticmethod
    def _shown(integration: GitHubIntegration) -> dict[str, Any]:
        url = f"{settings.SCHEMAGATE_PUBLIC_URL}/api/v1/integrations/github/{integration.project.slug}/webhook"
        return {"repository": integration.repository, "webhook_url": url, "service_account": integration.bot.get_username()}

    @extend_schema(
        operation_id="projects_github_retrieve", tags=["integrations"], responses={200: GitHubIntegrationSerializer, **ERRORS}
    )
    def retrieve(self, request: Request, slug: str) -> Response:
        project = self.managed_project(slug)
        integration = self.get_queryset().filter(project=project).first()
        if integration is None:
            raise NotFound("the project has no GitHub integration")
        return Response(GitHubIntegrationSerializer(self._shown(integration)).data)

    @extend_schema(
        operation_id="projects_github_set",
        tags=["integrations"],
        request=GitHubIntegrationInputSerializer,
        responses={200: GitHubIntegrationSerializer, **ERRORS},
        description="Connect a repository: set its webhook to the returned URL with the same secret "
        "(content type application/json; events: pull requests and issue comments).",
    )
    def update(self, request: Request, slug: str) -> Response:
        project = self.managed_project(slug)
        serializer = GitHubIntegrationInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        integration = github_integration_set(project=project, context=audit_context(request), **serializer.validated_data)
        return Response(GitHubIntegrationSerializer(self._shown(integration)).data)


class SlackIntegrationViewSet(ProjectSettingsViewSet):
    write_permissions = {"update": MANAGE}
    queryset = SlackIntegration.objects.select_related("project")
    # One per project, found by its slug (DRF's OPTIONS metadata looks the object up for PUT).
    lookup_field = "project__slug"
    lookup_url_kwarg = "slug"
    serializer_class = SlackIntegrationSerializer

    @extend_schema(
        operation_id="projects_slack_retrieve", tags=["integrations"], responses={200: SlackIntegrationSerializer, **ERRORS}
    )
    def retrieve(self, request: Request, slug: str) -> Response:
        project = self.managed_project(slug)
        integration = self.get_queryset().filter(project=project).first()
        if integration is None:
            raise NotFound("the project has no Slack integration")
        return Response(SlackIntegrationSerializer(integration).data)

    @extend_schema(
        operation_id="projects_slack_set",
        tags=["integrations"],
        request=SlackIntegrationSerializer,
        responses={200: SlackIntegrationSerializer, **ERRORS},
    )
    def update(self, request: Request, slug: str) -> Response:
        project = self.managed_project(slug)
        serializer = SlackIntegrationSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        integration = slack_integration_set(project=project, context=audit_context(request), **serializer.validated_data)
        return Response(SlackIntegrationSerializer(integration).data)
