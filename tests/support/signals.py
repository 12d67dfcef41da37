"""Django's signals and admin site as they were: loading third-party apps to find their files
readies them, and a readied app connects receivers (django-axes to every login) and, through the
admin's autodiscovery, registers its models on the admin site and system checks of its own;
all outlive the loading, and the checks (run by Celery's Django fixup when it first imports
the task modules) would then look for apps no longer installed."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.contrib import admin
from django.contrib.auth import signals as auth_signals
from django.core import signals as core_signals
from django.core.checks.registry import registry
from django.db.backends import signals as backend_signals
from django.db.models import signals as model_signals
from django.dispatch import Signal


def _signals() -> list[Signal]:
    modules = (auth_signals, core_signals, backend_signals, model_signals)
    return [value for module in modules for value in vars(module).values() if isinstance(value, Signal)]


@contextmanager
def receivers_restored() -> Iterator[None]:
    """Disconnect, on leaving, every receiver connected to Django's own signals inside."""
    saved = {signal: list(signal.receivers) for signal in _signals()}
    try:
        yield
    finally:
        for signal, receivers in saved.items():
            with signal.lock:
                signal.receivers = receivers
                signal.sender_receivers_cache.clear()
                signal._dead_receivers = False


@contextmanager
def app_registrations_restored() -> Iterator[None]:
    """Drop, on leaving, every model registered on the admin site and every system check
    registered inside (django-oauth-toolkit's checks read its settings and models)."""
    admin_models = dict(admin.site._registry)
    checks = set(registry.registered_checks), set(registry.deployment_checks)
    try:
        yield
    finally:
        admin.site._registry.clear()
        admin.site._registry.update(admin_models)
        registry.registered_checks, registry.deployment_checks = checks
