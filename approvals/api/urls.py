"""Routes of reviews, bundles, audit events and the signing key under /api/v1/."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from approvals.api import views

router = SimpleRouter()
router.register("bundles", views.ReleaseBundleViewSet, basename="bundle")
router.register("audit-events", views.AuditEventViewSet, basename="audit-event")

urlpatterns = [
    path(
        "change-requests/<int:pk>/reviews/",
        views.ChangeRequestReviewsViewSet.as_view({"get": "list", "post": "create"}),
        name="change-request-reviews",
    ),
    path("signing-key/", views.SigningKeyView.as_view(), name="signing-key"),
    *router.urls,
]
