"""Domain errors raised by services; the API's exception handler renders each as problem+json."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """A refused request: `status` is the HTTP status it maps to, `code` a stable slug."""

    status = 400
    code = "invalid-request"
    title = "Invalid request"

    def __init__(self, detail: str, *, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []


class NotFound(DomainError):
    status = 404
    code = "not-found"
    title = "Not found"


class PermissionDenied(DomainError):
    status = 403
    code = "permission-denied"
    title = "Permission denied"


class InvalidState(DomainError):
    """The object is not in a state that allows this transition."""

    status = 409
    code = "invalid-state"
    title = "Not allowed in the current state"


class StaleRevision(DomainError):
    status = 412
    code = "stale-revision"
    title = "The revision is no longer the latest"


class PreconditionRequired(DomainError):
    status = 428
    code = "precondition-required"
    title = "If-Match is required"


class RenderingUnavailable(DomainError):
    """A rendering this server cannot make (a system library it needs is missing)."""

    status = 503
    code = "rendering-unavailable"
    title = "This rendering is not available on this server"


class LimitExceeded(DomainError):
    """A configured limit was hit; `setting` names it so the client knows what to change."""

    status = 413
    code = "limit-exceeded"
    title = "A limit was exceeded"

    def __init__(self, detail: str, *, setting: str, value: int | str) -> None:
        super().__init__(detail)
        self.setting = setting
        self.value = value
