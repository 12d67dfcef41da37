"""Shadow servers from settings: admin connections, the roles of shadow jobs, and server facts.

SHADOW_SERVERS lists PostgreSQL admin URLs, MySQL/MariaDB admin URLs (`mysql://`, `mariadb://`)
and SQLite directories (`sqlite:///dir`); each becomes a typed server value that says its
engine (`engine_servers` has the other engines'). A project's work goes to a server of its
engine. `configured_servers`, which PostgreSQL's provisioning, template builds and reaper use,
gives only PostgreSQL servers; the other engines have their own (`mysql_*`, `sqlite_*`).

Every shadow job (a dry-run, a template build, an access-pattern check, a bundle dry-run) runs
as a role of its own, named after the job's database and dropped with it: it owns that
database and nothing else, so one project's submitted SQL can neither see nor touch another's.
Templates and spares belong to the admin connection; the objects inside them to the owner
role, which can log in nowhere and owns no database (REASSIGN OWNED would otherwise hand its
databases over too).

The admin URL may carry a password, so a server is named everywhere else (reports, rows,
logs) by its `key`, `host:port`, never by its URL.
"""

from __future__ import annotations

import hashlib
import hmac
import random
from dataclasses import dataclass
from functools import cached_property
from typing import Any, ClassVar
from urllib.parse import urlsplit

import environ
import psycopg
from django.conf import settings
from psycopg import sql

from changeapi.shadow.engine_servers import (
    MYSQL_SCHEMES,
    SQLITE_SCHEME,
    MySqlShadowServer,
    SqliteShadowServer,
    mysql_server,
    sqlite_server,
)
from changeapi.shadow.errors import ShadowServerMisconfigured, ShadowServerUnavailable, first_line

__all__ = [
    "AnyShadowServer",
    "ShadowServer",
    "ShadowServerMisconfigured",
    "ShadowServerUnavailable",
    "configured_servers",
    "engine_not_supported",
    "first_line",
    "pick_postgresql_server",
    "pick_server",
    "server_by_key",
    "shadow_servers",
]

POSTGRESQL_SCHEMES = ("postgres", "postgresql", "pgsql", "psql")
ENGINE_NAMES = {"postgresql": "PostgreSQL", "mysql": "MySQL/MariaDB", "sqlite": "SQLite"}


@dataclass(frozen=True)
class ShadowServer:
    """A PostgreSQL server on which the service may create and drop databases."""

    url: str
    engine: ClassVar[str] = "postgresql"

    @cached_property
    def _config(self) -> dict[str, Any]:
        return dict(environ.Env.db_url_config(self.url))

    @property
    def host(self) -> str:
        return str(self._config.get("HOST") or "")

    @property
    def port(self) -> int:
        return int(self._config.get("PORT") or 5432)

    @property
    def key(self) -> str:
        """A name for the server that is safe to store and show."""
        return f"{self.host or 'local'}:{self.port}"

    @property
    def tablespace(self) -> str:
        """The tablespace its templates are built in, and so their clones and spares, as
        `?tablespace=` on the server's URL names it; empty: the server's default. Each server
        has tablespaces of its own, so this is said per server."""
        return str(self._config.get("OPTIONS", {}).get("tablespace") or "")

    @property
    def owner_role(self) -> str:
        """The role that owns the objects inside templates and spares; it cannot log in."""
        return str(settings.SHADOW_OWNER_ROLE)

    @staticmethod
    def job_role(dbname: str) -> str:
        """The role of the job whose database is `dbname` (the names move together)."""
        return f"{dbname}_job"

    def job_password(self, role: str) -> str:
        """Derived from the secret key, so every worker host knows it without storing it."""
        digest = hmac.new(settings.SECRET_KEY.encode(), f"shadow-job:{self.key}:{role}".encode(), hashlib.sha256)
        return digest.hexdigest()

    def admin_conninfo(self, dbname: str | None = None) -> dict[str, object]:
        cfg = self._config
        return {
            "host": cfg.get("HOST") or None,
            "port": self.port,
            "user": cfg.get("USER") or None,
            "password": cfg.get("PASSWORD") or None,
            "dbname": dbname or cfg.get("NAME") or "postgres",
            "connect_timeout": settings.SHADOW_CONNECT_TIMEOUT_SECONDS,
            "application_name": "schemagate-admin",
        }

    def runner_conninfo(self, dbname: str) -> dict[str, object]:
        """Connection parameters of the job role of `dbname`, with timeouts set at connect.

        The session may change its own settings; `watchdog` enforces the limits from outside.
        """
        timeouts = (
            f"-c statement_timeout={int(settings.SHADOW_STATEMENT_TIMEOUT_MS)} "
            f"-c lock_timeout={int(settings.SHADOW_LOCK_TIMEOUT_MS)} "
            "-c idle_in_transaction_session_timeout=600000"
        )
        return {
            "host": self._config.get("HOST") or None,
            "port": self.port,
            "user": self.job_role(dbname),
            "password": self.job_password(self.job_role(dbname)),
            "dbname": dbname,
            "connect_timeout": settings.SHADOW_CONNECT_TIMEOUT_SECONDS,
            "options": timeouts,
            "application_name": "schemagate-dry-run",
        }

    def admin_connect(self, dbname: str | None = None) -> psycopg.Connection:
        """An autocommit admin connection (CREATE/DROP DATABASE cannot run in a transaction),
        to the maintenance database or to `dbname`."""
        try:
            return psycopg.connect(**self.admin_conninfo(dbname), autocommit=True)  # type: ignore[arg-type]
        except psycopg.OperationalError as exc:
            raise ShadowServerUnavailable(f"shadow server {self.key} is unavailable: {first_line(exc)}") from exc

    def server_version(self) -> int:
        """The major version, e.g. 15 (server_version_num 150020 -> 15)."""
        with self.admin_connect() as conn:
            row = conn.execute("SHOW server_version_num").fetchone()
        assert row is not None
        return int(row[0]) // 10000

    def major_version(self) -> int:
        """`server_version`, asked once per process (a server's major version does not change
        under a running service; an upgrade restarts it)."""
        if self.key not in _POSTGRESQL_VERSIONS:
            _POSTGRESQL_VERSIONS[self.key] = self.server_version()
        return _POSTGRESQL_VERSIONS[self.key]

    def ensure_owner_role(self, conn: psycopg.Connection) -> None:
        """Create or reset the owner role: no login, no privileges; it only owns objects.

        Done once per process and server, under an advisory lock: concurrent ALTER ROLEs of
        one role fail with "tuple concurrently updated".
        """
        if self.key in _OWNER_ROLE_READY:
            return
        role = sql.Identifier(self.owner_role)
        conn.execute("SELECT pg_advisory_lock(hashtext('schemagate-owner-role'))")
        try:
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [self.owner_role]).fetchone()
            if not exists:
                conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(role))
            conn.execute(
                sql.SQL("ALTER ROLE {} WITH NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS").format(role)
            )
        finally:
            conn.execute("SELECT pg_advisory_unlock(hashtext('schemagate-owner-role'))")
        _OWNER_ROLE_READY.add(self.key)


_OWNER_ROLE_READY: set[str] = set()
_POSTGRESQL_VERSIONS: dict[str, int] = {}

AnyShadowServer = ShadowServer | MySqlShadowServer | SqliteShadowServer


def shadow_server(value: str) -> AnyShadowServer:
    """The typed server a SHADOW_SERVERS entry names, by its scheme.

    A malformed entry is a configuration error (ShadowServerMisconfigured); its message never
    repeats the entry, which may hold a password.
    """
    scheme = urlsplit(value).scheme.lower()
    try:
        if scheme in POSTGRESQL_SCHEMES:
            return ShadowServer(value)
        if scheme in MYSQL_SCHEMES:
            return mysql_server(value)
        if scheme == SQLITE_SCHEME:
            return sqlite_server(value)
    except ValueError as exc:
        raise ShadowServerMisconfigured(f"SHADOW_SERVERS: {exc}") from None
    known = ", ".join(f"{s}://" for s in (*POSTGRESQL_SCHEMES, *MYSQL_SCHEMES, SQLITE_SCHEME))
    raise ShadowServerMisconfigured(
        f"SHADOW_SERVERS: an entry of scheme {scheme or '(none)'!r} is not a shadow server; one of {known}"
    )


def shadow_servers() -> list[AnyShadowServer]:
    """Every configured shadow server, of every engine, in the order of SHADOW_SERVERS (an
    empty entry, as a trailing comma leaves, names none)."""
    return [shadow_server(value) for value in settings.SHADOW_SERVERS if value.strip()]


def configured_servers() -> list[ShadowServer]:
    """The configured PostgreSQL servers: the ones PostgreSQL's routines clone, dry-run, build
    templates on and reap. Servers of other engines are left out, so no PostgreSQL routine is
    ever pointed at them."""
    return [server for server in shadow_servers() if isinstance(server, ShadowServer)]


def server_by_key(key: str) -> ShadowServer:
    for server in configured_servers():
        if server.key == key:
            return server
    raise ShadowServerUnavailable(f"no shadow server {key!r} is configured")


def pick_server(*, engine: str, engine_version: int) -> AnyShadowServer:
    """The server a project's work goes to: one of its engine, of its major version if one is.

    Versions are read from the servers at first use, and only when there is a choice to make.
    Among PostgreSQL servers of the version the least loaded is taken: load is the number of
    dry-run clones a server holds now, read from its catalog, so it counts every worker on
    every host; ties are broken at random, so workers picking at the same instant spread out.
    An unreachable server is passed over while another answers. The report states the server
    version the dry-run actually ran on, so a mismatch with the project's engine version is
    visible to reviewers.
    """
    servers = [server for server in shadow_servers() if server.engine == engine]
    if not servers:
        raise ShadowServerUnavailable(
            f"no shadow server for engine {engine!r} ({ENGINE_NAMES.get(engine, engine)}) is configured (SHADOW_SERVERS)"
        )
    if len(servers) == 1:
        return servers[0]
    servers = _of_version(servers, engine_version)
    postgresql = [server for server in servers if isinstance(server, ShadowServer)]
    if len(postgresql) != len(servers):
        return random.choice(servers)
    loads: dict[ShadowServer, int] = {}
    for server in postgresql:
        try:
            loads[server] = _clones_on(server)
        except (ShadowServerUnavailable, psycopg.Error):
            continue
    if not loads:
        return servers[0]  # every server is down: the caller reports it on first contact
    lightest = min(loads.values())
    return random.choice([server for server, load in loads.items() if load == lightest])


def pick_postgresql_server(*, engine: str, engine_version: int) -> ShadowServer:
    """`pick_server`, for work only PostgreSQL servers can do yet (access patterns, schema
    snapshots and dumps, legacy baselines): a project of another engine is told that its
    configured server cannot do it."""
    server = pick_server(engine=engine, engine_version=engine_version)
    if not isinstance(server, ShadowServer):
        raise engine_not_supported(server)
    return server


def engine_not_supported(server: AnyShadowServer) -> ShadowServerUnavailable:
    """The error for work only PostgreSQL servers can do (access patterns, schema snapshots and
    dumps, legacy baselines) sent to a server of another engine."""
    return ShadowServerUnavailable(
        f"shadow server {server.key} is configured for engine {server.engine!r} ({ENGINE_NAMES.get(server.engine, server.engine)}), "
        "and Schemagate can do this only on PostgreSQL yet"
    )


def _of_version(servers: list[AnyShadowServer], engine_version: int) -> list[AnyShadowServer]:
    """The servers of `engine_version`, or all of them when none is (or none answers)."""
    matching = []
    for server in servers:
        try:
            version = server.major_version()
        except (ShadowServerUnavailable, psycopg.Error):
            continue
        if version == engine_version:
            matching.append(server)
    return matching or servers


def _clones_on(server: ShadowServer) -> int:
    """Dry-run clones on the server now (the service names them `<prefix>dr_<id>`)."""
    with server.admin_connect() as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_database WHERE starts_with(datname, %s)", [f"{settings.SHADOW_DATABASE_PREFIX}dr_"]
        ).fetchone()
    return int(row[0]) if row else 0
