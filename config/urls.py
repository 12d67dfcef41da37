"""Top-level routes: the API under /api/v1/, its schema and docs, the docs pages, admin, and health."""

from django.contrib import admin
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from changeapi.api.docs_pages import docs_page
from changeapi.services.shadows import shadow_servers_health


def healthz(request: HttpRequest) -> JsonResponse:
    """Readiness: 503 when the service's own database is down; shadow servers are reported
    (an unavailable one degrades dry-runs, not the API)."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        database = "ok"
    except Exception:  # noqa: BLE001 - health reports, it does not raise
        database = "unavailable"
    shadows = [
        {"server": h.server, "available": h.available, "version": h.version, "shadow_databases": h.shadow_databases}
        for h in shadow_servers_health()
    ]
    status = "ok" if database == "ok" and all(s["available"] for s in shadows) else "degraded"
    return JsonResponse(
        {"status": status, "database": database, "shadow_servers": shadows}, status=200 if database == "ok" else 503
    )


urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("api/v1/", include("changeapi.api.urls")),
    path("api/v1/", include("approvals.api.urls")),
    path("api/v1/auth/", include("rest_framework.urls")),  # session sign-in for the browsable API
    path("api/v1/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/v1/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("docs/<str:page>.md", docs_page, name="docs-page"),  # the pages report links point at
    path("admin/", admin.site.urls),
]

handler404 = "changeapi.api.problems.not_found_view"
handler500 = "changeapi.api.problems.server_error_view"
