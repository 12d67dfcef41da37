"""Read a proposed `models.py` into model classes of an isolated registry, without running it.

Class bodies are interpreted (fields, managers, Meta, choices) and the classes are then built
by Django's own ModelBase in a throwaway app registry, the way migrations render historical
models. Django thus applies its own rules (abstract and multi-table inheritance, Meta
inheritance, automatic primary keys, index names), and `ModelState.from_model` reads them back
exactly as `makemigrations` does. Methods, properties and signal handlers are never evaluated.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Any, NoReturn

from django.apps.registry import Apps
from django.db import models
from django.db.models.base import ModelBase
from django.db.models.fields import AutoFieldMixin
from django.db.models.manager import BaseManager
from django.db.models.options import DEFAULT_NAMES
from django.db.models.query import QuerySet

from changeapi.intake.errors import IntakeError, Location

from . import allowlist
from .config import SourceSettings
from .interpreter import Interpreter
from .parsing import is_docstring, parse_source

_CHOICES_HELPERS = ("choices", "labels", "values", "names")


class _AppStub:
    """Just enough of an AppConfig for Django's Options: the app's primary key class."""

    _is_default_auto_field_overridden = True

    def __init__(self, registry: Apps, label: str, default_auto_field: str) -> None:
        self.registry = registry
        self.label = label
        self.default_auto_field = default_auto_field

    def get_models(self, include_auto_created: bool = False, include_swapped: bool = False) -> list[Any]:
        return list(self.registry.all_models[self.label].values())


def isolated_registry() -> Apps:
    """A fresh app registry for one submission's models; the service's own registry is untouched."""
    return Apps(installed_apps=())


def install_app(registry: Apps, app_label: str, default_auto_field: type[models.Field]) -> None:
    """Give `app_label` its primary key class in `registry` (an allowed Django auto field only)."""
    if not (isinstance(default_auto_field, type) and issubclass(default_auto_field, AutoFieldMixin)):
        raise IntakeError(f"The default primary key class for {app_label} must be a Django auto field.")
    path = f"{default_auto_field.__module__}.{default_auto_field.__qualname__}"
    registry.app_configs[app_label] = _AppStub(registry, app_label, path)  # type: ignore[assignment]


@dataclass
class _Inert:
    """A class of the file that has no schema meaning: a manager, queryset or plain mixin."""

    name: str
    kind: str


@dataclass
class ModelsModule:
    """What one app's models source defines: concrete model classes and where fields are."""

    app_label: str
    models: list[type[models.Model]] = field(default_factory=list)
    # (model name lower-cased, field name) -> location, for questions the autodetector asks
    field_locations: dict[tuple[str, str], Location] = field(default_factory=dict)
    class_locations: dict[str, Location] = field(default_factory=dict)


class _IgnoredManager:
    """An instance of a manager class the file defines; its behaviour is not schema."""


IGNORED_MANAGER = _IgnoredManager()


def read_models_module(
    *,
    app_label: str,
    source: str,
    filename: str,
    registry: Apps,
    settings: SourceSettings,
    module: str | None = None,
) -> ModelsModule:
    """Build the models of `source` into `registry` under `app_label`; raise located IntakeErrors.

    `module` is the dotted path of the models module (default "<app_label>.models"); functions
    defined in it become references by that path, as `makemigrations` writes them.
    """
    module = module or f"{app_label}.models"
    parsed = parse_source(source, filename=filename, limits=settings.limits)
    interpreter = Interpreter(
        source=source, filename=filename, settings=settings, package=module.rpartition(".")[0] or app_label, module=module
    )
    reader = _Reader(interpreter, app_label=app_label, module=module, registry=registry)
    interpreter.runner.module_class_reader = lambda node: reader.read_class(node, qualname=node.name)
    interpreter.run_module(parsed)
    return reader.result


class _Reader:
    def __init__(self, interpreter: Interpreter, *, app_label: str, module: str, registry: Apps) -> None:
        self.interpreter = interpreter
        self.app_label = app_label
        self.module = module
        self.registry = registry
        self.result = ModelsModule(app_label=app_label)

    def fail(self, message: str, node: ast.AST) -> NoReturn:
        self.interpreter.fail(message, node)

    # -- classes --------------------------------------------------------------------------

    def read_class(self, node: ast.ClassDef, *, qualname: str) -> Any:
        if node.decorator_list:
            self.fail(f"class {node.name} is decorated; class decorators would run code.", node.decorator_list[0])
        if node.keywords:
            self.fail(f"class {node.name} passes keywords (such as metaclass=) to its class creation.", node)
        bases = [self.interpreter.evaluate(base) for base in node.bases]
        real = [base for base in bases if isinstance(base, type)]
        if any(issubclass(base, models.Choices) for base in real):
            return self._choices(node, real)
        if any(issubclass(base, (BaseManager, QuerySet)) for base in real) or any(
            isinstance(base, _Inert) and base.kind == "manager" for base in bases
        ):
            return self._inert(node, "manager")
        model_bases = [base for base in real if issubclass(base, models.Model)]
        if model_bases:
            return self._model(node, model_bases, qualname)
        for base, base_node in zip(bases, node.bases, strict=True):
            if not isinstance(base, _Inert) and base is not object:
                self.fail(f"class {node.name} derives from something the service cannot use as a base.", base_node)
        return self._inert(node, "mixin")

    def _inert(self, node: ast.ClassDef, kind: str) -> _Inert:
        inert = _Inert(node.name, kind)
        if kind == "manager":
            self.interpreter.local_calls[id(inert)] = (inert, lambda args, kwargs: IGNORED_MANAGER)
            as_manager = _Inert(f"{node.name}.as_manager", "manager")
            self.interpreter.local_calls[id(as_manager)] = (as_manager, lambda args, kwargs: IGNORED_MANAGER)
            self.interpreter.local_attributes[id(inert)] = (inert, {"as_manager": as_manager})
        else:
            self.interpreter.local_attributes[id(inert)] = (inert, {})
        return inert

    def _choices(self, node: ast.ClassDef, bases: list[type]) -> type:
        members: list[tuple[str, Any]] = []
        with self.interpreter.class_body() as scope:
            for statement in node.body:
                if is_docstring(statement) or isinstance(statement, (ast.Pass, ast.FunctionDef)):
                    continue
                if (
                    isinstance(statement, ast.Assign)
                    and len(statement.targets) == 1
                    and isinstance(statement.targets[0], ast.Name)
                ):
                    name = statement.targets[0].id
                    if name.startswith("_"):
                        # __empty__ and friends only change forms, never the schema.
                        continue
                    value = self.interpreter.evaluate(statement.value)
                    members.append((name, value))
                    scope[name] = value
                    continue
                self.fail("A choices class may hold only NAME = value lines.", statement)
        base = next(b for b in bases if issubclass(b, models.Choices))
        try:
            enum_class: Any = base(node.name, members)  # type: ignore[call-arg]
        except Exception as exc:  # noqa: BLE001 - Django's enum rules report the problem
            self.fail(f"class {node.name} is not a valid choices class: {exc}", node)
        attributes: dict[str, Any] = {member.name: member for member in enum_class}
        attributes.update({helper: getattr(enum_class, helper) for helper in _CHOICES_HELPERS})
        self.interpreter.local_attributes[id(enum_class)] = (enum_class, attributes)
        return enum_class

    def _model(self, node: ast.ClassDef, bases: list[type], qualname: str) -> type:
        scope: dict[str, Any] = {}
        attrs: dict[str, Any] = {}
        meta: type | None = None
        locations: dict[str, Location] = {}
        with self.interpreter.class_body(scope):
            for statement in node.body:
                if is_docstring(statement) or isinstance(statement, ast.Pass):
                    continue
                if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    continue  # methods, properties: behaviour, not schema; never evaluated
                if isinstance(statement, ast.ClassDef) and statement.name == "Meta":
                    meta = self._meta(statement)
                    continue
                if isinstance(statement, ast.ClassDef):
                    scope[statement.name] = self.read_class(statement, qualname=f"{qualname}.{statement.name}")
                    continue
                targets, value_node = _assignment(statement)
                if targets is None or value_node is None:
                    self.fail("Only fields, managers, constants, Meta and methods are read in a model class.", statement)
                value = self.interpreter.evaluate(value_node)
                for target in targets:
                    scope[target] = value
                    if isinstance(value, (models.Field, BaseManager)) or _is_private_field(value):
                        attrs[target] = value
                        locations[target] = self.interpreter.location(statement)
        return self._build(node, bases, qualname, attrs, meta, scope, locations)

    def _meta(self, node: ast.ClassDef) -> type:
        if node.decorator_list or node.keywords:
            self.fail("class Meta takes no decorators or keywords.", node)
        bases = tuple(self.interpreter.evaluate(base) for base in node.bases)
        attrs: dict[str, Any] = {}
        with self.interpreter.class_body(attrs):
            for statement in node.body:
                if is_docstring(statement) or isinstance(statement, ast.Pass):
                    continue
                targets, value_node = _assignment(statement)
                if targets is None or value_node is None:
                    self.fail("class Meta may hold only NAME = value lines.", statement)
                value = self.interpreter.evaluate(value_node)
                for target in targets:
                    attrs[target] = value
        for base, base_node in zip(bases, node.bases, strict=True):
            if not (isinstance(base, type) and base.__name__ == "Meta"):
                self.fail("class Meta may only inherit another model's Meta.", base_node)
        unknown = sorted(set(attrs) - set(DEFAULT_NAMES))
        if unknown:
            self.fail(f"class Meta has attributes Django does not know: {', '.join(unknown)}.", node)
        if attrs.get("app_label", self.app_label) != self.app_label:
            self.fail(f"Meta.app_label must be {self.app_label}, the app this source is for.", node)
        if "apps" in attrs:
            self.fail("Meta.apps cannot be set in submitted models.", node)
        return type("Meta", bases, attrs)

    def _build(
        self,
        node: ast.ClassDef,
        bases: list[type],
        qualname: str,
        attrs: dict[str, Any],
        meta: type | None,
        scope: dict[str, Any],
        locations: dict[str, Location],
    ) -> type:
        if meta is None:
            # As Python finds it: an abstract parent's Meta is inherited when none is declared.
            inherited = [getattr(base, "Meta", None) for base in bases]
            meta = next((m for m in inherited if isinstance(m, type)), None) or type("Meta", (), {})
        # The registry and app label are the service's to set; the rest is the submitted Meta.
        final_meta = type("Meta", (meta,), {"app_label": self.app_label, "apps": self.registry})
        body = {"__module__": self.module, "__qualname__": qualname, "Meta": final_meta, **attrs}
        try:
            model: Any = ModelBase(node.name, tuple(bases), body)
        except IntakeError:
            raise
        except Exception as exc:  # noqa: BLE001 - Django's model rules report the problem
            self.fail(f"class {node.name} is not a valid model: {type(exc).__name__}: {exc}", node)
        exposed = {name: value for name, value in scope.items() if not isinstance(value, (models.Field, BaseManager))}
        if model._meta.abstract:
            exposed["Meta"] = vars(model).get("Meta", final_meta)
        self.interpreter.local_attributes[id(model)] = (model, exposed)
        if not model._meta.abstract:
            self.result.models.append(model)
            self.result.class_locations[model._meta.model_name] = self.interpreter.location(node)
            for name, location in locations.items():
                self.result.field_locations[(model._meta.model_name, name)] = location
        return model


def _assignment(statement: ast.stmt) -> tuple[list[str] | None, ast.expr | None]:
    if isinstance(statement, ast.Assign) and all(isinstance(t, ast.Name) for t in statement.targets):
        return [t.id for t in statement.targets if isinstance(t, ast.Name)], statement.value
    if isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name) and statement.value:
        return [statement.target.id], statement.value
    return None, None


def _is_private_field(value: Any) -> bool:
    contribute = allowlist.allowed_objects().get("django.contrib.contenttypes.fields.GenericForeignKey")
    return contribute is not None and isinstance(value, contribute)
