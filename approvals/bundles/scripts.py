"""SQL scripts of a bundle, per engine: the statements as the dry-run ran them, with the engine's guards.

PostgreSQL scripts are for `psql -v ON_ERROR_STOP=1 -f`: each transaction of the run as
BEGIN ... COMMIT under `SET LOCAL lock_timeout`, CONCURRENTLY statements on their own.
MySQL/MariaDB scripts are for the `mysql` client, which stops at the first error: DDL there
commits on its own, so there is no transaction to write, only the session's
`lock_wait_timeout`, which the server otherwise leaves at a year.
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
