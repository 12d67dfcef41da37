"""The allow-list: every real object submitted source may name, by dotted path.

Names are looked up in this table and nowhere else; there is no generic attribute access, so a
submission can reach exactly these objects and the attributes listed here. The table holds
schema vocabulary (operations, fields, indexes, constraints, expressions, validators, deletion
handlers), a few inert values and callables (`timezone.now`, `uuid.uuid4`, date and decimal
constructors), and Django's own managers as references.
"""

from __future__ import annotations

import datetime
import decimal
import enum
import importlib
import uuid
from functools import cache
from types import FunctionType, ModuleType
from typing import Any

from django.apps import apps
from django.core import validators as core_validators
from django.core.serializers.json import DjangoJSONEncoder
from django.db import migrations, models
from django.db.migrations.operations.base import Operation
from django.db.models.constraints import BaseConstraint
from django.db.models.expressions import BaseExpression, Combinable
from django.db.models.manager import BaseManager
from django.utils import timezone

from .references import InertReference

# Modules whose schema vocabulary is scanned into the table.
_SCANNED_MODULES = (
    "django.db.migrations",
    "django.db.migrations.operations",
    "django.db.migrations.operations.fields",
    "django.db.migrations.operations.models",
    "django.db.migrations.operations.special",
    "django.db.models",
    "django.db.models.fields",
    "django.db.models.fields.related",
    "django.db.models.fields.json",
    "django.db.models.fields.files",
    "django.db.models.fields.generated",
    "django.db.models.fields.composite",
    "django.db.models.deletion",
    "django.db.models.indexes",
    "django.db.models.constraints",
    "django.db.models.expressions",
    "django.db.models.query_utils",
    "django.db.models.functions",
    "django.db.models.functions.comparison",
    "django.db.models.functions.datetime",
    "django.db.models.functions.json",
    "django.db.models.functions.math",
    "django.db.models.functions.text",
    "django.db.models.functions.window",
    "django.db.models.aggregates",
    "django.db.models.lookups",
    "django.db.models.manager",
    "django.db.models.enums",
    "django.contrib.postgres.fields",
    "django.contrib.postgres.fields.array",
    "django.contrib.postgres.fields.citext",
    "django.contrib.postgres.fields.hstore",
    "django.contrib.postgres.fields.jsonb",
    "django.contrib.postgres.fields.ranges",
    "django.contrib.postgres.indexes",
    "django.contrib.postgres.operations",
    "django.contrib.postgres.constraints",
    "django.contrib.postgres.search",
    "django.contrib.postgres.functions",
    "django.contrib.postgres.expressions",
    "django.core.validators",
    "django.contrib.auth.validators",
)

# Classes whose instances are schema vocabulary; instantiating them with literal arguments
# runs only Django's own constructors.
_SCHEMA_BASES: tuple[type, ...] = (
    models.Field,
    models.Index,
    BaseConstraint,
    BaseExpression,
    Combinable,
    models.Q,
    Operation,
    BaseManager,
    core_validators.RegexValidator,
    core_validators.BaseValidator,
    core_validators.DecimalValidator,
    core_validators.FileExtensionValidator,
    core_validators.ProhibitNullCharactersValidator,
)

_VALIDATOR_MODULES = ("django.core.validators", "django.contrib.auth.validators")

_DELETION_HANDLERS = ("CASCADE", "PROTECT", "RESTRICT", "SET", "SET_NULL", "SET_DEFAULT", "DO_NOTHING")

_CANONICAL_ROOTS = ("django.", "datetime.", "decimal.", "uuid.")

# Never instantiated from submissions: they are only ever base classes.
NOT_CALLABLE: frozenset[Any] = frozenset({models.Model, migrations.Migration})


def _identity_gettext(message: str, *args: Any) -> str:
    """Translation markers read as their untranslated text, as `makemigrations` writes them."""
    return message


def _identity_pgettext(context: str, message: str, *args: Any) -> str:
    return message


def _identity_ngettext(singular: str, plural: str, number: Any = None) -> str:
    return singular


CALLABLE_FUNCTIONS: tuple[Any, ...] = (
    migrations.swappable_dependency,
    models.SET,
    core_validators.int_list_validator,
    _identity_gettext,
    _identity_pgettext,
    _identity_ngettext,
)

_EXTRA: dict[str, Any] = {
    "django.db.migrations.swappable_dependency": migrations.swappable_dependency,
    "django.db.migrations.Migration": migrations.Migration,
    "django.db.models.Model": models.Model,
    "django.db.models.base.Model": models.Model,
    "django.db.models.NOT_PROVIDED": models.NOT_PROVIDED,
    "django.db.models.fields.NOT_PROVIDED": models.NOT_PROVIDED,
    "django.utils.timezone.now": timezone.now,
    "uuid.uuid4": uuid.uuid4,
    "uuid.uuid1": uuid.uuid1,
    "django.core.serializers.json.DjangoJSONEncoder": DjangoJSONEncoder,
    "uuid.UUID": uuid.UUID,
    "datetime.datetime": datetime.datetime,
    # Callable defaults Django calls itself when it fills existing rows; never called here.
    "datetime.datetime.now": datetime.datetime.now,
    "datetime.datetime.utcnow": datetime.datetime.utcnow,
    "datetime.date.today": datetime.date.today,
    "datetime.date": datetime.date,
    "datetime.time": datetime.time,
    "datetime.timedelta": datetime.timedelta,
    "datetime.timezone": datetime.timezone,
    "datetime.timezone.utc": datetime.UTC,
    "datetime.UTC": datetime.UTC,
    "decimal.Decimal": decimal.Decimal,
    "django.utils.translation.gettext": _identity_gettext,
    "django.utils.translation.gettext_lazy": _identity_gettext,
    "django.utils.translation.gettext_noop": _identity_gettext,
    "django.utils.translation.pgettext": _identity_pgettext,
    "django.utils.translation.pgettext_lazy": _identity_pgettext,
    "django.utils.translation.ngettext": _identity_ngettext,
    "django.utils.translation.ngettext_lazy": _identity_ngettext,
}

# Django's own managers and base models, importable only when their app is installed in the
# service; migrations name the managers (`managers=[...]`), models source names the bases.
_OPTIONAL: dict[str, tuple[str, str]] = {
    "django.contrib.auth.models.UserManager": ("django.contrib.auth.models", "UserManager"),
    "django.contrib.auth.models.PermissionManager": ("django.contrib.auth.models", "PermissionManager"),
    "django.contrib.auth.models.GroupManager": ("django.contrib.auth.models", "GroupManager"),
    "django.contrib.auth.models.BaseUserManager": ("django.contrib.auth.base_user", "BaseUserManager"),
    "django.contrib.auth.base_user.BaseUserManager": ("django.contrib.auth.base_user", "BaseUserManager"),
    "django.contrib.auth.models.AbstractUser": ("django.contrib.auth.models", "AbstractUser"),
    "django.contrib.auth.models.AbstractBaseUser": ("django.contrib.auth.base_user", "AbstractBaseUser"),
    "django.contrib.auth.base_user.AbstractBaseUser": ("django.contrib.auth.base_user", "AbstractBaseUser"),
    "django.contrib.auth.models.PermissionsMixin": ("django.contrib.auth.models", "PermissionsMixin"),
    "django.contrib.contenttypes.models.ContentTypeManager": ("django.contrib.contenttypes.models", "ContentTypeManager"),
    "django.contrib.sites.models.SiteManager": ("django.contrib.sites.models", "SiteManager"),
    "django.contrib.sites.models._simple_domain_name_validator": (
        "django.contrib.sites.models",
        "_simple_domain_name_validator",
    ),
    "django.contrib.admin.models.LogEntryManager": ("django.contrib.admin.models", "LogEntryManager"),
    "django.contrib.contenttypes.fields.GenericForeignKey": ("django.contrib.contenttypes.fields", "GenericForeignKey"),
    "django.contrib.contenttypes.fields.GenericRelation": ("django.contrib.contenttypes.fields", "GenericRelation"),
    "django.contrib.sessions.models.SessionManager": ("django.contrib.sessions.models", "SessionManager"),
    "django.contrib.sessions.base_session.BaseSessionManager": (
        "django.contrib.sessions.base_session",
        "BaseSessionManager",
    ),
}

# Attributes of instances that submissions may use, by the class that offers them.
INSTANCE_METHODS: tuple[tuple[type, frozenset[str]], ...] = (
    (BaseExpression, frozenset({"asc", "desc"})),
    (models.F, frozenset({"asc", "desc"})),
)


def _is_schema_object(value: Any) -> bool:
    if isinstance(value, type):
        if issubclass(value, _SCHEMA_BASES):
            return True
        return issubclass(value, enum.Enum) and issubclass(value, (models.Choices, models.Deferrable))
    if isinstance(value, FunctionType):
        module = getattr(value, "__module__", "")
        if module == "django.db.models.deletion":
            return value.__name__ in _DELETION_HANDLERS
        if module in _VALIDATOR_MODULES:
            return value.__name__.startswith("validate_") or value.__name__.endswith("_validator")
    return False


def _constant_attributes(klass: type) -> dict[str, Any]:
    """Class-level constants (enum members, UPPER_CASE strings) that schema code reads."""
    found: dict[str, Any] = {}
    if issubclass(klass, enum.Enum):
        found.update({member.name: member for member in klass})
    for name, value in vars(klass).items():
        if name.isupper() and isinstance(value, (str, int, enum.Enum)) and not name.startswith("_"):
            found[name] = value
    return found


def _installed_apps() -> frozenset[str]:
    return frozenset(apps.app_configs)


def allowed_objects() -> dict[str, Any]:
    """The full table, built once per set of installed apps (tests change them)."""
    return _table(_installed_apps())


@cache
def _table(installed: frozenset[str]) -> dict[str, Any]:
    table: dict[str, Any] = {}
    for module_name in _SCANNED_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        for name in dir(module):
            if name.startswith("_"):
                continue
            value = getattr(module, name)
            if isinstance(value, ModuleType):
                continue
            # Ready-made validator instances such as validate_slug are schema vocabulary too.
            ready_validator = module_name in _VALIDATOR_MODULES and name.startswith("validate_")
            if not (ready_validator or _is_schema_object(value)):
                continue
            table[f"{module_name}.{name}"] = value
    table.update(_EXTRA)
    for path, (module_name, name) in _OPTIONAL.items():
        try:
            table[path] = getattr(importlib.import_module(module_name), name)
        except (ImportError, AttributeError, RuntimeError, LookupError):
            # The app is not installed in the service, so its module cannot be imported: a
            # manager stands as a plain Manager (managers make no schema) and a function as an
            # inert reference by its path.
            if name.endswith("Manager"):
                table[path] = models.Manager
            elif not name[:1].isupper():
                table[path] = InertReference(path)
    # Allowed objects' own canonical paths, e.g. django.db.models.functions.text.Lower as
    # migration files written by MigrationWriter spell it.
    for value in list(table.values()):
        canonical = _canonical_path(value)
        if canonical and canonical.startswith(_CANONICAL_ROOTS) and canonical not in table:
            table[canonical] = value
    table["django.db.migrations.RunPython.noop"] = migrations.RunPython.noop
    table["django.db.migrations.RunSQL.noop"] = migrations.RunSQL.noop
    for path, value in list(table.items()):
        if isinstance(value, type) and issubclass(value, models.Model) and isinstance(vars(value).get("Meta"), type):
            # `class Meta(AbstractUser.Meta):` in models source
            table[f"{path}.Meta"] = vars(value)["Meta"]
        if isinstance(value, type):
            for name, constant in _constant_attributes(value).items():
                table.setdefault(f"{path}.{name}", constant)
    return table


def _canonical_path(value: Any) -> str | None:
    module = getattr(value, "__module__", None)
    qualname = getattr(value, "__qualname__", None)
    if isinstance(value, (type, FunctionType)) and isinstance(module, str) and isinstance(qualname, str):
        if "<" not in qualname:
            return f"{module}.{qualname}"
    return None


def allowed_prefixes() -> frozenset[str]:
    """Every dotted prefix of an allowed path: the module namespaces a file may import."""
    return _prefixes(_installed_apps())


@cache
def _prefixes(installed: frozenset[str]) -> frozenset[str]:
    prefixes: set[str] = set()
    for path in allowed_objects():
        parts = path.split(".")
        for end in range(1, len(parts)):
            prefixes.add(".".join(parts[:end]))
    return frozenset(prefixes)


def paths_by_identity() -> dict[int, list[str]]:
    """The paths each allowed object is known by, for attribute look-ups on it."""
    return _identities(_installed_apps())


@cache
def _identities(installed: frozenset[str]) -> dict[int, list[str]]:
    found: dict[int, list[str]] = {}
    for path, value in allowed_objects().items():
        found.setdefault(id(value), []).append(path)
    return found


def is_callable_allowed(value: Any) -> bool:
    """Allowed objects that may be called at intake: classes other than the bare bases, and a
    few pure functions. Other functions (`timezone.now`, `uuid.uuid4`, deletion handlers,
    validators) are references only: kept for Django to call later, never called here."""
    if isinstance(value, type):
        return not any(value is base for base in NOT_CALLABLE)
    return any(value is function for function in CALLABLE_FUNCTIONS)
