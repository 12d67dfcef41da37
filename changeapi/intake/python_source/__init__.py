"""Intake of Python source (migration files and models modules), read by an allow-list, never run."""

from .catalog import SharedAnswers
from .config import FieldMapping, SourceLimits, SourceSettings
from .data_steps import DataMigrationStep
from .history import migration_graph, plan_history, plan_state
from .migration_files import MigrationFile, parse_migration_file, read_migration_file
from .models_source import ModelsChange, models_source_plan, proposed_project_state
from .questioner import ChangeIntent, IntentQuestioner
from .references import InertCall, InertReference, UnrunnableReferenceError

__all__ = [
    "ChangeIntent",
    "DataMigrationStep",
    "FieldMapping",
    "InertCall",
    "InertReference",
    "IntentQuestioner",
    "MigrationFile",
    "ModelsChange",
    "SourceLimits",
    "SharedAnswers",
    "SourceSettings",
    "UnrunnableReferenceError",
    "migration_graph",
    "models_source_plan",
    "parse_migration_file",
    "plan_history",
    "plan_state",
    "proposed_project_state",
    "read_migration_file",
]
