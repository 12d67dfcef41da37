"""Every route answers a wrong method or media type with problem+json whose title is filled in."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

pytestmark = pytest.mark.django_db(transaction=True)

METHODS = ("get", "post", "put", "patch", "delete")
PARAMETER = re.compile(r"<(?:(\w+):)?(\w+)>")


def _routes(patterns: list[Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _routes(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern), pattern.callback


def _api_routes() -> list[tuple[str, set[str]]]:
    """Each API route as a concrete path, with the methods it serves."""
    routes = []
    for route, callback in _routes(get_resolver().url_patterns):
        # The sign-in pages are HTML forms for people, not API resources.
        if not route.startswith("api/v1/") or route.startswith("api/v1/auth/") or "(?P" in route or "^" in route:
            continue
        path = "/" + PARAMETER.sub(lambda m: "1" if m.group(1) == "int" else "shop", route)
        actions = getattr(callback, "actions", None)
        view = getattr(callback, "cls", None) or getattr(callback, "view_class", None)
        if actions:
            served = set(actions)
        elif view is not None:
            served = {m for m in METHODS if hasattr(view, m)}
        else:
            continue
        routes.append((path, served))
    return routes


def _assert_problem(response: Any) -> None:
    assert response["Content-Type"] == "application/problem+json", (response.request["PATH_INFO"], response.status_code)
    assert response.content.startswith(b"{"), (response.request["PATH_INFO"], response.content[:120])
    title = response.json()["title"]
    assert "{" not in title, title


def test_a_method_a_route_does_not_serve_is_a_405_problem_with_a_filled_title(project_with_baseline):
    api = project_with_baseline["api"]
    checked = 0
    for path, served in _api_routes():
        for method in set(METHODS) - served - {"get"}:
            response = getattr(api, method)(path)
            if response.status_code == 405:
                _assert_problem(response)
                checked += 1

    assert checked > 30


def test_a_body_of_a_media_type_no_route_reads_is_a_415_problem_with_a_filled_title(project_with_baseline):
    api = project_with_baseline["api"]
    refused = 0
    for path, served in _api_routes():
        for method in served & {"post", "put", "patch"}:
            response = getattr(api, method)(path, "<x/>", content_type="application/xml")
            if response.status_code >= 400:
                _assert_problem(response)
            refused += response.status_code == 415

    assert refused > 5
