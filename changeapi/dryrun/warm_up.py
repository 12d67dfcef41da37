"""Open the tables a change names before its statements are timed.

A clone is a fresh database, and the job's session a fresh backend: the first statement on a
table pays for loading that table's and its indexes' descriptions into the backend's caches
(a few milliseconds, more than a catalog-only ALTER itself takes). Production's backends have
their busy tables cached, so that cost is not the statement's. Opening each named table and
its indexes once, in autocommit before the first migration's transaction, moves it out of the
statements' timings without taking any lock the change holds.
"""

from __future__ import annotations

from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.utils import truncate_name
from django.db.migrations.state import ProjectState

from changeapi.intake.plan import Plan

# Names that do not resolve (a table the change creates, a mapped or unmanaged one) are
# skipped by to_regclass, so the read never fails; pg_relation_size opens each relation.
_WARM_SQL = """
WITH named AS (SELECT to_regclass(quote_ident(name)) AS oid FROM unnest(%s::text[]) AS name)
SELECT count(pg_relation_size(c.oid)) FROM pg_class c
WHERE c.oid IN (SELECT oid FROM named)
   OR c.oid IN (SELECT indexrelid FROM pg_index WHERE indrelid IN (SELECT oid FROM named))
"""


def plan_tables(plan: Plan, state: ProjectState, *, max_name_length: int | None) -> list[str]:
    """The tables of the models `plan`'s operations name that exist in `state`, in order."""
    tables: dict[str, None] = {}
    for migration in plan.migrations:
        for operation in migration.operations:
            model = getattr(operation, "model_name_lower", None) or getattr(operation, "name_lower", None)
            found = state.models.get((migration.app_label, model)) if isinstance(model, str) else None
            if found is None:
                continue
            table = found.options.get("db_table") or f"{migration.app_label}_{model}"
            tables[truncate_name(table, max_name_length)] = None
    return list(tables)


def warm_tables(connection: BaseDatabaseWrapper, tables: list[str]) -> None:
    """Open `tables` and their indexes once, in one round trip (nothing when there are none)."""
    if not tables:
        return
    with connection.cursor() as cursor:
        cursor.execute(_WARM_SQL, [tables])
