"""Django's signals as they were: loading third-party apps to find their files readies them,
and a readied app connects receivers (django-axes to every login) that outlive the loading."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.contrib.auth import signals as auth_signals
from django.core import signals as core_signals
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
