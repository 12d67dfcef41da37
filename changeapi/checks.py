"""System checks of the service's own settings, run by `manage.py check` (CI, deploys)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks

from changeapi.shadow.servers import ShadowServerMisconfigured, shadow_server


def shadow_servers_check(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Each SHADOW_SERVERS entry names a server of a known engine, so a typo is found at deploy,
    not by the first dry-run of a project of that engine."""
    found: list[checks.CheckMessage] = []
    for position, value in enumerate(settings.SHADOW_SERVERS):
        if not value.strip():
            continue
        try:
            shadow_server(value)
        except ShadowServerMisconfigured as exc:
            found.append(checks.Error(f"{exc} (entry {position + 1})", id="schemagate.E001"))
    return found
