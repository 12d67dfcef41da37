"""Well-known third-party names that real migration files use, read as pure functions of settings.

Version REGISTRY_VERSION. Each entry is written here from the package's own behaviour, never
imported from it: helpers that compute a value from settings (swappable-model names, app
settings objects), the steps of the helper modules release bundles ship (`bundle_steps`), custom model fields as the Django field whose column they make, and
project callables with the value Django would get when it calls them to fill existing rows.
A project's own `field_map`, `references` and `setting_values` always win over this table.
docs/intake.md lists every entry.
"""

from __future__ import annotations

import ast
import fnmatch
import functools
import posixpath
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.db import migrations

from .bundle_steps import BACKFILL_PATH, read_backfill_call
from .config import FieldMapping, SourceSettings
from .local_objects import MISSING, SourcePath
from .references import InertReference

if TYPE_CHECKING:
    from .interpreter import Interpreter

REGISTRY_VERSION = "2026.12"
SETTINGS = "django.conf.settings."


@dataclass(frozen=True)
class RegistryFunction:
    """A third-party helper the interpreter calls as a pure function of the project's settings."""

    path: str
    function: Callable[[Interpreter, list[Any], dict[str, Any], ast.AST], Any]

    def call(self, interpreter: Interpreter, args: list[Any], kwargs: dict[str, Any], node: ast.AST) -> Any:
        return self.function(interpreter, args, kwargs, node)


def setting(settings: SourceSettings, name: str, default: Any = MISSING) -> Any:
    """A Django setting of the project as its setting_values give it, else `default`."""
    return settings.setting_values.get(SETTINGS + name, default)


def setting_default(name: str) -> Any:
    """What an installed package makes a setting default to, or MISSING."""
    return SETTING_DEFAULTS.get(name, MISSING)


def _strings(interpreter: Interpreter, args: list[Any], kwargs: dict[str, Any], node: ast.AST, *names: str) -> list[str]:
    values = list(args) + [kwargs[name] for name in names[len(args) :] if name in kwargs]
    if len(values) < len(names) or not all(isinstance(v, str) for v in values[: len(names)]):
        interpreter.fail(f"Expected {', '.join(names)} as strings.", node)
    return values


# -- swapper ------------------------------------------------------------------------------


def _swappable_setting(app_label: str, model: str) -> str:
    return f"{app_label.upper()}_{model.upper()}_MODEL"


def _swapped_model(interpreter: Interpreter, app_label: str, model: str) -> str:
    return str(setting(interpreter.settings, _swappable_setting(app_label, model), f"{app_label}.{model}"))


def _swapper_swappable_setting(interpreter: Interpreter, args: list[Any], kwargs: dict[str, Any], node: ast.AST) -> str:
    app_label, model = _strings(interpreter, args, kwargs, node, "app_label", "model")[:2]
    return _swappable_setting(app_label, model)


def _swapper_get_model_name(interpreter: Interpreter, args: list[Any], kwargs: dict[str, Any], node: ast.AST) -> str:
    app_label, model = _strings(interpreter, args, kwargs, node, "app_label", "model")[:2]
    return _swapped_model(interpreter, app_label, model)


def _swapper_is_swapped(interpreter: Interpreter, args: list[Any], kwargs: dict[str, Any], node: ast.AST) -> Any:
    app_label, model = _strings(interpreter, args, kwargs, node, "app_label", "model")[:2]
    value = _swapped_model(interpreter, app_label, model)
    return value if value != f"{app_label}.{model}" else False


def _swapper_dependency(interpreter: Interpreter, args: list[Any], kwargs: dict[str, Any], node: ast.AST) -> Any:
    app_label, model = _strings(interpreter, args, kwargs, node, "app_label", "model")[:2]
    version = args[2] if len(args) > 2 else kwargs.get("version")
    dependency = migrations.swappable_dependency(_swapped_model(interpreter, app_label, model))
    return dependency if not version else (dependency[0], version)


def _swapper_split(interpreter: Interpreter, args: list[Any], kwargs: dict[str, Any], node: ast.AST) -> Any:
    """`split("app.Model")` -> ("app", "Model"), as swapper splits a model label."""
    (label,) = _strings(interpreter, args, kwargs, node, "model")[:1]
    app_label, _, model = label.rpartition(".")
    if not app_label:
        interpreter.fail(f"{label!r} is not an app_label.ModelName label.", node)
    return (app_label, model)


def _swapper_get_model_names(interpreter: Interpreter, args: list[Any], kwargs: dict[str, Any], node: ast.AST) -> Any:
    if len(args) != 2 or not isinstance(args[0], str):
        interpreter.fail("get_model_names(app_label, models) takes an app label and model names.", node)
    return {model: _swapped_model(interpreter, args[0], str(model)) for model in interpreter.iterable(args[1], node)}


# -- Django helpers that depend only on settings -----------------------------------------


def _import_string(interpreter: Interpreter, args: list[Any], kwargs: dict[str, Any], node: ast.AST) -> Any:
    """`import_string(path)` of a path the allow-list or the project's settings know; nothing is imported."""
    (path,) = _strings(interpreter, args, kwargs, node, "dotted_path")[:1]
    return interpreter.resolve_known(path, node)


def _is_installed(interpreter: Interpreter, args: list[Any], kwargs: dict[str, Any], node: ast.AST) -> bool:
    (name,) = _strings(interpreter, args, kwargs, node, "app_name")[:1]
    installed = setting(interpreter.settings, "INSTALLED_APPS", None)
    if installed is None:
        installed = interpreter.settings.installed_apps
    if installed is None:
        interpreter.fail(
            f"apps.is_installed({name!r}) depends on the project's INSTALLED_APPS: give them as installed_apps "
            "in the project's intake settings.",
            node,
        )
    return name in installed


# -- the file's own directory, as `os.listdir(Path(__file__).parent)` reads it ----------


def _path(interpreter: Interpreter, args: list[Any], kwargs: dict[str, Any], node: ast.AST) -> Any:
    if len(args) != 1 or kwargs or not isinstance(args[0], SourcePath):
        interpreter.fail("Path() is supported only on the file's own __file__.", node)
    return args[0]


def _listdir(interpreter: Interpreter, args: list[Any], kwargs: dict[str, Any], node: ast.AST) -> list[str]:
    if len(args) != 1 or kwargs or not (isinstance(args[0], SourcePath) and args[0].is_directory):
        interpreter.fail("os.listdir() is supported only on the directory of the file itself.", node)
    return list(args[0].listing)


def _fnmatch_filter(interpreter: Interpreter, args: list[Any], kwargs: dict[str, Any], node: ast.AST) -> list[str]:
    if len(args) != 2 or kwargs or not isinstance(args[1], str):
        interpreter.fail("fnmatch.filter(names, pattern) takes names and a pattern.", node)
    names = interpreter.iterable(args[0], node)
    if not all(isinstance(name, str) for name in names):
        interpreter.fail("fnmatch.filter() takes names as strings.", node)
    return fnmatch.filter(names, args[1])


def _pure_path_function(function: Callable[..., Any]) -> Callable[[Interpreter, list[Any], dict[str, Any], ast.AST], Any]:
    def call(interpreter: Interpreter, args: list[Any], kwargs: dict[str, Any], node: ast.AST) -> Any:
        if kwargs or not args or not all(isinstance(arg, str) for arg in args):
            interpreter.fail("os.path functions take strings here.", node)
        return function(*args)

    return call


# -- django CMS ----------------------------------------------------------------------------

# cms.utils.conf.DEFAULTS (django CMS 4 and 5) for the settings with plain values.
_CMS_DEFAULTS: dict[str, Any] = {
    "TEMPLATE_INHERITANCE": True,
    "DEFAULT_X_FRAME_OPTIONS": 0,
    "TOOLBAR_SIMPLE_STRUCTURE_MODE": True,
    "PLACEHOLDER_CONF": {},
    "PERMISSION": False,
    "RAW_ID_USERS": False,
    "PUBLIC_FOR": "all",
    "APPHOOKS": [],
    "TOOLBARS": [],
    "MEDIA_PATH": "cms/",
    "PAGE_MEDIA_PATH": "cms_page_media/",
    "TITLE_CHARACTER": "+",
    "PAGE_WIZARD_DEFAULT_TEMPLATE": "INHERIT",
    "DEFAULT_IN_NAVIGATION": True,
}
_CMS_INHERIT = ("INHERIT", "Inherit the template of the nearest ancestor")


def _get_cms_setting(interpreter: Interpreter, args: list[Any], kwargs: dict[str, Any], node: ast.AST) -> Any:
    (name,) = _strings(interpreter, args, kwargs, node, "name")[:1]
    settings = interpreter.settings
    if name == "TEMPLATES":
        templates = setting(settings, "CMS_TEMPLATES")
        if templates is MISSING:
            interpreter.fail("get_cms_setting('TEMPLATES') needs the project's CMS_TEMPLATES in setting_values.", node)
        choices = [tuple(choice) for choice in templates]
        if setting(settings, "CMS_TEMPLATE_INHERITANCE", True):
            choices.append(_CMS_INHERIT)
        return choices
    value = setting(settings, f"CMS_{name}", _CMS_DEFAULTS.get(name, MISSING))
    if value is MISSING:
        interpreter.fail(f"get_cms_setting({name!r}) needs django.conf.settings.CMS_{name} in setting_values.", node)
    return value


def _social_setting_name(interpreter: Interpreter, args: list[Any], kwargs: dict[str, Any], node: ast.AST) -> str:
    """python-social-auth's setting_name("USER_MODEL") -> "SOCIAL_AUTH_USER_MODEL"."""
    if kwargs or not all(isinstance(arg, str) for arg in args):
        interpreter.fail("setting_name() takes names as strings.", node)
    return "_".join(name.upper().replace("-", "_") for name in ("SOCIAL_AUTH", *args) if name)


# -- app settings objects: a package's settings, read as attributes ------------------------


@dataclass(frozen=True)
class AppSettings:
    """A package's settings object (`knox_settings`, `oauth2_settings`): attribute -> value."""

    path: str
    read: Callable[[SourceSettings, str], Any]


def _knox_settings(settings: SourceSettings, name: str) -> Any:
    defaults = {"TOKEN_MODEL": "knox.AuthToken", "AUTH_TOKEN_CHARACTER_LENGTH": 64, "TOKEN_PREFIX": ""}
    configured = setting(settings, "REST_KNOX", {}) or {}
    return configured.get(name, defaults.get(name, MISSING))


def _oauth2_settings(settings: SourceSettings, name: str) -> Any:
    models = {"APPLICATION_MODEL", "ACCESS_TOKEN_MODEL", "ID_TOKEN_MODEL", "GRANT_MODEL", "REFRESH_TOKEN_MODEL"}
    if name not in models:
        return MISSING
    model = name.removesuffix("_MODEL").replace("_", " ").title().replace(" ", "")
    model = {"IdToken": "IDToken"}.get(model, model)
    return setting(settings, f"OAUTH2_PROVIDER_{name}", f"oauth2_provider.{model}")


def _push_notifications_settings(settings: SourceSettings) -> dict[str, Any]:
    configured = dict(setting(settings, "PUSH_NOTIFICATIONS_SETTINGS", {}) or {})
    configured.setdefault("UNIQUE_REG_ID", False)
    return configured


_APP_SETTINGS: dict[str, AppSettings] = {
    "knox.settings.knox_settings": AppSettings("knox.settings.knox_settings", _knox_settings),
    "oauth2_provider.settings.oauth2_settings": AppSettings("oauth2_provider.settings.oauth2_settings", _oauth2_settings),
}

_VALUES: dict[str, Callable[[SourceSettings], Any]] = {
    # `if TYPE_CHECKING:` blocks hold imports for type checkers only; at run time it is False.
    "typing.TYPE_CHECKING": lambda s: False,
    "push_notifications.settings.PUSH_NOTIFICATIONS_SETTINGS": _push_notifications_settings,
    "cms.constants.TEMPLATE_INHERITANCE_MAGIC": lambda s: "INHERIT",
}

_FUNCTIONS: dict[str, Callable[[Interpreter, list[Any], dict[str, Any], ast.AST], Any]] = {
    "swapper.swappable_setting": _swapper_swappable_setting,
    "swapper.get_model_name": _swapper_get_model_name,
    "swapper.is_swapped": _swapper_is_swapped,
    "swapper.dependency": _swapper_dependency,
    "swapper.get_model_names": _swapper_get_model_names,
    "swapper.split": _swapper_split,
    "django.utils.module_loading.import_string": _import_string,
    "django.apps.apps.is_installed": _is_installed,
    "cms.utils.conf.get_cms_setting": _get_cms_setting,
    "social_core.utils.setting_name": _social_setting_name,
    "pathlib.Path": _path,
    "os.listdir": _listdir,
    "fnmatch.filter": _fnmatch_filter,
    # posixpath's string functions do no I/O.
    "os.path.splitext": _pure_path_function(posixpath.splitext),
    "os.path.basename": _pure_path_function(posixpath.basename),
    "os.path.dirname": _pure_path_function(posixpath.dirname),
    "os.path.join": _pure_path_function(posixpath.join),
    # The step a release bundle's migration files import from the helper the bundle ships.
    BACKFILL_PATH: read_backfill_call,
}


# -- custom model fields, as the Django field whose column they make -----------------------


def _field(base: str, *, db_types: dict[str, str] | None = None, **kwargs: Any) -> FieldMapping:
    return FieldMapping(base=f"django.db.models.{base}", kwargs=kwargs, db_types=db_types or {})


FIELDS: dict[str, FieldMapping] = {
    # django-oscar
    "oscar.models.fields.NullCharField": _field("CharField", null=True, blank=True),
    "oscar.models.fields.UppercaseCharField": _field("CharField"),
    "oscar.models.fields.ExtendedURLField": _field("CharField", max_length=200),
    "oscar.models.fields.PositiveDecimalField": _field("DecimalField"),
    "oscar.models.fields.PhoneNumberField": _field("CharField", max_length=128),
    "oscar.models.fields.AutoSlugField": _field("SlugField", blank=True, editable=False),
    "oscar.models.fields.autoslugfield.AutoSlugField": _field("SlugField", blank=True, editable=False),
    "oscar.models.fields.slugfield.SlugField": _field("SlugField"),
    "oscar.models.fields.SlugField": _field("SlugField"),
    # django-phonenumber-field
    "phonenumber_field.modelfields.PhoneNumberField": _field("CharField", max_length=128),
    # django-organizations, django-model-utils, django-extensions
    "organizations.fields.AutoCreatedField": _field("DateTimeField", editable=False),
    "organizations.fields.AutoLastModifiedField": _field("DateTimeField", editable=False),
    "organizations.fields.SlugField": _field("SlugField", blank=True, editable=False),
    "model_utils.fields.AutoCreatedField": _field("DateTimeField", editable=False),
    "model_utils.fields.AutoLastModifiedField": _field("DateTimeField", editable=False),
    "model_utils.fields.MonitorField": _field("DateTimeField"),
    "model_utils.fields.StatusField": _field("CharField", max_length=100),
    "model_utils.fields.UUIDField": _field("UUIDField", editable=False),
    "django_extensions.db.fields.AutoSlugField": _field("SlugField", blank=True, editable=False),
    "django_extensions.db.fields.CreationDateTimeField": _field("DateTimeField", blank=True, editable=False),
    "django_extensions.db.fields.ModificationDateTimeField": _field("DateTimeField", blank=True, editable=False),
    # django-post-office, django-push-notifications, django-picklefield
    "post_office.fields.CommaSeparatedEmailField": _field("TextField", blank=True),
    # Its db_type() is unsigned on MySQL and SQLite.
    "push_notifications.fields.HexIntegerField": _field(
        "BigIntegerField", db_types={"mysql": "bigint unsigned", "sqlite": "UNSIGNED BIG INT"}
    ),
    "picklefield.fields.PickledObjectField": _field("TextField", editable=False),
    # django-timezone-field, django-countries, django-mptt, rich-text editors
    "timezone_field.fields.TimeZoneField": _field("CharField", max_length=63),
    "timezone_field.TimeZoneField": _field("CharField", max_length=63),
    "django_countries.fields.CountryField": _field("CharField", max_length=2),
    "mptt.fields.TreeForeignKey": _field("ForeignKey"),
    "mptt.fields.TreeOneToOneField": _field("OneToOneField"),
    "mptt.fields.TreeManyToManyField": _field("ManyToManyField"),
    "ckeditor.fields.RichTextField": _field("TextField"),
    "ckeditor_uploader.fields.RichTextUploadingField": _field("TextField"),
    "tinymce.models.HTMLField": _field("TextField"),
    # django CMS
    "cms.models.settingmodels.PlaceholderForeignKey": _field("ForeignKey"),
    # django-taggit, django-modelcluster (Wagtail): relations through their own models
    "taggit.managers.TaggableManager": _field("ManyToManyField"),
    "modelcluster.fields.ParentalKey": _field("ForeignKey"),
    "modelcluster.fields.ParentalManyToManyField": _field("ManyToManyField"),
    "modelcluster.contrib.taggit.ClusterTaggableManager": _field("ManyToManyField"),
    # Wagtail, easy-thumbnails, django-filer: file fields with behaviour of their own
    "wagtail.images.models.WagtailImageField": _field("ImageField"),
    "easy_thumbnails.fields.ThumbnailerField": _field("FileField"),
    "easy_thumbnails.fields.ThumbnailerImageField": _field("ImageField"),
    "filer.fields.multistorage_file.MultiStorageFileField": _field("FileField"),
    # django-autoslug; JSON fields that are Django's JSONField on PostgreSQL
    "autoslug.fields.AutoSlugField": _field("SlugField", editable=False),
    "autoslug.AutoSlugField": _field("SlugField", editable=False),
    "djstripe.fields.JSONField": _field("JSONField"),
    "social_django.fields.JSONField": _field("JSONField"),
    "actstream.jsonfield.DataField": _field("JSONField"),
    # dj-stripe
    "djstripe.fields.StripeIdField": _field("CharField", max_length=255),
    "djstripe.fields.StripeCurrencyCodeField": _field("CharField", max_length=3),
    "djstripe.fields.StripeQuantumCurrencyAmountField": _field("BigIntegerField"),
}

# Settings packages give a default to when they are installed (read as django.conf.settings.X).
SETTING_DEFAULTS: dict[str, Any] = {
    "WAGTAIL_PAGE_MODEL": "wagtailcore.Page",
}


# -- project callables Django calls to fill existing rows ---------------------------------

# Each stands for what the real function returns; values that are random in the package are a
# fixed value of the same shape here (reports say the default was computed by the service).
STAND_INS: dict[str, Callable[[SourceSettings], Any]] = {
    "oscar.core.utils.get_default_currency": lambda s: setting(s, "OSCAR_DEFAULT_CURRENCY", "GBP"),
    "django_otp.util.random_hex": lambda s: "0" * 40,
    "django_otp.plugins.otp_totp.models.default_key": lambda s: "0" * 40,
    "django_otp.plugins.otp_hotp.models.default_key": lambda s: "0" * 40,
    "django_otp.plugins.otp_email.models.default_key": lambda s: "0" * 40,
}


def lookup(path: str, settings: SourceSettings) -> Any:
    """What the registry knows `path` as, for this project's settings, or MISSING.

    A custom field comes back as its FieldMapping; the catalog makes the field class of it.
    """
    if path in _FUNCTIONS:
        return RegistryFunction(path, _FUNCTIONS[path])
    if path in _VALUES:
        return _VALUES[path](settings)
    owner, _, name = path.rpartition(".")
    if owner in _APP_SETTINGS:
        value = _APP_SETTINGS[owner].read(settings, name)
        return value
    if path in FIELDS:
        return FIELDS[path]
    if path in STAND_INS:
        return InertReference(path, STAND_INS[path](settings))
    return MISSING


@functools.cache
def prefixes() -> frozenset[str]:
    """Module paths the registry's names live under, so imports of them bind as namespaces."""
    paths = [*_FUNCTIONS, *_VALUES, *_APP_SETTINGS, *FIELDS, *STAND_INS]
    found: set[str] = set(_APP_SETTINGS)
    for path in paths:
        parts = path.split(".")
        for end in range(1, len(parts)):
            found.add(".".join(parts[:end]))
    return frozenset(found)
