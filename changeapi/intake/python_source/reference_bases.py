"""Models whose bases include classes known only by name (mixins of the project or a package).

Django renders a historical model with its real bases; the service has only dotted
references for bases it does not know, and never makes classes of them. Such a model keeps
the references in its state (so equality and written files name them) and is rendered on the
bases that exist: the real ones, or `models.Model` when only references remain. Mixins carry
behaviour, not columns, so the schema is the same.
"""

from __future__ import annotations

from typing import Any

from django.db import models
from django.db.migrations.operations.models import CreateModel as DjangoCreateModel
from django.db.migrations.state import ModelState

from .references import InertReference


class ReferencedBasesModelState(ModelState):
    """A model state some of whose bases are references; rendered without them."""

    def render(self, apps: Any) -> type[models.Model]:
        real = tuple(base for base in self.bases if not isinstance(base, InertReference))
        stand_in = ModelState(
            self.app_label,
            self.name,
            list(self.fields.items()),
            dict(self.options),
            real or (models.Model,),
            list(self.managers),
        )
        return stand_in.render(apps)


class CreateModel(DjangoCreateModel):
    """Django's CreateModel whose model state keeps referenced bases apart from rendering."""

    def state_forwards(self, app_label: str, state: Any) -> None:
        state.add_model(
            ReferencedBasesModelState(
                app_label,
                self.name,
                list(self.fields),
                dict(self.options),
                tuple(self.bases or ()),
                list(self.managers or ()),
            )
        )


def create_model_with_referenced_bases(operation_class: type, args: list[Any], kwargs: dict[str, Any]) -> Any:
    """Build a CreateModel; one whose bases hold references keeps them without rendering them."""
    operation = operation_class(*args, **kwargs)
    if operation_class is DjangoCreateModel and any(isinstance(base, InertReference) for base in operation.bases):
        return CreateModel(*args, **kwargs)
    return operation
