"""Every error as RFC 9457 problem+json: type, title, status, detail, and where it is."""

from __future__ import annotations

import re
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.http import Http404, JsonResponse
from django.views.debug import SafeExceptionReporterFilter
from rest_framework import exceptions
from rest_framework.renderers import BrowsableAPIRenderer, JSONRenderer
from rest_framework.response import Response
from rest_framework.views import exception_handler

from changeapi.errors import DomainError, LimitExceeded
from changeapi.intake.errors import IntakeError, IntakeErrors, IntakeLimitExceeded

PROBLEM_CONTENT_TYPE = "application/problem+json"
# A problem's title is the same for every occurrence of its type (RFC 9457); DRF's own texts for
# these hold placeholders ("{method}") that only the detail fills in.
TITLES: dict[type[Exception], str] = {
    exceptions.MethodNotAllowed: "Method not allowed",
    exceptions.UnsupportedMediaType: "Unsupported media type",
    exceptions.NotAcceptable: "Not acceptable",
}
TYPE_BASE = "https://schemagate.dev/problems/"


def problem(status: int, code: str, title: str, detail: str, **extra: Any) -> dict[str, Any]:
    body = {"type": TYPE_BASE + code, "title": title, "status": status, "detail": detail}
    body.update({k: v for k, v in extra.items() if v not in (None, [], {})})
    return body


def _flatten(detail: Any, pointer: str = "") -> list[dict[str, str]]:
    """DRF's nested error dict -> a flat list of {pointer, detail} (JSON pointers)."""
    if isinstance(detail, dict):
        out: list[dict[str, str]] = []
        for key, value in detail.items():
            sub = pointer if key == "non_field_errors" else f"{pointer}/{key}"
            out += _flatten(value, sub)
        return out
    if isinstance(detail, list):
        if all(isinstance(item, (str, exceptions.ErrorDetail)) for item in detail):
            return [{"pointer": pointer or "/", "detail": str(item)} for item in detail]
        out = []
        for index, item in enumerate(detail):
            out += _flatten(item, f"{pointer}/{index}")
        return out
    return [{"pointer": pointer or "/", "detail": str(detail)}]


def _problem_media_type(context: dict[str, Any]) -> str | None:
    """problem+json, unless a browser asked for the browsable API: it then gets the problem as a
    page (the renderer's own text/html), not HTML labelled as JSON. A view that renders another
    format (the schema's YAML) still answers its errors in JSON."""
    request = context.get("request")
    renderer = getattr(request, "accepted_renderer", None)
    if isinstance(renderer, BrowsableAPIRenderer):
        return None
    if request is not None and renderer is not None and not isinstance(renderer, JSONRenderer):
        request.accepted_renderer = JSONRenderer()
        request.accepted_media_type = PROBLEM_CONTENT_TYPE
    return PROBLEM_CONTENT_TYPE


def problem_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, IntakeLimitExceeded):
        location = exc.location.as_dict()
        body = problem(
            exc.status,
            "limit-exceeded",
            "A limit was exceeded",
            exc.message,
            limit={"name": exc.setting, "value": exc.value},
            errors=[{"detail": exc.message, **location}],
        )
        return Response(body, status=exc.status, content_type=_problem_media_type(context))
    if isinstance(exc, LimitExceeded):
        named = {"name": exc.setting, "value": exc.value}
        body = problem(exc.status, exc.code, exc.title, exc.detail, limit=named, errors=exc.errors)
        return Response(body, status=exc.status, content_type=_problem_media_type(context))
    if isinstance(exc, RequestDataTooBig):
        body = problem(
            413,
            "limit-exceeded",
            "A limit was exceeded",
            "the request body is too large",
            limit={"name": "SCHEMAGATE_MAX_BODY_BYTES", "value": settings.DATA_UPLOAD_MAX_MEMORY_SIZE},
        )
        return Response(body, status=413, content_type=_problem_media_type(context))
    if isinstance(exc, IntakeErrors):
        body = problem(
            400,
            "invalid-submission",
            "The submission is refused",
            exc.message,
            errors=[p.as_dict() for p in exc.problems],
            total_errors=exc.total,
        )
        return Response(body, status=400, content_type=_problem_media_type(context))
    if isinstance(exc, IntakeError):
        location = exc.location.as_dict()
        body = problem(
            400,
            "invalid-submission",
            "The submission is refused",
            exc.message,
            errors=[{"detail": exc.message, **location}],
            suggestion=exc.suggestion,
        )
        return Response(body, status=400, content_type=_problem_media_type(context))
    if isinstance(exc, DomainError):
        body = problem(exc.status, exc.code, exc.title, exc.detail, errors=exc.errors)
        return Response(body, status=exc.status, content_type=_problem_media_type(context))
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        errors = _flatten(exc.detail)
        detail = "; ".join(f"{e['pointer']}: {e['detail']}" for e in errors[:5])
        body = problem(400, "validation-error", "The request is not valid", detail, errors=errors)
    else:
        detail = str(exc.detail if isinstance(exc, exceptions.APIException) else exc)
        code = getattr(exc, "default_code", "error").replace("_", "-")
        title = TITLES.get(type(exc), str(getattr(exc, "default_detail", "Error")))
        limit = getattr(context.get("request"), "throttle_limit", None) if isinstance(exc, exceptions.Throttled) else None
        body = problem(response.status_code, code, title, detail, limit=limit)
    response.data = body
    response.content_type = _problem_media_type(context)
    return response


def not_found_view(request: Any, exception: Exception | None = None) -> JsonResponse:
    return JsonResponse(
        problem(404, "not-found", "Not found", "No such resource."), status=404, content_type=PROBLEM_CONTENT_TYPE
    )


def server_error_view(request: Any) -> JsonResponse:
    return JsonResponse(
        problem(500, "server-error", "Internal server error", "The error was logged."),
        status=500,
        content_type=PROBLEM_CONTENT_TYPE,
    )


_URL_PASSWORD = re.compile(r"(?P<head>\b[a-z][a-z0-9+.-]*://[^:/@\s]*:)[^@/\s]+@", re.IGNORECASE)


class SecretRedactingReporterFilter(SafeExceptionReporterFilter):
    """Django's filter for error reports, also hiding the password inside any URL-valued setting.

    SHADOW_SERVERS, CELERY_BROKER_URL and CACHES carry credentials in URLs whose setting names
    Django's filter does not recognise; the rest of each URL stays visible for diagnosis.
    """

    def cleanse_setting(self, key: Any, value: Any) -> Any:
        value = super().cleanse_setting(key, value)
        if isinstance(value, str):
            return _URL_PASSWORD.sub(rf"\g<head>{self.cleansed_substitute}@", value)
        return value
