"""HTTP endpoints of the integrations: GitHub and Slack receivers, and a project's settings for
GitHub, Slack, linked identities and outbound webhook subscriptions.

The receivers authenticate by signature, not by user: they read the raw body before anything
else touches the request, and hand it to the integration services.
"""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from changeapi.api.base import ProjectScopedViewSet, acting_user, audit_context, require
from changeapi.api.integration_serializers import (
    ExternalIdentitySerializer,
    IdentityConfirmationSerializer,
    WebhookDeliverySerializer,
    WebhookSubscriptionCreateSerializer,
    WebhookSubscriptionIssuedSerializer,
    WebhookSubscriptionSerializer,
)
from changeapi.api.views import ERRORS
from changeapi.integrations.identities import (
    external_identity_confirmation_code,
    external_identity_create,
    external_identity_delete,
)
from changeapi.models import ExternalIdentity, Project, WebhookDelivery, WebhookSubscription
from changeapi.permissions import MANAGE
from changeapi.services.webhooks import webhook_subscription_create, webhook_subscription_delete


class ProjectSettingsViewSet(ProjectScopedViewSet):
    """Base of a project's integration settings: every action needs manage_project."""

    pagination_class = None
    filter_backends: list[type] = []

    def managed_project(self, slug: str) -> Project:
        project = self.visible_project(slug)
        require(self.request, project, self.write_permissions.get(self.action or "", MANAGE))
        return project


class ExternalIdentityViewSet(ProjectSettingsViewSet):
    write_permissions = {"create": MANAGE, "confirmation_code": MANAGE, "destroy": MANAGE}
    queryset = ExternalIdentity.objects.select_related("project", "user")
    serializer_class = ExternalIdentitySerializer

    @extend_schema(
        operation_id="projects_identities_list",
        tags=["integrations"],
        responses={200: ExternalIdentitySerializer(many=True), **ERRORS},
    )
    def list(self, request: Request, slug: str) -> Response:
        project = self.managed_project(slug)
        return Response(ExternalIdentitySerializer(self.get_queryset().filter(project=project), many=True).data)

    @extend_schema(
        operation_id="projects_identities_create",
        tags=["integrations"],
        request=ExternalIdentitySerializer,
        responses={201: ExternalIdentitySerializer, **ERRORS},
        description="Link a GitHub user id or Slack user id to a member of the project; comment commands and "
        "Slack buttons then act as that member, with that member's permissions.",
    )
    def create(self, request: Request, slug: str) -> Response:
        project = self.managed_project(slug)
        serializer = ExternalIdentitySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        identity = external_identity_create(
            project=project,
            provider=data["provider"],
            external_id=data["external_id"],
            user=data["user"],
            creator=acting_user(request),
            context=audit_context(request),
        )
        return Response(ExternalIdentitySerializer(identity).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        operation_id="projects_identities_confirmation_code",
        tags=["integrations"],
        request=None,
        responses={201: IdentityConfirmationSerializer, **ERRORS},
        description="For the linked user only: a one-time code to send from the linked GitHub account (a comment "
        "`/schemagate confirm <code>` on a pull request of the repository) or Slack account (`/schemagate confirm "
        "<code>`). Until confirmed, the link acts for nobody.",
    )
    def confirmation_code(self, request: Request, slug: str, pk: str) -> Response:
        project = self.visible_project(slug)
        identity = get_object_or_404(self.get_queryset(), project=project, pk=pk)
        code = external_identity_confirmation_code(
            identity=identity, requester=acting_user(request), context=audit_context(request)
        )
        where = "a comment on a pull request of the project's repository" if identity.provider == "github" else "Slack"
        body = {
            "code": code,
            "expires_at": identity.confirmation_expires_at,
            "instructions": f"Send `/schemagate confirm {code}` from your {identity.provider} account, as {where}.",
        }
        return Response(IdentityConfirmationSerializer(body).data, status=status.HTTP_201_CREATED)

    @extend_schema(operation_id="projects_identities_destroy", tags=["integrations"], responses={204: None, **ERRORS})
    def destroy(self, request: Request, slug: str, pk: str) -> Response:
        project = self.managed_project(slug)
        identity = get_object_or_404(self.get_queryset(), project=project, pk=pk)
        external_identity_delete(identity=identity, context=audit_context(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebhookSubscriptionViewSet(ProjectSettingsViewSet):
    write_permissions = {"create": MANAGE, "destroy": MANAGE}
    queryset = WebhookSubscription.objects.select_related("project")
    serializer_class = WebhookSubscriptionSerializer

    @extend_schema(
        operation_id="projects_webhooks_list",
        tags=["webhooks"],
        responses={200: WebhookSubscriptionSerializer(many=True), **ERRORS},
    )
    def list(self, request: Request, slug: str) -> Response:
        project = self.managed_project(slug)
        return Response(WebhookSubscriptionSerializer(self.get_queryset().filter(project=project), many=True).data)

    @extend_schema(
        operation_id="projects_webhooks_create",
        tags=["webhooks"],
        request=WebhookSubscriptionCreateSerializer,
        responses={201: WebhookSubscriptionIssuedSerializer, **ERRORS},
        description="Subscribe a URL to events. Deliveries are signed per Standard Webhooks (`webhook-id`, "
        "`webhook-timestamp`, `webhook-signature`) with the returned `whsec_` secret, shown only here. "
        "URLs on private, loopback or link-local addresses are refused.",
    )
    def create(self, request: Request, slug: str) -> Response:
        project = self.managed_project(slug)
        serializer = WebhookSubscriptionCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        subscription = webhook_subscription_create(
            project=project, creator=acting_user(request), context=audit_context(request), **serializer.validated_data
        )
        # no-store: the signing secret is shown once; neither caches nor idempotency replays keep it.
        return Response(
            WebhookSubscriptionIssuedSerializer(subscription).data,
            status=status.HTTP_201_CREATED,
            headers={"Cache-Control": "no-store"},
        )

    @extend_schema(operation_id="projects_webhooks_destroy", tags=["webhooks"], responses={204: None, **ERRORS})
    def destroy(self, request: Request, slug: str, pk: str) -> Response:
        project = self.managed_project(slug)
        subscription = get_object_or_404(self.get_queryset(), project=project, pk=pk)
        webhook_subscription_delete(subscription=subscription, context=audit_context(request))
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        operation_id="projects_webhooks_deliveries_list",
        tags=["webhooks"],
        responses={200: WebhookDeliverySerializer(many=True), **ERRORS},
        description="The delivery log of a subscription, newest first (at most 100), with every attempt.",
    )
    def deliveries(self, request: Request, slug: str, pk: str) -> Response:
        project = self.managed_project(slug)
        subscription = get_object_or_404(self.get_queryset(), project=project, pk=pk)
        deliveries = (
            WebhookDelivery.objects.filter(subscription=subscription).prefetch_related("attempt_log").order_by("-id")[:100]
        )
        return Response(WebhookDeliverySerializer(deliveries, many=True).data)
