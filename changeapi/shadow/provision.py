"""Create, clone and drop shadow databases on a shadow server, each with the role of its job.

A baseline's template is built once per server under a temporary name and renamed when
complete, so the existence of the final name means "complete"; a clone is then a
`CREATE DATABASE ... TEMPLATE`, which takes milliseconds instead of a replay of history.

Ownership: templates are the admin's databases, their objects the owner role's; a spare and
its objects belong to a role of its own, renamed to the job's when a job claims it. A
clone is handed over to a role made for its job (database and objects), which can connect
to nothing else; a template being built is handed back when complete. Dropping a clone drops
its role, so nothing a job set on its role (`ALTER ROLE CURRENT_USER SET ...`) outlives it.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable, Sequence

import psycopg
from django.conf import settings
from psycopg import sql

from changeapi.shadow.servers import ShadowServer, ShadowServerUnavailable, first_line


def database_exists(conn: psycopg.Connection, name: str) -> bool:
    return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is not None


def create_empty_database_sql(name: str, *, tablespace: str = "") -> sql.Composed:
    """`CREATE DATABASE name` from template0 in UTF-8, in `tablespace` (empty: the server's default).

    A template is made this way, in its server's tablespace (`ShadowServer.tablespace`), and
    its clones and spares are copied into the tablespace it is in. Each copy creates a file per
    relation, about a thousand for an empty database: on a journaling filesystem that is most
    of a clone's time (over 200 ms on CI's disk), in memory a tenth of it.
    """
    statement = sql.SQL("CREATE DATABASE {} TEMPLATE template0 ENCODING 'UTF8'").format(sql.Identifier(name))
    if tablespace:
        statement += sql.SQL(" TABLESPACE {}").format(sql.Identifier(tablespace))
    return statement


def _lock_key(name: str) -> int:
    return zlib.crc32(f"schemagate:{name}".encode())


def _revoke_public(conn: psycopg.Connection, name: str) -> None:
    conn.execute(sql.SQL("REVOKE CONNECT, TEMPORARY ON DATABASE {} FROM PUBLIC").format(sql.Identifier(name)))


def _job_role_ensure(conn: psycopg.Connection, server: ShadowServer, dbname: str) -> str:
    """Create (or reset, for a retried job) the role of the job on `dbname`: it may log in and
    do nothing else; settings a previous attempt gave it are cleared. It is a member of no
    role; INHERIT only lets it use what owning its database gives (pg_database_owner's
    CREATE on schema public)."""
    role = server.job_role(dbname)
    ident = sql.Identifier(role)
    attributes = sql.SQL(
        "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS INHERIT CONNECTION LIMIT 16 PASSWORD {}"
    ).format(sql.Literal(server.job_password(role)))
    try:
        conn.execute(sql.SQL("CREATE ROLE {} WITH ").format(ident) + attributes)
    except psycopg.errors.DuplicateObject:
        conn.execute(sql.SQL("ALTER ROLE {} WITH ").format(ident) + attributes)
        conn.execute(sql.SQL("ALTER ROLE {} RESET ALL").format(ident))
    # A superuser-only setting: the job cannot raise it for its own sessions.
    limit = sql.Literal(f"{int(settings.SHADOW_TEMP_FILE_LIMIT_KB)}kB")
    conn.execute(sql.SQL("ALTER ROLE {} SET temp_file_limit = {}").format(ident, limit))
    return role


def job_role_drop(conn: psycopg.Connection, server: ShadowServer, dbname: str) -> None:
    """Drop the role of the job on `dbname` (after the database)."""
    _role_drop(conn, server.job_role(dbname))


def _role_drop(conn: psycopg.Connection, role: str) -> None:
    """Drop a job role; one that still owns something elsewhere is left to the reaper."""
    try:
        conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
    except psycopg.errors.DependentObjectsStillExist:
        pass


def _hand_over(conn: psycopg.Connection, server: ShadowServer, dbname: str) -> None:
    """Give the database `dbname` and every object in it to a role made for its job."""
    server.ensure_owner_role(conn)
    role = _job_role_ensure(conn, server, dbname)
    db, ident = sql.Identifier(dbname), sql.Identifier(role)
    conn.execute(sql.SQL("ALTER DATABASE {} OWNER TO {}").format(db, ident))
    _revoke_public(conn, dbname)
    conn.execute(sql.SQL("GRANT CONNECT, TEMPORARY ON DATABASE {} TO {}").format(db, ident))
    with server.admin_connect(dbname) as inside:
        # The owner role owns no database, so this moves only the objects of this one.
        inside.execute(sql.SQL("REASSIGN OWNED BY {} TO {}").format(sql.Identifier(server.owner_role), ident))


def _hand_back(conn: psycopg.Connection, server: ShadowServer, dbname: str) -> None:
    """Take a built template back from its job: the admin's database, the owner role's objects."""
    role = server.job_role(dbname)
    db = sql.Identifier(dbname)
    conn.execute(sql.SQL("ALTER DATABASE {} OWNER TO CURRENT_USER").format(db))
    with server.admin_connect(dbname) as inside:
        inside.execute(sql.SQL("REASSIGN OWNED BY {} TO {}").format(sql.Identifier(role), sql.Identifier(server.owner_role)))
        inside.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
    conn.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM {}").format(db, sql.Identifier(role)))
    job_role_drop(conn, server, dbname)


def _owned_by_admin(conn: psycopg.Connection, name: str) -> bool:
    row = conn.execute(
        "SELECT datdba = (SELECT oid FROM pg_roles WHERE rolname = current_user) FROM pg_database WHERE datname = %s", [name]
    ).fetchone()
    return bool(row and row[0])


def drop_database(conn: psycopg.Connection, name: str) -> None:
    """Drop a database even if a runaway session is still connected to it."""
    conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def template_ensure(
    server: ShadowServer,
    name: str,
    build: Callable[[str], None],
) -> bool:
    """Make sure the template database `name` exists on `server`; build it if not.

    `build(dbname)` fills a fresh database as the role of that build (which owns it until the
    build is complete). Returns True when this call built it. Concurrent callers serialise on an advisory lock, so a template is built once.
    """
    with server.admin_connect() as conn:
        server.ensure_owner_role(conn)
        if _owned_by_admin(conn, name):
            # The final name exists only once a build is complete (it is renamed last), so a
            # template that is there and the admin's needs no lock: every dry-run asks this.
            return False
        conn.execute("SELECT pg_advisory_lock(%s)", [_lock_key(name)])
        try:
            if database_exists(conn, name):
                if _owned_by_admin(conn, name):
                    return False
                # Built before templates belonged to the admin: its objects would be its
                # old builder's, which no job may be given. Rebuilt.
                drop_database(conn, name)
            building = f"{name}_building"
            drop_database(conn, building)
            job_role_drop(conn, server, building)
            conn.execute(create_empty_database_sql(building, tablespace=server.tablespace))
            _hand_over(conn, server, building)
            try:
                build(building)
                _hand_back(conn, server, building)
            except BaseException:
                drop_database(conn, building)
                job_role_drop(conn, server, building)
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
    """`CREATE DATABASE name TEMPLATE template`, handed over to the role of its job."""
    create = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(template))
    with server.admin_connect() as conn:
        try:
            conn.execute(create)
        except psycopg.errors.DuplicateDatabase:
            # A previous attempt of the same job left it: start from a fresh copy.
            drop_database(conn, name)
            conn.execute(create)
        except psycopg.errors.OperationalError as exc:
            raise ShadowServerUnavailable(f"cannot create shadow database on {server.key}: {first_line(exc)}") from exc
        _hand_over(conn, server, name)


def clone_drop(server: ShadowServer, name: str) -> None:
    """Drop a clone (or any shadow database) and the role of its job."""
    with server.admin_connect() as conn:
        drop_database(conn, name)
        job_role_drop(conn, server, name)


def _rename(conn: psycopg.Connection, old: str, new: str) -> None:
    conn.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(sql.Identifier(old), sql.Identifier(new)))


def spare_create(server: ShadowServer, *, template: str, name: str) -> bool:
    """Make a spare clone of `template` ready under `name`; False if it exists already.

    A spare is an ordinary clone made ahead of time, so that a dry-run takes it with a
    rename (catalog only) instead of waiting for `CREATE DATABASE ... TEMPLATE` to copy files.
    It is handed over here, off any job's path, to a role of its own that nobody has logged
    in as (`<spare>_job`): the job that claims it renames that role to its own name and
    resets it, instead of moving every object's ownership while its client waits. Until its
    CREATE commits and its hand-over ends, the spare's advisory lock is held (the connection
    holds it until it closes), so no one can take a half-made spare (`spare_claim`).
    """
    with server.admin_connect() as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", [_lock_key(name)])
        if database_exists(conn, name):
            return False
        try:
            conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(template)))
        except psycopg.errors.DuplicateDatabase:
            return False  # another worker made it meanwhile
        _revoke_public(conn, name)
        try:
            _hand_over(conn, server, name)
        except psycopg.Error:
            drop_database(conn, name)
            job_role_drop(conn, server, name)
            raise
    return True


def _database_owner(conn: psycopg.Connection, name: str) -> str | None:
    row = conn.execute(
        "SELECT r.rolname FROM pg_database d JOIN pg_roles r ON r.oid = d.datdba WHERE d.datname = %s", [name]
    ).fetchone()
    return str(row[0]) if row else None


def spare_claim(server: ShadowServer, *, spares: Sequence[str], name: str) -> str | None:
    """Rename the first available spare to `name`, with its role; the spare's name, or None
    if none was free.

    Two workers may race for one spare: the rename is atomic, so the loser finds it gone
    and tries the next (or falls back to a CREATE DATABASE). A database left under `name` by
    an earlier attempt of the same job is dropped first. A spare handed to its own role
    (`spare_create`) is the job's once that role carries the job's name, password and
    limits; one still the admin's (made by an older version) is handed over here.
    """
    try:
        conn = server.admin_connect()
    except ShadowServerUnavailable:
        return None  # the fallback CREATE reports the outage with its own message
    with conn:
        if database_exists(conn, name):
            drop_database(conn, name)
            job_role_drop(conn, server, name)
        for spare in spares:
            row = conn.execute("SELECT pg_try_advisory_lock(%s)", [_lock_key(spare)]).fetchone()
            if not (row and row[0]):
                continue  # being made right now
            try:
                if _spare_take(conn, server, spare, name):
                    return spare
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", [_lock_key(spare)])
    return None


def _spare_take(conn: psycopg.Connection, server: ShadowServer, spare: str, name: str) -> bool:
    """Under the spare's advisory lock: rename it to `name` and make it the job's; False if
    it is not there (taken, or never made)."""
    owner = _database_owner(conn, spare)
    if owner is None:
        return False
    if owner not in (conn.info.user, server.job_role(spare)):
        # Not made the way spares are: its objects may be anyone's, which no job may be given.
        drop_database(conn, spare)
        return False
    if owner == server.job_role(spare):
        try:
            _take_in_one_round_trip(conn, server, spare, name)
            return True
        except (psycopg.errors.InvalidCatalogName, psycopg.errors.ObjectInUse):
            return False
        except psycopg.Error:
            pass  # nothing of it happened (one implicit transaction): step by step, below
    try:
        _rename(conn, spare, name)
    except (psycopg.errors.InvalidCatalogName, psycopg.errors.ObjectInUse):
        return False
    if owner == conn.info.user:
        _hand_over(conn, server, name)  # a spare made by an earlier version, still the admin's
    else:
        _rename_job_role(conn, server, spare, name)
        _job_role_ensure(conn, server, name)
    return True


def _take_in_one_round_trip(conn: psycopg.Connection, server: ShadowServer, spare: str, name: str) -> None:
    """A spare with its own role becomes the job's: database and role renamed, the role given
    the job's password and limits. Sent as one multi-statement query, which the server runs
    as one implicit transaction, so it happens whole or not at all, while the job waits one
    round trip instead of seven."""
    role, job = sql.Identifier(server.job_role(spare)), sql.Identifier(server.job_role(name))
    attributes = sql.SQL(
        "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS INHERIT CONNECTION LIMIT 16 PASSWORD {}"
    ).format(sql.Literal(server.job_password(server.job_role(name))))
    limit = sql.Literal(f"{int(settings.SHADOW_TEMP_FILE_LIMIT_KB)}kB")
    statements = [
        sql.SQL("ALTER DATABASE {} RENAME TO {}").format(sql.Identifier(spare), sql.Identifier(name)),
        sql.SQL("DROP ROLE IF EXISTS {}").format(job),
        sql.SQL("ALTER ROLE {} RENAME TO {}").format(role, job),
        sql.SQL("ALTER ROLE {} WITH ").format(job) + attributes,
        sql.SQL("ALTER ROLE {} RESET ALL").format(job),
        sql.SQL("ALTER ROLE {} SET temp_file_limit = {}").format(job, limit),
    ]
    conn.execute(sql.SQL("; ").join(statements))


def clone_retire(server: ShadowServer, *, name: str, retired: str, attempts: int = 25) -> bool:
    """Rename a used clone out of the way (catalog only), for a later drop; False if it is gone.

    The dry-run's own session may still be ending when it closed its connection, and a
    database with sessions cannot be renamed, so the rename is retried briefly; after that
    the clone is dropped here (FORCE ends the sessions) and False is returned.
    """
    with server.admin_connect() as conn:
        for _ in range(attempts):
            try:
                _retire_in_one_round_trip(conn, server, name, retired)
                return True
            except psycopg.errors.InvalidCatalogName:
                return False
            except psycopg.errors.DuplicateDatabase:
                drop_database(conn, retired)  # left by an earlier attempt of the same job
            except psycopg.errors.ObjectInUse:
                time.sleep(0.02)
        drop_database(conn, name)
        job_role_drop(conn, server, name)
    return False


def _retire_in_one_round_trip(conn: psycopg.Connection, server: ShadowServer, name: str, retired: str) -> None:
    """Database and job role renamed in one multi-statement query (one implicit transaction);
    when the role is not there (a clone of an older version), the database alone."""
    rename = sql.SQL("ALTER DATABASE {} RENAME TO {}").format(sql.Identifier(name), sql.Identifier(retired))
    role, renamed = sql.Identifier(server.job_role(name)), sql.Identifier(server.job_role(retired))
    try:
        conn.execute(
            sql.SQL("; ").join(
                [
                    rename,
                    sql.SQL("DROP ROLE IF EXISTS {}").format(renamed),
                    sql.SQL("ALTER ROLE {} RENAME TO {}").format(role, renamed),
                ]
            )
        )
    except psycopg.errors.UndefinedObject:
        _rename(conn, name, retired)


def _rename_job_role(conn: psycopg.Connection, server: ShadowServer, old: str, new: str) -> None:
    """The job role follows its database's name, so whoever drops the database drops the role."""
    job_role_drop(conn, server, new)
    try:
        conn.execute(
            sql.SQL("ALTER ROLE {} RENAME TO {}").format(
                sql.Identifier(server.job_role(old)), sql.Identifier(server.job_role(new))
            )
        )
    except psycopg.errors.UndefinedObject:
        pass


def orphaned_job_roles(server: ShadowServer, prefix: str) -> list[str]:
    """Job roles whose database is gone (a worker died between the two drops), for the reaper."""
    with server.admin_connect() as conn:
        rows = conn.execute(
            "SELECT rolname FROM pg_roles WHERE starts_with(rolname, %s) AND right(rolname, 4) = '_job' "
            "AND NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = left(rolname, -4)) ORDER BY rolname",
            [prefix],
        ).fetchall()
    return [row[0] for row in rows]


def job_roles_drop(server: ShadowServer, roles: Sequence[str]) -> None:
    with server.admin_connect() as conn:
        for role in roles:
            _role_drop(conn, role)


def databases_with_prefix(server: ShadowServer, prefix: str) -> list[str]:
    """Names on the server that start with the service's prefix (for the reaper)."""
    with server.admin_connect() as conn:
        rows = conn.execute(  # starts_with, not LIKE: '_' in a prefix is no wildcard
            "SELECT datname FROM pg_database WHERE starts_with(datname, %s) ORDER BY datname", [prefix]
        ).fetchall()
    return [row[0] for row in rows]
