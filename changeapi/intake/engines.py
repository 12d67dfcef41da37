"""What a project's database engine can run: PostgreSQL-only schema vocabulary is refused at
intake for a MySQL/MariaDB or SQLite project, where it is named, instead of failing on a shadow.

Django keeps everything PostgreSQL-only in `django.contrib.postgres` (ArrayField, HStoreField,
GinIndex, ExclusionConstraint, AddIndexConcurrently, CreateExtension, ...): its fields and
indexes make SQL no other backend has, and its concurrent index operations pass an argument
only the PostgreSQL schema editor takes. Django itself skips CreateExtension and the collation
operations on other vendors; they are refused too, because a migration that needs an extension
was written for PostgreSQL and its next operations use what the extension provides.
"""

from __future__ import annotations

from types import FunctionType
from typing import Any

POSTGRESQL = "postgresql"
MYSQL = "mysql"
SQLITE = "sqlite"
ENGINES = (POSTGRESQL, MYSQL, SQLITE)
ENGINE_NAMES = {POSTGRESQL: "PostgreSQL", MYSQL: "MySQL/MariaDB", SQLITE: "SQLite"}

_POSTGRESQL_PACKAGE = "django.contrib.postgres"


def postgresql_only_path(value: Any) -> str | None:
    """The dotted path of `value` when it is a class or function of `django.contrib.postgres`,
    else None. Instances are found where their class is named, so each use is refused once."""
    if not isinstance(value, (type, FunctionType)):
        return None
    module = getattr(value, "__module__", None)
    if not isinstance(module, str):
        return None
    if module != _POSTGRESQL_PACKAGE and not module.startswith(f"{_POSTGRESQL_PACKAGE}."):
        return None
    return f"{module}.{value.__qualname__}"


def runs_postgresql_only(engine: str) -> bool:
    """Whether PostgreSQL-only vocabulary is accepted for a project of `engine`."""
    return engine == POSTGRESQL


def postgresql_only_message(spelled: str, path: str, engine: str) -> str:
    """The refusal of one use of PostgreSQL-only vocabulary by a project of another engine."""
    shown = spelled if spelled == path else f"{spelled} ({path})"
    return (
        f"{shown} is PostgreSQL-only, and this project's engine is {ENGINE_NAMES.get(engine, engine)}: "
        "Django cannot run it there. Use a form the engine supports, or a PostgreSQL project."
    )
