"""Request body size limit, refused before anything reads the body."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from changeapi.api.problems import PROBLEM_CONTENT_TYPE, problem


class BodySizeLimitMiddleware:
    """413 problem+json when Content-Length exceeds SCHEMAGATE_MAX_BODY_BYTES.

    Django would raise only when the body is read, deep inside a parser; refusing here keeps
    the error clear and the work zero. Bodies without a length are bounded by Django itself.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if limit is not None and length > limit:
            body = problem(
                413,
                "limit-exceeded",
                "A limit was exceeded",
                f"the request body is {length} bytes; the limit is {limit} bytes",
                limit={"name": "SCHEMAGATE_MAX_BODY_BYTES", "value": limit},
            )
            return JsonResponse(body, status=413, content_type=PROBLEM_CONTENT_TYPE)
        return self.get_response(request)
