"""The audit trail is append-only at the database level."""

from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.db.utils import DatabaseError

from changeapi.models import AuditEvent

pytestmark = pytest.mark.django_db


def _event() -> AuditEvent:
    return AuditEvent.objects.create(action="test.event", target_type="test", target_id="1")


def test_update_of_an_audit_event_is_refused_by_the_database():
    event = _event()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("UPDATE approvals_auditevent SET action = 'rewritten' WHERE id = %s", [event.pk])
    assert AuditEvent.objects.get(pk=event.pk).action == "test.event"


def test_delete_of_an_audit_event_is_refused_by_the_database():
    event = _event()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).delete()
    assert AuditEvent.objects.filter(pk=event.pk).exists()
