"""A `pg_dump --schema-only` script read as a schema: parsed, never trusted, restored only on a shadow.

A team that cannot run the catalog query (no access to production's catalog from CI, only a
nightly dump) can upload the dump's schema instead. The script is SQL written by pg_dump, but
it arrives from outside and is hostile input like any other: it is read by PostgreSQL's own
parser (pglast), every statement is checked against the kinds a schema-only dump of tables
holds, and what runs is the statement written again from its parse tree, never the uploaded
text. It runs on a fresh shadow database as the job's own unprivileged role, under the
watchdog; the catalog query then reads the restored schema, so the snapshot stored is the
same document a team would have uploaded from the catalog query itself.

What a dump holds that is not a table's schema (ownership, grants, comments, session
settings) is skipped; what the catalog query does not read or a job role must not make
(functions, triggers, views, extensions, other schemas) is skipped and listed, so the
uploader sees what the snapshot leaves out. Anything else (data, roles, `DO` blocks, psql
commands other than the dump's own `\\restrict` guard) is refused with its line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import psycopg
from pglast import ast, enums, parse_sql
from pglast.parser import ParseError
from pglast.stream import RawStream

from changeapi.dryrun.session import shadow_session
from changeapi.shadow.catalog import catalog_read
from changeapi.shadow.servers import ShadowServer

# pg_dump 15.14 and later guard the script with psql's \restrict ... \unrestrict: the only
# meta-commands a plain schema dump has.
_DUMP_GUARD = re.compile(r"^\\(restrict|unrestrict)(\s+\S+)?\s*$")

# Restored: what makes the tables, columns, keys, indexes and sequences the catalog query reads.
_RESTORED = (ast.CreateStmt, ast.CreateSeqStmt, ast.AlterSeqStmt, ast.IndexStmt, ast.AlterTableStmt, ast.CreateEnumStmt)
# Skipped without a word: they change nothing the catalog query reads.
_IGNORED = (ast.VariableSetStmt, ast.CommentStmt, ast.GrantStmt, ast.AlterOwnerStmt, ast.AlterDefaultPrivilegesStmt)
# Skipped and listed: the catalog query does not compare them, or a job role must not make them.
_LISTED = {
    ast.CreateExtensionStmt: "an extension (the shadow has only what the server provides)",
    ast.CreateFunctionStmt: "a function (code is not restored)",
    ast.CreateTrigStmt: "a trigger (code is not restored)",
    ast.ViewStmt: "a view",
    ast.RuleStmt: "a rule",
    ast.CreatePolicyStmt: "a row security policy",
    ast.CreateStatsStmt: "extended statistics",
    ast.CreateSchemaStmt: "a schema (only the current schema's tables are compared)",
    ast.CreatePublicationStmt: "a publication",
    ast.CreateEventTrigStmt: "an event trigger (code is not restored)",
    ast.CompositeTypeStmt: "a composite type",
    ast.CreateDomainStmt: "a domain",
    ast.SecLabelStmt: "a security label",
}
# ALTER TABLE subcommands of a schema dump; OWNER TO is dropped from the statement.
_ALTER_TABLE_KINDS = {
    enums.AlterTableType.AT_AddConstraint,
    enums.AlterTableType.AT_ColumnDefault,
    enums.AlterTableType.AT_SetNotNull,
    enums.AlterTableType.AT_AddIdentity,
    enums.AlterTableType.AT_SetIdentity,
    enums.AlterTableType.AT_ClusterOn,
    enums.AlterTableType.AT_SetStatistics,
    enums.AlterTableType.AT_SetStorage,
    enums.AlterTableType.AT_SetRelOptions,
    enums.AlterTableType.AT_ReplicaIdentity,
    enums.AlterTableType.AT_EnableRowSecurity,
    enums.AlterTableType.AT_ForceRowSecurity,
}
_OWNERSHIP = enums.AlterTableType.AT_ChangeOwner


class DumpRefused(Exception):
    """A dump that is not a schema-only dump this service restores, at a line of the script."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


@dataclass(frozen=True)
class DumpStatement:
    sql: str  # written again from its parse tree
    line: int


@dataclass(frozen=True)
class SkippedStatement:
    what: str
    line: int


@dataclass(frozen=True)
class DumpReading:
    statements: tuple[DumpStatement, ...]
    skipped: tuple[SkippedStatement, ...]


def _without_guard(text: str) -> str:
    """The script with pg_dump's own \\restrict guard blanked (lines kept, for line numbers);
    any other psql meta-command is refused where it stands."""
    lines = text.split("\n")
    for number, line in enumerate(lines, start=1):
        if line.startswith("\\"):
            if not _DUMP_GUARD.match(line):
                raise DumpRefused("psql commands are not part of a schema dump this service reads", number)
            lines[number - 1] = ""
    return "\n".join(lines)


def _line_of(text: str, offset: int) -> int:
    # pglast's locations are byte offsets into the UTF-8 text.
    return text.encode("utf-8")[:offset].count(b"\n") + 1


def _schema_of(node: Any) -> str | None:
    relation = getattr(node, "relation", None) or getattr(node, "sequence", None)
    return getattr(relation, "schemaname", None)


def _kind(node: Any) -> str:
    return type(node).__name__


def dump_read(text: str, *, max_statements: int) -> DumpReading:
    """The statements of `text` to restore, and what was skipped; DumpRefused for the rest."""
    source = _without_guard(text)
    try:
        raw_statements = parse_sql(source)
    except ParseError as exc:
        # pglast's ParseError carries (message, byte offset).
        offset = exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], int) else 0
        raise DumpRefused(f"the dump is not valid SQL: {exc.args[0]}", _line_of(source, offset)) from None
    if len(raw_statements) > max_statements:
        raise DumpRefused(f"the dump has more than {max_statements} statements", 1)
    statements: list[DumpStatement] = []
    skipped: list[SkippedStatement] = []
    for raw in raw_statements:
        node, line = raw.stmt, _line_of(source, raw.stmt_location or 0)
        if isinstance(node, _IGNORED) or _is_set_config(node):
            continue
        listed = next((what for kind, what in _LISTED.items() if isinstance(node, kind)), None)
        if listed is not None:
            skipped.append(SkippedStatement(listed, line))
            continue
        if not isinstance(node, _RESTORED):
            raise DumpRefused(f"{_kind(node)} is not part of a schema-only dump this service restores", line)
        schema = _schema_of(node)
        if schema not in (None, "public"):
            skipped.append(SkippedStatement(f"an object of schema {schema} (only public is compared)", line))
            continue
        if isinstance(node, ast.AlterTableStmt):
            kept = _alter_table_kept(node, line)
            if kept is None:
                continue
            node = kept
        statements.append(DumpStatement(RawStream()(node), line))
    return DumpReading(tuple(statements), tuple(skipped))


def _is_set_config(node: Any) -> bool:
    """pg_dump's `SELECT pg_catalog.set_config('search_path', '', false);`: a session setting."""
    if not isinstance(node, ast.SelectStmt) or node.fromClause or not node.targetList or len(node.targetList) != 1:
        return False
    value = node.targetList[0].val
    if not isinstance(value, ast.FuncCall):
        return False
    name = tuple(getattr(part, "sval", None) for part in value.funcname or ())
    return name in {("pg_catalog", "set_config"), ("set_config",)}


def _alter_table_kept(node: ast.AlterTableStmt, line: int) -> ast.AlterTableStmt | None:
    """The statement without its OWNER TO; None when nothing else is left; DumpRefused for a
    subcommand a schema dump does not write (a DROP, a data-changing one)."""
    if node.objtype not in (enums.ObjectType.OBJECT_TABLE, enums.ObjectType.OBJECT_SEQUENCE):
        raise DumpRefused("ALTER of something other than a table or sequence is not restored", line)
    commands = []
    for command in node.cmds or ():
        if command.subtype == _OWNERSHIP:
            continue
        if command.subtype not in _ALTER_TABLE_KINDS:
            raise DumpRefused(f"ALTER TABLE {command.subtype.name} is not part of a schema-only dump", line)
        commands.append(command)
    if not commands:
        return None
    return ast.AlterTableStmt(relation=node.relation, cmds=tuple(commands), objtype=node.objtype, missing_ok=node.missing_ok)


def dump_restore(conn: psycopg.Connection, reading: DumpReading) -> None:
    """Run the dump's statements in order on `conn` (a shadow job's own connection)."""
    for statement in reading.statements:
        try:
            conn.execute(statement.sql)  # type: ignore[arg-type]  # rewritten from its parse tree
        except psycopg.errors.QueryCanceled:
            raise
        except psycopg.OperationalError:
            raise
        except psycopg.Error as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise DumpRefused(f"the statement cannot be restored on the shadow: {first}", statement.line) from None


def dump_catalog(server: ShadowServer, reading: DumpReading, *, name: str) -> dict[str, Any]:
    """The catalog query's output on a fresh shadow database the dump was restored on (as a
    job role of its own, dropped with the database afterwards)."""
    with shadow_session(server, template="template0", name=name) as session:
        dump_restore(session.connection.connection, reading)
        return catalog_read(server, name)
