"""Routes of the changeapi endpoints under /api/v1/."""

from rest_framework.routers import SimpleRouter

from changeapi.api import views

router = SimpleRouter()
router.register("projects", views.ProjectViewSet, basename="project")
router.register("baselines", views.BaselineViewSet, basename="baseline")
router.register("change-requests", views.ChangeRequestViewSet, basename="change-request")
router.register("revisions", views.RevisionViewSet, basename="revision")
router.register("dry-runs", views.DryRunViewSet, basename="dry-run")

urlpatterns = router.urls
