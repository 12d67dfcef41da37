"""Django and raw connections to one MySQL/MariaDB shadow database, as the user of its job.

As for PostgreSQL (`dryrun.connection`), Django's schema editor needs a real `DatabaseWrapper`
registered under an alias while it runs. The session's `lock_wait_timeout` is set as it
connects, so an ALTER queued behind a metadata lock fails instead of waiting MySQL's default
of a year; the statement time limit is the user's default (`shadow.mysql_databases`), enforced
from the admin side by `shadow.mysql_watchdog`.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.db import OperationalError
from django.db.backends.base.base import BaseDatabaseWrapper

from changeapi.dryrun.connection import registered_wrapper
from changeapi.shadow.engine_servers import MySqlShadowServer
from changeapi.shadow.errors import ShadowServerUnavailable, first_line
from changeapi.shadow.mysql_databases import JobUser


def lock_wait_seconds() -> int:
    """SHADOW_LOCK_TIMEOUT_MS in whole seconds, as MySQL counts it (at least 1)."""
    return max(1, math.ceil(int(settings.SHADOW_LOCK_TIMEOUT_MS) / 1000))


def session_settings() -> str:
    """The SET a job's session starts with: metadata and row lock waits bounded."""
    seconds = lock_wait_seconds()
    return f"SET SESSION lock_wait_timeout = {seconds}, innodb_lock_wait_timeout = {seconds}"


@contextmanager
def mysql_connection(server: MySqlShadowServer, user: JobUser) -> Iterator[BaseDatabaseWrapper]:
    """Yield a connected Django MySQL wrapper on the job's database; closed and unregistered after."""
    alias = f"schemagate_shadow_{user.database}"
    settings_dict = {
        "ENGINE": "django.db.backends.mysql",
        "NAME": user.database,
        "USER": user.name,
        "PASSWORD": user.password,
        "HOST": server.host,
        "PORT": str(server.port),
        "OPTIONS": {
            "init_command": session_settings(),
            "connect_timeout": int(settings.SHADOW_CONNECT_TIMEOUT_SECONDS),
        },
    }
    with registered_wrapper(settings_dict, alias) as wrapper:
        try:
            wrapper.ensure_connection()
        except OperationalError as exc:
            raise ShadowServerUnavailable(f"shadow server {server.key} is unavailable: {first_line(exc)}") from exc
        yield wrapper


def raw_connection(server: MySqlShadowServer, user: JobUser) -> Any:
    """A second, autocommit driver connection as the same job user (for probes on a scratch copy)."""
    driver = importlib.import_module("MySQLdb")
    try:
        connection = driver.connect(
            host=server.host,
            port=server.port,
            user=user.name,
            password=user.password,
            database=user.database,
            connect_timeout=int(settings.SHADOW_CONNECT_TIMEOUT_SECONDS),
            init_command=session_settings(),
            charset="utf8mb4",
        )
    except driver.Error as exc:
        raise ShadowServerUnavailable(f"shadow server {server.key} is unavailable: {first_line(exc)}") from exc
    connection.autocommit(True)
    return connection
