"""Ask a MySQL/MariaDB server how it would run one DDL statement, on a scratch copy of its table.

The server decides the algorithm (INSTANT, NOCOPY on MariaDB, INPLACE, COPY) and the lock
(NONE, SHARED, EXCLUSIVE) an ALTER may use, and says so only when asked: a statement with an
explicit `ALGORITHM=` or `LOCK=` it cannot honour fails with error 1845, 1846 or 1847 and the
reason. Each clause is tried, most efficient first, on a copy of the table (its definition
and one row) in the clone, so the clone's own table is changed only by the statement as Django
runs it; a clause the server accepts really ran on the copy, which is then made again.
"""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass
from typing import Any

from changeapi.dryrun.contract import DdlRefusal
from changeapi.intake.sql_policy_mysql import mysql_tokens
from changeapi.intake.sql_texts import RefusedSql
from changeapi.shadow.mysql_databases import quote, server_errors

ALGORITHMS_MARIADB = ("INSTANT", "NOCOPY", "INPLACE", "COPY")
ALGORITHMS_MYSQL = ("INSTANT", "INPLACE", "COPY")  # MySQL 8 has no NOCOPY
LOCKS = ("NONE", "SHARED", "EXCLUSIVE")
NOT_SUPPORTED = {1845, 1846, 1847}
"""ER_ALTER_OPERATION_NOT_SUPPORTED, …_REASON, …_REASON_… : the clause, not the statement, is refused."""

_IDENTIFIER = r"`(?:[^`]|``)+`"
_DROPS_FOREIGN_KEY = re.compile(r"\bDROP\s+FOREIGN\s+KEY\b", re.IGNORECASE)
# A name as Django's editor writes it (backticked) or as a hand-written statement may (bare);
# a table name not followed by a qualifying dot (another database's table is nothing of the clone's).
_NAME = rf"(?:{_IDENTIFIER}|[A-Za-z_$][\w$]*)"
_TABLE = rf"{_NAME}(?![\w$.`])"
_ALTER = re.compile(rf"^\s*ALTER\s+TABLE\s+(?P<table>{_TABLE})", re.IGNORECASE)
_INDEX = re.compile(
    rf"^\s*(?:CREATE\s+(?:UNIQUE\s+|FULLTEXT\s+|SPATIAL\s+)?|DROP\s+)INDEX\s+{_NAME}\s+ON\s+(?P<table>{_TABLE})",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class DdlTarget:
    """A statement that takes ALGORITHM= and LOCK= clauses, and the table it changes."""

    sql: str
    table: str
    start: int
    end: int
    separator: str  # ", " in ALTER TABLE, " " after CREATE/DROP INDEX

    def on(self, table: str, clause: str = "") -> str:
        """The statement run against `table` instead, with `clause` appended."""
        text = self.sql[: self.start] + quote(table) + self.sql[self.end :]
        return f"{text}{self.separator}{clause}" if clause else text


def ddl_target(sql: str) -> DdlTarget | None:
    """The table an ALTER TABLE, CREATE INDEX or DROP INDEX changes; None for other statements.

    A hand-written statement may open with comments (skipped) and name its table bare. One
    that ends in a comment is not asked about: the clauses the probe appends would land inside
    the comment and every one would seem accepted. Text the lexer will not read one way (a
    backslash escape in a default Django's editor quoted) is taken as it is, its table only in
    the backticks Django's editor writes.
    """
    try:
        text: str | None = _statement_text(sql)
        lexed = True
    except RefusedSql:
        text, lexed = sql.strip().rstrip(";"), False
    if text is None:
        return None
    for pattern, separator in ((_ALTER, ", "), (_INDEX, " ")):
        match = pattern.match(text)
        if match:
            raw = match.group("table")
            if not lexed and not raw.startswith("`"):
                return None
            return DdlTarget(
                sql=text,
                table=raw[1:-1].replace("``", "`") if raw.startswith("`") else raw,
                start=match.start("table"),
                end=match.end("table"),
                separator=separator,
            )
    return None


def _statement_text(sql: str) -> str | None:
    """`sql` from its first token to its last, without a closing semicolon; None when a
    comment follows the last token. Raises RefusedSql for text the lexer will not read."""
    tokens = list(mysql_tokens(sql))
    if tokens and tokens[-1].kind == "symbol" and tokens[-1].text == ";":
        tokens.pop()
    if not tokens:
        return None
    last = tokens[-1]
    end = last.start + len(last.text)
    if sql[end:].strip(" \t\r\n;"):
        return None  # a comment after the statement
    return sql[tokens[0].start : end]


@dataclass(frozen=True, slots=True)
class DdlAnswer:
    """What the server accepted: the best algorithm and weakest lock, the clauses it refused,
    or why the statement could not be tried on a copy; and how long the accepted algorithm took
    on the one-row copy (`accepted_ms`), the statement's fixed cost whatever the table's size."""

    algorithm: str | None
    lock: str | None
    refusals: tuple[DdlRefusal, ...]
    probe_error: str | None
    accepted_ms: float | None = None

    @property
    def blocks_writes(self) -> bool | None:
        """A statement that allows LOCK=NONE lets writes go on; SHARED or EXCLUSIVE stops them."""
        return None if self.lock is None else self.lock != "NONE"

    @property
    def blocks_reads(self) -> bool | None:
        return None if self.lock is None else self.lock == "EXCLUSIVE"


class _Scratch:
    """A copy of one table under a new name, made again after a clause that changed it."""

    def __init__(self, cursor: Any, table: str) -> None:
        self.cursor = cursor
        self.table = table
        self.name = f"schemagate_probe_{uuid.uuid4().hex[:16]}"
        self.fresh = False

    def ready(self) -> str:
        if not self.fresh:
            self.drop()
            self.cursor.execute(f"CREATE TABLE {quote(self.name)} LIKE {quote(self.table)}")
            self.cursor.execute(
                "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s "
                "AND EXTRA NOT LIKE '%%GENERATED%%' AND EXTRA NOT IN ('VIRTUAL', 'STORED', 'PERSISTENT') "
                "ORDER BY ORDINAL_POSITION",
                [self.table],
            )
            columns = ", ".join(quote(str(row[0])) for row in self.cursor.fetchall())
            # One row: a few changes are decided differently for an empty table.
            self.cursor.execute(f"INSERT INTO {quote(self.name)} ({columns}) SELECT {columns} FROM {quote(self.table)} LIMIT 1")
            self.fresh = True
        return self.name

    def drop(self) -> None:
        self.cursor.execute(f"DROP TABLE IF EXISTS {quote(self.name)}")


def ddl_ask(cursor: Any, target: DdlTarget, params: Any, *, flavor: str) -> DdlAnswer:
    """Try the statement with each ALGORITHM=, then each LOCK=, on a scratch copy of its table.

    `cursor` is a driver cursor of the job's own user on the clone, in autocommit. The
    statement's own parameters (rarely any in DDL) are passed as Django would.
    """
    if _DROPS_FOREIGN_KEY.search(target.sql):
        return DdlAnswer(
            algorithm=None,
            lock=None,
            refusals=(),
            probe_error="not asked: a copy of the table (CREATE TABLE … LIKE) has none of its foreign keys to drop",
        )
    errors = server_errors()
    refusals: list[DdlRefusal] = []
    scratch = _Scratch(cursor, target.table)
    chosen: dict[str, str | None] = {"ALGORITHM": None, "LOCK": None}
    accepted_ms: float | None = None
    algorithms = ALGORITHMS_MARIADB if flavor == "mariadb" else ALGORITHMS_MYSQL
    try:
        cursor.execute("SET SESSION foreign_key_checks = 1")
        for option, values in (("ALGORITHM", algorithms), ("LOCK", LOCKS)):
            for value in values:
                clause = f"{option}={value}"
                statement = target.on(scratch.ready(), clause)
                started = time.perf_counter()
                try:
                    cursor.execute(statement, params or None)
                except errors as exc:
                    code = int(exc.args[0]) if exc.args and isinstance(exc.args[0], int) else 0
                    message = str(exc.args[1]) if len(exc.args) > 1 else str(exc)
                    if code not in NOT_SUPPORTED:
                        return DdlAnswer(
                            algorithm=chosen["ALGORITHM"],
                            lock=chosen["LOCK"],
                            refusals=tuple(refusals),
                            probe_error=f"the statement failed on a copy of {target.table} with {clause}: {code} {message}",
                        )
                    refusals.append(DdlRefusal(clause=clause, code=code, message=message))
                    continue
                if option == "ALGORITHM":
                    accepted_ms = round((time.perf_counter() - started) * 1000, 3)
                scratch.fresh = False
                chosen[option] = value
                break
    finally:
        scratch.drop()
    return DdlAnswer(
        algorithm=chosen["ALGORITHM"],
        lock=chosen["LOCK"],
        refusals=tuple(refusals),
        probe_error=None,
        accepted_ms=accepted_ms,
    )


def table_id(admin_cursor: Any, database: str, table: str, *, flavor: str) -> int | None:
    """The InnoDB table id (it changes when the table is rebuilt); None if there is none.

    Read by the admin: the InnoDB catalog tables need the PROCESS privilege, which would let a
    job see other sessions' statements.
    """
    catalog = "INNODB_SYS_TABLES" if flavor == "mariadb" else "INNODB_TABLES"
    admin_cursor.execute(f"SELECT TABLE_ID FROM information_schema.{catalog} WHERE NAME = %s", [f"{database}/{table}"])
    row = admin_cursor.fetchone()
    return int(row[0]) if row else None


_RECORDS = re.compile(r"Records:\s*(\d+)")


def rows_copied(info: str | bytes | None) -> int | None:
    """The `Records: N` of an ALTER's result info: the rows passed through a copy."""
    if not info:
        return None
    match = _RECORDS.search(info.decode() if isinstance(info, bytes) else info)
    return int(match.group(1)) if match else None
