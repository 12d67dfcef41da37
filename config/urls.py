"""Top-level routes: the API under /api/v1/, its schema and docs, admin, and health."""

from django.contrib import admin
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView


def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness and the service database's readiness."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        database = "ok"
    except Exception:  # noqa: BLE001 - health reports, it does not raise
        database = "unavailable"
    healthy = database == "ok"
    return JsonResponse({"status": "ok" if healthy else "degraded", "database": database}, status=200 if healthy else 503)


urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("api/v1/", include("changeapi.api.urls")),
    path("api/v1/", include("approvals.api.urls")),
    path("api/v1/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/v1/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("admin/", admin.site.urls),
]

handler404 = "changeapi.api.problems.not_found_view"
handler500 = "changeapi.api.problems.server_error_view"
