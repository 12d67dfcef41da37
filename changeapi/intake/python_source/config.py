"""The project settings that decide what submitted Python source may refer to, and its size limits."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from changeapi.intake.engines import POSTGRESQL

# A stand-in value for a referenced project function, returned if Django ever calls it (for
# example to fill existing rows when a field with a callable default is added).
NO_STAND_IN: Any = object()


@dataclass(frozen=True)
class SourceLimits:
    """Bounds that keep hostile source from costing the service time or memory.

    Everything is checked before or while interpreting, never after: a 1 MB file of nested
    brackets is refused by the size or depth check, not by exhausting the stack.
    """

    max_bytes: int = 1_000_000
    max_depth: int = 100
    max_nodes: int = 200_000
    # Values built by `+` or `*` on sequences and strings, and integer sizes in bits.
    max_items: int = 100_000
    max_int_bits: int = 4096
    # Interpreted statements and expressions per file, functions of the file calling each
    # other, and the CPU time of reading one file.
    max_steps: int = 1_000_000
    max_call_depth: int = 20
    max_cpu_seconds: float = 10.0
    # Refusals of one file listed in one answer (the rest are counted).
    max_problems: int = 50


@dataclass(frozen=True)
class FieldMapping:
    """How a project's custom field class stands in the service: as a Django base field.

    `kwargs` are defaults for the base (submitted keyword arguments win); submitted keyword
    arguments the base does not accept are kept for writing migration files but never reach
    the base, unless `unknown_kwargs` is "error". `db_types` are the column types of the
    custom class where its `db_type()` differs from the base's, by Django vendor ("mysql",
    "sqlite", "postgresql"): a field that is `bigint unsigned` on MySQL makes that column there.
    """

    base: str
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    unknown_kwargs: str = "keep"
    db_types: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_setting(cls, value: Mapping[str, Any]) -> FieldMapping:
        db_types = value.get("db_types") or {}
        vendors = ("postgresql", "mysql", "sqlite")
        if not isinstance(db_types, Mapping) or not all(v in vendors and isinstance(t, str) and t for v, t in db_types.items()):
            raise ValueError("'db_types' maps a vendor (mysql, sqlite, postgresql) to its column type, e.g. 'bigint unsigned'")
        return cls(
            base=str(value["base"]),
            kwargs=dict(value.get("kwargs") or {}),
            unknown_kwargs=str(value.get("unknown_kwargs", "keep")),
            db_types={str(vendor): str(column) for vendor, column in db_types.items()},
        )


@dataclass(frozen=True)
class OperationMapping:
    """How a project's custom migration operation class stands in the service.

    `as_` is one of:
    - "operation": the Django operation `operation` (a dotted path on the allow-list), called
      with the same arguments: for subclasses that change only how Django runs them elsewhere;
    - "attribute": the operation the class keeps in its attribute `attribute` (read from the
      class body when the class is defined in the file);
    - "state_only": `operation`'s effect on the model state, with no SQL;
    - "data_step": no schema effect; listed in reports as a step that is not executed.
    """

    as_: str
    operation: str | None = None
    attribute: str | None = None

    KINDS = ("operation", "attribute", "state_only", "data_step")

    @classmethod
    def from_setting(cls, value: Mapping[str, Any]) -> OperationMapping:
        kind = str(value.get("as", ""))
        if kind not in cls.KINDS:
            raise ValueError(f"'as' must be one of {', '.join(cls.KINDS)}")
        operation = value.get("operation")
        attribute = value.get("attribute")
        if kind in ("operation", "state_only") and not isinstance(operation, str):
            raise ValueError(f"'as': {kind!r} needs 'operation', the dotted path of a Django operation")
        if kind == "attribute" and not isinstance(attribute, str):
            raise ValueError("'as': 'attribute' needs 'attribute', the class attribute holding the operation")
        return cls(as_=kind, operation=operation, attribute=attribute)


@dataclass(frozen=True)
class SourceSettings:
    """What one project's migration files and models source may name beyond Django itself.

    - `field_map`: dotted class path of a custom field (as the file imports it) -> base field.
    - `references`: dotted paths of project functions or classes that may be referred to but
      are never run (defaults, validators, `upload_to`), each with an optional stand-in value
      returned if Django calls it; a path ending in ".*" admits everything under a module.
    - `setting_values`: values of settings the files read, by dotted path as the file spells
      it, e.g. "allauth.app_settings.SITES_ENABLED" or "django.conf.settings.ACCOUNT_X".
    - `auth_user_model`: what `settings.AUTH_USER_MODEL` is for this project.
    - `default_auto_field`: the project's DEFAULT_AUTO_FIELD, for models source; when None, each
      app's primary key class is taken from its baseline models, else BigAutoField.
    - `operation_map`: dotted class path of a custom migration operation -> how it stands in.
    - `installed_apps`: the project's INSTALLED_APPS, for `apps.is_installed()` in files; when
      None, the apps whose migrations are submitted.
    - `engine`: the project's database engine; PostgreSQL-only names (`django.contrib.postgres`)
      are refused, each where it is used, for any other.
    """

    field_map: Mapping[str, FieldMapping] = field(default_factory=dict)
    references: Mapping[str, Any] = field(default_factory=dict)
    setting_values: Mapping[str, Any] = field(default_factory=dict)
    auth_user_model: str = "auth.User"
    default_auto_field: str | None = None
    operation_map: Mapping[str, OperationMapping] = field(default_factory=dict)
    installed_apps: frozenset[str] | None = None
    engine: str = POSTGRESQL
    limits: SourceLimits = field(default_factory=SourceLimits)

    @cached_property
    def cache_key(self) -> str:
        """Everything the settings say, as text: part of the key of each file read with them
        (the read files cache), written once per settings rather than once per file."""
        return repr(self)

    @classmethod
    def build(
        cls,
        *,
        field_map: Mapping[str, Mapping[str, Any] | FieldMapping] | None = None,
        references: Mapping[str, Any] | Collection[str] | None = None,
        setting_values: Mapping[str, Any] | None = None,
        auth_user_model: str = "auth.User",
        default_auto_field: str | None = None,
        operation_map: Mapping[str, Mapping[str, Any] | OperationMapping] | None = None,
        installed_apps: Collection[str] | None = None,
        engine: str = POSTGRESQL,
        limits: SourceLimits | None = None,
    ) -> SourceSettings:
        """Settings from plain data, as a project stores them (JSON-friendly shapes)."""
        mappings = {
            path: spec if isinstance(spec, FieldMapping) else FieldMapping.from_setting(spec)
            for path, spec in (field_map or {}).items()
        }
        if references is None:
            refs: dict[str, Any] = {}
        elif isinstance(references, Mapping):
            refs = {path: _stand_in(spec) for path, spec in references.items()}
        else:
            refs = {path: NO_STAND_IN for path in references}
        return cls(
            field_map=mappings,
            references=refs,
            setting_values=dict(setting_values or {}),
            auth_user_model=auth_user_model,
            default_auto_field=default_auto_field,
            operation_map={
                path: spec if isinstance(spec, OperationMapping) else OperationMapping.from_setting(spec)
                for path, spec in (operation_map or {}).items()
            },
            installed_apps=None if installed_apps is None else frozenset(installed_apps),
            engine=engine,
            limits=limits or SourceLimits(),
        )


def _stand_in(spec: Any) -> Any:
    # {"returns": value} names a stand-in; anything else (None, {}) means "no stand-in".
    if isinstance(spec, Mapping) and "returns" in spec:
        return spec["returns"]
    return NO_STAND_IN
