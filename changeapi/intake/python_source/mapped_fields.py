"""Stand-in classes for a project's custom model fields, built on the Django base field they map to.

A stand-in has the custom class's dotted path (so deconstruction, comparisons and written
migration files name the project's class) and the base field's database behaviour (so the
dry-run makes the same columns). Nothing of the project's class is imported.
"""

from __future__ import annotations

import inspect
from typing import Any

from django.db import models

from changeapi.intake.errors import IntakeError, Location

from .config import FieldMapping


def accepted_kwargs(base: type[models.Field]) -> frozenset[str]:
    """Keyword arguments a Django field class accepts, over its whole `__init__` chain."""
    names: set[str] = set()
    for klass in base.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None or not issubclass(klass, models.Field):
            continue
        for parameter in inspect.signature(init).parameters.values():
            if parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY):
                names.add(parameter.name)
    names.discard("self")
    return frozenset(names)


# One class per (path, base, defaults, column types), so fields of the same custom class share a class.
_CLASSES: dict[tuple[str, type, str, str], type] = {}


def _stand_in_class(path: str, base: type[models.Field], defaults: dict[str, Any], db_types: dict[str, str]) -> type:
    module, _, name = path.rpartition(".")
    accepted = accepted_kwargs(base)

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        # Options only the project's class understands are kept for deconstruction (so written
        # files keep them) but never reach the base field.
        self._mapped_extra = {key: kwargs.pop(key) for key in list(kwargs) if key not in accepted}
        self._mapped_defaulted = {key for key in defaults if key not in kwargs}
        for key in self._mapped_defaulted:
            kwargs[key] = defaults[key]
        base.__init__(self, *args, **kwargs)

    def deconstruct(self: Any) -> tuple[Any, str, list[Any], dict[str, Any]]:
        field_name, _, args, kwargs = base.deconstruct(self)
        for key in self._mapped_defaulted:
            kwargs.pop(key, None)
        kwargs.update(self._mapped_extra)
        return field_name, path, list(args), kwargs

    def db_type(self: Any, connection: Any) -> str | None:
        # The custom class's own column type on this vendor, where it has one.
        return db_types.get(connection.vendor) or base.db_type(self, connection)

    return type(
        name,
        (base,),
        {
            "__module__": module,
            "__qualname__": name,
            "__init__": __init__,
            "deconstruct": deconstruct,
            "db_type": db_type,
            "mapped_from": path,
            "__doc__": f"Stand-in for {path}, stored as {base.__name__}.",
        },
    )


def mapped_field_class(path: str, mapping: FieldMapping, base: Any, location: Location) -> type:
    """The stand-in class for `path`, or a located error if the mapping names no Django field."""
    if not (isinstance(base, type) and issubclass(base, models.Field)):
        raise IntakeError(
            f"The project's field_map maps {path} to {mapping.base}, which is not a Django model field class the service knows.",
            location,
        )
    key = (path, base, repr(sorted(mapping.kwargs.items())), repr(sorted(mapping.db_types.items())))
    if key not in _CLASSES:
        _CLASSES[key] = _stand_in_class(path, base, dict(mapping.kwargs), dict(mapping.db_types))
    return _CLASSES[key]


def construct_mapped_field(
    klass: type, mapping: FieldMapping, path: str, args: list[Any], kwargs: dict[str, Any], location: Location
) -> models.Field:
    """Instantiate a stand-in, refusing unknown options when the project asked for that."""
    if mapping.unknown_kwargs == "error":
        accepted = accepted_kwargs(klass.__mro__[1])
        unknown = sorted(key for key in kwargs if key not in accepted)
        if unknown:
            raise IntakeError(
                f"{path} is mapped to {mapping.base}, which does not accept {', '.join(unknown)}; "
                "remove them or set unknown_kwargs to keep in the project's field_map.",
                location,
            )
    field: models.Field = klass(*args, **kwargs)
    return field
