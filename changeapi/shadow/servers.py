"""Shadow servers from settings: admin connections, the roles of shadow jobs, and server facts.

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
from typing import Any

import environ
import psycopg
from django.conf import settings
from psycopg import sql


class ShadowServerUnavailable(Exception):
    """The shadow server cannot be reached or refuses work; the dry-run fails with this reason."""


@dataclass(frozen=True)
class ShadowServer:
    """A PostgreSQL server on which the service may create and drop databases."""

    url: str

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


def first_line(exc: BaseException) -> str:
    """The first line of an error, for messages that name a server, not its URL."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def configured_servers() -> list[ShadowServer]:
    return [ShadowServer(url) for url in settings.SHADOW_SERVERS]


def server_by_key(key: str) -> ShadowServer:
    for server in configured_servers():
        if server.key == key:
            return server
    raise ShadowServerUnavailable(f"no shadow server {key!r} is configured")


def pick_server(*, engine: str, engine_version: int) -> ShadowServer:
    """The server a project's dry-runs go to: the least loaded configured PostgreSQL server.

    Load is the number of dry-run clones a server holds now, read from its catalog, so it
    counts every worker on every host; ties are broken at random, so workers picking at the
    same instant spread out. An unreachable server is passed over while another answers. The
    report states the server version the dry-run actually ran on, so a mismatch with the
    project's engine version is visible to reviewers.
    """
    if engine != "postgresql":
        raise ShadowServerUnavailable(f"no shadow server for engine {engine!r} is configured (SHADOW_SERVERS)")
    servers = configured_servers()
    if not servers:
        raise ShadowServerUnavailable("no shadow server is configured (SHADOW_SERVERS is empty)")
    if len(servers) == 1:
        return servers[0]
    loads: dict[ShadowServer, int] = {}
    for server in servers:
        try:
            loads[server] = _clones_on(server)
        except (ShadowServerUnavailable, psycopg.Error):
            continue
    if not loads:
        return servers[0]  # every server is down: the caller reports it on first contact
    lightest = min(loads.values())
    return random.choice([server for server, load in loads.items() if load == lightest])


def _clones_on(server: ShadowServer) -> int:
    """Dry-run clones on the server now (the service names them `<prefix>dr_<id>`)."""
    with server.admin_connect() as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_database WHERE starts_with(datname, %s)", [f"{settings.SHADOW_DATABASE_PREFIX}dr_"]
        ).fetchone()
    return int(row[0]) if row else 0
