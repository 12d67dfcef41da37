"""Routes of the changeapi endpoints under /api/v1/."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from changeapi.api import integrations, views
from changeapi.api.access_patterns import AccessPatternViewSet
from changeapi.api.api_keys import ApiKeyViewSet
from changeapi.api.drift_checks import DriftCheckViewSet
from changeapi.api.renderers import MarkdownRenderer, PNGRenderer, SVGRenderer
from changeapi.api.schema_snapshots import SchemaSnapshotViewSet
from changeapi.api.stats import TableStatsViewSet

router = SimpleRouter()
router.register("projects", views.ProjectViewSet, basename="project")
router.register("baselines", views.BaselineViewSet, basename="baseline")
router.register("change-requests", views.ChangeRequestViewSet, basename="change-request")
router.register("revisions", views.RevisionViewSet, basename="revision")
router.register("dry-runs", views.DryRunViewSet, basename="dry-run")
router.register("table-stats", TableStatsViewSet, basename="table-stats")

api_keys = ApiKeyViewSet.as_view({"get": "list", "post": "create"})
identities = integrations.ExternalIdentityViewSet.as_view({"get": "list", "post": "create"})
webhooks = integrations.WebhookSubscriptionViewSet.as_view({"get": "list", "post": "create"})
project_settings = [
    path("projects/<slug:slug>/api-keys/", api_keys, name="project-api-keys"),
    path("projects/<slug:slug>/api-keys/<int:pk>/", ApiKeyViewSet.as_view({"get": "retrieve"}), name="project-api-key"),
    path(
        "projects/<slug:slug>/api-keys/<int:pk>/revoke/", ApiKeyViewSet.as_view({"post": "revoke"}), name="project-api-key-revoke"
    ),
    path("projects/<slug:slug>/identities/", identities, name="project-identities"),
    path(
        "projects/<slug:slug>/identities/<int:pk>/",
        integrations.ExternalIdentityViewSet.as_view({"delete": "destroy"}),
        name="project-identity",
    ),
    path(
        "projects/<slug:slug>/identities/<int:pk>/confirmation-code/",
        integrations.ExternalIdentityViewSet.as_view({"post": "confirmation_code"}),
        name="project-identity-confirmation-code",
    ),
    path("projects/<slug:slug>/webhooks/", webhooks, name="project-webhooks"),
    path(
        "projects/<slug:slug>/webhooks/<int:pk>/",
        integrations.WebhookSubscriptionViewSet.as_view({"delete": "destroy"}),
        name="project-webhook",
    ),
    path(
        "projects/<slug:slug>/webhooks/<int:pk>/deliveries/",
        integrations.WebhookSubscriptionViewSet.as_view({"get": "deliveries"}),
        name="project-webhook-deliveries",
    ),
]

access_patterns = [
    path(
        "projects/<slug:slug>/access-patterns/",
        AccessPatternViewSet.as_view({"get": "list", "post": "create"}),
        name="project-access-patterns",
    ),
    path(
        "projects/<slug:slug>/access-patterns/<int:pk>/",
        AccessPatternViewSet.as_view({"get": "retrieve", "patch": "partial_update", "delete": "destroy"}),
        name="project-access-pattern",
    ),
]

schema_snapshots = [
    path(
        "projects/<slug:slug>/schema-snapshots/",
        SchemaSnapshotViewSet.as_view({"get": "list", "post": "create"}),
        name="project-schema-snapshots",
    ),
    path(
        "projects/<slug:slug>/schema-snapshots/<int:pk>/",
        SchemaSnapshotViewSet.as_view({"get": "retrieve"}),
        name="project-schema-snapshot",
    ),
    path(
        "projects/<slug:slug>/schema-snapshots/<int:pk>/legacy-baseline/",
        SchemaSnapshotViewSet.as_view({"post": "legacy_baseline"}),
        name="project-schema-snapshot-legacy-baseline",
    ),
    path("schema-snapshots/<int:pk>/drift/", SchemaSnapshotViewSet.as_view({"get": "drift"}), name="schema-snapshot-drift"),
    path("projects/<slug:slug>/drift-checks/", DriftCheckViewSet.as_view({"get": "list"}), name="project-drift-checks"),
    path(
        "projects/<slug:slug>/drift-checks/<int:pk>/", DriftCheckViewSet.as_view({"get": "retrieve"}), name="project-drift-check"
    ),
]

# The renderings are files: no trailing slash, so `report.md`, `report.svg` and `report.png` keep their suffix.
renderings = [
    path(
        "dry-runs/<int:pk>/report.md",
        views.DryRunViewSet.as_view({"get": "markdown"}, renderer_classes=[MarkdownRenderer]),
        name="dry-run-report-md",
    ),
    path(
        "dry-runs/<int:pk>/report.svg",
        views.DryRunViewSet.as_view({"get": "timeline"}, renderer_classes=[SVGRenderer]),
        name="dry-run-report-svg",
    ),
    path(
        "dry-runs/<int:pk>/report.png",
        views.DryRunViewSet.as_view({"get": "timeline_png"}, renderer_classes=[PNGRenderer]),
        name="dry-run-report-png",
    ),
]

urlpatterns = [*project_settings, *access_patterns, *schema_snapshots, *renderings, *router.urls]
