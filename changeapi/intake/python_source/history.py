"""Order a migration history into the Plan Django's executor would apply, and replay its state.

The graph is built by Django's own MigrationLoader rules (internal then external dependencies,
`__first__`/`__latest__`, `run_before`, squashed `replaces`) on migrations that came from
parsed text: the loader's disk import is replaced by the submitted migrations, so nothing is
imported.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping

from django.db.migrations.exceptions import CircularDependencyError, NodeNotFoundError
from django.db.migrations.graph import MigrationGraph
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.migration import Migration
from django.db.migrations.state import ProjectState

from changeapi.intake.errors import IntakeError, Location
from changeapi.intake.plan import Plan, PlannedMigration
from changeapi.intake.unrendered_state import UnrenderedState

from .migration_files import MigrationFile

Key = tuple[str, str]


class _SubmittedHistory(MigrationLoader):
    """Django's loader over submitted migrations: same graph rules, no imports, no database."""

    def __init__(
        self,
        migrations: Mapping[Key, Migration],
        *,
        applied: Collection[Key],
        unmigrated_apps: Collection[str],
    ) -> None:
        super().__init__(connection=None, load=False, ignore_no_migrations=True)
        self.disk_migrations = dict(migrations)
        self.migrated_apps = {app_label for app_label, _ in migrations}
        self.unmigrated_apps = set(unmigrated_apps) - self.migrated_apps
        self._applied = set(applied)

    def load_disk(self) -> None:
        # The migrations were handed in already parsed; there is nothing to import.
        return None

    def build_graph(self) -> None:
        self.graph = MigrationGraph()
        self.replacements = {}
        self.applied_migrations = {key: self.disk_migrations[key] for key in self._applied if key in self.disk_migrations}
        for key, migration in self.disk_migrations.items():
            self.graph.add_node(key, migration)
            if migration.replaces:
                self.replacements[key] = migration
        for key, migration in self.disk_migrations.items():
            self.add_internal_dependencies(key, migration)
        for key, migration in self.disk_migrations.items():
            self.add_external_dependencies(key, migration)
        for key, migration in self.replacements.items():
            # As Django does: a squashed migration stands in for the ones it replaces when all
            # or none of them are applied; otherwise the originals are used.
            statuses = [target in self._applied for target in migration.replaces]
            if all(statuses) or not any(statuses):
                self.graph.remove_replaced_nodes(key, migration.replaces)
            else:
                self.graph.remove_replacement_node(key, migration.replaces)
        self.graph.validate_consistency()
        self.graph.ensure_not_cyclic()


def plan_history(
    migrations: Iterable[PlannedMigration | MigrationFile],
    *,
    applied: Collection[Key] = (),
    unmigrated_apps: Collection[str] = (),
) -> Plan:
    """The migrations in the order `manage.py migrate` would apply them to an empty database.

    `applied` are migrations the target database already has (a baseline); they are left out
    of the plan and decide, as in Django, whether squashed migrations replace the originals.
    `unmigrated_apps` are apps without migrations that others may depend on (`__first__`).
    Raises a located IntakeError for duplicate migrations, a dependency on a migration that is
    not there, a dependency cycle, or two leaf migrations in one app (a conflict to merge).
    """
    planned, files = _collect(migrations)
    history = _build(planned, files, applied=applied, unmigrated_apps=unmigrated_apps)
    _refuse_conflicts(history, files)
    order: list[Key] = []
    seen = set(applied)
    for target in history.graph.leaf_nodes():
        if target in seen:
            continue
        for key in history.graph.forwards_plan(target):
            if key not in seen:
                seen.add(key)
                order.append(key)
    return Plan(migrations=[planned[key] for key in order])


def migration_graph(
    migrations: Iterable[PlannedMigration | MigrationFile],
    *,
    applied: Collection[Key] = (),
    unmigrated_apps: Collection[str] = (),
) -> MigrationGraph:
    """Django's migration graph of the given migrations, checked as `plan_history` checks it."""
    planned, files = _collect(migrations)
    return _build(planned, files, applied=applied, unmigrated_apps=unmigrated_apps).graph


def _collect(
    migrations: Iterable[PlannedMigration | MigrationFile],
) -> tuple[dict[Key, PlannedMigration], dict[Key, MigrationFile]]:
    planned: dict[Key, PlannedMigration] = {}
    files: dict[Key, MigrationFile] = {}
    for item in migrations:
        migration = item.migration if isinstance(item, MigrationFile) else item
        file = item if isinstance(item, MigrationFile) else None
        if migration.key in planned:
            raise IntakeError(
                f"The migration {_label(migration.key)} is given twice.",
                _location(file or files.get(migration.key), "class"),
            )
        planned[migration.key] = migration
        if file is not None:
            files[migration.key] = file
    return planned, files


def _build(
    planned: Mapping[Key, PlannedMigration],
    files: Mapping[Key, MigrationFile],
    *,
    applied: Collection[Key],
    unmigrated_apps: Collection[str],
) -> _SubmittedHistory:
    django_migrations = {key: migration.to_django() for key, migration in planned.items()}
    history = _SubmittedHistory(django_migrations, applied=applied, unmigrated_apps=unmigrated_apps)
    try:
        history.build_graph()
    except NodeNotFoundError as exc:
        origin = _origin_key(exc.origin, planned)
        attribute = "run_before" if origin and exc.node in planned[origin].run_before else "dependencies"
        raise IntakeError(
            f"The migration {_label(origin) if origin else exc.origin} depends on {_label(exc.node)}, "
            "which is not among the migrations given (nor replaced by one of them).",
            _location(files.get(origin) if origin else None, attribute),
        ) from None
    except CircularDependencyError as exc:
        cycle = str(exc)
        first = next((key for key in planned if _label(key) in cycle.split(", ")), None)
        raise IntakeError(
            f"The migrations depend on each other in a cycle: {cycle}.",
            _location(files.get(first) if first else None, "dependencies"),
        ) from None
    except ValueError as exc:
        # check_key: a __first__/__latest__ dependency on an app that is not there.
        raise IntakeError(f"{exc}; add that app's migrations or list it as unmigrated.") from None
    return history


def _refuse_conflicts(history: _SubmittedHistory, files: Mapping[Key, MigrationFile]) -> None:
    leaves: dict[str, list[Key]] = {}
    for key in history.graph.leaf_nodes():
        leaves.setdefault(key[0], []).append(key)
    for app_label, keys in sorted(leaves.items()):
        if len(keys) > 1:
            names = ", ".join(name for _, name in sorted(keys))
            raise IntakeError(
                f"Conflicting migrations in {app_label}: {names} are all latest. Add a merge "
                "migration that depends on them (makemigrations --merge).",
                _location(files.get(sorted(keys)[-1]), "dependencies"),
            )


def _origin_key(origin: object, planned: Mapping[Key, PlannedMigration]) -> Key | None:
    if isinstance(origin, Migration):
        return (origin.app_label, origin.name)
    if isinstance(origin, tuple) and origin in planned:
        return origin  # type: ignore[return-value]
    return None


def _label(key: Key) -> str:
    return f"{key[0]}.{key[1]}"


def _location(file: MigrationFile | None, attribute: str) -> Location:
    return file.location_of(attribute) if file else Location()


def plan_state(plan: Plan, base_state: ProjectState | None = None) -> ProjectState:
    """The project state after `plan`, from `base_state` (or nothing), by `state_forwards` alone.

    Models are not rendered: the returned state has no `apps` until someone asks for them,
    which is the costly step the design keeps out of the baseline and every dry-run.
    """
    if base_state is None:
        state = UnrenderedState()
    else:
        # The base's models only, never its rendered apps (`clone` would copy those, and
        # every operation would then reload them).
        state = UnrenderedState(
            models={key: model.clone() for key, model in base_state.models.items()},
            real_apps=base_state.real_apps,
        )
    for migration in plan.migrations:
        for operation in migration.operations:
            operation.state_forwards(migration.app_label, state)
    return state
