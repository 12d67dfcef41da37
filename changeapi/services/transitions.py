"""Moving a change request from one status to another, with its audit event, in one place."""

from __future__ import annotations

from typing import Any

from changeapi.audit import AuditContext, audit_record
from changeapi.models import ChangeRequest


def change_request_move(
    *,
    change_request: ChangeRequest,
    status: str,
    action: str,
    context: AuditContext,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> ChangeRequest:
    """Set the status and record `action` with the status before and after (plus any extras).

    Callers hold the change request's row lock and have checked that the move is allowed:
    which moves are allowed differs per service, what a move writes does not.
    """
    previous = change_request.status
    change_request.status = status
    change_request.save(update_fields=["status", "updated_at"])
    audit_record(
        context=context,
        action=action,
        target=change_request,
        project=change_request.project,
        before={"status": previous, **(before or {})},
        after={"status": status, **(after or {})},
    )
    return change_request
