"""The normalized result of every intake form: migrations of Django operation objects.

Operations JSON, migration files and models source all end here, so the dry-run engine and the
bundle writer deal with one shape only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.migrations import Migration
from django.db.migrations.operations.base import Operation


@dataclass
class PlannedMigration:
    """One migration to apply: what Django's executor would load from one migration file."""

    app_label: str
    name: str
    operations: list[Operation]
    atomic: bool = True
    dependencies: list[tuple[str, str]] = field(default_factory=list)
    initial: bool = False
    replaces: list[tuple[str, str]] = field(default_factory=list)
    run_before: list[tuple[str, str]] = field(default_factory=list)
    # What a reviewer should know about how the file was read (e.g. a method Django would
    # call that the service reads as Django's default).
    notes: list[str] = field(default_factory=list, compare=False)

    @property
    def key(self) -> tuple[str, str]:
        return (self.app_label, self.name)

    def to_django(self) -> Migration:
        """A real `Migration` instance, built without importing any submitted module."""
        migration = Migration(self.name, self.app_label)
        # Migration.__init__ copies these class attributes onto the instance, which then owns
        # them; django-stubs declares them ClassVar, hence the ignores.
        migration.operations = list(self.operations)  # type: ignore[misc]
        migration.atomic = self.atomic  # type: ignore[misc]
        migration.dependencies = list(self.dependencies)  # type: ignore[misc]
        migration.initial = self.initial  # type: ignore[misc]
        migration.replaces = list(self.replaces)  # type: ignore[misc]
        migration.run_before = list(self.run_before)  # type: ignore[misc]
        return migration


@dataclass
class Plan:
    """An ordered list of migrations; the order is the one Django's executor would apply."""

    migrations: list[PlannedMigration]

    @property
    def operation_count(self) -> int:
        return sum(len(m.operations) for m in self.migrations)

    def leaf_names(self) -> dict[str, str]:
        """The last migration of each app, which later migrations of that app depend on."""
        leaves: dict[str, str] = {}
        for migration in self.migrations:
            leaves[migration.app_label] = migration.name
        return leaves
