"""One entry point for every intake form: a submission's stored source in, a Plan out.

Stored shapes (what the API receives and the Revision/Baseline keeps):
- `operations`: a list of migration documents ({app_label, name?, atomic?, operations}).
- `migrations`: {"files": [{"path", "content", "app_label"?, "name"?}]}, migration files as
  `makemigrations` writes them; for a baseline, the whole history of every app.
- `models`: {"apps": [{"app_label", "content", "path"?}], "renames"?, "defaults"?}, the
  proposed models.py of each app, diffed against the baseline as `makemigrations` would.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import PurePosixPath
from typing import Any

from django.conf import settings
from django.db.migrations.state import ProjectState

from changeapi.gc_pause import collect_now, collections_paused
from changeapi.intake.backfill import Backfill
from changeapi.intake.engines import POSTGRESQL
from changeapi.intake.errors import IntakeError, IntakeErrors, IntakeLimitExceeded, Location, Problem
from changeapi.intake.expressions_json import condition_text
from changeapi.intake.names import is_app_label, is_migration_name
from changeapi.intake.operations_json import check_plan_against_state, parse_migration_documents
from changeapi.intake.plan import Plan
from changeapi.intake.python_source import (
    ChangeIntent,
    DataMigrationStep,
    MigrationFile,
    SharedAnswers,
    SourceLimits,
    SourceSettings,
    models_source_plan,
    plan_history,
    read_migration_file,
)

FORMS = ("operations", "migrations", "models")


@dataclass
class Intake:
    """A parsed submission: its plan, and migration file texts where the service wrote them."""

    plan: Plan
    files: dict[tuple[str, str], str] = field(default_factory=dict)


def source_settings(project_settings: dict[str, Any] | None, *, engine: str = POSTGRESQL) -> SourceSettings:
    """A project's intake settings (custom field map, references, setting values) as stored,
    for a project of `engine`."""
    data = project_settings or {}
    return SourceSettings.build(
        field_map=data.get("field_map") or {},
        references=data.get("references") or {},
        setting_values=data.get("setting_values") or {},
        auth_user_model=data.get("auth_user_model") or "auth.User",
        default_auto_field=data.get("default_auto_field"),
        operation_map=data.get("operation_map") or {},
        installed_apps=data.get("installed_apps"),
        engine=engine,
        limits=SourceLimits(
            max_bytes=settings.SCHEMAGATE_MAX_SOURCE_BYTES,
            max_depth=settings.SCHEMAGATE_MAX_AST_DEPTH,
            max_nodes=settings.SCHEMAGATE_MAX_AST_NODES,
            max_steps=settings.SCHEMAGATE_MAX_INTAKE_STEPS,
            max_call_depth=settings.SCHEMAGATE_MAX_INTAKE_CALL_DEPTH,
            max_cpu_seconds=settings.SCHEMAGATE_MAX_INTAKE_CPU_SECONDS,
            max_problems=settings.SCHEMAGATE_MAX_REPORTED_PROBLEMS,
        ),
    )


def _require(condition: bool, message: str, pointer: str) -> None:
    if not condition:
        raise IntakeError(message, Location(pointer=pointer))


def _within_limit(count: int, setting: str, what: str, pointer: str) -> None:
    limit = int(getattr(settings, setting))
    if count > limit:
        raise IntakeLimitExceeded(
            f"too many {what}: {count} (limit {limit}, {setting})",
            setting=setting,
            value=limit,
            location=Location(pointer=pointer),
        )


def _migration_files(source: Any, project_settings: SourceSettings) -> list[MigrationFile]:
    """Read every submitted migration file; app label and name come from its path when not given.

    Every file is read even after one is refused, so one answer lists all refusals (up to
    SCHEMAGATE_MAX_REPORTED_PROBLEMS) and the migrations each one blocks.
    """
    _require(isinstance(source, dict) and isinstance(source.get("files"), list), 'expected {"files": [...]}', "/migration_files")
    files = source["files"]
    _require(len(files) > 0, "at least one migration file is required", "/migration_files")
    _within_limit(len(files), "SCHEMAGATE_MAX_MIGRATIONS", "migration files", "/migration_files")

    entries = [_file_entry(item, f"/migration_files/{index}") for index, item in enumerate(files)]
    if project_settings.installed_apps is None:
        # apps.is_installed() in a file answers for the apps whose migrations are submitted.
        apps = {entry.package.rpartition(".")[0] for entry in entries if entry.package}
        project_settings = replace(project_settings, installed_apps=frozenset(apps | {e.app_label for e in entries}))
    listings: dict[str, list[str]] = {}
    for entry in entries:
        listings.setdefault(entry.app_label, ["__init__.py"]).append(f"{entry.name}.py")
    # Each app's listing, sorted once rather than once per file of the app.
    sorted_listings = {app_label: tuple(sorted(names)) for app_label, names in listings.items()}
    read: list[MigrationFile] = []
    refused: dict[tuple[str, str], IntakeError] = {}
    shared_answers = SharedAnswers.for_settings(project_settings)
    for entry in entries:
        try:
            read.append(
                read_migration_file(
                    app_label=entry.app_label,
                    name=entry.name,
                    source=entry.content,
                    filename=entry.filename,
                    settings=project_settings,
                    package=entry.package,
                    listing=sorted_listings[entry.app_label],
                    shared_answers=shared_answers,
                )
            )
        except IntakeLimitExceeded:
            raise
        except IntakeError as error:
            refused[(entry.app_label, entry.name)] = error
    if refused:
        raise _refusals(refused, read)
    return read


@dataclass(frozen=True)
class _FileEntry:
    app_label: str
    name: str
    content: str
    filename: str
    package: str | None


def _file_entry(item: Any, pointer: str) -> _FileEntry:
    _require(isinstance(item, dict) and isinstance(item.get("content"), str), "each file needs 'content'", pointer)
    raw_path = str(item.get("path") or "")
    path = PurePosixPath(raw_path)
    _require(
        not path.is_absolute() and ".." not in path.parts and "\\" not in raw_path,
        "the path must be relative, like '<app>/migrations/<name>.py', without '..'",
        f"{pointer}/path",
    )
    in_migrations = len(path.parts) >= 3 and path.parts[-2] == "migrations"
    app_label = item.get("app_label") or (path.parts[-3] if in_migrations else None)
    name = item.get("name") or (path.stem if path.suffix == ".py" else None)
    _require(bool(app_label), "give 'app_label', or a path like '<app>/migrations/<name>.py'", f"{pointer}/app_label")
    _require(bool(name), "give 'name', or a path ending in '<name>.py'", f"{pointer}/name")
    _require(is_app_label(app_label), f"app_label must be a Python identifier, got {app_label!r}", f"{pointer}/app_label")
    _require(
        is_migration_name(name),
        f"a migration name is letters, digits and underscores (a module name), got {name!r}",
        f"{pointer}/name",
    )
    package = ".".join(path.parts[:-1]) if in_migrations and all(p.isidentifier() for p in path.parts[:-1]) else None
    return _FileEntry(
        app_label=str(app_label),
        name=str(name),
        content=item["content"],
        filename=raw_path if raw_path else f"{app_label}/migrations/{name}.py",
        package=package,
    )


def _refusals(refused: dict[tuple[str, str], IntakeError], read: list[MigrationFile]) -> IntakeErrors:
    """One error naming every refused file and, for each, the readable migrations it blocks."""
    dependents: dict[tuple[str, str], set[tuple[str, str]]] = {}
    for file in read:
        migration = file.migration
        for dependency in [*migration.dependencies, *migration.replaces]:
            dependents.setdefault(tuple(dependency), set()).add(migration.key)  # type: ignore[arg-type]
        for later in migration.run_before:
            dependents.setdefault(migration.key, set()).add(tuple(later))  # type: ignore[arg-type]
    problems: list[Problem] = []
    cap = int(settings.SCHEMAGATE_MAX_REPORTED_PROBLEMS)
    total = 0
    for key, error in sorted(refused.items()):
        total += error.total if isinstance(error, IntakeErrors) else 1
        if len(problems) >= cap:
            continue
        blocked: set[tuple[str, str]] = set()
        pending = [key]
        while pending:
            for dependent in dependents.get(pending.pop(), ()):
                if dependent not in blocked and dependent not in refused:
                    blocked.add(dependent)
                    pending.append(dependent)
        blocks = sorted(f"{a}.{n}" for a, n in blocked)
        # A file refused for several uses (names its engine cannot run) lists each of them.
        found = error.problems if isinstance(error, IntakeErrors) else [Problem(error.message, error.location, [])]
        problems.extend(Problem(problem.message, problem.location, blocks) for problem in found)
    summary = None if total == len(refused) else f"{total} refusals in {len(refused)} file{'s' if len(refused) != 1 else ''}"
    return IntakeErrors(problems[:cap], total=total, summary=summary)


def _models(source: Any, *, baseline: Plan | None, base_state: ProjectState, project_settings: SourceSettings) -> Intake:
    _require(
        isinstance(source, dict) and isinstance(source.get("apps"), list) and source["apps"],
        'expected {"apps": [...]}',
        "/models",
    )
    sources: dict[str, str] = {}
    filenames: dict[str, str] = {}
    for index, item in enumerate(source["apps"]):
        pointer = f"/models/apps/{index}"
        _require(
            isinstance(item, dict) and isinstance(item.get("app_label"), str),
            "each app needs 'app_label'",
            f"{pointer}/app_label",
        )
        _require(isinstance(item.get("content"), str), "each app needs 'content' (its models.py)", f"{pointer}/content")
        sources[item["app_label"]] = item["content"]
        filenames[item["app_label"]] = str(item.get("path") or f"{item['app_label']}/models.py")
    intent = ChangeIntent.build(renames=source.get("renames") or {}, defaults=source.get("defaults") or {})
    change = models_source_plan(
        sources=sources,
        baseline_state=base_state,
        baseline=baseline,
        intent=intent,
        settings=project_settings,
        filenames=filenames,
    )
    return Intake(plan=change.plan, files=change.files)


def parse_submission(
    *,
    form: str,
    source: Any,
    baseline: Plan | None,
    base_state: ProjectState | None,
    engine: str,
    project_settings: dict[str, Any] | None = None,
    validate: bool = True,
) -> Intake:
    """Parse a submission of the given form on top of a baseline (None: it *is* the baseline),
    for a project of `engine`: names that engine cannot run are refused where they are used.

    With `validate`, operations-form changes are also applied to the baseline state, so a
    reference to a missing model or field fails here with its location. Automatic garbage
    collection waits until the reading is done (`changeapi.gc_pause`).
    """
    with collections_paused():
        try:
            return _parse(
                form=form,
                source=source,
                baseline=baseline,
                base_state=base_state,
                engine=engine,
                project_settings=project_settings,
                validate=validate,
            )
        finally:
            collect_now()


def _parse(
    *,
    form: str,
    source: Any,
    baseline: Plan | None,
    base_state: ProjectState | None,
    engine: str,
    project_settings: dict[str, Any] | None,
    validate: bool,
) -> Intake:
    parsed_settings = source_settings(project_settings, engine=engine)
    if form == "operations":
        limit = "SCHEMAGATE_MAX_OPERATIONS" if baseline is not None else "SCHEMAGATE_MAX_BASELINE_OPERATIONS"
        plan = parse_migration_documents(
            source,
            base_state=base_state if validate else None,
            leaves=baseline.leaf_names() if baseline else None,
            max_operations=int(getattr(settings, limit)),
            limit_setting=limit,
            engine=engine,
            max_problems=int(settings.SCHEMAGATE_MAX_REPORTED_PROBLEMS),
        )
        return Intake(plan=plan)
    if form == "migrations":
        files = _migration_files(source, parsed_settings)
        previous = list(baseline.migrations) if baseline else []
        plan = plan_history([*previous, *files], applied=[m.key for m in previous])
        if baseline is not None:
            _within_limit(plan.operation_count, "SCHEMAGATE_MAX_OPERATIONS", "operations", "/migration_files")
        if validate and base_state is not None:
            check_plan_against_state(plan, base_state, pointer="/migration_files")
        return Intake(plan=plan)
    if form == "models":
        return _models(source, baseline=baseline, base_state=base_state or ProjectState(), project_settings=parsed_settings)
    raise IntakeError(f"unknown form {form!r}; one of {', '.join(FORMS)}", Location(pointer="/form"))


def describe_intake(intake: Intake) -> list[dict[str, Any]]:
    """A JSON summary stored on the revision: each migration, its operations, and for the models
    form the migration file `makemigrations` would have written."""
    described = []
    for migration in intake.plan.migrations:
        entry: dict[str, Any] = {
            "app_label": migration.app_label,
            "name": migration.name,
            "atomic": migration.atomic,
            "dependencies": [list(d) for d in migration.dependencies],
            "operations": [_describe_operation(op) for op in migration.operations],
        }
        if migration.notes:
            entry["notes"] = list(migration.notes)
        if migration.key in intake.files:
            entry["migration_file"] = intake.files[migration.key]
        described.append(entry)
    return described


def _describe_operation(operation: Any) -> dict[str, Any]:
    described = {"type": type(operation).__name__, "description": operation.describe()}
    if isinstance(operation, DataMigrationStep):
        described["source"] = operation.source_code or ""
        described["reverse_source"] = operation.reverse_source_code or ""
    if isinstance(operation, Backfill):
        # What reviewers read of the step: the expressions as Django writes them, no code.
        described["backfill"] = {
            "model": operation.model,
            "assignments": {name: repr(expression) for name, expression in operation.assignments.items()},
            "filter": condition_text(operation.filter) if operation.filter is not None else None,
            "batch_size": operation.batch_size,
            "order_by": operation.order_by,
            "pause_ms": operation.pause_ms,
            "parity": condition_text(operation.parity) if operation.parity is not None else None,
        }
    return described
