"""Helpers for intake tests: comparable forms of operations, and the installed apps' settings."""

from __future__ import annotations

import inspect
from typing import Any

from django.db import models
from django.db.migrations.operations.base import Operation
from django.db.migrations.operations.special import RunPython
from django.db.models.manager import BaseManager
from django.utils.functional import Promise

from changeapi.intake.python_source.config import SourceSettings
from changeapi.intake.python_source.data_steps import DataMigrationStep
from changeapi.intake.python_source.references import InertCall, InertReference

# Django's contrib apps and three large third-party apps (plus taggit), with their migrations.
INSTALLED_HISTORY_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.sites",
    "django.contrib.messages",
    "django.contrib.flatpages",
    "django.contrib.redirects",
    "django_celery_beat",
    "oauth2_provider",
    "allauth",
    "allauth.account",
    "allauth.socialaccount",
    "allauth.mfa",
    "allauth.usersessions",
    "allauth.idp.oidc",
    "taggit",
]
INSTALLED_HISTORY_MIDDLEWARE = ["allauth.account.middleware.AccountMiddleware"]

# What a project using these apps would configure: custom fields mapped to their base field,
# project functions referred to by path, and the settings the files read.
INSTALLED_HISTORY_SETTINGS = SourceSettings.build(
    field_map={
        "timezone_field.fields.TimeZoneField": {
            "base": "django.db.models.CharField",
            "kwargs": {"max_length": 63},
        },
        "oauth2_provider.models.ClientSecretField": {"base": "django.db.models.CharField"},
        "oauth2_provider.models.TokenChecksumField": {"base": "django.db.models.CharField"},
        "oauth2_provider.models.ResourceJSONField": {"base": "django.db.models.JSONField"},
    },
    references=[
        "oauth2_provider.generators.*",
        "django_celery_beat.validators.*",
        "django_celery_beat.models.crontab_schedule_celery_timezone",
        "allauth.idp.oidc.models.default_client_id",
        "allauth.idp.oidc.models.default_client_secret",
    ],
    setting_values={
        "allauth.app_settings.SITES_ENABLED": True,
        "oauth2_provider.settings.oauth2_settings.APPLICATION_MODEL": "oauth2_provider.Application",
        "oauth2_provider.settings.oauth2_settings.ACCESS_TOKEN_MODEL": "oauth2_provider.AccessToken",
        "oauth2_provider.settings.oauth2_settings.REFRESH_TOKEN_MODEL": "oauth2_provider.RefreshToken",
        "oauth2_provider.settings.oauth2_settings.ID_TOKEN_MODEL": "oauth2_provider.IDToken",
        "oauth2_provider.settings.oauth2_settings.GRANT_MODEL": "oauth2_provider.Grant",
    },
)


def canonical(value: Any) -> Any:
    """A plain, comparable form of an operation or any value inside one.

    Real functions and inert references both become their dotted path; RunPython code becomes
    its source text (the real function's via `inspect`, the parsed step's as recorded).
    """
    if isinstance(value, RunPython):
        return (
            "RunPython",
            _code(value.code),
            _code(value.reverse_code),
            value.atomic,
            canonical(value.hints),
            value.elidable,
        )
    if isinstance(value, Operation):
        name, args, kwargs = value.deconstruct()
        return ("operation", name, canonical(args), canonical(kwargs))
    if isinstance(value, models.Field):
        _, path, args, kwargs = value.deconstruct()
        return ("field", path, canonical(args), canonical(kwargs))
    if isinstance(value, BaseManager):
        return ("manager", canonical(list(value.deconstruct())))
    if isinstance(value, InertReference):
        return ("reference", value.path)
    if isinstance(value, InertCall):
        path, args, kwargs = value.deconstruct()
        return ("object", path, canonical(args), canonical(kwargs))
    if isinstance(value, type) or inspect.isfunction(value):
        return ("reference", f"{value.__module__}.{value.__qualname__}")
    if isinstance(value, Promise):
        return str(value)
    if hasattr(value, "deconstruct") and not isinstance(value, type):
        path, args, kwargs = value.deconstruct()
        return ("object", path, canonical(args), canonical(kwargs))
    if isinstance(value, dict):
        return ("dict", sorted((repr(k), canonical(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return (type(value).__name__ if type(value) in (list, tuple) else "tuple", [canonical(v) for v in value])
    if isinstance(value, (set, frozenset)):
        return ("set", sorted(repr(canonical(v)) for v in value))
    return value


def _code(code: Any) -> Any:
    if code is None:
        return None
    if code is RunPython.noop:
        return "noop"
    if isinstance(code, DataMigrationStep):  # pragma: no cover - codes are never steps
        return code
    source = getattr(code, "source", None)
    if source is not None:
        return source.strip()
    if inspect.isfunction(code):
        return inspect.getsource(code).strip()
    return repr(code)
