"""A Django database connection to one shadow database, as the role of its job.

Django's schema editor needs a real `DatabaseWrapper` (it quotes values and introspects
constraints through it), and operations look their connection up by alias, so the wrapper is
registered in `django.db.connections` under a private alias for as long as it is used.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from django.conf import settings
from django.db import OperationalError, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.utils import load_backend

from changeapi.shadow.servers import ShadowServer, ShadowServerUnavailable, first_line
from changeapi.shadow.watchdog import statement_watchdog

# What Django's connection handler fills in for an entry of DATABASES: a wrapper made by hand
# for a shadow database needs it too.
WRAPPER_DEFAULTS: dict[str, object] = {
    "ATOMIC_REQUESTS": False,
    "AUTOCOMMIT": True,
    "CONN_MAX_AGE": 0,
    "CONN_HEALTH_CHECKS": False,
    "TIME_ZONE": None,
    "TEST": {"CHARSET": None, "COLLATION": None, "MIGRATE": False, "MIRROR": None, "NAME": None},
}


@contextmanager
def registered_wrapper(settings_dict: Mapping[str, object], alias: str) -> Iterator[BaseDatabaseWrapper]:
    """A Django wrapper for `settings_dict` (its ENGINE's backend), registered in
    `django.db.connections` under `alias` while it is used, then closed and unregistered.
    Not yet connected: the caller connects, and says what a failure to connect means."""
    backend = load_backend(str(settings_dict["ENGINE"]))
    wrapper = backend.DatabaseWrapper({**WRAPPER_DEFAULTS, **settings_dict}, alias)
    connections[alias] = wrapper
    try:
        yield wrapper
    finally:
        try:
            wrapper.close()
        finally:
            del connections[alias]


def _settings_dict(server: ShadowServer, dbname: str) -> dict[str, object]:
    info = server.runner_conninfo(dbname)
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": dbname,
        "USER": info["user"],
        "PASSWORD": info["password"],
        "HOST": info["host"] or "",
        "PORT": str(info["port"]),
        "OPTIONS": {
            # The session starts in the time zone Django wants, so connecting sends no SET.
            "options": f"{info['options']} -c TimeZone={_time_zone()}",
            "connect_timeout": info["connect_timeout"],
            "application_name": info["application_name"],
        },
    }


def _time_zone() -> str:
    """The time zone Django's PostgreSQL backend sets on a connection whose settings name none."""
    return "UTC" if settings.USE_TZ else settings.TIME_ZONE


@contextmanager
def shadow_connection(server: ShadowServer, dbname: str) -> Iterator[BaseDatabaseWrapper]:
    """Yield a connected wrapper on `dbname`; closed and unregistered afterwards.

    While it is open, the watchdog enforces the job's limits on it from outside (see `watchdog`).
    """
    alias = f"schemagate_shadow_{dbname}"
    with (
        registered_wrapper(_settings_dict(server, dbname), alias) as wrapper,
        statement_watchdog(server, server.job_role(dbname), dbname),
    ):
        try:
            wrapper.ensure_connection()
        except OperationalError as exc:
            # A server going away as the job connects is an outage, reported as one.
            raise ShadowServerUnavailable(f"shadow server {server.key} is unavailable: {first_line(exc)}") from exc
        yield wrapper
