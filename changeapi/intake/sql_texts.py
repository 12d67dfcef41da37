"""The statements texts of a RunSQL, and the refusal of one: shared by each engine's SQL policy."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any


class RefusedSql(ValueError):
    """A statement a migration's SQL may not run on the shadow; the message says which and why."""


_PLACEHOLDER = re.compile(r"%(?:\([A-Za-z_][A-Za-z0-9_]*\))?s")


def sql_texts(sql: Any) -> Iterator[str]:
    """Each SQL text of a RunSQL's `sql` (str, list, (sql, params) tuples), as the server gets it."""
    if isinstance(sql, str):
        yield sql
    elif isinstance(sql, (list, tuple)):
        for item in sql:
            if isinstance(item, str):
                yield item
            elif isinstance(item, (list, tuple)) and item and isinstance(item[0], str):
                # (sql, params): the driver fills %s / %(name)s and turns %% into %.
                yield _PLACEHOLDER.sub("NULL", item[0]).replace("%%", "%")


def shown(statement: str) -> str:
    """A statement as a refusal quotes it: stripped, and cut at 120 characters."""
    statement = statement.strip()
    return statement if len(statement) <= 120 else statement[:117] + "..."
