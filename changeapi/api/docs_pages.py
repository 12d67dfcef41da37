"""The service's own documentation pages, served at /docs/<page>.md so report links work anywhere.

Links in Markdown reports and findings point here (under `SCHEMAGATE_PUBLIC_URL`), not at a
repository. Only the pages named in `PAGES` are served, read from the checkout's docs/ folder:
the name never becomes part of a path unless it is one of them.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from changeapi.api.problems import PROBLEM_CONTENT_TYPE, problem

PAGES = frozenset(
    {
        "access-patterns",
        "architecture",
        "benchmarks",
        "bundles",
        "findings",
        "intake",
        "operations",
        "report-example",
        "security",
        "state-machine",
        "table-stats",
    }
)


def docs_page(request: HttpRequest, page: str) -> HttpResponse:
    """One page of docs/ as Markdown; anything else is a problem+json 404 (or 405)."""
    if request.method not in ("GET", "HEAD"):
        body = problem(405, "method-not-allowed", "Method not allowed", f'Method "{request.method}" not allowed.')
        response: HttpResponse = JsonResponse(body, status=405, content_type=PROBLEM_CONTENT_TYPE)
        response["Allow"] = "GET, HEAD"
        return response
    path = settings.BASE_DIR / "docs" / f"{page}.md"
    if page not in PAGES or not path.is_file():
        body = problem(404, "not-found", "Not found", f"No documentation page {page[:100]!r}.")
        return JsonResponse(body, status=404, content_type=PROBLEM_CONTENT_TYPE)
    return HttpResponse(path.read_bytes(), content_type="text/markdown; charset=utf-8")
