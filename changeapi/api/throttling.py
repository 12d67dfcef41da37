"""Rate limits per identity (user, or the service account of an API key), from settings.

A refused request remembers which limit refused it, so the 429 problem names the setting.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle


class IdentityRateThrottle(SimpleRateThrottle):
    """Every request of one identity counts against SCHEMAGATE_RATE_LIMIT."""

    scope = "identity"
    setting = "SCHEMAGATE_RATE_LIMIT"

    def get_rate(self) -> str | None:
        return getattr(settings, self.setting) or None

    def applies_to(self, request: Request, view: Any) -> bool:
        return True

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        if not self.applies_to(request, view):
            return None
        user = request.user
        ident = f"user:{user.pk}" if user is not None and user.is_authenticated else f"ip:{self.get_ident(request)}"
        return f"throttle:{self.scope}:{ident}"

    def allow_request(self, request: Request, view: Any) -> bool:
        allowed = super().allow_request(request, view)
        if not allowed:
            request.throttle_limit = {"name": self.setting, "value": self.get_rate()}  # type: ignore[attr-defined]
        return allowed


class SubmitRateThrottle(IdentityRateThrottle):
    """Submissions (new change requests and revisions) start dry-runs: a tighter budget."""

    scope = "submit"
    setting = "SCHEMAGATE_SUBMIT_RATE_LIMIT"

    def applies_to(self, request: Request, view: Any) -> bool:
        return (
            request.method == "POST"
            and getattr(view, "action", None) in {"create", "create_revision"}
            and getattr(view, "basename", None) == "change-request"
        )
