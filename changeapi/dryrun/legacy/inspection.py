"""Django's own `inspectdb`, run on a shadow that holds a restored snapshot, recording its guesses.

inspectdb writes what it guessed as Python comments; a reviewer needs them as data (which
column, which model, what to check), so the command is subclassed only to record them. It is
Django's code, reading a shadow's catalog through Django's introspection: nothing submitted
runs. Its output is text, and names in it come from production; it is only ever read by the
intake's allow-list interpreter, never imported.
"""

from __future__ import annotations

import io
import keyword
from typing import Any

from django.core.management.commands import inspectdb

from changeapi.dryrun.drift import Catalog
from changeapi.dryrun.legacy.restore import SnapshotNotRestorable

# inspectdb marks every model unmanaged; a baseline's models are managed, so that Django's
# migrations make and change their tables (see `review_points`).
_UNMANAGED = "        managed = False"
_HEADER = (
    "# Derived by Django's inspectdb from a schema snapshot. The models are managed: Django's\n"
    "# migrations own their tables. Check the review points before relying on them."
)


class RecordingInspection(inspectdb.Command):
    """inspectdb that keeps, per (table, column), the notes it would only have commented."""

    def __init__(self) -> None:
        super().__init__(stdout=io.StringIO(), stderr=io.StringIO())
        self.field_notes: dict[tuple[str, str], list[str]] = {}
        self.name_notes: dict[tuple[str, str], list[str]] = {}
        self.models: dict[str, str] = {}
        self._table = ""

    def _visit(self, table_name: str) -> bool:
        """inspectdb's table filter is called once per table before its columns: the hook that
        tells the recorders which table they are in."""
        self._table = table_name
        self.models[table_name] = self.normalize_table_name(table_name)
        return True

    def normalize_col_name(self, col_name: str, used_column_names: list[str], is_relation: bool) -> Any:
        name, params, notes = super().normalize_col_name(col_name, used_column_names, is_relation)
        if notes:
            self.name_notes[(self._table, col_name)] = list(notes)
        return name, params, notes

    def get_field_type(self, connection: Any, table_name: str, row: Any) -> Any:
        field_type, params, notes = super().get_field_type(connection, table_name, row)
        if notes:
            self.field_notes[(table_name, row.name)] = list(notes)
        if field_type == "AutoField":
            # inspectdb leaves an integer `id` serial out as Django's implicit primary key, which
            # the intake would make the project's default (a bigint): written out, it stays int.
            field_type = "models.AutoField"
        return field_type, params, notes

    def get_meta(
        self,
        table_name: str,
        constraints: Any,
        column_to_field_name: Any,
        is_view: bool,
        is_partition: bool,
        comment: str | None,
    ) -> list[str]:
        lines = super().get_meta(table_name, constraints, column_to_field_name, is_view, is_partition, comment)
        return [line for line in lines if line != _UNMANAGED]


def names_django_can_use(catalog: Catalog) -> None:
    """Refuse, at their location, table and column names Django cannot take as they are.

    Django's PostgreSQL `quote_name` wraps a name in double quotes without doubling the ones
    inside it, so a name holding one would end the identifier early in inspectdb's own
    queries and in every statement the schema editor writes for the model later: a name like
    `t"; DROP TABLE x; --` would run as SQL. The restore quotes any name safely; it is Django
    that cannot. And inspectdb names a model after its table with the letters and digits
    kept: a table whose model name would be empty, start with a digit, or be another
    table's (`x` and `X`) would be a syntax error or silently replace that model.
    """
    command = inspectdb.Command()
    models: dict[str, str] = {}
    for t, table in enumerate(catalog.tables):
        if '"' in table.name:
            raise SnapshotNotRestorable(_QUOTE_REFUSAL, f"/tables/{t}/name")
        model = command.normalize_table_name(table.name)
        if not model.isidentifier() or keyword.iskeyword(model):
            raise SnapshotNotRestorable(
                f"inspectdb would name this table's model {model!r}, which is not a Python class name", f"/tables/{t}/name"
            )
        if model in models:
            raise SnapshotNotRestorable(
                f"inspectdb would name this table's model {model}, as it names the table {models[model]}'s",
                f"/tables/{t}/name",
            )
        models[model] = table.name
        for c, column in enumerate(table.columns):
            if '"' in column.name:
                raise SnapshotNotRestorable(_QUOTE_REFUSAL, f"/tables/{t}/columns/{c}/name")


_QUOTE_REFUSAL = (
    "a table or column name holding a double quote cannot be used by Django, which quotes names "
    "without escaping them: rename it in production, or leave the table out of the snapshot"
)


def models_inspect(alias: str) -> tuple[str, RecordingInspection]:
    """The models module inspectdb writes for the database behind connection `alias`."""
    command = RecordingInspection()
    options = {
        "database": alias,
        "table": [],
        "include_partitions": False,
        "include_views": False,
        "table_name_filter": command._visit,
    }
    lines = list(command.handle_inspection(options))
    # inspectdb's opening comment tells a person to remove `managed = False`, done here already.
    while lines and lines[0].startswith("#"):
        lines.pop(0)
    return "\n".join([_HEADER, *lines]) + "\n", command
