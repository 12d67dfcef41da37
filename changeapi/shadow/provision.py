"""Create, clone and drop shadow databases on a shadow server.

A baseline's template is built once per server under a temporary name and renamed when
complete, so the existence of the final name means "complete"; a clone is then a
`CREATE DATABASE ... TEMPLATE`, which takes milliseconds instead of a replay of history.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable, Sequence

import psycopg
from psycopg import sql

from changeapi.shadow.servers import ShadowServer, ShadowServerUnavailable, _first_line


def database_exists(conn: psycopg.Connection, name: str) -> bool:
    return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is not None


def _lock_key(name: str) -> int:
    return zlib.crc32(f"schemagate:{name}".encode())


def _restrict_connect(conn: psycopg.Connection, name: str, role: str) -> None:
    """Only the runner role (and superusers) may connect to a shadow database."""
    db = sql.Identifier(name)
    conn.execute(sql.SQL("REVOKE CONNECT, TEMPORARY ON DATABASE {} FROM PUBLIC").format(db))
    conn.execute(sql.SQL("GRANT CONNECT, TEMPORARY ON DATABASE {} TO {}").format(db, sql.Identifier(role)))


def drop_database(conn: psycopg.Connection, name: str) -> None:
    """Drop a database even if a runaway session is still connected to it."""
    conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def template_ensure(
    server: ShadowServer,
    name: str,
    build: Callable[[str], None],
) -> bool:
    """Make sure the template database `name` exists on `server`; build it if not.

    `build(dbname)` fills a fresh database owned by the runner role. Returns True when this
    call built it. Concurrent callers serialise on an advisory lock, so a template is built once.
    """
    with server.admin_connect() as conn:
        server.ensure_runner_role(conn)
        conn.execute("SELECT pg_advisory_lock(%s)", [_lock_key(name)])
        try:
            if database_exists(conn, name):
                return False
            building = f"{name}_building"
            drop_database(conn, building)
            conn.execute(
                sql.SQL("CREATE DATABASE {} OWNER {} TEMPLATE template0 ENCODING 'UTF8'").format(
                    sql.Identifier(building), sql.Identifier(server.runner_role)
                )
            )
            _restrict_connect(conn, building, server.runner_role)
            try:
                build(building)
            except BaseException:
                drop_database(conn, building)
                raise
            conn.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(sql.Identifier(building), sql.Identifier(name)))
            # No connections to a template: a stray session would make every clone fail.
            conn.execute(sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS false").format(sql.Identifier(name)))
            return True
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", [_lock_key(name)])


def build_abandoned(server: ShadowServer, name: str) -> bool:
    """True when no one is building the template `name` now (its advisory lock is free)."""
    with server.admin_connect() as conn:
        row = conn.execute("SELECT pg_try_advisory_lock(%s)", [_lock_key(name)]).fetchone()
        if row and row[0]:
            conn.execute("SELECT pg_advisory_unlock(%s)", [_lock_key(name)])
            return True
    return False


def terminate_sessions(server: ShadowServer, dbname: str) -> int:
    """End every session on a shadow database (a dry-run over its wall-time limit)."""
    with server.admin_connect() as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            [dbname],
        ).fetchall()
    return len(rows)


def template_drop(server: ShadowServer, name: str) -> None:
    with server.admin_connect() as conn:
        drop_database(conn, name)


def clone_create(server: ShadowServer, *, template: str, name: str) -> None:
    """`CREATE DATABASE name TEMPLATE template`, owned by the runner role."""
    with server.admin_connect() as conn:
        server.ensure_runner_role(conn)
        try:
            conn.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {} OWNER {}").format(
                    sql.Identifier(name), sql.Identifier(template), sql.Identifier(server.runner_role)
                )
            )
        except psycopg.errors.DuplicateDatabase:
            # A previous attempt of the same job left it: start from a fresh copy.
            drop_database(conn, name)
            conn.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {} OWNER {}").format(
                    sql.Identifier(name), sql.Identifier(template), sql.Identifier(server.runner_role)
                )
            )
        except psycopg.errors.OperationalError as exc:
            raise ShadowServerUnavailable(f"cannot create shadow database on {server.key}: {_first_line(exc)}") from exc
        _restrict_connect(conn, name, server.runner_role)


def clone_drop(server: ShadowServer, name: str) -> None:
    with server.admin_connect() as conn:
        drop_database(conn, name)


def _rename(conn: psycopg.Connection, old: str, new: str) -> None:
    conn.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(sql.Identifier(old), sql.Identifier(new)))


def spare_create(server: ShadowServer, *, template: str, name: str) -> bool:
    """Make a spare clone of `template` ready under `name`; False if it exists already.

    A spare is an ordinary clone made ahead of time, so that a dry-run takes it with a
    rename (catalog only) instead of waiting for `CREATE DATABASE ... TEMPLATE` to copy files.
    Until its CREATE commits the name does not exist, so no one can take a half-made spare.
    """
    with server.admin_connect() as conn:
        server.ensure_runner_role(conn)
        if database_exists(conn, name):
            return False
        try:
            conn.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {} OWNER {}").format(
                    sql.Identifier(name), sql.Identifier(template), sql.Identifier(server.runner_role)
                )
            )
        except psycopg.errors.DuplicateDatabase:
            return False  # another worker made it meanwhile
        _restrict_connect(conn, name, server.runner_role)
    return True


def spare_claim(server: ShadowServer, *, spares: Sequence[str], name: str) -> str | None:
    """Rename the first available spare to `name`; the spare's name, or None if none was free.

    Two workers may race for one spare: the rename is atomic, so the loser finds it gone
    and tries the next (or falls back to a CREATE DATABASE). A database left under `name` by
    an earlier attempt of the same job is dropped first.
    """
    try:
        conn = server.admin_connect()
    except ShadowServerUnavailable:
        return None  # the fallback CREATE reports the outage with its own message
    with conn:
        if database_exists(conn, name):
            drop_database(conn, name)
        for spare in spares:
            try:
                _rename(conn, spare, name)
            except (psycopg.errors.InvalidCatalogName, psycopg.errors.ObjectInUse):
                continue
            return spare
    return None


def clone_retire(server: ShadowServer, *, name: str, retired: str, attempts: int = 25) -> bool:
    """Rename a used clone out of the way (catalog only), for a later drop; False if it is gone.

    The dry-run's own session may still be ending when it closed its connection, and a
    database with sessions cannot be renamed, so the rename is retried briefly; after that
    the clone is dropped here (FORCE ends the sessions) and False is returned.
    """
    with server.admin_connect() as conn:
        for _ in range(attempts):
            try:
                _rename(conn, name, retired)
                return True
            except psycopg.errors.InvalidCatalogName:
                return False
            except psycopg.errors.DuplicateDatabase:
                drop_database(conn, retired)  # left by an earlier attempt of the same job
            except psycopg.errors.ObjectInUse:
                time.sleep(0.02)
        drop_database(conn, name)
    return False


def databases_with_prefix(server: ShadowServer, prefix: str) -> list[str]:
    """Names on the server that start with the service's prefix (for the reaper)."""
    with server.admin_connect() as conn:
        rows = conn.execute(  # starts_with, not LIKE: '_' in a prefix is no wildcard
            "SELECT datname FROM pg_database WHERE starts_with(datname, %s) ORDER BY datname", [prefix]
        ).fetchall()
    return [row[0] for row in rows]
