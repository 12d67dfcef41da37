"""The test corpus of real migration histories: django.contrib and the third-party apps installed
by the `test` extra, read as text from site-packages with the intake settings a project using
them would set. No migration module is imported.
"""

from __future__ import annotations

from pathlib import Path

from django.apps import apps
from django.conf import settings
from django.test.utils import override_settings

from changeapi.intake.python_source.config import SourceSettings
from changeapi.intake.python_source.migration_files import MigrationFile, read_migration_file
from changeapi.intake.submission import source_settings
from tests.engine.intake.intake_support import INSTALLED_HISTORY_APPS, INSTALLED_HISTORY_MIDDLEWARE, INSTALLED_HISTORY_SETTINGS
from tests.engine.intake.third_party_apps import (
    THIRD_PARTY_DJANGO_SETTINGS,
    THIRD_PARTY_HISTORY_APPS,
    THIRD_PARTY_HISTORY_MIDDLEWARE,
    THIRD_PARTY_INTAKE_SETTINGS,
)
from tests.support.signals import app_registrations_restored, receivers_restored

HISTORY_APPS = list(dict.fromkeys([*INSTALLED_HISTORY_APPS, *THIRD_PARTY_HISTORY_APPS]))
HISTORY_MIDDLEWARE = list(dict.fromkeys([*INSTALLED_HISTORY_MIDDLEWARE, *THIRD_PARTY_HISTORY_MIDDLEWARE]))
# The app labels whose schema-changing migrations the SQL equality tests must cover.
CONTRIB_APPS = {"auth", "contenttypes", "admin", "sessions", "sites"}
THIRD_PARTY_APPS = {
    "django_celery_beat",
    "oauth2_provider",
    "account",
    "socialaccount",
    "taggit",
    "address",
    "catalogue",
    "order",
    "cms",
    "axes",
    "otp_totp",
    "waffle",
    "constance",
    "silk",
    "post_office",
    "django_q",
    "token_blacklist",
    "organizations",
    "push_notifications",
    "phonenumber",
    "two_factor_webauthn",
    "knox",
}


def history_intake_settings(engine: str = "postgresql") -> SourceSettings:
    """The settings of one project of `engine` with all these apps, as its stored
    intake_settings give them."""
    third_party = source_settings(THIRD_PARTY_INTAKE_SETTINGS)
    installed = INSTALLED_HISTORY_SETTINGS
    return SourceSettings.build(
        field_map={**installed.field_map, **third_party.field_map},
        references=dict(installed.references),
        setting_values={**installed.setting_values, **third_party.setting_values},
        default_auto_field=third_party.default_auto_field,
        operation_map=third_party.operation_map,
        installed_apps=HISTORY_APPS,
        engine=engine,
        limits=third_party.limits,
    )


def history_files(engine: str = "postgresql") -> list[MigrationFile]:
    """Every migration file of the installed apps, read as text for a project of `engine`; no
    migration module is imported."""
    files = []
    with (
        receivers_restored(),
        app_registrations_restored(),
        override_settings(MIDDLEWARE=HISTORY_MIDDLEWARE, SITE_ID=1, **THIRD_PARTY_DJANGO_SETTINGS),
    ):
        # Some apps read INSTALLED_APPS while their models are imported: set it before loading them.
        settings.INSTALLED_APPS = HISTORY_APPS
        apps.set_installed_apps(HISTORY_APPS)
        try:
            app_configs = [(config.label, config.name, Path(config.path)) for config in apps.get_app_configs()]
        finally:
            apps.unset_installed_apps()
    intake_settings = history_intake_settings(engine)
    for label, module, path in app_configs:
        listing = tuple(sorted(p.name for p in (path / "migrations").glob("*.py")))
        for file in sorted((path / "migrations").glob("[0-9]*.py")):
            files.append(
                read_migration_file(
                    app_label=label,
                    name=file.stem,
                    source=file.read_text(encoding="utf-8"),
                    filename=str(file),
                    settings=intake_settings,
                    package=f"{module}.migrations",
                    listing=listing,
                )
            )
    return files
