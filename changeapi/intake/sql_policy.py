"""Submitted SQL read before it runs: what a migration's SQL may not do on a shadow database.

For a PostgreSQL project, `RunSQL` (and its reverse) is parsed with pglast, PostgreSQL's own
parser; a MySQL/MariaDB project's SQL is in that dialect and is read by `sql_policy_mysql`
instead. Statements that
would take over the transaction Django's executor manages, lift the limits a dry-run runs
under, change roles, databases or the server, or reach files and other sessions are refused
at intake with the reason. Parsing cannot see inside `DO` bodies or functions; the engine
also detects any transaction boundary it did not make and fails the dry-run, and the
watchdog enforces the statement timeout whatever the session set. docs/security.md lists
every refusal.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pglast
from pglast import ast, enums

from changeapi.intake.engines import MYSQL, POSTGRESQL
from changeapi.intake.sql_policy_mysql import check_mysql_sql
from changeapi.intake.sql_texts import RefusedSql, shown, sql_texts

__all__ = ["RefusedSql", "check_sql"]

# Settings that carry a dry-run's limits or identity; SET/RESET/set_config of them is refused.
LIMIT_SETTINGS = frozenset(
    {
        "statement_timeout",
        "lock_timeout",
        "idle_in_transaction_session_timeout",
        "idle_session_timeout",
        "transaction_timeout",
        "role",
        "session_authorization",
        "default_transaction_read_only",
        "transaction_read_only",
        "temp_file_limit",
        "work_mem",
        "maintenance_work_mem",
    }
)

_STATEMENTS: dict[type, str] = {
    ast.TransactionStmt: "transaction control (BEGIN, COMMIT, ROLLBACK, SAVEPOINT): Django's executor owns the migration's transaction",
    ast.CreateRoleStmt: "role DDL",
    ast.AlterRoleStmt: "role DDL",
    ast.AlterRoleSetStmt: "role DDL",
    ast.DropRoleStmt: "role DDL",
    ast.GrantRoleStmt: "granting roles",
    ast.ReassignOwnedStmt: "REASSIGN OWNED",
    ast.DropOwnedStmt: "DROP OWNED",
    ast.CreatedbStmt: "database DDL",
    ast.DropdbStmt: "database DDL",
    ast.AlterDatabaseStmt: "database DDL",
    ast.AlterDatabaseSetStmt: "database DDL",
    ast.AlterDatabaseRefreshCollStmt: "database DDL",
    ast.AlterSystemStmt: "server configuration (ALTER SYSTEM)",
    ast.CreateTableSpaceStmt: "tablespace DDL",
    ast.DropTableSpaceStmt: "tablespace DDL",
    ast.AlterTableSpaceOptionsStmt: "tablespace DDL",
    ast.LoadStmt: "loading a shared library (LOAD)",
    ast.CreateSubscriptionStmt: "logical replication subscriptions (they connect to other servers)",
    ast.AlterSubscriptionStmt: "logical replication subscriptions",
    ast.CreateForeignServerStmt: "foreign servers (they connect to other servers)",
    ast.CreateUserMappingStmt: "user mappings for foreign servers",
    ast.CheckPointStmt: "CHECKPOINT",
}

# Functions that reach other sessions, the server's files or configuration, or other servers.
REFUSED_FUNCTIONS = frozenset(
    {
        "pg_terminate_backend",
        "pg_cancel_backend",
        "pg_reload_conf",
        "pg_rotate_logfile",
        "pg_read_file",
        "pg_read_binary_file",
        "pg_ls_dir",
        "pg_stat_file",
        "lo_import",
        "lo_export",
        "dblink",
        "dblink_exec",
        "dblink_connect",
        "dblink_send_query",
    }
)


def check_sql(sql: Any, *, engine: str = POSTGRESQL) -> None:
    """Raise RefusedSql for the first refused statement in a RunSQL's `sql` (str, list, tuples),
    read in the dialect of the project's `engine`."""
    if engine == MYSQL:
        check_mysql_sql(sql)
        return
    for text in sql_texts(sql):
        try:
            statements = pglast.parse_sql(text)
        except pglast.parser.ParseError as exc:
            raise RefusedSql(f"the SQL cannot be parsed by PostgreSQL's parser: {exc}") from None
        for raw in statements:
            reason = _refusal(raw.stmt) if raw.stmt is not None else None
            if reason:
                raise RefusedSql(f"{_statement_text(text, raw)!r} is refused: {reason}.")


def _refusal(statement: ast.Node) -> str | None:
    for node in _walk(statement):
        reason = _STATEMENTS.get(type(node))
        if reason:
            return reason
        if isinstance(node, ast.VariableSetStmt):
            if node.name is None or str(node.name).lower() in LIMIT_SETTINGS or node.kind == enums.VariableSetKind.VAR_RESET_ALL:
                return "changing the dry-run's limits or role (SET/RESET of statement_timeout, lock_timeout, role, ...)"
        if isinstance(node, ast.CopyStmt) and (node.is_program or node.filename):
            return "COPY to or from a server file or program"
        if isinstance(node, ast.AlterOwnerStmt) or (
            isinstance(node, ast.AlterTableCmd) and node.subtype == enums.AlterTableType.AT_ChangeOwner
        ):
            return "changing an object's owner"
        if isinstance(node, ast.FuncCall):
            last = node.funcname[-1] if node.funcname else None
            name = str(last.sval or "").lower() if isinstance(last, ast.String) else ""
            if name in REFUSED_FUNCTIONS:
                return f"{name}() reaches other sessions, the server's files or other servers"
            if name == "set_config" and node.args and _constant_text(node.args[0]).lower() in LIMIT_SETTINGS | {""}:
                return "set_config() of the dry-run's limits or role"
    return None


def _constant_text(node: Any) -> str:
    """The text of a string constant argument; "" when it is not one (an expression is refused too)."""
    if isinstance(node, ast.A_Const) and isinstance(node.val, ast.String):
        return str(node.val.sval)
    return ""


def _walk(node: Any) -> Iterator[ast.Node]:
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, ast.Node):
            yield current
            slots: Any = getattr(type(current), "__slots__", ())  # pglast declares node fields as slots
            stack.extend(getattr(current, slot, None) for slot in slots)
        elif isinstance(current, (list, tuple)):
            stack.extend(current)


def _statement_text(text: str, raw: ast.RawStmt) -> str:
    start = raw.stmt_location or 0
    end = start + raw.stmt_len if raw.stmt_len else len(text)
    return shown(text[start:end])
