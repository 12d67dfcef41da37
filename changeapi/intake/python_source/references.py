"""Inert stand-ins for project functions and objects that submitted source names but the service never runs."""

from __future__ import annotations

import copy
from typing import Any

from django.core.files.storage import default_storage
from django.db.migrations.serializer import BaseSerializer
from django.db.migrations.writer import MigrationWriter

from .config import NO_STAND_IN


class UnrunnableReferenceError(RuntimeError):
    """Django asked the service to call a project function it only knows by name."""


def _dotted_path_of(value: Any) -> str | None:
    module = getattr(value, "__module__", None)
    qualname = getattr(value, "__qualname__", None)
    if isinstance(module, str) and isinstance(qualname, str):
        return f"{module}.{qualname}"
    return None


class InertReference:
    """A project function or class known only by its dotted path, e.g. a default or validator.

    It compares equal to the real object at that path, so a state built from submitted text
    equals one Django would load from the installed project. Calling it returns the stand-in
    the project configured (Django calls a callable default once when a field is added) or
    raises: the service never imports or runs project code.
    """

    def __init__(self, path: str, stand_in: Any = NO_STAND_IN) -> None:
        self.path = path
        self.stand_in = stand_in
        module, _, name = path.rpartition(".")
        self.__module__ = module
        self.__qualname__ = name
        self.__name__ = name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.stand_in is NO_STAND_IN:
            raise UnrunnableReferenceError(
                f"{self.path} is project code that the service does not run; give it a stand-in "
                f'value in the project\'s references setting, e.g. {{"{self.path}": {{"returns": ...}}}}.'
            )
        return copy.deepcopy(self.stand_in)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, InertReference):
            return self.path == other.path
        if callable(other) and not isinstance(other, InertCall):
            return self.path == _dotted_path_of(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(("InertReference", self.path))

    def __repr__(self) -> str:
        return f"<reference {self.path}>"


class InertCall:
    """A call of an inert reference, e.g. `myapp.validators.Prefix("x")`, kept as its parts.

    It deconstructs like Django's `@deconstructible` objects, so `MigrationWriter` writes it
    back as the same call and comparisons use path and arguments.
    """

    def __init__(self, reference: InertReference, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self.reference = reference
        self.args = args
        self.kwargs = kwargs

    def deconstruct(self) -> tuple[str, tuple[Any, ...], dict[str, Any]]:
        return (self.reference.path, self.args, self.kwargs)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise UnrunnableReferenceError(f"{self.reference.path}(...) is project code that the service does not run.")

    def __eq__(self, other: object) -> bool:
        if isinstance(other, InertCall):
            return self.deconstruct() == other.deconstruct()
        deconstruct = getattr(other, "deconstruct", None)
        if callable(deconstruct):
            try:
                path, args, kwargs = deconstruct()
            except (TypeError, ValueError):
                return False
            return (path, tuple(args), dict(kwargs)) == self.deconstruct()
        return NotImplemented

    def __hash__(self) -> int:
        return hash(("InertCall", self.reference.path, len(self.args)))

    def __repr__(self) -> str:
        return f"<call of {self.reference.path}>"


class InertReferenceSerializer(BaseSerializer):
    """Write a reference as Django writes a function: its dotted path and an import."""

    def serialize(self) -> tuple[str, set[str]]:
        module = self.value.path.rpartition(".")[0]
        return self.value.path, {f"import {module}"} if module else set()


MigrationWriter.register_serializer(InertReference, InertReferenceSerializer)


class _ReferencedStorage(InertReference):
    """A callable storage a FileField names by path.

    Django calls a callable storage when the field is made; the schema never depends on it,
    so the call gives Django's default storage, and the field still writes the reference.
    """

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return default_storage


class _ReferencedStorageCall(InertCall):
    """A storage instance of a project class (`storage=PrivateStorage()`), kept as its call."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return default_storage


def referenced_storage(storage: Any) -> Any:
    """The storage to give a FileField: a stand-in for a referenced one, the value itself otherwise."""
    if isinstance(storage, (_ReferencedStorage, _ReferencedStorageCall)):
        return storage
    if isinstance(storage, InertReference):
        return _ReferencedStorage(storage.path)
    if isinstance(storage, InertCall):
        return _ReferencedStorageCall(storage.reference, storage.args, storage.kwargs)
    return storage
