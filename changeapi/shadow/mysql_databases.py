"""Databases and job users on a MySQL/MariaDB shadow server: templates, clones, warm spares.

There is no `CREATE DATABASE … TEMPLATE` on these servers, so a clone is made table by table:
`CREATE TABLE clone.t LIKE tpl.t`, `INSERT INTO clone.t SELECT … FROM tpl.t`, then the foreign
keys (which `LIKE` does not copy) with foreign key checks off, so adding them copies nothing.
That costs time in proportion to the seed rows, so spares are copied ahead of the dry-runs
that take them; a spare is claimed by dropping its marker table, which only one session can do.

Every job runs as a user of its own, granted privileges on its one database and dropped with
it; its statement time is capped on the user itself (`MAX_STATEMENT_TIME`), which is only the
session's default (a session may SET it back to 0), so `mysql_watchdog` enforces the limit
from the admin side too.
"""

from __future__ import annotations

import hashlib
import hmac
import importlib
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from changeapi.shadow.engine_servers import MySqlShadowServer

SPARE_MARKER = "schemagate_spare"
"""A table only a ready, unclaimed spare has: claiming drops it, and one DROP wins."""


def quote(identifier: str) -> str:
    """A MySQL identifier in backquotes (a backquote inside is doubled)."""
    return "`" + identifier.replace("`", "``") + "`"


def literal(connection: Any, value: str) -> str:
    """A string literal, escaped by the driver for this connection's character set."""
    escaped = connection.escape_string(value)
    return "'" + (escaped.decode() if isinstance(escaped, bytes) else str(escaped)) + "'"


@contextmanager
def admin_cursor(server: MySqlShadowServer) -> Iterator[Any]:
    """A cursor on an autocommit admin connection, closed afterwards."""
    connection = server.admin_connect()
    try:
        yield connection.cursor()
    finally:
        connection.close()


@dataclass(frozen=True, slots=True)
class JobUser:
    """The user a job connects as: privileges on its database only, statements capped in time."""

    name: str
    password: str
    database: str


def job_user_name(database: str) -> str:
    """A short user name per database (MySQL allows 32 characters), with the service's prefix."""
    digest = hashlib.sha256(database.encode()).hexdigest()[:16]
    return f"{settings.SHADOW_DATABASE_PREFIX}j{digest}"[:32]


def _job_password(server: MySqlShadowServer, user: str) -> str:
    """Derived from the secret key, so every worker host knows it without storing it."""
    message = f"shadow-job:{server.key}:{user}".encode()
    return hmac.new(settings.SECRET_KEY.encode(), message, hashlib.sha256).hexdigest()


def job_user_create(server: MySqlShadowServer, database: str, *, statement_seconds: float | None) -> JobUser:
    """Create (or recreate) the job user of `database`, allowed everything there and nothing else.

    `statement_seconds` caps every statement of the user (MariaDB's user-level
    MAX_STATEMENT_TIME; None for no cap, as seeding a large template needs).
    """
    user = JobUser(name=job_user_name(database), password=_job_password(server, job_user_name(database)), database=database)
    with admin_cursor(server) as cursor:
        account = f"{literal(cursor.connection, user.name)}@'%'"
        cursor.execute(f"DROP USER IF EXISTS {account}")
        limit = f" WITH MAX_STATEMENT_TIME {float(statement_seconds)}" if statement_seconds else ""
        cursor.execute(f"CREATE USER {account} IDENTIFIED BY {literal(cursor.connection, user.password)}{limit}")
        cursor.execute(f"GRANT ALL PRIVILEGES ON {quote(database)}.* TO {account}")
    return user


def job_user_drop(server: MySqlShadowServer, database: str) -> None:
    """Drop the job user of `database`, ending its sessions first (a dropped user's open
    session would otherwise go on)."""
    name = job_user_name(database)
    with admin_cursor(server) as cursor:
        cursor.execute("SELECT ID FROM information_schema.PROCESSLIST WHERE USER = %s", [name])
        for (session_id,) in cursor.fetchall():
            try:
                cursor.execute(f"KILL CONNECTION {int(session_id)}")
            except server_errors() as exc:
                if exc.args and exc.args[0] != 1094:  # unknown thread: it ended meanwhile
                    raise
        cursor.execute(f"DROP USER IF EXISTS {literal(cursor.connection, name)}@'%'")


def server_errors() -> type[Exception]:
    """The driver's base error (imported lazily, as the driver is an optional extra)."""
    error: type[Exception] = importlib.import_module("MySQLdb").Error
    return error


@contextmanager
def named_lock(server: MySqlShadowServer, name: str, *, timeout_seconds: int = 600) -> Iterator[None]:
    """Hold the server's named lock `name` (GET_LOCK) for the block: one builder at a time."""
    connection = server.admin_connect()
    try:
        cursor = connection.cursor()
        cursor.execute("SELECT GET_LOCK(%s, %s)", [name[:64], timeout_seconds])
        row = cursor.fetchone()
        if not row or row[0] != 1:
            raise TimeoutError(f"could not take the lock {name!r} on {server.key} within {timeout_seconds} s")
        yield
    finally:
        connection.close()  # releases the lock with the session


def database_exists(server: MySqlShadowServer, name: str) -> bool:
    with admin_cursor(server) as cursor:
        cursor.execute("SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s", [name])
        return cursor.fetchone() is not None


def database_create(server: MySqlShadowServer, name: str) -> None:
    """An empty database in the character set and collation Django's MySQL backend assumes."""
    with admin_cursor(server) as cursor:
        cursor.execute(f"CREATE DATABASE {quote(name)} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")


def database_drop(server: MySqlShadowServer, name: str) -> None:
    """Drop a database and its job user; nothing if neither exists."""
    job_user_drop(server, name)
    with admin_cursor(server) as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS {quote(name)}")


def base_tables(cursor: Any, database: str) -> list[str]:
    cursor.execute(
        "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s AND TABLE_TYPE = 'BASE TABLE' "
        "ORDER BY TABLE_NAME",
        [database],
    )
    return [str(row[0]) for row in cursor.fetchall() if row[0] != SPARE_MARKER]


@dataclass(frozen=True, slots=True)
class ForeignKey:
    name: str
    table: str
    columns: tuple[str, ...]
    referenced_table: str
    referenced_columns: tuple[str, ...]
    on_update: str
    on_delete: str


def foreign_keys(cursor: Any, database: str) -> list[ForeignKey]:
    """The foreign keys between tables of `database`, columns in their order."""
    cursor.execute(
        "SELECT k.CONSTRAINT_NAME, k.TABLE_NAME, k.COLUMN_NAME, k.REFERENCED_TABLE_NAME, k.REFERENCED_COLUMN_NAME, "
        "r.UPDATE_RULE, r.DELETE_RULE FROM information_schema.KEY_COLUMN_USAGE k "
        "JOIN information_schema.REFERENTIAL_CONSTRAINTS r "
        "ON r.CONSTRAINT_SCHEMA = k.CONSTRAINT_SCHEMA AND r.CONSTRAINT_NAME = k.CONSTRAINT_NAME AND r.TABLE_NAME = k.TABLE_NAME "
        "WHERE k.TABLE_SCHEMA = %s AND k.REFERENCED_TABLE_NAME IS NOT NULL "
        "ORDER BY k.TABLE_NAME, k.CONSTRAINT_NAME, k.ORDINAL_POSITION",
        [database],
    )
    grouped: dict[tuple[str, str], list[tuple[Any, ...]]] = {}
    for row in cursor.fetchall():
        grouped.setdefault((str(row[1]), str(row[0])), []).append(row)
    return [
        ForeignKey(
            name=name,
            table=table,
            columns=tuple(str(r[2]) for r in rows),
            referenced_table=str(rows[0][3]),
            referenced_columns=tuple(str(r[4]) for r in rows),
            on_update=str(rows[0][5]),
            on_delete=str(rows[0][6]),
        )
        for (table, name), rows in grouped.items()
    ]


def _copyable_columns(cursor: Any, database: str, table: str) -> list[str]:
    """The columns an INSERT may name: generated columns are computed, not copied."""
    cursor.execute(
        "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s "
        "AND EXTRA NOT LIKE '%%GENERATED%%' AND EXTRA NOT IN ('VIRTUAL', 'STORED', 'PERSISTENT') ORDER BY ORDINAL_POSITION",
        [database, table],
    )
    return [str(row[0]) for row in cursor.fetchall()]


@dataclass(frozen=True, slots=True)
class CloneCost:
    """What one copy cost: tables and rows copied, and the time of each phase."""

    tables: int
    rows: int
    create_ms: float
    copy_ms: float
    foreign_keys_ms: float

    @property
    def total_ms(self) -> float:
        return round(self.create_ms + self.copy_ms + self.foreign_keys_ms, 3)


def _ms(since: float) -> float:
    return round((time.perf_counter() - since) * 1000, 3)


def database_copy(server: MySqlShadowServer, *, source: str, name: str, spare: bool = False) -> CloneCost:
    """Make `name` a copy of `source`: tables, rows, then foreign keys; a spare gets its marker.

    The copy is made by the admin connection (it reads the template, which no job may), with
    foreign key checks off for the session, so rows go in in any order and adding the keys
    afterwards is in place. A failure drops the half-made copy.
    """
    started = time.perf_counter()
    database_create(server, name)
    try:
        with admin_cursor(server) as cursor:
            cursor.execute("SET SESSION foreign_key_checks = 0, max_statement_time = 0")
            tables = base_tables(cursor, source)
            for table in tables:
                cursor.execute(f"CREATE TABLE {quote(name)}.{quote(table)} LIKE {quote(source)}.{quote(table)}")
            create_ms = _ms(started)
            copied = time.perf_counter()
            rows = 0
            for table in tables:
                columns = ", ".join(quote(c) for c in _copyable_columns(cursor, source, table))
                rows += cursor.execute(
                    f"INSERT INTO {quote(name)}.{quote(table)} ({columns}) SELECT {columns} FROM {quote(source)}.{quote(table)}"
                )
            copy_ms = _ms(copied)
            keyed = time.perf_counter()
            for key in foreign_keys(cursor, source):
                cursor.execute(
                    f"ALTER TABLE {quote(name)}.{quote(key.table)} ADD CONSTRAINT {quote(key.name)} FOREIGN KEY "
                    f"({', '.join(quote(c) for c in key.columns)}) REFERENCES {quote(name)}.{quote(key.referenced_table)} "
                    f"({', '.join(quote(c) for c in key.referenced_columns)}) "
                    f"ON DELETE {key.on_delete} ON UPDATE {key.on_update}"
                )
            if spare:
                cursor.execute(f"CREATE TABLE {quote(name)}.{quote(SPARE_MARKER)} (id int PRIMARY KEY)")
            return CloneCost(tables=len(tables), rows=rows, create_ms=create_ms, copy_ms=copy_ms, foreign_keys_ms=_ms(keyed))
    except BaseException:
        database_drop(server, name)
        raise


def spare_prefix(template: str) -> str:
    """Spares of a template are named after it (a database name has at most 64 characters)."""
    digest = hashlib.sha256(template.encode()).hexdigest()[:12]
    return f"{settings.SHADOW_DATABASE_PREFIX}sp_{digest}_"


def spares_ready(server: MySqlShadowServer, template: str) -> list[str]:
    """The unclaimed spares of `template`: those whose marker table is still there."""
    with admin_cursor(server) as cursor:
        cursor.execute(
            "SELECT TABLE_SCHEMA FROM information_schema.TABLES WHERE TABLE_NAME = %s AND TABLE_SCHEMA LIKE %s "
            "ORDER BY TABLE_SCHEMA",
            [SPARE_MARKER, spare_prefix(template).replace("_", "\\_") + "%"],
        )
        return [str(row[0]) for row in cursor.fetchall()]


def spares_ensure(server: MySqlShadowServer, template: str, *, count: int) -> list[CloneCost]:
    """Copy spares of `template` until `count` are ready; the cost of each one made now."""
    made = []
    for _ in range(max(count - len(spares_ready(server, template)), 0)):
        made.append(database_copy(server, source=template, name=spare_prefix(template) + uuid.uuid4().hex[:12], spare=True))
    return made


def spare_claim(server: MySqlShadowServer, spares: Sequence[str]) -> str | None:
    """Take one of `spares` for a job: the first whose marker this session drops; None if
    another worker took each of them first."""
    with admin_cursor(server) as cursor:
        for spare in spares:
            try:
                cursor.execute(f"DROP TABLE {quote(spare)}.{quote(SPARE_MARKER)}")
            except server_errors():
                continue  # taken meanwhile: its marker is gone
            return spare
    return None


def orphaned_job_users(server: MySqlShadowServer, prefix: str) -> list[str]:
    """Job users (named `<prefix>j…`) whose database is gone: a worker died between the drops."""
    with admin_cursor(server) as cursor:
        cursor.execute(
            "SELECT DISTINCT d.User FROM mysql.db d LEFT JOIN information_schema.SCHEMATA s ON s.SCHEMA_NAME = d.Db "
            "WHERE d.User LIKE %s AND s.SCHEMA_NAME IS NULL",
            [f"{prefix}j".replace("_", "\\_") + "%"],
        )
        return [str(row[0]) for row in cursor.fetchall()]


def job_users_drop(server: MySqlShadowServer, users: Sequence[str]) -> None:
    with admin_cursor(server) as cursor:
        for user in users:
            cursor.execute(f"DROP USER IF EXISTS {literal(cursor.connection, user)}@'%'")


def databases_named(server: MySqlShadowServer, prefix: str) -> list[str]:
    """Databases whose names start with `prefix` (for tests and the reaper)."""
    with admin_cursor(server) as cursor:
        cursor.execute(
            "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE %s",
            [prefix.replace("_", "\\_") + "%"],
        )
        return [str(row[0]) for row in cursor.fetchall()]
