"""The autodetector's questioner for a service: answers from the request's intent, never prompts or exits."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.db.migrations.questioner import MigrationQuestioner
from django.db.migrations.state import ModelState

from changeapi.intake.errors import IntakeError, Location


@dataclass(frozen=True)
class ChangeIntent:
    """What the submitter said about their change, which source text cannot tell.

    - `model_renames`: {"app.OldModel": "NewModel"}
    - `field_renames`: {"app.Model.old_field": "new_field"}
    - `one_off_defaults`: {"app.Model.field": value} for existing rows when a NOT NULL field is
      added or a field becomes NOT NULL, as `makemigrations` asks interactively.
    """

    model_renames: Mapping[str, str] = field(default_factory=dict)
    field_renames: Mapping[str, str] = field(default_factory=dict)
    one_off_defaults: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def build(
        cls, *, renames: Mapping[str, Mapping[str, str]] | None = None, defaults: Mapping[str, Any] | None = None
    ) -> ChangeIntent:
        """From the request's shape: renames={"models": {...}, "fields": {...}}, defaults={...}."""
        renames = renames or {}
        return cls(
            model_renames={k.lower(): v for k, v in (renames.get("models") or {}).items()},
            field_renames={k.lower(): v for k, v in (renames.get("fields") or {}).items()},
            one_off_defaults={k.lower(): v for k, v in (defaults or {}).items()},
        )


class IntentQuestioner(MigrationQuestioner):
    """Answers what Django's interactive questioner would ask, from intent or by refusing.

    Every app is treated as wanting an initial migration when it has none (the apps are not
    installed in the service, where Django's default answer silently drops their changes),
    nothing reads standard input, and nothing calls `sys.exit`.
    """

    def __init__(
        self,
        *,
        intent: ChangeIntent,
        field_locations: Mapping[tuple[str, str], Location],
        model_names: Mapping[str, tuple[str, str]] | None = None,
    ) -> None:
        super().__init__(defaults={}, specified_apps=set(), dry_run=True)
        self.intent = intent
        # (model name lower-cased, field name) -> where the submission defines it
        self.field_locations = field_locations
        # model name lower-cased -> (app label, model name as written), to name a renames entry
        self.model_names = model_names or {}
        # (model name lower-cased, new field name) -> the removed field the autodetector offered
        # as its old name and the intent did not confirm: the likely rename behind a refusal.
        self.declined_renames: dict[tuple[str, str], str] = {}

    def ask_initial(self, app_label: str) -> bool:
        return True

    def ask_merge(self, app_label: str) -> bool:
        return False

    def ask_rename_model(self, old_model_state: ModelState, new_model_state: ModelState) -> bool:
        wanted = self.intent.model_renames.get(f"{old_model_state.app_label}.{old_model_state.name}".lower())
        return wanted is not None and wanted.lower() == new_model_state.name.lower()

    def ask_rename(self, model_name: str, old_name: str, new_name: str, field_instance: Any) -> bool:
        for key, wanted in self.intent.field_renames.items():
            _, _, rest = key.partition(".")
            model, _, old = rest.rpartition(".")
            if model == model_name.lower() and old == old_name.lower() and wanted == new_name:
                return True
        self.declined_renames.setdefault((model_name.lower(), new_name), old_name)
        return False

    def ask_not_null_addition(self, field_name: str, model_name: str) -> Any:
        return self._one_off_default(
            field_name,
            model_name,
            f"The field {model_name}.{field_name} is added as NOT NULL without a default, so existing "
            "rows need a value: give the field a default, make it null=True, or send a one-off default "
            "for existing rows in the request's defaults.",
        )

    def ask_not_null_alteration(self, field_name: str, model_name: str) -> Any:
        return self._one_off_default(
            field_name,
            model_name,
            f"The field {model_name}.{field_name} changes from nullable to NOT NULL, so existing NULLs "
            "need a value: send a one-off default for them in the request's defaults, or give the field "
            "a default.",
        )

    def ask_auto_now_add_addition(self, field_name: str, model_name: str) -> Any:
        return self._one_off_default(
            field_name,
            model_name,
            f"The field {model_name}.{field_name} is added with auto_now_add, so existing rows need a "
            "value: send a one-off default for them in the request's defaults.",
        )

    def ask_unique_callable_default_addition(self, field_name: str, model_name: str) -> None:
        # Django only warns here (all rows get the same value); the dry-run reports the outcome.
        return None

    def _one_off_default(self, field_name: str, model_name: str, message: str) -> Any:
        for key, value in self.intent.one_off_defaults.items():
            _, _, rest = key.partition(".")
            model, _, name = rest.rpartition(".")
            if model == model_name.lower() and name == field_name.lower():
                return value
        location = self.field_locations.get((model_name.lower(), field_name))
        old_name = self.declined_renames.get((model_name.lower(), field_name))
        if old_name is None:
            raise IntakeError(message, location)
        entry = self._field_rename_entry(model_name, old_name, field_name)
        raise IntakeError(
            f"{message} If {old_name} was renamed to {field_name}, say so in models.renames: "
            f'{{"fields": {{"{entry[0]}": "{entry[1]}"}}}} (a field is renamed only when the request says so).',
            location,
            suggestion={"renames": {"fields": {entry[0]: entry[1]}}},
        )

    def _field_rename_entry(self, model_name: str, old_name: str, new_name: str) -> tuple[str, str]:
        """The `renames.fields` entry that confirms a rename: ("app.Model.old", "new")."""
        app_label, model = self.model_names.get(model_name.lower(), ("<app>", model_name))
        return f"{app_label}.{model}.{old_name}", new_name
