"""Every state-changing action of the API declares the permission it needs, in its viewset."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.urls import URLPattern, URLResolver, get_resolver

from changeapi.api.base import ProjectScopedViewSet

WRITES = {"post", "put", "patch", "delete"}


def _callbacks(patterns: list[Any]) -> Iterator[Any]:
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _callbacks(pattern.url_patterns)
        elif isinstance(pattern, URLPattern):
            yield pattern.callback


def test_every_routed_write_action_declares_its_permission():
    undeclared = []
    for callback in _callbacks(get_resolver().url_patterns):
        viewset = getattr(callback, "cls", None)
        if viewset is None or not issubclass(viewset, ProjectScopedViewSet):
            continue
        for method, action in (getattr(callback, "actions", None) or {}).items():
            if method in WRITES and action not in viewset.write_permissions:
                undeclared.append(f"{viewset.__name__}.{action} ({method.upper()})")

    assert undeclared == []


def test_the_routes_hold_write_actions_at_all():
    actions = [
        action
        for callback in _callbacks(get_resolver().url_patterns)
        if issubclass(getattr(callback, "cls", object), ProjectScopedViewSet)
        for method, action in (getattr(callback, "actions", None) or {}).items()
        if method in WRITES
    ]

    assert len(actions) > 20
