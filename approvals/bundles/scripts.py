"""SQL scripts of a bundle, per engine: the statements as the dry-run ran them, with the engine's guards.

PostgreSQL scripts are for `psql -v ON_ERROR_STOP=1 -f`: each transaction of the run as
BEGIN ... COMMIT under `SET LOCAL lock_timeout`, CONCURRENTLY statements on their own.
MySQL/MariaDB scripts are for the `mysql` client, which stops at the first error: DDL there
commits on its own, so there is no transaction to write, only the session's
`lock_wait_timeout`, which the server otherwise leaves at a year.
SQLite scripts are for the `sqlite3` shell with `-bail`: each migration as Django's SQLite schema
editor runs it, foreign keys off outside the transaction, BEGIN ... COMMIT around an atomic
migration, checked before its commit, under the session's `busy_timeout`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol


def terminated(sql: str) -> str:
    """One statement ending in `;`, also when its last line ends in a `--` comment."""
    text = sql.strip()
    while text.endswith(";"):
        text = text[:-1].rstrip()
    last_line = text.rsplit("\n", 1)[-1]
    return f"{text}\n;" if "--" in last_line else f"{text};"


class ScriptedStatement(Protocol):
    """A statement as a SQL script needs it: the dry-run's forward statements, the rollback's."""

    @property
    def sql(self) -> str: ...

    @property
    def transactional(self) -> bool: ...

    @property
    def transaction(self) -> int | None: ...

    @property
    def operation_index(self) -> int | None: ...


@dataclass(frozen=True)
class RecordedStatement:
    """A statement the rollback trace recorded."""

    sql: str
    transactional: bool
    transaction: int | None
    operation_index: int | None


def literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def history_statement(app_label: str, name: str, *, applied: bool) -> str:
    """Keep Django's migration history in step, where the target database has one.

    A pipeline may apply the SQL instead of running `migrate`; the application must still see
    the migration as applied (and no longer applied after a rollback).
    """
    app, migration = literal(app_label), literal(name)
    if applied:
        change = f"INSERT INTO django_migrations (app, name, applied) VALUES ({app}, {migration}, now());"
    else:
        change = f"DELETE FROM django_migrations WHERE app = {app} AND name = {migration};"
    return f"DO $history$ BEGIN IF to_regclass('django_migrations') IS NOT NULL THEN {change} END IF; END $history$;"


def sql_script(
    *,
    header: list[str],
    statements: Sequence[ScriptedStatement],
    descriptions: dict[int, str],
    lock_timeout_ms: int,
    history: str,
    notes: list[str],
    preflight: Sequence[str] = (),
) -> bytes:
    """psql-ready SQL: each transaction of the run as BEGIN ... COMMIT with `SET LOCAL
    lock_timeout`; statements that ran outside a transaction (CONCURRENTLY) stand alone, each
    after a session `SET lock_timeout`. `preflight` statements come first, before anything
    changes: each raises when the migration may not run yet. Run with `psql -v ON_ERROR_STOP=1 -f`."""
    timeout = f"'{int(lock_timeout_ms)}ms'"
    lines = [f"-- {line}" for line in header]
    lines += [f"-- {note}" for note in notes]
    lines += list(preflight)
    open_transaction: Any = None
    described: set[int] = set()
    for statement in statements:
        transaction_id = statement.transaction if statement.transactional else None
        if open_transaction is not None and transaction_id != open_transaction:
            lines.append("COMMIT;")
            open_transaction = None
        if transaction_id is not None and open_transaction is None:
            lines += ["BEGIN;", f"SET LOCAL lock_timeout = {timeout};"]
            open_transaction = transaction_id
        operation = statement.operation_index
        if operation is not None and operation not in described:
            described.add(operation)
            lines.append(f"-- operation {operation}: {descriptions.get(operation, '')}".rstrip())
        if transaction_id is None:
            lines.append(f"SET lock_timeout = {timeout};")
        lines.append(terminated(statement.sql))
    if open_transaction is None:
        lines.append(f"SET lock_timeout = {timeout};")
    lines.append(history)
    if open_transaction is not None:
        lines.append("COMMIT;")
    return ("\n".join(lines) + "\n").encode()


MYSQL_ENGINES = frozenset({"mysql", "mariadb"})
"""The engines a dry-run report names for a MySQL/MariaDB project (the server says which)."""

NOT_TRANSACTIONAL = (
    "no BEGIN/COMMIT: MySQL/MariaDB DDL is not transactional, each statement commits on its own, "
    "so a script that fails half-way leaves the statements before the failure applied"
)


def lock_wait_seconds(lock_timeout_ms: int) -> int:
    """The project's lock timeout in the whole seconds `lock_wait_timeout` counts, rounded up (at least 1)."""
    return max(1, math.ceil(int(lock_timeout_ms) / 1000))


def mysql_session_guards(lock_timeout_ms: int) -> list[str]:
    """The SETs a MySQL/MariaDB script starts with: metadata-lock waits (an ALTER queued behind an
    open transaction, with every later query queued behind it) and row-lock waits (a data step's
    UPDATE) bounded by the project's lock timeout instead of the server's year and 50 s."""
    seconds = lock_wait_seconds(lock_timeout_ms)
    return [f"SET SESSION lock_wait_timeout = {seconds};", f"SET SESSION innodb_lock_wait_timeout = {seconds};"]


def mysql_literal(value: str) -> str:
    """A MySQL string literal: quotes doubled, and backslashes, which MySQL reads as escapes."""
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def mysql_history_statement(app_label: str, name: str, *, applied: bool) -> str:
    """Keep Django's migration history in step where the database has one, as PostgreSQL's
    `DO` block does: MySQL has no anonymous blocks, so the INSERT or DELETE is prepared from
    a string chosen by whether `information_schema` lists django_migrations (a statement naming
    a missing table fails even when it would change nothing)."""
    app, migration = mysql_literal(app_label), mysql_literal(name)
    if applied:
        change = f"INSERT INTO django_migrations (app, name, applied) VALUES ({app}, {migration}, NOW(6))"
    else:
        change = f"DELETE FROM django_migrations WHERE app = {app} AND name = {migration}"
    exists = (
        "EXISTS (SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'django_migrations')"
    )
    return "\n".join(
        [
            f"SET @schemagate_history = IF({exists}, {mysql_literal(change)}, 'DO 0');",
            "PREPARE schemagate_history FROM @schemagate_history;",
            "EXECUTE schemagate_history;",
            "DEALLOCATE PREPARE schemagate_history;",
        ]
    )


def mysql_sql_script(
    *,
    header: list[str],
    statements: Sequence[ScriptedStatement],
    descriptions: dict[int, str],
    lock_timeout_ms: int,
    history: str,
    notes: list[str],
    preflight: Sequence[str] = (),
) -> bytes:
    """`mysql`-client-ready SQL: the session guards, then each statement exactly as Django's
    MySQL schema editor ran it on the shadow, in order, with no transaction around any of them
    (the statements' own transaction marks are Django's atomic blocks, which DDL commits).
    Run with `mysql --database=<name> < file`; the client stops at the first error.
    `preflight` statements come first (none today: a parity count comes from PostgreSQL's
    backfill sample)."""
    lines = [f"-- {line}" for line in header]
    lines += [f"-- {note}" for note in notes]
    lines += list(preflight)
    lines.append(f"-- {NOT_TRANSACTIONAL}")
    lines += mysql_session_guards(lock_timeout_ms)
    described: set[int] = set()
    for statement in statements:
        operation = statement.operation_index
        if operation is not None and operation not in described:
            described.add(operation)
            lines.append(f"-- operation {operation}: {descriptions.get(operation, '')}".rstrip())
        lines.append(terminated(statement.sql))
    lines.append(history)
    return ("\n".join(lines) + "\n").encode()


def mysql_guards(lock_timeout_ms: int) -> dict[str, Any]:
    """The manifest's account of a MySQL/MariaDB bundle's guards: what it sets, and each of
    PostgreSQL's guards it leaves out, with why."""
    return {
        "session": [line.rstrip(";") for line in mysql_session_guards(lock_timeout_ms)],
        "lock_wait_timeout_s": lock_wait_seconds(lock_timeout_ms),
        "transactions": NOT_TRANSACTIONAL,
        "left_out": [
            {
                "guard": "lock_timeout",
                "reason": "PostgreSQL's setting; lock_wait_timeout and innodb_lock_wait_timeout bound the waits here, "
                "from the project's lock timeout rounded up to whole seconds",
            },
            {
                "guard": "BEGIN/COMMIT around each migration",
                "reason": "DDL commits on its own on MySQL/MariaDB, and Django runs no transaction around a migration there",
            },
            {
                "guard": "CONCURRENTLY statements outside transactions",
                "reason": "PostgreSQL-only (refused at intake for this engine): Django's MySQL schema editor writes CREATE "
                "INDEX, which the server builds in place; the dry-run reports each statement's ALGORITHM and LOCK",
            },
            {
                "guard": "statement time limit",
                "reason": "not set, as in PostgreSQL bundles: a table copy legitimately runs long; bound it from the deploy",
            },
            {
                "guard": "post-deploy schema verification",
                "reason": "schema snapshots read pg_catalog: PostgreSQL projects only",
            },
        ],
    }


def mysql_readme(
    *, engine: str, server_version: str, apply_order: list[str], rollback_order: list[str], lock_timeout_ms: int
) -> bytes:
    """How to apply a MySQL/MariaDB bundle, for whoever opens the archive: the order, the client,
    and what differs from a PostgreSQL bundle."""
    name = "MariaDB" if engine == "mariadb" else "MySQL"
    seconds = lock_wait_seconds(lock_timeout_ms)
    lines = [
        f"# Release bundle for {name}",
        "",
        f"Dry-run on {name} {server_version}: the SQL is exactly what Django's MySQL schema editor ran there.",
        "",
        "## Apply",
        "",
        "Each file with the `mysql` client, in this order (it stops at the first error):",
        "",
        *[f"1. `mysql --database=<name> < {path}`" for path in apply_order],
        "",
        "## Roll back",
        "",
        *([f"1. `mysql --database=<name> < {path}`" for path in rollback_order] or ["Nothing to roll back."]),
        "",
        "## What differs from a PostgreSQL bundle",
        "",
        f"- Every script starts with `SET SESSION lock_wait_timeout = {seconds}` (the server's default is a year)",
        f"  and `innodb_lock_wait_timeout = {seconds}`, from the project's lock timeout of {int(lock_timeout_ms)} ms.",
        "- There is no BEGIN/COMMIT: DDL is not transactional, each statement commits on its own, and a",
        "  script that fails half-way leaves the statements before the failure applied: compare the",
        "  schema with the dry-run report before running a rollback script on a half-applied migration.",
        "- `manifest.json` lists under `guards.left_out` each PostgreSQL guard this bundle does without, and why.",
        "",
    ]
    return "\n".join(lines).encode()


SQLITE_ENGINE = "sqlite"

SQLITE_DJANGO_MIGRATIONS = (
    'CREATE TABLE IF NOT EXISTS "django_migrations" ("id" integer NOT NULL PRIMARY KEY AUTOINCREMENT, '
    '"app" varchar(255) NOT NULL, "name" varchar(255) NOT NULL, "applied" datetime NOT NULL);'
)
"""Django's own table for the history, as its SQLite backend creates it (`MigrationRecorder`)."""

SQLITE_FOREIGN_KEY_CHECK = (
    "CREATE TEMP TABLE schemagate_foreign_key_check (foreign_key_violations integer CHECK (foreign_key_violations = 0));",
    "INSERT INTO temp.schemagate_foreign_key_check SELECT count(*) FROM pragma_foreign_key_check;",
    "DROP TABLE temp.schemagate_foreign_key_check;",
)
"""Django's `PRAGMA foreign_key_check` before each migration commits, made to fail: the pragma
only lists violations (Django raises on them in Python), so its rows are counted into a CHECK
that stops the shell at the first violation, before COMMIT, leaving the migration rolled back."""


def sqlite_session_guards(lock_timeout_ms: int) -> list[str]:
    """The PRAGMAs a SQLite script starts with: waiting for the database's write lock bounded by
    the project's lock timeout (the shell's default is to fail at once, an application's driver
    may wait for ever), and ALTER TABLE ... RENAME as Django's SQLite backend sets it on every
    connection, so the remake's rename updates references as it did on the shadow."""
    return [f"PRAGMA busy_timeout = {int(lock_timeout_ms)};", "PRAGMA legacy_alter_table = OFF;"]


def sqlite_history_statement(app_label: str, name: str, *, applied: bool) -> str:
    """Keep Django's migration history in step. SQLite has no conditional SQL (a statement naming
    a missing table fails to prepare), so, as Django's `migrate` does, the forward script creates
    django_migrations when it is missing; the rollback deletes from the table the forward made."""
    app, migration = literal(app_label), literal(name)
    if not applied:
        return f"DELETE FROM django_migrations WHERE app = {app} AND name = {migration};"
    return "\n".join(
        [
            SQLITE_DJANGO_MIGRATIONS,
            "INSERT INTO django_migrations (app, name, applied) "
            f"VALUES ({app}, {migration}, strftime('%Y-%m-%d %H:%M:%f', 'now'));",
        ]
    )


def sqlite_sql_script(
    *,
    header: list[str],
    statements: Sequence[ScriptedStatement],
    descriptions: dict[int, str],
    lock_timeout_ms: int,
    history: str,
    notes: list[str],
    preflight: Sequence[str] = (),
) -> bytes:
    """`sqlite3 -bail`-ready SQL, as Django's SQLite schema editor runs the migration: the session
    guards, `PRAGMA foreign_keys = OFF` (outside any transaction: SQLite ignores it inside one,
    and a remake drops and renames tables others refer to), then the statements in order, each
    transaction of the run as BEGIN ... COMMIT with the history and the foreign key check before
    its COMMIT; statements that ran outside a transaction stand alone; `PRAGMA foreign_keys = ON`
    last. `preflight` statements come first (none today: a parity count comes from PostgreSQL's
    backfill sample)."""
    lines = [f"-- {line}" for line in header]
    lines += [f"-- {note}" for note in notes]
    lines += list(preflight)
    lines += sqlite_session_guards(lock_timeout_ms)
    lines.append("PRAGMA foreign_keys = OFF;")
    open_transaction: Any = None
    described: set[int] = set()
    for statement in statements:
        transaction_id = statement.transaction if statement.transactional else None
        if open_transaction is not None and transaction_id != open_transaction:
            lines += [*SQLITE_FOREIGN_KEY_CHECK, "COMMIT;"]
            open_transaction = None
        if transaction_id is not None and open_transaction is None:
            lines.append("BEGIN;")
            open_transaction = transaction_id
        operation = statement.operation_index
        if operation is not None and operation not in described:
            described.add(operation)
            lines.append(f"-- operation {operation}: {descriptions.get(operation, '')}".rstrip())
        lines.append(terminated(statement.sql))
    lines.append(history)
    if open_transaction is not None:
        lines += [*SQLITE_FOREIGN_KEY_CHECK, "COMMIT;"]
    else:
        lines += list(SQLITE_FOREIGN_KEY_CHECK)
    lines.append("PRAGMA foreign_keys = ON;")
    return ("\n".join(lines) + "\n").encode()


def sqlite_guards(lock_timeout_ms: int) -> dict[str, Any]:
    """The manifest's account of a SQLite bundle's guards: what it sets, and each of PostgreSQL's
    guards it leaves out, with why."""
    return {
        "session": [line.rstrip(";") for line in sqlite_session_guards(lock_timeout_ms)],
        "busy_timeout_ms": int(lock_timeout_ms),
        "foreign_keys": "PRAGMA foreign_keys = OFF before each migration and ON after it, outside the transaction, "
        "as Django's SQLite schema editor does around a table remake",
        "foreign_key_check": "pragma_foreign_key_check counted into a CHECK before each COMMIT: a violation stops the "
        "script with the migration rolled back, where Django's migrate raises IntegrityError",
        "transactions": "BEGIN/COMMIT around each atomic migration: SQLite DDL is transactional, so a failing "
        "migration leaves nothing of itself applied",
        "left_out": [
            {
                "guard": "lock_timeout",
                "reason": "PostgreSQL's setting; SQLite has one write lock for the whole database, and busy_timeout "
                "bounds the wait for it by the project's lock timeout",
            },
            {
                "guard": "BEGIN IMMEDIATE",
                "reason": "Django's migrate opens a deferred BEGIN, and so does the script: the write lock is taken at "
                "the first write, waiting at most busy_timeout for it",
            },
            {
                "guard": "CONCURRENTLY statements outside transactions",
                "reason": "PostgreSQL-only (refused at intake for this engine): SQLite builds an index with the "
                "database's write lock held, whatever the statement says",
            },
            {
                "guard": "statement time limit",
                "reason": "SQLite has none in SQL (the shadow's watchdog interrupts from outside): a table remake "
                "legitimately runs long; bound it from the deploy",
            },
            {
                "guard": "post-deploy schema verification",
                "reason": "schema snapshots read pg_catalog: PostgreSQL projects only",
            },
        ],
    }


def sqlite_readme(*, server_version: str, apply_order: list[str], rollback_order: list[str], lock_timeout_ms: int) -> bytes:
    """How to apply a SQLite bundle, for whoever opens the archive: the order, the shell, and
    what differs from a PostgreSQL bundle."""
    lines = [
        "# Release bundle for SQLite",
        "",
        f"Dry-run on SQLite {server_version}: the SQL is exactly what Django's SQLite schema editor ran there,",
        "table remakes included (`new__` table, INSERT ... SELECT, DROP, RENAME, the indexes again).",
        "",
        "## Apply",
        "",
        "Each file with the `sqlite3` shell, in this order (`-bail` stops it at the first error):",
        "",
        *[f"1. `sqlite3 -bail <database file> < {path}`" for path in apply_order],
        "",
        "## Roll back",
        "",
        *([f"1. `sqlite3 -bail <database file> < {path}`" for path in rollback_order] or ["Nothing to roll back."]),
        "",
        "## What differs from a PostgreSQL bundle",
        "",
        f"- Every script starts with `PRAGMA busy_timeout = {int(lock_timeout_ms)}` (the project's lock timeout):",
        "  SQLite has one write lock for the whole database, and the script waits that long for it.",
        "- `PRAGMA foreign_keys = OFF` before each migration's BEGIN and `ON` after its COMMIT, as Django's",
        "  SQLite schema editor does; before COMMIT the foreign keys are checked, and a violation stops the",
        "  script with the migration rolled back.",
        "- Each atomic migration is one transaction: SQLite DDL is transactional. While it runs, every other",
        "  writer of the database waits (readers go on in WAL mode).",
        "- The forward script creates `django_migrations` when it is missing, as Django's `migrate` does.",
        "- `manifest.json` lists under `guards.left_out` each PostgreSQL guard this bundle does without, and why.",
        "",
    ]
    return "\n".join(lines).encode()
