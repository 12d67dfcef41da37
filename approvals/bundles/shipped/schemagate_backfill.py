"""Schemagate's declarative Backfill step, as a release bundle's migration files name it.

Shipped in every release bundle that has a Backfill step: put this file on the project's import
path (beside manage.py). It depends on Django only. Applying a migration that holds the step
(`migrate`) does nothing for it: the backfill runs after the migration commits, off the deploy
path, in keyset batches.
"""

from __future__ import annotations

from typing import Any

from django.db.migrations.operations.base import Operation

DEFAULT_BATCH_SIZE = 1000


class Backfill(Operation):
    """Set `assignments` (field name -> Django expression) on the rows of `model`
    ("app_label.ModelName") matching `filter` (a `Q`, or None for every row), `batch_size` rows
    at a time in the order of `order_by` (a unique, non-null column; None for the primary key),
    pausing `pause_ms` milliseconds between batches, until `parity` (a `Q` of the rows still to
    do) counts zero.

    The step is data: a label, field names, Django expressions and `Q`s, numbers; no code. It
    changes neither the models nor the schema.
    """

    reduces_to_sql = False
    reversible = True

    def __init__(
        self,
        model: str,
        assignments: dict[str, Any],
        filter: Any = None,  # noqa: A002 - the step's own name for it
        batch_size: int = DEFAULT_BATCH_SIZE,
        order_by: str | None = None,
        pause_ms: int = 0,
        parity: Any = None,
    ) -> None:
        self.model = model
        self.assignments = dict(assignments)
        self.filter = filter
        self.batch_size = batch_size
        self.order_by = order_by
        self.pause_ms = pause_ms
        self.parity = parity
        super().__init__()

    def deconstruct(self) -> tuple[str, list[Any], dict[str, Any]]:
        return (
            "Backfill",
            [],
            {
                "model": self.model,
                "assignments": self.assignments,
                "filter": self.filter,
                "batch_size": self.batch_size,
                "order_by": self.order_by,
                "pause_ms": self.pause_ms,
                "parity": self.parity,
            },
        )

    def state_forwards(self, app_label: str, state: Any) -> None:
        return None  # rows change, the models do not

    def database_forwards(self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any) -> None:
        return None  # the batches run after the migration commits, off the deploy path

    def database_backwards(self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any) -> None:
        return None  # undoing the schema change (dropping the column) undoes the backfill

    def references_model(self, name: str, app_label: str) -> bool:
        model_app, _, model_name = self.model.partition(".")
        return (model_app, model_name.lower()) == (app_label, name.lower())

    def describe(self) -> str:
        key = self.order_by or "primary key"
        return f"Backfill {self.model}: set {', '.join(self.assignments)} in batches of {self.batch_size} by {key}"

    @property
    def migration_name_fragment(self) -> str:
        return f"backfill_{self.model.partition('.')[2].lower()}"
