"""Shadow servers of the engines other than PostgreSQL: MySQL/MariaDB admin URLs and SQLite
directories, as typed values that say their engine and read their major version once.

They are configured in SHADOW_SERVERS beside the PostgreSQL servers, so a project of their
engine is sent to one of them; their engines clone and dry-run on them (`dryrun/mysql_run.py`,
`dryrun/sqlite_run.py`), and PostgreSQL's routines never see them.

As for PostgreSQL, an admin URL may carry a password: a server is named everywhere else by its
`key`, never by its URL.
"""

from __future__ import annotations

import importlib
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import unquote, urlsplit

from django.conf import settings

from changeapi.shadow.errors import ShadowServerUnavailable, first_line

MYSQL_SCHEMES = ("mysql", "mariadb")
SQLITE_SCHEME = "sqlite"

# Major versions read from each server, by key: a server is asked once per process.
_VERSIONS: dict[str, tuple[str, int]] = {}


@dataclass(frozen=True)
class MySqlShadowServer:
    """A MySQL or MariaDB server on which the service may create and drop databases.

    `mysql://` and `mariadb://` URLs mean the same: which of the two a server is (its `flavor`)
    is read from the server itself, with its version, because a URL can be wrong about it.
    """

    url: str
    engine: ClassVar[str] = "mysql"

    def _parts(self) -> Any:
        return urlsplit(self.url)

    @property
    def host(self) -> str:
        return self._parts().hostname or "127.0.0.1"

    @property
    def port(self) -> int:
        return self._parts().port or 3306

    @property
    def user(self) -> str:
        return unquote(self._parts().username or "root")

    @property
    def password(self) -> str:
        return unquote(self._parts().password or "")

    @property
    def key(self) -> str:
        """A name for the server that is safe to store and show."""
        return f"mysql:{self.host}:{self.port}"

    def admin_connect(self) -> Any:
        """An autocommit admin connection (MySQL's DDL commits on its own anyway).

        The driver is imported here, not with the module: it is the optional `mysql` extra,
        and a service with only PostgreSQL shadows runs without it.
        """
        try:
            driver = importlib.import_module("MySQLdb")
        except ImportError as exc:
            raise ShadowServerUnavailable(
                f"shadow server {self.key} needs the MySQL driver: install schemagate's `mysql` extra (mysqlclient)"
            ) from exc
        try:
            connection = driver.connect(
                host=self.host,
                port=self.port,
                user=self.user,
                password=self.password,
                connect_timeout=int(settings.SHADOW_CONNECT_TIMEOUT_SECONDS),
            )
        except driver.Error as exc:
            raise ShadowServerUnavailable(f"shadow server {self.key} is unavailable: {first_line(exc)}") from exc
        connection.autocommit(True)
        return connection

    def _read_version(self) -> tuple[str, int]:
        connection = self.admin_connect()
        try:
            cursor = connection.cursor()
            cursor.execute("SELECT VERSION()")
            row = cursor.fetchone()
        finally:
            connection.close()
        text = str(row[0]) if row else ""
        flavor = "mariadb" if "mariadb" in text.lower() else "mysql"
        try:
            return flavor, int(text.split(".", 1)[0])
        except ValueError:
            raise ShadowServerUnavailable(f"shadow server {self.key} reports no version Schemagate can read") from None

    def major_version(self) -> int:
        """The major version (MariaDB 10.11.19 -> 10, MySQL 8.0.36 -> 8), read at first use."""
        return _version(self.key, self._read_version)[1]

    def flavor(self) -> str:
        """ "mariadb" or "mysql", as the server says in its version, read at first use."""
        return _version(self.key, self._read_version)[0]


@dataclass(frozen=True)
class SqliteShadowServer:
    """A directory where the service may create and delete SQLite shadow database files.

    Configured as `sqlite:///absolute/directory`. Its version is the SQLite library this
    process links (Python's sqlite3 module), which is what Django would run the project on.
    """

    directory: Path
    engine: ClassVar[str] = "sqlite"

    @property
    def key(self) -> str:
        return f"sqlite:{self.directory}"

    def ensure_usable(self) -> None:
        """The directory exists and this process may write in it, or the server is unavailable."""
        if not self.directory.is_dir() or not os.access(self.directory, os.W_OK | os.X_OK):
            raise ShadowServerUnavailable(f"shadow server {self.key} is unavailable: not a writable directory")

    def major_version(self) -> int:
        """SQLite's major version (3), read at first use."""
        return _version(self.key, lambda: ("sqlite", sqlite3.sqlite_version_info[0]))[1]


def _version(key: str, read: Any) -> tuple[str, int]:
    if key not in _VERSIONS:
        _VERSIONS[key] = read()
    return _VERSIONS[key]


def mysql_server(url: str) -> MySqlShadowServer:
    """A MySQL/MariaDB server from its admin URL, `mysql://user:password@host:port/`."""
    parts = urlsplit(url)
    # Reading `port` raises ValueError for one that is not a number, here rather than at first use.
    if parts.scheme not in MYSQL_SCHEMES or not parts.hostname or parts.port == 0:
        raise ValueError("a MySQL/MariaDB shadow server is given as mysql://user:password@host:port/ (or mariadb://)")
    return MySqlShadowServer(url)


def sqlite_server(url: str) -> SqliteShadowServer:
    """A SQLite shadow directory from `sqlite:///absolute/directory`."""
    parts = urlsplit(url)
    directory = Path(unquote(parts.path))
    if parts.scheme != SQLITE_SCHEME or parts.netloc or not directory.is_absolute():
        raise ValueError("a SQLite shadow server is given as sqlite:///absolute/directory")
    return SqliteShadowServer(directory)
