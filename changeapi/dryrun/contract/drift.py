"""The report's warnings about drift: objects the change touches that production has otherwise."""

from __future__ import annotations

from dataclasses import dataclass, field

from changeapi.dryrun.contract.fields import ABSENT_WHEN_EMPTY, ABSENT_WHEN_NONE

SCHEMA_MIGRATIONS = "migrations"
"""The template is the replay of the baseline's migrations ("as the migrations say")."""
SCHEMA_SNAPSHOT = "snapshot"
"""The template is the latest schema snapshot restored ("as production is")."""


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

    `touched` are the drifted objects the statements use: where a dry-run on the schema the
    migrations say may show otherwise than production will do (a dry-run on the snapshot met
    production's objects already; see `SchemaSource`).
    """

    snapshot: int
    snapshot_uploaded_at: str
    baseline_version: int
    drifted_objects: int
    touched: tuple[DriftWarning, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class SchemaSource:
    """Which schema the dry-run's template had, and which one the project asked for.

    `schema` is "migrations" (the replay of the baseline's migrations) or "snapshot" (the
    project's latest schema snapshot, restored); the Django state the change was applied to is
    the baseline's either way. When the project asked for the snapshot and none could be used,
    `schema` is "migrations" and `fallback` says why.
    """

    schema: str
    requested: str
    snapshot: int | None = field(default=None, metadata=ABSENT_WHEN_NONE)
    snapshot_sha256: str | None = field(default=None, metadata=ABSENT_WHEN_NONE)
    snapshot_uploaded_at: str | None = field(default=None, metadata=ABSENT_WHEN_NONE)
    fallback: str | None = field(default=None, metadata=ABSENT_WHEN_NONE)
    not_restored: tuple[str, ...] = field(default=(), metadata=ABSENT_WHEN_EMPTY)
