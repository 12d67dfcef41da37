"""The error every shadow server raises when it cannot be reached or refuses work, of any engine."""

from __future__ import annotations


class ShadowServerUnavailable(Exception):
    """The shadow server cannot be reached or refuses work; the dry-run fails with this reason."""


class ShadowServerMisconfigured(ShadowServerUnavailable):
    """A SHADOW_SERVERS entry that names no shadow server Schemagate knows.

    `manage.py check` reports it at start-up; at run time it fails the work that needed a
    server, like an unreachable one, never the request that queued it.
    """


def first_line(exc: BaseException) -> str:
    """The first line of an error, for messages that name a server, not its URL."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
