"""What one statement did to the database, read from the catalogs inside its own transaction.

We know the user relations (`pg_class`: name, kind, relfilenode), this transaction's scan
counters (`pg_stat_xact_user_tables`) and the session's relation locks (`pg_locks`) before
and after each statement. A changed relfilenode is a rewrite; a grown `seq_scan` a full
scan; a lock not held before is one the statement took, held until the transaction ends.

One round trip per statement: the first statement of a transaction reads everything
(`take_snapshot`), and each statement after it reads only what its transaction can have
changed (`take_delta`): relations whose catalog row the transaction wrote or that it has
locked (creating, rewriting or dropping a relation takes a lock on it), counters that
moved, and the locks. The next statement's "before" is the previous one's "after".

A clone is a copy of its template's files, relation oids and relfilenodes included, so every
clone of a template starts with the same relations: a first snapshot reads a fingerprint of
them, and every relation only when the fingerprint is not one this process has read before.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg

from changeapi.caches import BoundedCache
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

_USER_RELATION_FILTER = """
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
  AND n.nspname NOT LIKE 'pg_temp%%' AND n.nspname NOT LIKE 'pg_toast_temp%%'
  AND c.relkind IN ('r', 'p', 'i', 'I', 'S', 'm', 'v', 'f')
"""

_USER_RELATIONS = f"""
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_index i ON i.indexrelid = c.oid
LEFT JOIN pg_class t ON t.oid = i.indrelid
{_USER_RELATION_FILTER}"""

_RELATION_ROW = "json_build_array(c.oid::bigint, c.relname, c.relkind, c.relfilenode::bigint, t.relname)"

# For the few relations a delta reads: an index's table looked up per row, by index, instead of
# joining pg_index and pg_class whole (hashing every relation of the schema) for each statement.
_USER_RELATIONS_UNJOINED = f"""
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
{_USER_RELATION_FILTER}"""
_RELATION_ROW_UNJOINED = (
    "json_build_array(c.oid::bigint, c.relname, c.relkind, c.relfilenode::bigint,"
    " (SELECT t.relname FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid WHERE i.indexrelid = c.oid))"
)

_SESSION_LOCKS = """
FROM pg_locks l
WHERE l.pid = pg_backend_pid() AND l.locktype = 'relation' AND l.granted
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
"""

# Every row of the relations a snapshot reads, hashed and summed: equal for two databases whose
# user relations have the same oids, names, kinds and relfilenodes (a template's clones), and
# for nothing else short of a 64-bit collision. A fraction of what reading them costs: no
# join, no JSON, one row back.
_FINGERPRINT = f"""
SELECT count(*)::text || '/' || coalesce(sum(hashtextextended(
  c.oid::text || '/' || c.relname || '/' || c.relkind::text || '/' || c.relfilenode::text, 0)), 0)::text AS value
{_USER_RELATIONS_UNJOINED}"""

# The transaction's sequential scans of every user table so far: pg_stat_xact_user_tables'
# seq_scan, without the view's dozen other counters per table.
_SCANS = """
SELECT json_agg(json_build_array(s.relid, s.seq_scan)) FROM (
  SELECT c.oid::bigint AS relid, pg_stat_get_xact_numscans(c.oid) AS seq_scan
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind IN ('r', 't', 'm', 'p')
    AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_toast'
) s WHERE s.seq_scan > 0
"""


def _snapshot_sql(*, with_locks: bool, assign_transaction: bool) -> str:
    """The snapshot's query, but for the relations: their fingerprint stands for them."""
    xact = ("pg_current_xact_id" if assign_transaction else "pg_current_xact_id_if_assigned") + "()::text"
    locks = f"(SELECT json_agg(json_build_array(l.relation::bigint, l.mode)) {_SESSION_LOCKS})" if with_locks else "NULL"
    return f"SELECT {xact if with_locks else 'NULL'}, ({_FINGERPRINT}), ({_SCANS}), {locks}"


_RELATIONS_SQL = f"SELECT json_agg({_RELATION_ROW}) {_USER_RELATIONS}"


# Relations the transaction can have changed since it began: catalog rows it wrote (xmin of
# its own, or of a later transaction when age says so), and relations it locked, which covers
# a relation it dropped (its lock outlives its row). Others are as the last read left them.
# The scan counters are read for the tables the transaction has locked only: a scan
# takes at least ACCESS SHARE on its table, held to the end of the transaction, so a table not
# locked kept the count the transaction's first snapshot read (pending counts are flushed only
# between transactions, and may include earlier ones: hence that first full read);
# pg_stat_xact_user_tables would compute a dozen counters for every table of the schema.
# The session's locks are read once (reading pg_locks walks the server's whole lock table)
# and used three times.
_DELTA_SQL = f"""
WITH locks AS MATERIALIZED (SELECT l.relation, l.mode {_SESSION_LOCKS})
SELECT pg_current_xact_id_if_assigned()::text,
  (SELECT json_agg({_RELATION_ROW_UNJOINED}) {_USER_RELATIONS_UNJOINED}
     AND (age(c.xmin) <= age(%(since)s::text::xid) OR c.oid IN (SELECT l.relation FROM locks l))),
  (SELECT json_agg(json_build_array(s.relid, s.seq_scan)) FROM (
     SELECT DISTINCT l.relation::bigint AS relid, pg_stat_get_xact_numscans(l.relation) AS seq_scan
     FROM locks l JOIN pg_class c ON c.oid = l.relation JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind IN ('r', 't', 'm', 'p')
       AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_toast'
   ) s WHERE s.seq_scan > 0),
  (SELECT json_agg(json_build_array(l.relation::bigint, l.mode)) FROM locks l)
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
    # For a snapshot read as a delta: the relations it read again or found dropped; every other
    # relation is the one of the snapshot before, unchanged. None: every relation was read.
    touched: frozenset[int] | None = None


def _read(
    raw_connection: Any, sql: str, params: dict[str, Any] | None = None, *, prepare: bool = False, width: int = 4
) -> tuple[Any, ...]:
    """The one row of a tracer query (`width` columns); `prepare`d ones (server-side binding)
    are planned once per connection, not once per statement traced."""
    cursor = psycopg.Cursor(raw_connection) if prepare else raw_connection.cursor()
    with cursor as cur:
        cur.execute(sql, params, prepare=prepare or None)
        row = cur.fetchone()
    return tuple(row) if row else (None,) * width


def _relations(rows: list[list[Any]] | None) -> dict[int, Relation]:
    return {oid: Relation(oid, name, kind, relfilenode, table) for oid, name, kind, relfilenode, table in rows or ()}


# Relation sets read whole, by fingerprint: the next clone of the same template reads none.
# Each is kept as read and only ever copied.
_relations_read: BoundedCache[str, dict[int, Relation]] = BoundedCache(8)


def take_snapshot(raw_connection: Any, *, with_locks: bool, assign_transaction: bool = False) -> Snapshot:
    """Read relations, scan counters and (optionally) locks over the raw psycopg connection, in
    one round trip; relations of a fingerprint not read before by this process take a second.

    The raw connection bypasses Django's cursor wrappers, so these reads are not themselves
    recorded as statements of the migration. With locks (inside a transaction) the
    transaction id is read too; `assign_transaction` makes PostgreSQL assign one first.
    """
    transaction, fingerprint, scans, locks = _read(
        raw_connection, _snapshot_sql(with_locks=with_locks, assign_transaction=assign_transaction)
    )
    known = _relations_read.get(fingerprint)
    if known is None:
        known = _relations(_read(raw_connection, _RELATIONS_SQL, width=1)[0])
        _relations_read.put(fingerprint, known)
    return Snapshot(
        # The snapshot's own copy: the cached one is never changed.
        relations=dict(known),
        seq_scans={relid: count for relid, count in scans or ()},
        locks={(oid, mode) for oid, mode in locks or ()},
        transaction=transaction,
    )


_TRANSACTION_START_SQL = f"""
SELECT pg_current_xact_id()::text, NULL, ({_SCANS}),
  (SELECT json_agg(json_build_array(l.relation::bigint, l.mode)) {_SESSION_LOCKS})
"""


def take_transaction_start(raw_connection: Any, known: Snapshot) -> Snapshot:
    """The first snapshot of a transaction that begins after `known` was read, in one round trip.

    Ending a transaction changes no catalog row, and nothing untraced changes them between two
    migrations, so the relations are `known`'s; reading every relation of the schema again was
    the dearest read of a migration. The transaction id, its locks and the scan counters (whose
    pending counts may include earlier transactions') are read afresh.
    """
    transaction, _relations_unread, scans, locks = _read(raw_connection, _TRANSACTION_START_SQL)
    return Snapshot(
        relations=dict(known.relations),
        seq_scans={relid: count for relid, count in scans or ()},
        locks={(oid, mode) for oid, mode in locks or ()},
        transaction=transaction,
    )


def take_delta(raw_connection: Any, previous: Snapshot) -> Snapshot:
    """The snapshot after a statement inside the transaction `previous` was read in, from what the
    transaction can have changed since (one round trip); the rest is carried over."""
    transaction, changed, scans, locks = _read(raw_connection, _DELTA_SQL, {"since": _xid32(previous.transaction)}, prepare=True)
    lock_set = {(oid, mode) for oid, mode in locks or ()}
    relations = dict(previous.relations)
    seen = _relations(changed)
    locked = {oid for oid, _mode in lock_set}
    gone = locked - seen.keys()
    for oid in gone:
        relations.pop(oid, None)  # locked but gone: dropped by this transaction
    relations.update(seen)
    return Snapshot(
        relations=relations,
        seq_scans={**previous.seq_scans, **{relid: count for relid, count in scans or ()}},
        locks=lock_set,
        transaction=transaction,
        touched=frozenset(seen.keys() | gone),
    )


def _xid32(transaction: str | None) -> str:
    """The 32-bit xid of a full transaction id (xid8), which `xmin` is compared with."""
    if transaction is None:
        return "0"
    return str(int(transaction) % (1 << 32))


def lock_entry(relation: Relation, mode: str, *, source: str = "observed") -> Lock:
    """One lock as reported: `source` is "observed" (read from pg_locks) or "documented"."""
    reads, writes, ddl = LOCK_BLOCKS.get(mode, (True, True, True))
    return Lock(
        relation=relation.name,
        relation_kind=RELKIND_NAMES.get(relation.kind, relation.kind),
        table=relation.table if relation.kind in ("i", "I") else relation.name,
        mode=mode,
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
            entries.append(lock_entry(table, lock.mode, source="documented"))
        entries.append(lock_entry(relation, lock.mode, source="documented"))
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
    for oid, mode in after.locks - before.locks:
        relation = known.get(oid)
        if relation is None:
            continue  # a system catalog or a relation of another schema: not the change's doing
        locks.append(lock_entry(relation, mode))
    locks.sort(key=lambda e: (e.table or "", e.relation, -LOCK_STRENGTH.get(e.mode, 99)))

    # Only what the delta read again can differ; a full snapshot may differ anywhere.
    candidates = after.touched if after.touched is not None else before.relations.keys() | after.relations.keys()
    both = [
        (before.relations[oid], after.relations[oid]) for oid in candidates if oid in before.relations and oid in after.relations
    ]
    moved = [old for old, new in both if old.relfilenode != 0 and new.relfilenode != old.relfilenode]
    rewritten = sorted(rel.name for rel in moved if rel.kind in ("r", "m"))
    rebuilt_indexes = sorted(rel.name for rel in moved if rel.kind == "i")
    scans = []
    for relid, count in sorted(after.seq_scans.items()):
        grown = count - before.seq_scans.get(relid, 0)
        if grown > 0 and relid in known:
            scans.append(Scan(table=known[relid].name, count=grown))
    created = sorted(after.relations[oid].name for oid in candidates if oid in after.relations and oid not in before.relations)
    dropped = sorted(before.relations[oid].name for oid in candidates if oid in before.relations and oid not in after.relations)
    return Change(
        locks=tuple(locks),
        rewrites=tuple(rewritten),
        rebuilt_indexes=tuple(rebuilt_indexes),
        sequential_scans=tuple(scans),
        created_relations=tuple(created),
        dropped_relations=tuple(dropped),
    )
