"""Read the text of one Django migration file into a PlannedMigration, without running it."""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Any

from django.db import migrations
from django.db.migrations.operations.base import Operation

from changeapi.intake.errors import Location
from changeapi.intake.plan import PlannedMigration

from .config import SourceSettings
from .interpreter import Interpreter
from .parsing import parse_source

_MIGRATION_ATTRIBUTES = ("dependencies", "operations", "atomic", "initial", "replaces", "run_before")
_LIST_ATTRIBUTES = ("dependencies", "operations", "replaces", "run_before")


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


def read_migration_file(
    *,
    app_label: str,
    name: str,
    source: str,
    filename: str,
    settings: SourceSettings | None = None,
    package: str | None = None,
) -> MigrationFile:
    """As `parse_migration_file`, keeping the locations `history` needs for its errors."""
    settings = settings or SourceSettings()
    tree = parse_source(source, filename=filename, limits=settings.limits)
    interpreter = Interpreter(
        source=source,
        filename=filename,
        settings=settings,
        package=package or f"{app_label}.migrations",
    )
    attributes: dict[str, Any] | None = None
    locations: dict[str, Location] = {}
    for statement in tree.body:
        if _is_docstring(statement):
            continue
        if isinstance(statement, (ast.Import, ast.ImportFrom)):
            interpreter.bind_import(statement)
        elif isinstance(statement, (ast.Assign, ast.AnnAssign)):
            interpreter.defer_assignment(statement)
        elif isinstance(statement, ast.FunctionDef):
            interpreter.define_function(statement)
        elif isinstance(statement, ast.ClassDef) and statement.name == "Migration":
            if attributes is not None:
                interpreter.fail("The file defines class Migration twice.", statement)
            attributes = _read_migration_class(interpreter, statement, locations)
        elif isinstance(statement, ast.ClassDef):
            interpreter.fail(f"class {statement.name}: a migration file may define only class Migration.", statement)
        else:
            interpreter.fail(
                "Only imports, assignments, functions and class Migration are read in a migration "
                "file; this statement would have to be run.",
                statement,
            )
    if attributes is None:
        interpreter.fail("The file defines no class Migration(migrations.Migration).", tree.body[0] if tree.body else None)
    migration = PlannedMigration(
        app_label=app_label,
        name=name,
        operations=list(attributes.get("operations", [])),
        atomic=attributes.get("atomic", True) is not False,
        dependencies=list(attributes.get("dependencies", [])),
        initial=bool(attributes.get("initial", False)),
        replaces=list(attributes.get("replaces", [])),
        run_before=list(attributes.get("run_before", [])),
    )
    return MigrationFile(migration=migration, filename=filename, locations=locations)


def _is_docstring(statement: ast.stmt) -> bool:
    return (
        isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant) and isinstance(statement.value.value, str)
    )


def _read_migration_class(interpreter: Interpreter, node: ast.ClassDef, locations: dict[str, Location]) -> dict[str, Any]:
    if node.decorator_list:
        interpreter.fail("class Migration must not be decorated.", node.decorator_list[0])
    if node.keywords or len(node.bases) != 1:
        interpreter.fail("class Migration must derive from migrations.Migration alone.", node)
    if interpreter.evaluate(node.bases[0]) is not migrations.Migration:
        interpreter.fail("class Migration must derive from migrations.Migration.", node.bases[0])
    attributes: dict[str, Any] = {}
    locations["class"] = interpreter.location(node)
    interpreter.class_scope = attributes
    try:
        _read_body(interpreter, node.body, attributes, locations)
    finally:
        interpreter.class_scope = None
    return attributes


def _read_body(
    interpreter: Interpreter, body: list[ast.stmt], attributes: dict[str, Any], locations: dict[str, Location]
) -> None:
    for statement in body:
        for target in _targets(statement):
            locations.setdefault(target.id, interpreter.location(statement))
        if _is_docstring(statement) or isinstance(statement, ast.Pass):
            continue
        if isinstance(statement, ast.Assign):
            value = interpreter.evaluate(statement.value)
            for assigned in statement.targets:
                attributes[_attribute_name(interpreter, assigned)] = _checked(interpreter, assigned, value)
        elif isinstance(statement, ast.AnnAssign) and statement.value is not None:
            name = _attribute_name(interpreter, statement.target)
            attributes[name] = _checked(interpreter, statement.target, interpreter.evaluate(statement.value))
        elif isinstance(statement, ast.AugAssign) and isinstance(statement.op, ast.Add):
            name = _attribute_name(interpreter, statement.target)
            if name not in _LIST_ATTRIBUTES or name not in attributes:
                interpreter.fail(f"`{name} +=` needs {name} to be a list assigned before it.", statement)
            addition = interpreter.evaluate(statement.value)
            if not isinstance(addition, (list, tuple)):
                interpreter.fail(f"Only a list can be added to {name}.", statement.value)
            attributes[name] = _checked(interpreter, statement.target, [*attributes[name], *addition])
        elif isinstance(statement, ast.If):
            branch = statement.body if interpreter.evaluate(statement.test) else statement.orelse
            _read_body(interpreter, branch, attributes, locations)
        else:
            interpreter.fail(
                "Only assignments of " + ", ".join(_MIGRATION_ATTRIBUTES) + " (and `if` around them) "
                "are read in class Migration.",
                statement,
            )


def _targets(statement: ast.stmt) -> list[ast.Name]:
    if isinstance(statement, ast.Assign):
        return [t for t in statement.targets if isinstance(t, ast.Name)]
    if isinstance(statement, (ast.AnnAssign, ast.AugAssign)) and isinstance(statement.target, ast.Name):
        return [statement.target]
    return []


def _attribute_name(interpreter: Interpreter, target: ast.expr) -> str:
    if not isinstance(target, ast.Name) or target.id not in _MIGRATION_ATTRIBUTES:
        interpreter.fail(
            "class Migration may set only " + ", ".join(_MIGRATION_ATTRIBUTES) + ".",
            target,
        )
    return target.id


def _checked(interpreter: Interpreter, node: ast.expr, value: Any) -> Any:
    """Values of the shape Django's loader and executor rely on."""
    name = _attribute_name(interpreter, node)
    if name in ("atomic", "initial"):
        if not isinstance(value, bool) and value is not None:
            interpreter.fail(f"{name} must be True or False.", node)
        return value
    if not isinstance(value, (list, tuple)):
        interpreter.fail(f"{name} must be a list.", node)
    if name == "operations":
        for index, operation in enumerate(value):
            if not isinstance(operation, Operation):
                interpreter.fail(f"operations[{index}] is not a migration operation.", node)
        return list(value)
    for index, key in enumerate(value):
        if not (isinstance(key, tuple) and len(key) == 2 and all(isinstance(part, str) for part in key)):
            interpreter.fail(f'{name}[{index}] must be an ("app_label", "migration_name") pair.', node)
    return list(value)
