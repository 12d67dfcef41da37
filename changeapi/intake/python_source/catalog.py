"""Resolve a dotted path a file names to what it stands for: Django's allow-list or project settings."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from changeapi.intake.errors import Location

from . import allowlist
from .config import FieldMapping, SourceSettings
from .references import InertReference

SETTINGS_PATH = "django.conf.settings"


@dataclass(frozen=True)
class Namespace:
    """A module (or settings object) that a file imported; only its listed attributes exist."""

    path: str


@dataclass(frozen=True)
class Unresolved:
    """A path nothing on the allow-list or in project settings answers to.

    Binding it is harmless (an import of a module only RunPython code uses is fine); using its
    value is refused, naming the path and where it was imported.
    """

    path: str
    imported_at: Location | None = None


@dataclass(frozen=True)
class MappedFieldClass:
    """A custom field class the project's field_map maps to a Django base field."""

    path: str
    mapping: FieldMapping
    base: Any


@dataclass(frozen=True)
class FunctionSource:
    """A function defined in the submitted file: text for reviewers, never a callable."""

    name: str
    source: str
    defined_at: Location


class _GetUserModel:
    """`django.contrib.auth.get_user_model`: called in models source, it gives the project's
    AUTH_USER_MODEL label (which a ForeignKey accepts), never a model class."""


GET_USER_MODEL = _GetUserModel()
_MISSING = object()


@dataclass
class Catalog:
    """Everything one project's files may name, looked up by dotted path."""

    settings: SourceSettings
    _references: dict[str, InertReference] = field(default_factory=dict)

    @cached_property
    def _wildcards(self) -> tuple[str, ...]:
        return tuple(path[:-1] for path in self.settings.references if path.endswith(".*"))

    @cached_property
    def _prefixes(self) -> frozenset[str]:
        prefixes: set[str] = {SETTINGS_PATH, "django.conf", "django", "django.contrib", "django.contrib.auth"}
        paths = [*self.settings.field_map, *self.settings.references, *self.settings.setting_values]
        for path in paths:
            parts = path.removesuffix(".*").split(".")
            end = len(parts) if path.endswith(".*") else len(parts) - 1
            for stop in range(1, end + 1):
                prefixes.add(".".join(parts[:stop]))
        return frozenset(prefixes)

    def resolve(self, path: str) -> Any:
        """The value for `path`, a Namespace for a known module prefix, or Unresolved."""
        if path in self.settings.setting_values:
            return copy.deepcopy(self.settings.setting_values[path])
        if path == f"{SETTINGS_PATH}.AUTH_USER_MODEL":
            return self.settings.auth_user_model
        if path == "django.contrib.auth.get_user_model":
            return GET_USER_MODEL
        if path in self.settings.field_map:
            mapping = self.settings.field_map[path]
            return MappedFieldClass(path, mapping, allowlist.allowed_objects().get(mapping.base))
        reference = self._reference(path)
        if reference is not None:
            return reference
        value = allowlist.allowed_objects().get(path, _MISSING)
        if value is not _MISSING:
            return value
        if path in self._prefixes or path in allowlist.allowed_prefixes():
            return Namespace(path)
        return Unresolved(path)

    def _reference(self, path: str) -> InertReference | None:
        if path in self._references:
            return self._references[path]
        if path in self.settings.references:
            stand_in = self.settings.references[path]
        else:
            prefix = next((p for p in self._wildcards if path.startswith(p)), None)
            if prefix is None:
                return None
            stand_in = self.settings.references[prefix + "*"]
        reference = InertReference(path, stand_in)
        self._references[path] = reference
        return reference

    def attribute(self, value: Any, name: str) -> Any:
        """`value.name` through the tables only, or _MISSING when nothing lists it."""
        if isinstance(value, Namespace):
            return self.resolve(f"{value.path}.{name}")
        if isinstance(value, Unresolved):
            return Unresolved(f"{value.path}.{name}", value.imported_at)
        if isinstance(value, (type, allowlist.FunctionType)):
            table = allowlist.allowed_objects()
            for path in allowlist.paths_by_identity().get(id(value), ()):
                found = table.get(f"{path}.{name}", _MISSING)
                if found is not _MISSING:
                    return found
        for klass, methods in allowlist.INSTANCE_METHODS:
            if isinstance(value, klass) and name in methods:
                return getattr(value, name)
        return _MISSING


MISSING = _MISSING
