"""`Idempotency-Key` on POST: a retried request gets the first response instead of acting twice.

Per the IETF draft: the same key with the same request replays the stored response (status,
body, Location); the same key with another request is a 422; a key whose first request is
still being processed is a 409. Keys are scoped per caller (a user, or an API key's service
account, which is one per key) and kept in PostgreSQL until they expire.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Callable, Sequence
from typing import Any, cast

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import APIException
from rest_framework.request import Request
from rest_framework.settings import api_settings

from changeapi.api.problems import PROBLEM_CONTENT_TYPE, problem
from changeapi.models import IdempotencyRecord

HEADER = "Idempotency-Key"
KEY_PATTERN = re.compile(r"^[\x21-\x7e]{1,255}$")
REPLAYED_HEADERS = ("Content-Type", "Location", "ETag", "Warning")
# Responses that are a property of the request itself are kept; refusals that may change
# (401, 403, 409, 429, 5xx) release the key so the client can retry.
KEPT_ERRORS = frozenset({400, 404, 410, 413, 422})


def _owner(request: HttpRequest) -> str | None:
    """Who the request authenticates as, with the API's own authenticators; None if nobody."""
    # api_settings imports the configured paths; the stubs type them as the strings in settings.
    authentication_classes = cast("Sequence[type[BaseAuthentication]]", api_settings.DEFAULT_AUTHENTICATION_CLASSES)
    drf_request = Request(request, authenticators=[auth() for auth in authentication_classes])
    try:
        user = drf_request.user
    except APIException:
        return None
    if user is None or not user.is_authenticated:
        return None
    return f"user:{user.pk}"


def _fingerprint(request: HttpRequest) -> str:
    digest = hashlib.sha256()
    for part in (request.method or "", request.get_full_path(), request.content_type or ""):
        digest.update(part.encode() + b"\0")
    digest.update(request.body)
    return digest.hexdigest()


def _problem(status: int, code: str, title: str, detail: str) -> JsonResponse:
    return JsonResponse(problem(status, code, title, detail), status=status, content_type=PROBLEM_CONTENT_TYPE)


def idempotency_begin(*, owner: str, key: str, method: str, path: str, fingerprint: str) -> tuple[int, IdempotencyRecord | None]:
    """Claim a key: (record id, None) when this request is the one to run it, or (record id,
    the earlier record) when that record decides the answer."""
    now = timezone.now()
    fresh: dict[str, Any] = {
        "method": method,
        "path": path[:2000],
        "fingerprint": fingerprint,
        "response_status": None,
        "response_headers": {},
        "response_body": None,
        "completed_at": None,
        "expires_at": now + dt.timedelta(seconds=settings.SCHEMAGATE_IDEMPOTENCY_TTL_SECONDS),
    }
    with transaction.atomic():
        record, created = IdempotencyRecord.objects.select_for_update().get_or_create(owner=owner, key=key, defaults=fresh)
        if created:
            return record.pk, None
        abandoned = record.completed_at is None and record.created_at < now - dt.timedelta(
            seconds=settings.SCHEMAGATE_IDEMPOTENCY_IN_FLIGHT_SECONDS
        )
        if record.expires_at <= now or abandoned:
            IdempotencyRecord.objects.filter(pk=record.pk).update(created_at=now, **fresh)
            return record.pk, None
        return record.pk, record


def idempotency_complete(*, record_id: int, response: HttpResponse) -> None:
    """Remember the response for replays; a one-time secret (a `no-store` response, such as
    a new API key) is never stored: its replay is a 409 that points at what was created."""
    headers = {name: response[name] for name in REPLAYED_HEADERS if response.has_header(name)}
    status, body = response.status_code, response.content
    if "no-store" in response.get("Cache-Control", ""):
        status = 409
        body = json.dumps(
            problem(
                409,
                "issued-once",
                "Already issued",
                "this request already created a secret that is shown only once; revoke it and issue another",
            )
        ).encode()
        headers["Content-Type"] = PROBLEM_CONTENT_TYPE
    IdempotencyRecord.objects.filter(pk=record_id, completed_at__isnull=True).update(
        response_status=status,
        response_headers=headers,
        response_body=body,
        completed_at=timezone.now(),
    )


def idempotency_release(*, record_id: int) -> None:
    IdempotencyRecord.objects.filter(pk=record_id, completed_at__isnull=True).delete()


def _replay(record: IdempotencyRecord) -> HttpResponse:
    response = HttpResponse(bytes(record.response_body or b""), status=record.response_status)
    for name, value in record.response_headers.items():
        response[name] = value
    response["Idempotent-Replayed"] = "true"
    return response


class IdempotencyMiddleware:
    """Applies to every POST that carries the header and is made by an authenticated caller."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        key = request.headers.get(HEADER)
        if request.method != "POST" or key is None:
            return self.get_response(request)
        if not KEY_PATTERN.match(key):
            return _problem(400, "invalid-idempotency-key", "Invalid Idempotency-Key", "use 1 to 255 visible ASCII characters")
        owner = _owner(request)
        if owner is None:
            return self.get_response(request)  # the view answers 401; nothing to remember
        fingerprint = _fingerprint(request)
        record_id, earlier = idempotency_begin(
            owner=owner, key=key, method="POST", path=request.get_full_path(), fingerprint=fingerprint
        )
        if earlier is not None:
            return self._answer_for(earlier, fingerprint)
        try:
            response = self.get_response(request)
        except BaseException:
            idempotency_release(record_id=record_id)
            raise
        if getattr(response, "streaming", False) or not (
            200 <= response.status_code < 300 or response.status_code in KEPT_ERRORS
        ):
            idempotency_release(record_id=record_id)
        else:
            idempotency_complete(record_id=record_id, response=response)
        return response

    @staticmethod
    def _answer_for(record: IdempotencyRecord, fingerprint: str) -> HttpResponse:
        if record.completed_at is None:
            return _problem(
                409,
                "idempotency-key-in-use",
                "A request with this Idempotency-Key is in progress",
                "the first request with this key has not finished; retry later",
            )
        if record.fingerprint != fingerprint:
            return _problem(
                422,
                "idempotency-key-reused",
                "Idempotency-Key reused with another request",
                "this key was used for a different request; use a new key for a new request",
            )
        return _replay(record)


PARAMETER = {
    "in": "header",
    "name": HEADER,
    "required": False,
    "schema": {"type": "string", "maxLength": 255},
    "description": "Makes a retried POST safe: the same key and body replay the first response; "
    "another body with the same key is a 422; while the first is in progress, a 409.",
}
UNSIGNED_PATHS = ("/api/v1/integrations/github/", "/api/v1/integrations/slack/")


def idempotency_schema_hook(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """drf-spectacular postprocessing: document the header and its 409/422 on every POST."""
    for path, operations in result.get("paths", {}).items():
        post = operations.get("post")
        if post is None or path.startswith(UNSIGNED_PATHS):
            continue
        post.setdefault("parameters", []).append(dict(PARAMETER))
        responses = post.setdefault("responses", {})
        template = responses.get("400") or {"description": "Problem details (RFC 9457), as application/problem+json."}
        for code in ("409", "422"):
            responses.setdefault(code, dict(template))
    return result
