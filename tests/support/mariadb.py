"""The local MariaDB the MySQL/MariaDB tests use (root without a password at 127.0.0.1:3306,
started by `make services`): its shadow server value, and Django connections to its databases."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db.backends.base.base import BaseDatabaseWrapper

from changeapi.dryrun.connection import registered_wrapper
from changeapi.shadow.engine_servers import MySqlShadowServer

MARIADB_URL = os.environ.get("TEST_MARIADB_URL", "mysql://root@127.0.0.1:3306/")
MARIADB = MySqlShadowServer(MARIADB_URL)


def database_settings(name: str) -> dict[str, Any]:
    """Django's DATABASES entry for database `name` on the local MariaDB."""
    return {
        "ENGINE": "django.db.backends.mysql",
        "NAME": name,
        "USER": MARIADB.user,
        "PASSWORD": MARIADB.password,
        "HOST": MARIADB.host,
        "PORT": str(MARIADB.port),
    }


def recreate_database(name: str) -> None:
    connection = MARIADB.admin_connect()
    try:
        cursor = connection.cursor()
        cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
        cursor.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    finally:
        connection.close()


def drop_database(name: str) -> None:
    connection = MARIADB.admin_connect()
    try:
        connection.cursor().execute(f"DROP DATABASE IF EXISTS `{name}`")
    finally:
        connection.close()


@contextmanager
def mariadb_connection(name: str) -> Iterator[BaseDatabaseWrapper]:
    """A Django MySQL connection to database `name`, registered under an alias of its own (as
    operations look their connection up by alias) while it is used."""
    with registered_wrapper({**database_settings(name), "OPTIONS": {}}, f"test_mariadb_{name}") as wrapper:
        wrapper.ensure_connection()
        yield wrapper
