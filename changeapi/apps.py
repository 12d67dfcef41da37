"""App configuration for changeapi."""

from django.apps import AppConfig


class ChangeapiConfig(AppConfig):
    name = "changeapi"
    default_auto_field = "django.db.models.BigAutoField"
    verbose_name = "Change requests"

    def ready(self) -> None:
        # Registers the OpenAPI description of the Bearer scheme.
        from django.core import checks

        from changeapi.api import authentication  # noqa: F401
        from changeapi.checks import shadow_servers_check

        checks.register(shadow_servers_check)
