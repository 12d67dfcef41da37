"""A dry-run on production's schema: saying which object of the baseline's models production lacks.

On a template restored from a schema snapshot the change is still made from the baseline's
Django state, so a statement can name a table or column the migrations have and production
does not. PostgreSQL's message names a relation; the report names the object the models
expect and the snapshot lacks, so the reader knows it is production, not the change, that
differs.
"""

from __future__ import annotations

import dataclasses
import re

from django.db.migrations.state import ProjectState

from changeapi.dryrun.contract import Report
from changeapi.dryrun.drift import Catalog

# A name as Django's PostgreSQL schema editor writes it: in double quotes.
_QUOTED = re.compile(r'"([^"]+)"')
# undefined_table, undefined_column
_UNDEFINED = frozenset({"42P01", "42703"})


def _columns(state: ProjectState, app_label: str, model_name: str) -> dict[str, str]:
    """The columns of a model state by field name (a relation's is `<name>_id`); none for many-to-many."""
    columns = {}
    for name, field in state.models[app_label, model_name].fields.items():
        if field.many_to_many:
            continue
        attname = f"{name}_id" if field.is_relation else name
        columns[name] = field.db_column or attname
    return columns


def missing_objects(state: ProjectState, catalog: Catalog, statement_sql: str) -> list[str]:
    """The tables and columns of the baseline's models that `statement_sql` names and the
    snapshot's catalog lacks, as `table t` or `column t.c`."""
    named = set(_QUOTED.findall(statement_sql))
    tables = {table.name: {column.name for column in table.columns} for table in catalog.tables}
    missing = []
    for (app_label, model_name), model in sorted(state.models.items()):
        table = model.options.get("db_table") or f"{app_label}_{model_name}"
        if table not in named:
            continue
        if table not in tables:
            missing.append(f"table {table}")
            continue
        missing += [
            f"column {table}.{column}"
            for column in _columns(state, app_label, model_name).values()
            if column in named and column not in tables[table]
        ]
    return missing


def explain_missing_objects(report: Report, *, state: ProjectState, catalog: Catalog, snapshot: str) -> Report:
    """`report` with its error naming what production lacks, when the change failed on a table
    or column the baseline's models have and the snapshot (described by `snapshot`) does not."""
    error = report.error
    if error is None or error.sqlstate not in _UNDEFINED:
        return report
    statement = report.statement(error.statement_index)
    if statement is None:
        return report
    missing = missing_objects(state, catalog, statement.sql)
    if not missing:
        return report
    message = (
        f"production's schema ({snapshot}) has no {', '.join(missing)}, which the baseline's migrations have and this "
        f"change needs: the statement fails in production as it did here ({error.message})"
    )
    return dataclasses.replace(report, error=dataclasses.replace(error, message=message))
