"""What a MySQL/MariaDB data statement changes, read with the intake's MySQL lexer.

`RunSQL` is written by hand: its table may be backticked or bare, qualified by its schema,
and behind modifiers (`UPDATE LOW_PRIORITY IGNORE t`, `DELETE QUICK FROM t`). The dry-run needs
the table to class the statement's work, scale it to production size and say whose writes
it blocks. Whether an UPDATE or DELETE changes its rows in one go is judged by the same rules
as PostgreSQL's (`sql_forms.unbatched_changes`), on the statement with MySQL's quoting turned
into PostgreSQL's; what PostgreSQL's grammar does not read (`UPDATE … LIMIT`, multi-table
forms) is not judged, as for any SQL the rules cannot read.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass

from changeapi.dryrun.contract import Lock
from changeapi.dryrun.sql_forms import UnbatchedChange, unbatched_changes
from changeapi.intake.sql_policy_mysql import MySqlToken, mysql_tokens
from changeapi.intake.sql_texts import RefusedSql

_MODIFIERS = frozenset({"LOW_PRIORITY", "HIGH_PRIORITY", "DELAYED", "QUICK", "IGNORE"})
_ROW_COMMANDS = frozenset({"UPDATE", "DELETE", "INSERT", "REPLACE"})


def _tokens(sql: str) -> list[MySqlToken] | None:
    try:
        return list(mysql_tokens(sql))
    except RefusedSql:
        return None  # text the lexer will not read one way: not judged here


def leading_word(sql: str) -> str:
    """The statement's first keyword, upper-cased and past any comments ("" for none): a
    hand-written statement may open with a comment, which decides nothing about what it does."""
    tokens = _tokens(sql)
    if tokens is None:
        words = sql.split(maxsplit=1)
        return words[0].upper() if words else ""
    return tokens[0].word if tokens else ""


def _name(token: MySqlToken) -> str | None:
    if token.kind == "identifier":
        return token.text[1:-1].replace("``", "`")
    if token.kind == "word" and token.word not in _MODIFIERS:
        return token.text
    return None


@dataclass(frozen=True, slots=True)
class DataStatement:
    """An UPDATE, DELETE, INSERT or REPLACE, and the table whose rows it changes."""

    command: str
    table: str

    @property
    def locks_existing_rows(self) -> bool:
        """UPDATE and DELETE lock the rows they change, so that other sessions' writes of them wait."""
        return self.command in ("UPDATE", "DELETE")


def data_statement(sql: str) -> DataStatement | None:
    """The data statement `sql` is, with its table however it is quoted or qualified; None for
    any other statement."""
    tokens = _tokens(sql)
    if not tokens or tokens[0].word not in _ROW_COMMANDS:
        return None
    rest = iter(tokens[1:])
    for token in rest:
        if token.word in _MODIFIERS or token.word in ("FROM", "INTO"):
            continue
        name = _name(token)
        following = next(rest, None)
        if name is not None and following is not None and following.kind == "symbol" and following.text == ".":
            qualified = next(rest, None)
            name = _name(qualified) if qualified is not None else None
        return DataStatement(tokens[0].word, name) if name is not None else None
    return None


def rows_changed_table(sql: str) -> str | None:
    """The table an UPDATE, DELETE, INSERT or REPLACE changes the rows of; None for any other statement."""
    statement = data_statement(sql)
    return statement.table if statement is not None else None


def row_locks(table: str, command: str) -> tuple[Lock, ...]:
    """InnoDB's documented locks for a data statement on an existing table: exclusive row locks
    on every row it changes (other sessions' writes of those rows wait; consistent reads do
    not), and a shared-write metadata lock that makes any ALTER of the table wait."""
    return (
        Lock(
            relation=table,
            relation_kind="table",
            table=table,
            mode=f"row locks (X) of its {command}",
            blocks_reads=False,
            blocks_writes=True,
            blocks_ddl=True,
            source="documented",
        ),
    )


def _as_postgres(tokens: list[MySqlToken], sql: str) -> Iterator[str]:
    """The statement with backticked names double-quoted and double-quoted strings single-quoted,
    the rest of the text as written."""
    at = 0
    for token in tokens:
        yield sql[at : token.start]
        if token.kind == "identifier":
            yield '"' + token.text[1:-1].replace("``", "`").replace('"', '""') + '"'
        elif token.kind == "string" and token.text.startswith('"'):
            yield "'" + token.text[1:-1].replace('""', '"').replace("'", "''") + "'"
        else:
            yield token.text
        at = token.start + len(token.text)
    yield sql[at:]


def _as_mysql(sql: str) -> str:
    """PostgreSQL's rendering back in MySQL's quoting: double-quoted names backticked, strings
    ('…', quotes doubled) as they are."""
    out: list[str] = []
    i, n = 0, len(sql)
    while i < n:
        c = sql[i]
        if c not in "'\"":
            out.append(c)
            i += 1
            continue
        end = i + 1
        while True:
            end = sql.find(c, end)
            if end < 0:
                return sql  # not PostgreSQL's own output: left as it is
            if sql.startswith(c * 2, end):
                end += 2
                continue
            break
        body = sql[i + 1 : end]
        out.append("`" + body.replace('""', '"').replace("`", "``") + "`" if c == '"' else sql[i : end + 1])
        i = end + 1
    return "".join(out)


def mysql_unbatched_changes(sql: str, *, key: str = "id") -> list[UnbatchedChange]:
    """Each UPDATE or DELETE in `sql` (one statement, as Django runs RunSQL's) that changes all
    its matching rows at once, its batched form in MySQL's quoting."""
    tokens = _tokens(sql)
    if not tokens or tokens[0].word not in ("UPDATE", "DELETE"):
        return []
    changes = unbatched_changes("".join(_as_postgres(tokens, sql)), key=key)
    return [
        dataclasses.replace(change, reason=_as_mysql(change.reason), batched_sql=_as_mysql(change.batched_sql))
        for change in changes
    ]
