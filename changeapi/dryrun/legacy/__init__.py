"""Legacy databases: Django models derived from a schema snapshot alone, with what a human must check.

A project whose production never had Django migrations has only its catalog. It is restored
on a fresh shadow database as the job's own role (`restore`), Django's `inspectdb` reads that
shadow (`inspection`), and what inspectdb guessed becomes review points. Turning the models
source into an initial migration is the intake's job (the `models` form), not this package's.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from changeapi.dryrun.drift import Catalog
from changeapi.dryrun.legacy.inspection import RecordingInspection, models_inspect, names_django_can_use
from changeapi.dryrun.legacy.restore import RestoreNote, SnapshotNotRestorable, foreign_key_facts, restore_apply, restore_plan
from changeapi.dryrun.session import shadow_session
from changeapi.shadow.servers import ShadowServer

__all__ = ["LegacyModels", "ReviewKind", "ReviewPoint", "SnapshotNotRestorable", "legacy_models_derive"]

# The Django on_delete that does what production's ON DELETE does.
_ON_DELETE = {
    "CASCADE": "models.CASCADE",
    "RESTRICT": "models.RESTRICT",
    "SET NULL": "models.SET_NULL",
    "SET DEFAULT": "models.SET_DEFAULT",
    "NO ACTION": "models.PROTECT or models.DO_NOTHING",
}


class ReviewKind(StrEnum):
    MANAGED = "managed"
    FOREIGN_KEY = "foreign_key"
    NO_PRIMARY_KEY = "no_primary_key"
    UNMAPPED_COLUMN = "unmapped_column"
    RENAMED_FIELD = "renamed_field"
    NOT_MODELLED = "not_modelled"
    NOT_RESTORED = "not_restored"


@dataclass(frozen=True)
class ReviewPoint:
    """One thing of the derived models a person must check before trusting the baseline."""

    kind: ReviewKind
    table: str
    model: str | None
    column: str | None
    detail: str


@dataclass(frozen=True)
class LegacyModels:
    """inspectdb's models module for a snapshot, and the review points it leaves."""

    source: str
    review_points: tuple[ReviewPoint, ...]


def legacy_models_derive(server: ShadowServer, *, catalog: Catalog, name: str) -> LegacyModels:
    """Restore `catalog` on a new shadow database `name` and derive Django models from it there.

    Names Django cannot use are refused first and the DDL is checked whole, before the
    database is made: a malformed snapshot fails with its location and nothing is created.
    The DDL then runs as the job's own role on a clone of `template0`, under the watchdog's
    limits, and the clone is dropped whatever happens.
    """
    names_django_can_use(catalog)
    plan = restore_plan(catalog)
    with shadow_session(server, template="template0", name=name) as session:
        session.connection.ensure_connection()
        notes = restore_apply(session.connection.connection, plan)
        source, command = models_inspect(session.connection.alias)
    return LegacyModels(source=source, review_points=tuple(review_points(catalog, command, notes)))


def review_points(catalog: Catalog, command: RecordingInspection, notes: list[RestoreNote]) -> list[ReviewPoint]:
    """What inspectdb guessed or could not know, per table, in the snapshot's table order."""
    points: list[ReviewPoint] = []
    primary = {k.table for k in catalog.constraints if k.type == "primary_key"}
    foreign = [k for k in catalog.constraints if k.type == "foreign_key"]
    for table in catalog.tables:
        model = command.models.get(table.name)
        points.append(
            ReviewPoint(
                ReviewKind.MANAGED,
                table.name,
                model,
                None,
                "inspectdb marks the model managed = False; the baseline's model is managed, so Django's "
                "migrations create and alter this table from now on. Mark it managed = False only if "
                "another tool owns the table (changes to it then produce no SQL).",
            )
        )
        if table.name not in primary:
            points.append(
                ReviewPoint(
                    ReviewKind.NO_PRIMARY_KEY,
                    table.name,
                    model,
                    None,
                    "the table has no primary key: Django gives the model an implicit id column production "
                    "does not have. Give one unique NOT NULL field primary_key=True, or add the column in "
                    "production first.",
                )
            )
        for column in table.columns:
            for note in command.field_notes.get((table.name, column.name), ()):
                kind = ReviewKind.UNMAPPED_COLUMN if "guess" in note else ReviewKind.RENAMED_FIELD
                points.append(ReviewPoint(kind, table.name, model, column.name, f"{column.type}: {note}"))
            for note in command.name_notes.get((table.name, column.name), ()):
                points.append(ReviewPoint(ReviewKind.RENAMED_FIELD, table.name, model, column.name, note))
        for constraint in (k for k in foreign if k.table == table.name):
            action, columns = foreign_key_facts(constraint)
            points.append(
                ReviewPoint(
                    ReviewKind.FOREIGN_KEY,
                    table.name,
                    model,
                    columns[0] if len(columns) == 1 else None,
                    f"{constraint.name}: {constraint.definition}. The relation is a field of {model} "
                    f"(a OneToOneField when its column is unique); check it points this way. on_delete is "
                    f"inspectdb's guess, models.DO_NOTHING; production does ON DELETE {action}, which in "
                    f"Django is {_ON_DELETE.get(action, 'models.DO_NOTHING')}.",
                )
            )
    for index in catalog.indexes:
        if not (index.unique or index.primary):
            points.append(
                ReviewPoint(
                    ReviewKind.NOT_MODELLED,
                    index.table,
                    command.models.get(index.table),
                    None,
                    f"index {index.name} ({index.definition}) is in production but inspectdb does not model "
                    "indexes: the baseline lacks it, so dry-runs do not see it. Add it to the model's "
                    "Meta.indexes under the same name if Django should know it.",
                )
            )
    for constraint in catalog.constraints:
        if constraint.type == "check":
            points.append(
                ReviewPoint(
                    ReviewKind.NOT_MODELLED,
                    constraint.table,
                    command.models.get(constraint.table),
                    None,
                    f"check constraint {constraint.name} ({constraint.definition}) is in production but "
                    "inspectdb does not model checks: the baseline lacks it. Add a CheckConstraint of the "
                    "same name to the model's Meta.constraints if Django should know it.",
                )
            )
    for restore_note in notes:
        points.append(
            ReviewPoint(
                ReviewKind.NOT_RESTORED,
                restore_note.table or "",
                command.models.get(restore_note.table or ""),
                restore_note.name if restore_note.kind.value in ("type", "default", "collation") else None,
                f"{restore_note.kind.value} {restore_note.name}: {restore_note.detail}",
            )
        )
    return points
