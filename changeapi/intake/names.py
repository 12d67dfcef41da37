"""The names Django gives apps and migrations, checked before they name anything on disk.

An app label is a Python identifier and a migration name a module name (`0001_initial`); both
become paths inside release bundles, so nothing else (`..`, `/`, NUL) may pass intake.
"""

from __future__ import annotations

import keyword
import re

_APP_LABEL = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_MIGRATION_NAME = re.compile(r"[A-Za-z0-9_]+")
MAX_NAME_LENGTH = 100


def is_app_label(value: object) -> bool:
    """Whether Django could use `value` as an app label (an identifier that is not a keyword)."""
    return (
        isinstance(value, str)
        and len(value) <= MAX_NAME_LENGTH
        and _APP_LABEL.fullmatch(value) is not None
        and not keyword.iskeyword(value)
    )


def is_migration_name(value: object) -> bool:
    """Whether `value` is a migration module name Django's loader would import."""
    return isinstance(value, str) and len(value) <= MAX_NAME_LENGTH and _MIGRATION_NAME.fullmatch(value) is not None
