"""A project state that is walked forward without ever being rendered.

Django's `ProjectState.alter_field` looks for every field referencing the altered one, to know
whether the reload of rendered models may be delayed. A state with no rendered models reloads
nothing, so the answer is thrown away; on a long history that scan is a fifth of reading it
(`get_references` over every model's fields, for each AlterField), and on a dry-run's
running state, which is never rendered (only the closures cut from it are), a few
milliseconds per AlterField on a 200-model baseline. This state skips the scan while nothing
is rendered and is Django's own once something is; its clones are of its kind.
"""

from __future__ import annotations

from typing import Any

from django.db.migrations.state import ProjectState
from django.db.models.fields import NOT_PROVIDED


class UnrenderedState(ProjectState):
    """`ProjectState`, without the reference scan of `alter_field` while no apps are rendered."""

    @classmethod
    def copy_of(cls, state: ProjectState) -> UnrenderedState:
        """What `state.clone()` gives (models copied, rendered apps too if any), as this class."""
        copied = cls(models={key: model.clone() for key, model in state.models.items()}, real_apps=state.real_apps)
        if "apps" in state.__dict__:
            copied.apps = state.apps.clone()
        copied.is_delayed = state.is_delayed
        return copied

    def clone(self) -> UnrenderedState:
        return UnrenderedState.copy_of(self)

    def alter_field(self, app_label: str, model_name: str, name: str, field: Any, preserve_default: bool) -> None:
        if "apps" in self.__dict__:  # rendered: Django's reload decides what the scan is for
            super().alter_field(app_label, model_name, name, field, preserve_default)
            return
        # The rest is Django's alter_field, in the same order (a field with its relations
        # resolved moves to the end, as there).
        if not preserve_default:
            field = field.clone()
            field.default = NOT_PROVIDED
        model_key = (app_label, model_name)
        fields = self.models[model_key].fields
        if self._relations is not None:  # type: ignore[attr-defined]  # Django sets it in __init__
            old_field = fields.pop(name)
            if old_field.is_relation:
                self.resolve_model_field_relations(model_key, name, old_field)
            fields[name] = field
            if field.is_relation:
                self.resolve_model_field_relations(model_key, name, field)
        else:
            fields[name] = field
