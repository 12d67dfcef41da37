"""Cursor pagination: stable pages while rows are being added, constant cost per page."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import models
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import Cursor, CursorPagination
from rest_framework.request import Request

INVALID_CURSOR = "invalid cursor: use the `next` or `previous` link of a page as it was given"


class IdCursorPagination(CursorPagination):
    """Pages by descending id; a cursor the client altered is a 400 pointing at `cursor`.

    DRF decodes the cursor's envelope but hands its position to the query as it is: a position
    that is no id of this model would fail in the database instead.
    """

    ordering = "-id"
    page_size_query_param = "page_size"
    max_page_size = 200
    position_field: models.Field | None = None

    def paginate_queryset(self, queryset: Any, request: Request, view: Any = None) -> list[Any] | None:
        ordering = self.get_ordering(request, queryset, view)
        self.position_field = queryset.model._meta.get_field(ordering[0].lstrip("-"))
        return super().paginate_queryset(queryset, request, view)

    def decode_cursor(self, request: Request) -> Cursor | None:
        try:
            cursor = super().decode_cursor(request)
        except NotFound as exc:
            raise ValidationError({self.cursor_query_param: [INVALID_CURSOR]}) from exc
        if cursor is not None and cursor.position is not None and not self._is_position(cursor.position):
            raise ValidationError({self.cursor_query_param: [INVALID_CURSOR]})
        return cursor

    def _is_position(self, position: object) -> bool:
        """Whether `position` is a value of the ordering field (in range, for an integer)."""
        if self.position_field is None:
            return False
        try:
            self.position_field.run_validators(self.position_field.to_python(position))
        except (DjangoValidationError, TypeError, ValueError):
            return False
        return True
