"""A MySQL/MariaDB project's submitted SQL, read before it runs: only what can be checked passes.

There is no MySQL parser in the service, and PostgreSQL's refuses this dialect (backticks,
`ALGORITHM=INSTANT`), so the text is read by a small lexer of MySQL's own rules (quotes,
backticks, `--`, `#` and `/* */` comments) into statements, and each statement must be of a
kind that is checked: table, index and view DDL, and data statements. Anything else is
refused with the statement and the reason; so is what cannot be read one way only: versioned
comments (`/*! … */`, run by the server as SQL), backslashes in strings (read differently under
NO_BACKSLASH_ESCAPES), and stored programs or dynamic SQL, whose bodies cannot be seen. Nothing
is ever run here. docs/security.md lists every refusal.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from changeapi.intake.sql_texts import RefusedSql, shown, sql_texts


@dataclass(frozen=True, slots=True)
class MySqlToken:
    """One lexeme of MySQL text; the dry-run reads data statements with the same rules."""

    kind: str  # "word", "identifier" (backticked), "string", "variable", "symbol"
    text: str
    start: int

    @property
    def word(self) -> str:
        return self.text.upper() if self.kind == "word" else ""


@dataclass(frozen=True, slots=True)
class _Statement:
    tokens: tuple[MySqlToken, ...]
    start: int
    end: int

    @property
    def words(self) -> list[str]:
        return [token.word for token in self.tokens]


TRANSACTION = "transaction control: Django's executor owns the migration's transactions"
PROGRAMS = "stored programs and dynamic SQL: the statements they run cannot be checked"
ACCOUNTS = "accounts, roles and privileges are the service's"
DATABASES = "databases are the service's"
SERVER = "the server is the operator's"
FILES = "the server's file system"
SESSIONS = "it reaches other sessions"
OTHER_SERVERS = "other servers"

_FIRST_WORD: dict[str, str] = {
    "START": TRANSACTION,
    "BEGIN": TRANSACTION,
    "COMMIT": TRANSACTION,
    "ROLLBACK": TRANSACTION,
    "SAVEPOINT": TRANSACTION,
    "RELEASE": TRANSACTION,
    "XA": TRANSACTION,
    "LOCK": "LOCK TABLES: Django's executor owns the migration's locks and transactions",
    "UNLOCK": "UNLOCK TABLES: Django's executor owns the migration's locks and transactions",
    "GRANT": ACCOUNTS,
    "REVOKE": ACCOUNTS,
    "KILL": SESSIONS,
    "USE": DATABASES,
    "LOAD": FILES,
    "PREPARE": PROGRAMS,
    "EXECUTE": PROGRAMS,
    "DEALLOCATE": PROGRAMS,
    "CALL": PROGRAMS,
    "DELIMITER": PROGRAMS,
    "HANDLER": "HANDLER reads tables below SQL: it cannot be checked",
    "FLUSH": SERVER,
    "RESET": SERVER,
    "PURGE": SERVER,
    "SHUTDOWN": SERVER,
    "INSTALL": SERVER,
    "UNINSTALL": SERVER,
    "CHANGE": SERVER,
    "STOP": SERVER,
    "BINLOG": SERVER,
    "CACHE": SERVER,
    "BACKUP": SERVER,
}

_DATA_STATEMENTS = frozenset({"INSERT", "REPLACE", "UPDATE", "DELETE", "SELECT", "WITH", "TRUNCATE", "ANALYZE", "OPTIMIZE"})

_OBJECTS: dict[str, str | None] = {
    "TABLE": None,
    "INDEX": None,
    "VIEW": None,
    "USER": ACCOUNTS,
    "ROLE": ACCOUNTS,
    "DATABASE": DATABASES,
    "SCHEMA": DATABASES,
    "PROCEDURE": PROGRAMS,
    "FUNCTION": PROGRAMS,
    "TRIGGER": PROGRAMS,
    "EVENT": PROGRAMS,
    "PACKAGE": PROGRAMS,
    "SERVER": OTHER_SERVERS,
    "TABLESPACE": FILES,
    "LOGFILE": FILES,
    "INSTANCE": SERVER,
    "DEFINER": "DEFINER names an account: accounts are the service's",
}
"""What CREATE, ALTER, DROP and RENAME may name (None: checked further), else why not."""

_MODIFIERS = frozenset(
    {"OR", "REPLACE", "TEMPORARY", "UNIQUE", "FULLTEXT", "SPATIAL", "ONLINE", "OFFLINE", "IGNORE", "IF", "NOT"}
)

_ENGINES = frozenset({"INNODB", "ARIA", "MYISAM", "MEMORY", "HEAP"})
"""Storage engines that keep a table in the server's own files (CONNECT, FEDERATED, SPIDER reach beyond)."""

_NAMED_LOCKS = "named locks are server-wide: they reach other sessions"
_FUNCTIONS: dict[str, str] = {
    "LOAD_FILE": f"LOAD_FILE() reads {FILES}",
    "GET_LOCK": _NAMED_LOCKS,
    "RELEASE_LOCK": _NAMED_LOCKS,
    "RELEASE_ALL_LOCKS": _NAMED_LOCKS,
    "IS_USED_LOCK": _NAMED_LOCKS,
    "IS_FREE_LOCK": _NAMED_LOCKS,
    "MASTER_POS_WAIT": f"replication waits: {SERVER}",
    "MASTER_GTID_WAIT": f"replication waits: {SERVER}",
    "SOURCE_POS_WAIT": f"replication waits: {SERVER}",
}

SESSION_SETTINGS = frozenset({"FOREIGN_KEY_CHECKS", "UNIQUE_CHECKS", "CHECK_CONSTRAINT_CHECKS"})
"""Session variables a migration's SQL may SET; the others carry the dry-run's limits
(lock_wait_timeout, max_statement_time), how the SQL is read (sql_mode) or its identity."""


def check_mysql_sql(sql: Any) -> None:
    """Raise RefusedSql for the first statement of a RunSQL's `sql` that cannot be checked or is refused."""
    for text in sql_texts(sql):
        for statement in _statements(text):
            reason = _refusal(statement)
            if reason:
                raise RefusedSql(f"{shown(text[statement.start : statement.end])!r} is refused: {reason}.")


def _unreadable(text: str, at: int, why: str) -> RefusedSql:
    return RefusedSql(f"the SQL cannot be checked at character {at + 1} ({shown(text[at : at + 40])!r}): {why}.")


def _statements(text: str) -> Iterator[_Statement]:
    tokens: list[MySqlToken] = []
    for token in mysql_tokens(text):
        if token.kind == "symbol" and token.text == ";":
            if tokens:
                yield _Statement(tuple(tokens), tokens[0].start, token.start)
            tokens = []
        else:
            tokens.append(token)
    if tokens:
        last = tokens[-1]
        yield _Statement(tuple(tokens), tokens[0].start, last.start + len(last.text))


def mysql_tokens(text: str) -> Iterator[MySqlToken]:
    """MySQL's lexical rules, enough to find statements, words and quoted text; what would be
    read otherwise by the server (versioned comments, backslash escapes) is refused."""
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if _is_control(c):
            # The server ends a `--` comment at a control character as at a space: text read
            # one way here and another there is refused rather than guessed.
            raise _unreadable(text, i, f"a control character (U+{ord(c):04X}) is read differently by the server")
        if c.isspace():
            i += 1
        elif text.startswith("/*", i):
            if text.startswith(("/*!", "/*M!"), i):
                raise _unreadable(text, i, "a versioned comment (/*! … */) is run by the server as SQL")
            end = text.find("*/", i + 2)
            if end < 0:
                raise _unreadable(text, i, "the comment is not closed")
            i = end + 2
        elif c == "#" or (text.startswith("--", i) and (i + 2 == n or text[i + 2].isspace())):
            end = text.find("\n", i)
            i = n if end < 0 else end + 1
        elif c in "'\"`":
            end = _closing(text, i)
            yield MySqlToken("identifier" if c == "`" else "string", text[i : end + 1], i)
            i = end + 1
        elif c == "@":
            j = i + 2 if text.startswith("@@", i) else i + 1
            while j < n and (text[j].isalnum() or text[j] in "_$."):
                j += 1
            yield MySqlToken("variable", text[i:j], i)
            i = j
        elif c.isalnum() or c in "_$":
            j = i + 1
            while j < n and (text[j].isalnum() or text[j] in "_$"):
                j += 1
            yield MySqlToken("word", text[i:j], i)
            i = j
        else:
            yield MySqlToken("symbol", c, i)
            i += 1


def _is_control(c: str) -> bool:
    return (ord(c) < 32 and c not in "\t\n\r") or ord(c) == 127


def _closing(text: str, start: int) -> int:
    """Where the quoted text opened at `start` ends; a doubled quote stays inside."""
    quote = text[start]
    i = start + 1
    while True:
        end = text.find(quote, i)
        if end < 0:
            raise _unreadable(text, start, "the quoted text is not closed")
        if quote != "`" and "\\" in text[i:end]:
            raise _unreadable(
                text, start, "a backslash in a string is read two ways (as an escape, or not under NO_BACKSLASH_ESCAPES)"
            )
        if text.startswith(quote * 2, end):
            i = end + 2
            continue
        return end


def _refusal(statement: _Statement) -> str | None:
    words = statement.words
    first = words[0]
    if first in _FIRST_WORD:
        return _FIRST_WORD[first]
    if first == "SET":
        return _set_refusal(statement.tokens[1:])
    if first in {"CREATE", "ALTER", "DROP", "RENAME"}:
        reason = _object_refusal(statement.tokens[1:])
        return reason or _clause_refusal(statement.tokens)
    if first in _DATA_STATEMENTS:
        return _clause_refusal(statement.tokens)
    return (
        f"{first or statement.tokens[0].text} statements cannot be checked (checked: CREATE/ALTER/DROP/RENAME of "
        "tables, indexes and views, INSERT, REPLACE, UPDATE, DELETE, SELECT, WITH, TRUNCATE, ANALYZE, OPTIMIZE, "
        "and SET of foreign_key_checks, unique_checks, check_constraint_checks or user variables)"
    )


def _object_refusal(tokens: Sequence[MySqlToken]) -> str | None:
    """What a CREATE, ALTER, DROP or RENAME names, past its modifiers (and a view's ALGORITHM=)."""
    i = 0
    while i < len(tokens):
        word = tokens[i].word
        if word in _MODIFIERS or word == "EXISTS":
            i += 1
        elif word in {"ALGORITHM", "SQL"} and i + 2 < len(tokens):
            i += 3  # CREATE ALGORITHM = MERGE VIEW, CREATE SQL SECURITY INVOKER VIEW
        elif word in _OBJECTS:
            return _OBJECTS[word]
        else:
            break
    shown_word = tokens[i].text if i < len(tokens) else "nothing"
    return f"{shown_word} objects cannot be checked (checked: tables, indexes and views)"


def _clause_refusal(tokens: Sequence[MySqlToken]) -> str | None:
    """Clauses of a checked statement that reach files, other servers, sessions or accounts."""
    words = [token.word for token in tokens]
    for i, word in enumerate(words):
        after = words[i + 1] if i + 1 < len(words) else ""
        if word == "INTO" and after in {"OUTFILE", "DUMPFILE"}:
            return f"INTO {after} writes {FILES}"
        if word in {"DATA", "INDEX"} and after == "DIRECTORY":
            return f"{word} DIRECTORY places a table in {FILES}"
        if word in {"DISCARD", "IMPORT"} and after == "TABLESPACE":
            return f"{word} TABLESPACE reaches {FILES}"
        if word == "DEFINER":
            return "DEFINER names an account: accounts are the service's"
        if word == "CONNECTION" and i + 1 < len(tokens) and (tokens[i + 1].text == "=" or tokens[i + 1].kind == "string"):
            return f"a table CONNECTION reaches {OTHER_SERVERS}"
        if word == "ENGINE":
            engine = _value_after(tokens, i)
            if engine is not None and engine.upper().strip("`'\"") not in _ENGINES:
                return f"the storage engine {engine} may reach {OTHER_SERVERS} or {FILES} (checked: InnoDB, Aria, MyISAM, MEMORY)"
        if word in _FUNCTIONS and i + 1 < len(tokens) and tokens[i + 1].text == "(":
            return _FUNCTIONS[word]
    return None


def _value_after(tokens: Sequence[MySqlToken], i: int) -> str | None:
    """The value of an `OPTION [=] value` clause whose name is at `i`."""
    j = i + 1
    if j < len(tokens) and tokens[j].text == "=":
        j += 1
    return tokens[j].text if j < len(tokens) else None


def _set_refusal(tokens: Sequence[MySqlToken]) -> str | None:
    """Each assignment of a SET: user variables and the few session switches migrations use pass."""
    if tokens and tokens[0].word == "STATEMENT":
        return "SET STATEMENT changes the dry-run's limits or session for the statement it runs"
    for target in _assignment_targets(tokens):
        if not target:
            return "the SET cannot be read"
        head = target[0]
        if head.kind == "variable" and not head.text.startswith("@@"):
            continue
        name = head.text.lstrip("@").upper()
        scope, _, variable = name.rpartition(".")
        if head.word in {"GLOBAL", "PERSIST", "PERSIST_ONLY"} or scope == "GLOBAL":
            return f"SET GLOBAL: {SERVER}"
        if head.word in {"SESSION", "LOCAL"} and len(target) > 1:
            variable = target[1].text.upper()
        elif scope not in {"", "SESSION", "LOCAL"}:
            variable = name
        if head.word in {"ROLE", "PASSWORD", "DEFAULT"}:
            return ACCOUNTS
        if variable not in SESSION_SETTINGS:
            return (
                f"SET of {variable.lower() or head.text}: the dry-run's limits and session are the service's "
                "(checked: foreign_key_checks, unique_checks, check_constraint_checks, user variables)"
            )
    return None


def _assignment_targets(tokens: Sequence[MySqlToken]) -> Iterator[list[MySqlToken]]:
    """The tokens before `=` / `:=` of each comma-separated assignment (outside parentheses)."""
    depth, target_done = 0, False
    current: list[MySqlToken] = []
    for token in tokens:
        if token.text == "(":
            depth += 1
        elif token.text == ")":
            depth -= 1
        if depth == 0 and token.text == ",":
            yield current
            current, target_done = [], False
            continue
        if depth == 0 and token.text in {"=", ":"}:
            target_done = True
        if not target_done:
            current.append(token)
    yield current
