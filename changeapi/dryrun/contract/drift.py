"""The report's warnings about drift: objects the change touches that production has otherwise."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class DriftWarning:
    """One drifted object (docs/drift.md) that a statement of the change touches."""

    kind: str
    status: str
    severity: str
    name: str
    table: str | None
    detail: str
    consequence: str
    statement_indexes: tuple[int, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class SchemaDrift:
    """The project's latest schema snapshot against the baseline this dry-run started from.

    The dry-run ran on the schema the migrations say; `touched` are the drifted objects its
    statements use, where production may behave otherwise than the report shows.
    """

    snapshot: int
    snapshot_uploaded_at: str
    baseline_version: int
    drifted_objects: int
    touched: tuple[DriftWarning, ...]
