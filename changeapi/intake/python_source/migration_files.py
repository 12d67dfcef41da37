"""Read the text of one Django migration file into a PlannedMigration, without running it."""

from __future__ import annotations

import ast
import contextlib
import copy
import dataclasses
import hashlib
from dataclasses import dataclass, field
from typing import Any, NoReturn

from django.db import migrations
from django.db.migrations.operations.base import Operation

from changeapi.caches import BoundedCache
from changeapi.intake.backfill import Backfill
from changeapi.intake.errors import IntakeBoundExceeded, IntakeError, IntakeLimitExceeded, Location
from changeapi.intake.plan import PlannedMigration

from .catalog import Catalog, SharedAnswers
from .config import SourceSettings
from .interpreter import Interpreter
from .local_objects import (
    DatabaseConnectionStandIn,
    LocalClass,
    LocalFunction,
    MigrationInstance,
    Poisoned,
    SchemaEditorStandIn,
)
from .parsing import parse_source
from .references import InertCall, InertReference
from .statements import SuperApplyReached

_MIGRATION_ATTRIBUTES = ("dependencies", "operations", "atomic", "initial", "replaces", "run_before")
# Methods of Migration that Django calls; a file overriding one changes what migrate does.
_RUN_METHODS = ("apply", "unapply", "mutate_state")


@dataclass
class MigrationFile:
    """A parsed migration file: the migration and where its attributes are set, for errors
    found later (a missing dependency is reported at the file's `dependencies` line)."""

    migration: PlannedMigration
    filename: str
    locations: dict[str, Location] = field(default_factory=dict)

    def location_of(self, attribute: str) -> Location:
        return self.locations.get(attribute) or self.locations.get("class") or Location(file=self.filename, line=1, column=1)


def parse_migration_file(
    *,
    app_label: str,
    name: str,
    source: str,
    filename: str,
    settings: SourceSettings | None = None,
    package: str | None = None,
) -> PlannedMigration:
    """The migration a file defines, as Django's loader would see it after importing it.

    The file is parsed, never imported: its `class Migration(migrations.Migration)` body is
    interpreted against the allow-list and the project's `settings` (custom field map,
    referenced project functions, setting values). `package` is the dotted package of the
    file, for relative imports; it defaults to "<app_label>.migrations".
    """
    return read_migration_file(
        app_label=app_label, name=name, source=source, filename=filename, settings=settings, package=package
    ).migration


# Files already read, by everything their reading depends on. A team uploads its history again
# with every baseline, nearly all of it unchanged: as Django imports a migration module from its
# bytecode cache, an unchanged file is not parsed and interpreted again. Never shared: a copy
# goes in and a copy comes out, because Django's state changes stores fields of operations and
# a later RenameField alters them in place.
_read_files: BoundedCache[tuple[str, ...], MigrationFile] = BoundedCache(4096)


def read_migration_file(
    *,
    app_label: str,
    name: str,
    source: str,
    filename: str,
    settings: SourceSettings | None = None,
    package: str | None = None,
    listing: tuple[str, ...] = (),
    shared_answers: SharedAnswers | None = None,
) -> MigrationFile:
    """As `parse_migration_file`, keeping the locations `history` needs for its errors.

    `listing` holds the file names beside this one (its app's submitted migration files), which
    is what a file that lists its own directory (`os.listdir(Path(__file__).parent)`) sees.
    A file read before with the same text and settings is not read again (`_read_files`).
    `shared_answers` is shared by the files of one submission (read with the same settings),
    so that the names they all import are resolved once (`catalog.SharedAnswers`).
    """
    settings = settings or SourceSettings()
    digest = hashlib.sha256(source.encode("utf-8", "surrogatepass")).hexdigest()
    key = (app_label, name, filename, package or "", *listing, digest, settings.cache_key)
    cached = _read_files.get(key)
    if cached is not None:
        return _copy(cached)
    read = _read(
        app_label=app_label,
        name=name,
        source=source,
        filename=filename,
        settings=settings,
        package=package,
        listing=listing,
        shared_answers=shared_answers,
    )
    # A value that cannot be copied is simply read again next time.
    with contextlib.suppress(Exception):
        _read_files.put(key, _copy(read))
    return read


def _copy(read: MigrationFile) -> MigrationFile:
    migration = read.migration
    return MigrationFile(
        migration=dataclasses.replace(
            migration,
            operations=copy.deepcopy(migration.operations),
            dependencies=list(migration.dependencies),
            replaces=list(migration.replaces),
            run_before=list(migration.run_before),
            notes=list(migration.notes),
        ),
        filename=read.filename,
        locations=dict(read.locations),
    )


def _read(
    *,
    app_label: str,
    name: str,
    source: str,
    filename: str,
    settings: SourceSettings,
    package: str | None,
    listing: tuple[str, ...],
    shared_answers: SharedAnswers | None,
) -> MigrationFile:
    parsed = parse_source(source, filename=filename, limits=settings.limits)
    package = package or f"{app_label}.migrations"
    interpreter = Interpreter(
        source=source,
        filename=filename,
        settings=settings,
        package=package,
        module=f"{package}.{name}",
        listing=listing,
        catalog=Catalog(settings, shared=shared_answers),
    )
    reader = _MigrationReader(interpreter, app_label=app_label, name=name)
    interpreter.runner.module_class_reader = reader.read_class
    interpreter.runner.refuse_decorators = True
    try:
        interpreter.run_module(parsed)
    finally:
        interpreter.close()
    if reader.attributes is None:
        interpreter.fail(
            "The file defines no class Migration(migrations.Migration).", parsed.tree.body[0] if parsed.tree.body else None
        )
    attributes = reader.attributes
    migration = PlannedMigration(
        app_label=app_label,
        name=name,
        operations=list(attributes.get("operations", [])),
        atomic=attributes.get("atomic", True) is not False,
        dependencies=list(attributes.get("dependencies", [])),
        initial=bool(attributes.get("initial", False)),
        replaces=list(attributes.get("replaces", [])),
        run_before=list(attributes.get("run_before", [])),
        notes=reader.notes,
    )
    return MigrationFile(migration=migration, filename=filename, locations=reader.locations)


class _MigrationReader:
    """Reads `class Migration`; other classes of the file are local classes (custom operations, mixins)."""

    def __init__(self, interpreter: Interpreter, *, app_label: str, name: str) -> None:
        self.interpreter = interpreter
        self.app_label = app_label
        self.name = name
        self.attributes: dict[str, Any] | None = None
        self.locations: dict[str, Location] = {}
        self.notes: list[str] = []
        # Whether `Migration.apply()` was interpreted up to its super().apply().
        self.apply_read = False

    def read_class(self, node: ast.ClassDef) -> Any:
        interpreter = self.interpreter
        if node.name != "Migration":
            return interpreter.runner.read_local_class(node)
        if self.attributes is not None:
            interpreter.fail("The file defines class Migration twice.", node)
        if node.decorator_list:
            interpreter.fail("class Migration must not be decorated.", node.decorator_list[0])
        if node.keywords or len(node.bases) != 1:
            interpreter.fail("class Migration must derive from migrations.Migration alone.", node)
        base = interpreter.evaluate_base(node.bases[0])
        if not _is_migration_base(base):
            interpreter.fail("class Migration must derive from migrations.Migration.", node.bases[0])
        self.locations["class"] = interpreter.location(node)
        for statement in _class_statements(node.body):
            for target in _targets(statement):
                self.locations.setdefault(target.id, interpreter.location(statement))
        names = interpreter.runner.read_class_body(node)
        initializer = names.get("__init__")
        if isinstance(initializer, LocalFunction):
            self._run_initializer(initializer, names, node)
            self.notes.append(
                f"class Migration defines __init__() (line {initializer.defined_at.line}); the service interpreted it "
                "on the submitted files."
            )
        applied = names.get("apply")
        if isinstance(applied, LocalFunction):
            names = self._run_apply(applied, names)
        self.attributes = {}
        for attribute in _MIGRATION_ATTRIBUTES:
            if attribute in names:
                value = names[attribute]
                if isinstance(value, Poisoned):
                    raise value.error
                self.attributes[attribute] = _checked(interpreter, attribute, value, self.locations)
        for method in _RUN_METHODS:
            if method == "apply" and self.apply_read:
                self.notes.append(
                    f"class Migration defines apply() (line {names[method].defined_at.line}); the service interpreted "
                    f"it for this project's engine (schema_editor.connection.vendor == "
                    f"{self.interpreter.settings.engine!r}) up to its super().apply(), and reads the operations it leaves."
                )
                continue
            if isinstance(names.get(method), LocalFunction):
                # Real files override these to adapt to a database's past (a table that may
                # already exist, a vendor); on the shadow, cloned from the baseline, Django's
                # default behaviour is what they fall back to. Reviewers are told.
                self.notes.append(
                    f"class Migration defines {method}() (line {names[method].defined_at.line}); the service "
                    f"reads the migration from its attributes, as Django's default {method}() would run it."
                )
        return LocalClass(name="Migration", path="Migration", bases=(base,), attributes=names, defined_at=self.locations["class"])

    def _run_apply(self, applied: LocalFunction, names: dict[str, Any]) -> dict[str, Any]:
        """The class's names once `Migration.apply()` has run for the project's engine, as
        Django runs it before its own apply: real files choose their operations by
        `schema_editor.connection.vendor` there.

        Read on a copy of the names, and kept only when the method reaches `super().apply()`
        having read nothing but the vendor; anything else (a method that introspects the
        database, or applies nothing) leaves the migration as its attributes say, with a note.
        """
        runner = self.interpreter.runner
        attempt = dict(names)
        editor = SchemaEditorStandIn(DatabaseConnectionStandIn(vendor=self.interpreter.settings.engine))
        runner.in_migration_apply = True
        try:
            runner.call(applied, [MigrationInstance(attempt), None, editor, False], {}, applied.node)
        except SuperApplyReached:
            self.apply_read = True
            return attempt
        except (IntakeLimitExceeded, IntakeBoundExceeded):
            raise
        except IntakeError:
            return names
        finally:
            runner.in_migration_apply = False
        return names

    def _run_initializer(self, initializer: LocalFunction, names: dict[str, Any], node: ast.ClassDef) -> None:
        """Interpret `Migration.__init__` on the class's names, as Django instantiates it."""
        runner = self.interpreter.runner
        runner.in_migration_init = True
        try:
            runner.call(initializer, [MigrationInstance(names), self.name, self.app_label], {}, initializer.node)
        finally:
            runner.in_migration_init = False


def _is_migration_base(base: Any) -> bool:
    """migrations.Migration, a class of the file deriving from it, or a package's Migration subclass
    known only by name (`class Migration(IrreversibleMigration)`), read as a Migration."""
    if base is migrations.Migration:
        return True
    if isinstance(base, LocalClass):
        return base.derives_from(migrations.Migration)
    return isinstance(base, InertReference)


def _class_statements(body: list[ast.stmt]) -> list[ast.stmt]:
    """A class body's statements, through `if`/`for`/`try` blocks but not into functions."""
    found: list[ast.stmt] = []
    for statement in body:
        found.append(statement)
        if isinstance(statement, (ast.If, ast.For, ast.While, ast.Try)):
            nested = [*statement.body, *statement.orelse, *getattr(statement, "finalbody", [])]
            found.extend(_class_statements(nested))
    return found


def _targets(statement: ast.stmt) -> list[ast.Name]:
    if isinstance(statement, ast.Assign):
        return [t for t in statement.targets if isinstance(t, ast.Name)]
    if isinstance(statement, (ast.AnnAssign, ast.AugAssign)) and isinstance(statement.target, ast.Name):
        return [statement.target]
    return []


def _backfills_last(operations: list[Operation], fail: Any) -> None:
    """A backfill runs after its migration commits, so a schema operation after it in the same
    migration would in production run before it, as the operations form also refuses."""
    backfill = next((index for index, op in enumerate(operations) if isinstance(op, Backfill)), None)
    if backfill is None:
        return
    for index in range(backfill + 1, len(operations)):
        if not isinstance(operations[index], Backfill):
            fail(
                f"operations[{index}] ({operations[index].describe()}) follows a Backfill in the same migration: "
                "the backfill runs after its migration commits, so this would run before it; move it to the next "
                "migration."
            )


def _checked(interpreter: Interpreter, name: str, value: Any, locations: dict[str, Location]) -> Any:
    """Values of the shape Django's loader and executor rely on."""
    location = locations.get(name) or locations.get("class")

    def fail(message: str) -> NoReturn:
        raise IntakeError(message, location)

    if name in ("atomic", "initial"):
        if not isinstance(value, bool) and value is not None:
            fail(f"{name} must be True or False.")
        return value
    if not isinstance(value, (list, tuple)):
        fail(f"{name} must be a list.")
    if name == "operations":
        for index, operation in enumerate(value):
            if isinstance(operation, InertCall):
                path = operation.reference.path
                fail(
                    f"operations[{index}] is {path}(...), a custom operation the service does not know: map it in "
                    f'the project\'s intake_settings.operation_map, e.g. {{"{path}": {{"as": "data_step"}}}} '
                    "(see docs/intake.md)."
                )
            if not isinstance(operation, Operation):
                fail(f"operations[{index}] is not a migration operation.")
        _backfills_last(list(value), fail)
        return list(value)
    for index, key in enumerate(value):
        if not (isinstance(key, (tuple, list)) and len(key) == 2 and all(isinstance(part, str) for part in key)):
            fail(f'{name}[{index}] must be an ("app_label", "migration_name") pair.')
    return [tuple(key) for key in value]
