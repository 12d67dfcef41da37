"""Routes of reviews, approval policies, bundles, audit events and the signing key under /api/v1/."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from approvals.api import integrations, views
from changeapi.api.renderers import MarkdownRenderer

router = SimpleRouter()
router.register("bundles", views.ReleaseBundleViewSet, basename="bundle")
router.register("audit-events", views.AuditEventViewSet, basename="audit-event")
router.register("approval-policies", views.ApprovalPolicyViewSet, basename="approval-policy")

urlpatterns = [
    path(
        "change-requests/<int:pk>/reviews/",
        views.ChangeRequestReviewsViewSet.as_view({"get": "list", "post": "create"}),
        name="change-request-reviews",
    ),
    path(
        "change-requests/<int:pk>/approval/",
        views.ChangeRequestReviewsViewSet.as_view({"get": "approval"}),
        name="change-request-approval",
    ),
    path("signing-key/", views.SigningKeyView.as_view(), name="signing-key"),
    path("bundles/verify/", views.BundleVerifyView.as_view(), name="bundle-verify"),
    # A file: no trailing slash, so the name keeps its suffix (as a dry-run's report.md does).
    path(
        "bundles/<int:pk>/verification.md",
        views.ReleaseBundleViewSet.as_view({"get": "verification_markdown"}, renderer_classes=[MarkdownRenderer]),
        name="bundle-verification-md",
    ),
    path(
        "bundles/<int:pk>/rollout.md",
        views.ReleaseBundleViewSet.as_view({"get": "rollout_markdown"}, renderer_classes=[MarkdownRenderer]),
        name="bundle-rollout-md",
    ),
    path(
        "projects/<slug:slug>/integrations/github/",
        integrations.GitHubIntegrationViewSet.as_view({"get": "retrieve", "put": "update"}),
        name="project-github",
    ),
    path(
        "projects/<slug:slug>/integrations/slack/",
        integrations.SlackIntegrationViewSet.as_view({"get": "retrieve", "put": "update"}),
        name="project-slack",
    ),
    path("integrations/github/<slug:project_slug>/webhook", integrations.GitHubWebhookView.as_view(), name="github-webhook"),
    path("integrations/slack/commands", integrations.SlackCommandView.as_view(), name="slack-commands"),
    path("integrations/slack/interactive", integrations.SlackInteractiveView.as_view(), name="slack-interactive"),
    *router.urls,
]
