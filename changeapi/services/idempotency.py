"""Housekeeping of stored Idempotency-Key answers (the middleware in `api.idempotency` writes them)."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from changeapi.models import IdempotencyRecord


def idempotency_records_purge(*, now: dt.datetime | None = None) -> int:
    """Delete answers past their retention; a key may then be used again. Returns how many."""
    return IdempotencyRecord.objects.filter(expires_at__lt=now or timezone.now()).delete()[0]
