"""Type names shared by services and views.

`User` is the user model the service runs with (settings keep Django's default
`AUTH_USER_MODEL`), so actors in service signatures match what the user foreign keys hold.
"""

from __future__ import annotations

from django.contrib.auth.models import User

__all__ = ["User"]
