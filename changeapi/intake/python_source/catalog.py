"""Resolve a dotted path a file names to what it stands for: Django's allow-list or project settings."""

from __future__ import annotations

import copy
import difflib
import functools
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from django.conf import global_settings

from changeapi.intake.errors import Location

from . import allowlist, registry
from .config import FieldMapping, SourceSettings
from .local_objects import MISSING
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


class _GetUserModel:
    """`django.contrib.auth.get_user_model`: called in models source, it gives the project's
    AUTH_USER_MODEL label (which a ForeignKey accepts), never a model class."""


GET_USER_MODEL = _GetUserModel()


@dataclass(frozen=True)
class ModelMeta:
    """The `_meta` names files read of a model they know only by label (`get_user_model()._meta`)."""

    app_label: str
    object_name: str

    @property
    def model_name(self) -> str:
        return self.object_name.lower()

    @property
    def label(self) -> str:
        return f"{self.app_label}.{self.object_name}"

    @property
    def label_lower(self) -> str:
        return self.label.lower()


class ModelLabel(str):
    """A model named by its "app_label.ModelName" label, as ForeignKey(to=...) accepts it, with a
    `_meta` of its names; what `get_user_model()` gives in submitted source."""

    __slots__ = ()

    @property
    def meta(self) -> ModelMeta:
        app_label, _, object_name = self.partition(".")
        return ModelMeta(app_label, object_name)


_MISSING = MISSING


@dataclass
class SharedAnswers:
    """What paths resolve to on the allow-list `table`, or as modules and unknown names: the
    same answer every time for one project's settings, whichever file asks, so the catalogs of
    a submission's files share them and each path is resolved once per submission. Answers
    that depend on the asking file (its references) or are copies (setting values) are not kept.
    """

    settings: SourceSettings
    table: dict[str, Any]
    paths: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def for_settings(cls, settings: SourceSettings) -> SharedAnswers:
        return cls(settings, allowlist.allowed_objects())


@dataclass
class Catalog:
    """Everything one project's files may name, looked up by dotted path."""

    settings: SourceSettings
    # Answers shared with the catalogs of the other files of a submission (same settings).
    shared: SharedAnswers | None = None
    _references: dict[str, InertReference] = field(default_factory=dict)

    @cached_property
    def _answers(self) -> SharedAnswers:
        shared = self.shared
        if shared is not None and shared.settings is self.settings and shared.table is self._table:
            return shared
        return SharedAnswers(self.settings, self._table)

    @cached_property
    def _wildcards(self) -> tuple[str, ...]:
        return tuple(path[:-1] for path in self.settings.references if path.endswith(".*"))

    @cached_property
    def _prefixes(self) -> frozenset[str]:
        return _settings_prefixes((*self.settings.field_map, *self.settings.references, *self.settings.setting_values))

    @cached_property
    def _table(self) -> dict[str, Any]:
        # Looked up once per catalog (one file's reading): the table follows the installed apps.
        return allowlist.allowed_objects()

    @cached_property
    def _identities(self) -> dict[int, list[str]]:
        return allowlist.paths_by_identity()

    def is_allowed_object(self, value: Any) -> bool:
        """Whether `value` itself is on the allow-list (by identity, under any of its paths)."""
        return id(value) in self._identities

    def close_names(self, path: str) -> list[str]:
        """Known paths in the same module as `path` whose last name is a near miss of its own
        (`models.EmailFeld` -> `models.EmailField`), best first: the hint of a refusal."""
        module, _, name = path.rpartition(".")
        if not module:
            return []
        known = [*allowlist.allowed_objects(), *self.settings.field_map, *self.settings.references]
        siblings = {candidate.rpartition(".")[2]: candidate for candidate in known if candidate.rpartition(".")[0] == module}
        return [siblings[close] for close in difflib.get_close_matches(name, list(siblings), n=3, cutoff=0.75)]

    def resolve(self, path: str) -> Any:
        """The value for `path`, a Namespace for a known module prefix, or Unresolved."""
        # A path this file made a reference of (`reference`) is answered by it from then on.
        found = self._answers.paths.get(path, _MISSING) if path not in self._references else _MISSING
        if found is not _MISSING:
            return found
        if path in self.settings.setting_values:
            return copy.deepcopy(self.settings.setting_values[path])
        if path == _AUTH_USER_MODEL:
            return self.settings.auth_user_model
        if path == _DEFAULT_AUTO_FIELD and self.settings.default_auto_field:
            return self.settings.default_auto_field
        default = _django_default(path)
        if default is not _MISSING:
            return default
        if path == "django.contrib.auth.get_user_model":
            return GET_USER_MODEL
        if path in self.settings.field_map:
            mapping = self.settings.field_map[path]
            return MappedFieldClass(path, mapping, allowlist.allowed_objects().get(mapping.base))
        reference = self._reference(path)
        if reference is not None:
            return reference
        value = self._table.get(path, _MISSING)
        if value is not _MISSING:
            self._answers.paths[path] = value
            return value
        known = registry.lookup(path, self.settings)
        if isinstance(known, FieldMapping):
            return MappedFieldClass(path, known, allowlist.allowed_objects().get(known.base))
        if known is not MISSING:
            return known
        if path in self._prefixes or path in allowlist.allowed_prefixes() or path in registry.prefixes():
            answer: Namespace | Unresolved = Namespace(path)
        else:
            answer = Unresolved(path)
        # Both frozen: the same object can answer the next look-up of the path.
        self._answers.paths[path] = answer
        return answer

    def reference(self, path: str) -> InertReference:
        """An inert reference to `path`: with the project's stand-in if it configured one."""
        found = self._reference(path)
        if found is None:
            found = InertReference(path)
            self._references[path] = found
        return found

    def _reference(self, path: str) -> InertReference | None:
        if path in self._references:
            return self._references[path]
        if path in self.settings.references:
            stand_in = self.settings.references[path]
        else:
            if not path.startswith(self._wildcards):
                return None
            prefix = next(p for p in self._wildcards if path.startswith(p))
            stand_in = self.settings.references[prefix + "*"]
        reference = InertReference(path, stand_in)
        self._references[path] = reference
        return reference

    def attribute(self, value: Any, name: str) -> Any:
        """`value.name` through the tables only, or _MISSING when nothing lists it."""
        if isinstance(value, Namespace):
            return self.resolve(f"{value.path}.{name}")
        if isinstance(value, Unresolved):
            # `from pkg.models import Page` then `Page.CHOICES`: the longer path may be known.
            found = self.resolve(f"{value.path}.{name}")
            return Unresolved(found.path, value.imported_at) if isinstance(found, Unresolved) else found
        if isinstance(value, (type, allowlist.FunctionType)):
            table = self._table
            for path in self._identities.get(id(value), ()):
                found = table.get(f"{path}.{name}", _MISSING)
                if found is not _MISSING:
                    return found
        for klass, methods in allowlist.INSTANCE_METHODS:
            if isinstance(value, klass) and name in methods:
                return getattr(value, name)
        return _MISSING


_AUTH_USER_MODEL = f"{SETTINGS_PATH}.AUTH_USER_MODEL"
_DEFAULT_AUTO_FIELD = f"{SETTINGS_PATH}.DEFAULT_AUTO_FIELD"


@functools.lru_cache(maxsize=64)
def _settings_prefixes(paths: tuple[str, ...]) -> frozenset[str]:
    """The module prefixes a project's configured paths live under, so imports of them bind
    as namespaces: made once per set of paths, not once per file read."""
    prefixes: set[str] = {SETTINGS_PATH, "django.conf", "django", "django.contrib", "django.contrib.auth"}
    for path in paths:
        parts = path.removesuffix(".*").split(".")
        end = len(parts) if path.endswith(".*") else len(parts) - 1
        for stop in range(1, end + 1):
            prefixes.add(".".join(parts[:stop]))
    return frozenset(prefixes)


def _django_default(path: str) -> Any:
    """Django's default for one of its own settings read through django.conf.settings (or a
    well-known package's, from the registry), or _MISSING."""
    prefix = f"{SETTINGS_PATH}."
    if not path.startswith(prefix):
        return _MISSING
    name = path[len(prefix) :]
    if not name.isupper():
        return _MISSING
    if hasattr(global_settings, name):
        return copy.deepcopy(getattr(global_settings, name))
    default = registry.setting_default(name)
    return _MISSING if default is MISSING else copy.deepcopy(default)
