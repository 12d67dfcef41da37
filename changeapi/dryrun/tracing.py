"""What one statement did to the database, read from the catalogs inside its own transaction.

Before and after each statement we read the user relations (`pg_class`: name, kind,
relfilenode), this transaction's scan counters (`pg_stat_xact_user_tables`) and, after, the
session's relation locks (`pg_locks`). A changed relfilenode is a rewrite; a grown
`seq_scan` a full scan; the locks are what the session holds until the transaction ends.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from changeapi.dryrun.contract import Lock, Scan, StatementEvent
from changeapi.dryrun.sql_forms import StatementForm

# What each table lock mode stops other sessions from doing while it is held (PostgreSQL
# docs, "Table-Level Lock Modes" conflict table): plain SELECTs take ACCESS SHARE,
# INSERT/UPDATE/DELETE take ROW EXCLUSIVE, DDL takes SHARE UPDATE EXCLUSIVE or stronger.
LOCK_BLOCKS: dict[str, tuple[bool, bool, bool]] = {
    # mode: (blocks reads, blocks writes, blocks DDL)
    "AccessShareLock": (False, False, True),
    "RowShareLock": (False, False, True),
    "RowExclusiveLock": (False, False, True),
    "ShareUpdateExclusiveLock": (False, False, True),
    "ShareLock": (False, True, True),
    "ShareRowExclusiveLock": (False, True, True),
    "ExclusiveLock": (False, True, True),
    "AccessExclusiveLock": (True, True, True),
}

LOCK_STRENGTH = {mode: rank for rank, mode in enumerate(LOCK_BLOCKS)}

RELKIND_NAMES = {
    "r": "table",
    "p": "partitioned table",
    "i": "index",
    "I": "partitioned index",
    "S": "sequence",
    "v": "view",
    "m": "materialized view",
    "f": "foreign table",
    "c": "composite type",
}

_RELATIONS_SQL = """
SELECT c.oid::bigint, c.relname, c.relkind, c.relfilenode::bigint, t.relname
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_index i ON i.indexrelid = c.oid
LEFT JOIN pg_class t ON t.oid = i.indrelid
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
  AND n.nspname NOT LIKE 'pg_temp%%' AND n.nspname NOT LIKE 'pg_toast_temp%%'
  AND c.relkind IN ('r', 'p', 'i', 'I', 'S', 'm', 'v', 'f')
"""

_SCANS_SQL = "SELECT relid::bigint, seq_scan, COALESCE(idx_scan, 0) FROM pg_stat_xact_user_tables"

_LOCKS_SQL = """
SELECT l.relation::bigint, l.mode, l.granted
FROM pg_locks l
WHERE l.pid = pg_backend_pid() AND l.locktype = 'relation'
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
"""


@dataclass(frozen=True)
class Relation:
    oid: int
    name: str
    kind: str
    relfilenode: int
    table: str | None  # for an index, the table it belongs to


@dataclass
class Snapshot:
    """Catalog facts at one instant of the session."""

    relations: dict[int, Relation] = field(default_factory=dict)
    seq_scans: dict[int, int] = field(default_factory=dict)
    locks: set[tuple[int, str]] = field(default_factory=set)
    # The transaction's id, inside a transaction: a different one after a statement means the
    # statement committed the migration's transaction and began another.
    transaction: str | None = None


def take_snapshot(raw_connection: Any, *, with_locks: bool, assign_transaction: bool = False) -> Snapshot:
    """Read relations, scan counters and (optionally) locks over the raw psycopg connection.

    The raw connection bypasses Django's cursor wrappers, so these reads are not themselves
    recorded as statements of the migration. With locks (inside a transaction) the
    transaction id is read too; `assign_transaction` makes PostgreSQL assign one first.
    """
    snap = Snapshot()
    with raw_connection.cursor() as cur:
        if with_locks:
            function = "pg_current_xact_id" if assign_transaction else "pg_current_xact_id_if_assigned"
            cur.execute(f"SELECT {function}()::text")
            row = cur.fetchone()
            snap.transaction = row[0] if row else None
        cur.execute(_RELATIONS_SQL)
        for oid, name, kind, relfilenode, table in cur.fetchall():
            snap.relations[oid] = Relation(oid, name, kind, relfilenode, table)
        cur.execute(_SCANS_SQL)
        for relid, seq_scan, _idx_scan in cur.fetchall():
            snap.seq_scans[relid] = seq_scan
        if with_locks:
            cur.execute(_LOCKS_SQL)
            snap.locks = {(oid, mode) for oid, mode, granted in cur.fetchall() if granted}
    return snap


def lock_entry(relation: Relation, mode: str, *, acquired: bool, source: str = "observed") -> Lock:
    """One lock as reported: `source` is "observed" (read from pg_locks) or "documented"."""
    reads, writes, ddl = LOCK_BLOCKS.get(mode, (True, True, True))
    return Lock(
        relation=relation.name,
        relation_kind=RELKIND_NAMES.get(relation.kind, relation.kind),
        table=relation.table if relation.kind in ("i", "I") else relation.name,
        mode=mode,
        acquired_by_statement=acquired,
        blocks_reads=reads,
        blocks_writes=writes,
        blocks_ddl=ddl,
        source=source,
    )


def documented_locks(form: StatementForm, before: Snapshot) -> tuple[Lock, ...]:
    """The locks PostgreSQL documents for a statement that released its own locks when done.

    An index named by the statement (DROP INDEX CONCURRENTLY) is resolved to its table from
    the catalog as it was before the statement; the table's lock is what blocks traffic.
    """
    by_name = {rel.name: rel for rel in before.relations.values()}
    entries = []
    for lock in form.locks:
        relation = by_name.get(lock.relation) or Relation(0, lock.relation, "i" if lock.is_index else "r", 0, None)
        if relation.kind in ("i", "I") and relation.table:
            table = by_name.get(relation.table) or Relation(0, relation.table, "r", 0, None)
            entries.append(lock_entry(table, lock.mode, acquired=True, source="documented"))
        entries.append(lock_entry(relation, lock.mode, acquired=True, source="documented"))
    unique = {(e.relation, e.mode): e for e in entries}
    return tuple(sorted(unique.values(), key=lambda e: (e.table or "", e.relation)))


_EVENTS = [
    ("rewrite", re.compile(r'rewriting table "(?P<table>[^"]+)"')),
    ("verify", re.compile(r'verifying table "(?P<table>[^"]+)"')),
    ("fk_validation", re.compile(r'validating foreign key constraint "(?P<object>[^"]+)"')),
    ("index_build", re.compile(r'building index "(?P<object>[^"]+)" on table "(?P<table>[^"]+)"')),
]


def notice_events(notices: Sequence[str]) -> tuple[StatementEvent, ...]:
    """What PostgreSQL said it did at debug1: rewrites, verifying scans, FK validation, index builds.

    TOAST indexes are built with every new table and say nothing about the change.
    """
    events = []
    for notice in notices:
        for kind, pattern in _EVENTS:
            match = pattern.search(notice)
            if match is None:
                continue
            found = match.groupdict()
            table = found.get("table")
            if table and table.startswith("pg_toast"):
                continue
            events.append(StatementEvent(kind=kind, table=table, object=found.get("object")))
    return tuple(events)


@dataclass(frozen=True, slots=True, kw_only=True)
class Change:
    """What a completed statement did to the catalogs: its locks, rewrites, scans, relations."""

    locks: tuple[Lock, ...]
    rewrites: tuple[str, ...]
    rebuilt_indexes: tuple[str, ...]
    sequential_scans: tuple[Scan, ...]
    created_relations: tuple[str, ...]
    dropped_relations: tuple[str, ...]


def describe_change(before: Snapshot, after: Snapshot) -> Change:
    """Locks, rewrites, scans, created and dropped relations between two snapshots."""
    known = {**before.relations, **after.relations}
    locks = []
    for oid, mode in after.locks:
        relation = known.get(oid)
        if relation is None:
            continue  # a system catalog or a relation of another schema: not the change's doing
        locks.append(lock_entry(relation, mode, acquired=(oid, mode) not in before.locks))
    locks.sort(key=lambda e: (e.table or "", e.relation, -LOCK_STRENGTH.get(e.mode, 99)))

    rewritten = sorted(
        rel.name
        for oid, rel in before.relations.items()
        if oid in after.relations
        and rel.relfilenode != 0
        and after.relations[oid].relfilenode != rel.relfilenode
        and rel.kind in ("r", "m")
    )
    rebuilt_indexes = sorted(
        rel.name
        for oid, rel in before.relations.items()
        if oid in after.relations
        and rel.kind == "i"
        and rel.relfilenode != 0
        and after.relations[oid].relfilenode != rel.relfilenode
    )
    scans = []
    for relid, count in sorted(after.seq_scans.items()):
        grown = count - before.seq_scans.get(relid, 0)
        if grown > 0 and relid in known:
            scans.append(Scan(table=known[relid].name, count=grown))
    created = sorted(r.name for oid, r in after.relations.items() if oid not in before.relations)
    dropped = sorted(r.name for oid, r in before.relations.items() if oid not in after.relations)
    return Change(
        locks=tuple(locks),
        rewrites=tuple(rewritten),
        rebuilt_indexes=tuple(rebuilt_indexes),
        sequential_scans=tuple(scans),
        created_relations=tuple(created),
        dropped_relations=tuple(dropped),
    )
