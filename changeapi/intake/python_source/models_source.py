"""The `models` intake form: diff proposed models source against the baseline as makemigrations would."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from django.db import migrations
from django.db.migrations.autodetector import MigrationAutodetector
from django.db.migrations.migration import Migration
from django.db.migrations.state import ModelState, ProjectState
from django.db.migrations.writer import MigrationWriter
from django.db.models.fields import AutoFieldMixin

from changeapi.intake.errors import IntakeError, Location
from changeapi.intake.plan import Plan, PlannedMigration

from . import allowlist
from .config import SourceSettings
from .history import migration_graph, plan_history
from .models_module import install_app, isolated_registry, read_models_module
from .questioner import ChangeIntent, IntentQuestioner

_DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"


@dataclass
class ModelsChange:
    """The migrations a models diff needs, their file text, and the proposed project state."""

    plan: Plan
    files: dict[tuple[str, str], str]
    state: ProjectState


def models_source_plan(
    *,
    sources: Mapping[str, str],
    baseline_state: ProjectState,
    baseline: Plan | None = None,
    intent: ChangeIntent | None = None,
    settings: SourceSettings | None = None,
    filenames: Mapping[str, str] | None = None,
    modules: Mapping[str, str] | None = None,
) -> ModelsChange:
    """What `makemigrations` would write for `sources` (app label -> proposed models.py text).

    The baseline is the project's current state and, when the baseline is a migration history,
    its `Plan`, so new migrations are numbered after each app's latest and depend on it. Apps in
    `sources` are replaced whole by their proposed models; other apps stay as in the baseline.
    Questions the autodetector has (renames, one-off defaults) are answered from `intent`, and
    anything else it would ask raises a located IntakeError. File texts are written without
    Django's timestamped header, so the same inputs give the same bytes.
    """
    settings = settings or SourceSettings()
    intent = intent or ChangeIntent()
    filenames = filenames or {}
    modules = modules or {}
    proposed_state, field_locations = proposed_project_state(
        sources=sources, baseline_state=baseline_state, settings=settings, filenames=filenames, modules=modules
    )
    graph = migration_graph(baseline.migrations if baseline else [], unmigrated_apps=_app_labels(baseline_state))
    model_names = {state.name_lower: (app_label, state.name) for (app_label, _), state in proposed_state.models.items()}
    questioner = IntentQuestioner(intent=intent, field_locations=field_locations, model_names=model_names)
    autodetector = MigrationAutodetector(baseline_state, proposed_state, questioner)
    try:
        changes = autodetector.changes(graph=graph, convert_apps=set(sources))
    except IntakeError:
        raise
    except Exception as exc:  # noqa: BLE001 - the autodetector's own objections, reported whole
        raise IntakeError(f"The models cannot be diffed against the baseline: {type(exc).__name__}: {exc}") from None
    files: dict[tuple[str, str], str] = {}
    planned: list[PlannedMigration] = []
    for app_label in sorted(changes):
        for migration in changes[app_label]:
            files[(app_label, migration.name)] = MigrationWriter(migration, include_header=False).as_string()
            planned.append(_planned(migration, settings))
    baseline_migrations = list(baseline.migrations) if baseline else []
    # Apps without migration history here (a models-snapshot baseline, or apps outside the
    # submission such as auth) are ordered like Django orders unmigrated apps: ignored.
    referenced = {dependency[0] for migration in planned for dependency in migration.dependencies}
    ordered = plan_history(
        [*baseline_migrations, *planned],
        applied=[m.key for m in baseline_migrations],
        unmigrated_apps=_app_labels(baseline_state) | _app_labels(proposed_state) | referenced,
    )
    return ModelsChange(plan=ordered, files=files, state=proposed_state)


def proposed_project_state(
    *,
    sources: Mapping[str, str],
    baseline_state: ProjectState,
    settings: SourceSettings,
    filenames: Mapping[str, str] | None = None,
    modules: Mapping[str, str] | None = None,
) -> tuple[ProjectState, dict[tuple[str, str], Location]]:
    """The baseline with each app of `sources` replaced by its proposed models.

    Also returns where each field is defined, keyed by (model name lower-cased, field name), so
    questions about a field point at its line.
    """
    filenames = filenames or {}
    modules = modules or {}
    registry = isolated_registry()
    for app_label in sources:
        install_app(registry, app_label, _default_auto_field(app_label, baseline_state, settings))
    models: dict[tuple[str, str], ModelState] = {
        key: state.clone() for key, state in baseline_state.models.items() if key[0] not in sources
    }
    field_locations: dict[tuple[str, str], Location] = {}
    for app_label, source in sources.items():
        module = read_models_module(
            app_label=app_label,
            source=source,
            filename=filenames.get(app_label, f"{app_label}/models.py"),
            registry=registry,
            settings=settings,
            module=modules.get(app_label),
        )
        for model in module.models:
            try:
                state = ModelState.from_model(model)
            except Exception as exc:  # noqa: BLE001 - reported at the class that caused it
                raise IntakeError(
                    f"The model {model.__name__} cannot be read: {type(exc).__name__}: {exc}",
                    module.class_locations.get(model._meta.model_name or ""),
                ) from None
            models[(app_label, state.name_lower)] = state
        field_locations.update(module.field_locations)
    return ProjectState(models=models, real_apps=baseline_state.real_apps), field_locations


def _default_auto_field(app_label: str, baseline_state: ProjectState, settings: SourceSettings) -> type:
    """The app's primary key class: the project's setting, else what its baseline models use."""
    if settings.default_auto_field:
        klass = allowlist.allowed_objects().get(settings.default_auto_field)
        if not (isinstance(klass, type) and issubclass(klass, AutoFieldMixin)):
            raise IntakeError(f"The project's default_auto_field {settings.default_auto_field} is not a Django auto field.")
        return klass
    for (label, _), state in sorted(baseline_state.models.items()):
        if label != app_label:
            continue
        for field in state.fields.values():
            if field.primary_key and field.auto_created and isinstance(field, AutoFieldMixin):
                return type(field)
    return allowlist.allowed_objects()[_DEFAULT_AUTO_FIELD]  # type: ignore[no-any-return]


def _planned(migration: Migration, settings: SourceSettings) -> PlannedMigration:
    dependencies: list[tuple[str, str]] = []
    for dependency in migration.dependencies:
        if dependency[0] == "__setting__":
            dependencies.append(migrations.swappable_dependency(_swappable_value(dependency[1], settings)))
        else:
            dependencies.append((dependency[0], dependency[1]))
    return PlannedMigration(
        app_label=migration.app_label,
        name=migration.name,
        operations=list(migration.operations),
        atomic=migration.atomic,
        dependencies=dependencies,
        initial=bool(migration.initial),
        replaces=list(migration.replaces),
        run_before=list(migration.run_before),
    )


def _swappable_value(setting: str, settings: SourceSettings) -> str:
    if setting == "AUTH_USER_MODEL":
        return settings.auth_user_model
    value = settings.setting_values.get(f"django.conf.settings.{setting}")
    if not isinstance(value, str):
        raise IntakeError(
            f"The models depend on the swappable setting {setting}: give its value in the project's "
            f'setting_values as "django.conf.settings.{setting}".'
        )
    return value


def _app_labels(state: ProjectState) -> set[str]:
    return {app_label for app_label, _ in state.models}
