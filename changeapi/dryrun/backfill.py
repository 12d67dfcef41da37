"""Time a Backfill step on the clone: a sample of its batches, run as the backfill itself runs them.

Right after the step's migration committed (in production the backfill runs off the deploy path,
between that migration and the next), up to `sample_batches` batches run, each in a transaction of
its own: the upper key of the next `batch_size` keys by keyset pagination on the ordering key, then
one `UPDATE ... WHERE key > last AND key <= upper AND <filter>`. The upper key is found on the key
alone, an index range whatever the filter: with the filter in it, the planner may scan the whole
table for every batch (a column just added has no statistics), and the backfill grows with the
square of the table. Both are built by Django's ORM and
compiler from the model as the migration state renders it, so values travel as parameters and are
never pasted into SQL. What is measured per batch: time, rows, relation locks, WAL bytes.
The figures go into the report raw; `analysis.backfill` scales them to production size.
"""

from __future__ import annotations

import math
import statistics
import time
from typing import Any

from django.db import transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.migrations.state import ProjectState
from django.db.models import Max, QuerySet
from django.db.models.sql import UpdateQuery

from changeapi.dryrun.contract import BackfillBatch, BackfillTiming, Lock, ParityCheck
from changeapi.dryrun.tracing import LOCK_BLOCKS, RELKIND_NAMES
from changeapi.intake.backfill import Backfill, backfill_model, ordering_field
from changeapi.intake.expressions_json import condition_text

DEFAULT_SAMPLE_BATCHES = 5

_BATCH_LOCKS = """
SELECT c.relname, c.relkind, t.relname, l.mode
FROM pg_locks l
JOIN pg_class c ON c.oid = l.relation
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_index i ON i.indexrelid = c.oid
LEFT JOIN pg_class t ON t.oid = i.indrelid
WHERE l.pid = pg_backend_pid() AND l.locktype = 'relation' AND l.granted
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
ORDER BY c.relname, l.mode
"""


def _one(raw: Any, sql: str, params: tuple[Any, ...] = ()) -> Any:
    """One value read over the raw connection, which Django's cursor wrappers never see."""
    with raw.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    return row[0] if row else None


def _batch_locks(raw: Any) -> tuple[Lock, ...]:
    with raw.cursor() as cursor:
        cursor.execute(_BATCH_LOCKS)
        rows = cursor.fetchall()
    return tuple(
        Lock(
            relation=relation,
            relation_kind=RELKIND_NAMES.get(kind, kind),
            table=table,
            mode=mode,
            blocks_reads=LOCK_BLOCKS.get(mode, (True, True, True))[0],
            blocks_writes=LOCK_BLOCKS.get(mode, (True, True, True))[1],
            blocks_ddl=LOCK_BLOCKS.get(mode, (True, True, True))[2],
        )
        for relation, kind, table, mode in rows
    )


def update_statement(rows: QuerySet[Any], assignments: dict[str, Any]) -> tuple[str, tuple[Any, ...]]:
    """The UPDATE Django's `rows.update(**assignments)` runs, compiled, with its parameters apart."""
    query = rows.query.chain(UpdateQuery)
    query.add_update_values(assignments)  # type: ignore[attr-defined]  # UpdateQuery's own method
    query.annotations = {}
    sql, params = query.get_compiler(rows.db).as_sql()
    return sql, tuple(params)


def _display(connection: BaseDatabaseWrapper, sql: str, params: tuple[Any, ...]) -> str:
    try:
        return str(connection.ops.compose_sql(sql, params))  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 - the raw SQL with its parameters is the right fallback for display
        return f"{sql} -- params: {params!r}"


def count_statement(connection: BaseDatabaseWrapper, rows: QuerySet[Any]) -> str:
    """`SELECT count(*)` of `rows` as one self-contained statement (values quoted by the driver),
    for a script that runs it elsewhere; empty when the backend cannot compose it."""
    sql, params = rows.values("pk").query.sql_with_params()
    try:
        inner = str(connection.ops.compose_sql(sql, params))  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 - no self-contained form: the bundle then has no SQL preflight
        return ""
    return f"SELECT count(*) FROM ({inner}) AS parity"


def sample_backfill(
    connection: BaseDatabaseWrapper,
    operation: Backfill,
    *,
    state: ProjectState,
    migration: str,
    operation_index: int,
    sample_batches: int = DEFAULT_SAMPLE_BATCHES,
) -> BackfillTiming:
    """Run up to `sample_batches` batches of `operation` on `connection` (in autocommit, after its
    migration committed) and return what they measured; database errors propagate.

    The rows the sample changed stay changed on the clone, as the first batches of the real
    backfill would leave them for the migrations after it.
    """
    model = backfill_model(operation, state)
    key_field = ordering_field(operation, model)
    key = key_field.attname
    raw = connection.connection
    manager = model._base_manager.db_manager(connection.alias)
    matching = manager.all() if operation.filter is None else manager.filter(operation.filter)
    rows_total = manager.count()
    rows_matched = matching.count()
    parity_before = manager.filter(operation.parity).count() if operation.parity is not None else 0

    batches: list[BackfillBatch] = []
    shown = ""
    last: Any = None
    exhausted = False
    for index in range(max(sample_batches, 1)):
        started = time.perf_counter()
        keys = manager.all() if last is None else manager.filter(**{f"{key}__gt": last})
        boundary = list(keys.order_by(key).values_list(key, flat=True)[operation.batch_size - 1 : operation.batch_size])
        upper = boundary[0] if boundary else keys.aggregate(upper=Max(key))["upper"]
        if upper is None:
            exhausted = True
            break
        window = matching if last is None else matching.filter(**{f"{key}__gt": last})
        sql, params = update_statement(window.filter(**{f"{key}__lte": upper}), operation.assignments)
        if not shown or index == 1:
            shown = _display(connection, sql, params)  # the second batch has both bounds of the keyset
        wal_before = _one(raw, "SELECT pg_current_wal_insert_lsn()::text")
        with transaction.atomic(using=connection.alias):
            update_started = time.perf_counter()
            with connection.cursor() as cursor:
                cursor.execute(sql, params)
                rows = max(cursor.rowcount, 0)
            updated = time.perf_counter()
            locks = _batch_locks(raw)  # read inside the transaction, before the commit releases them
            committing = time.perf_counter()
        ended = time.perf_counter()
        wal_bytes = int(_one(raw, "SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), %s::pg_lsn)::bigint", (wal_before,)))
        reading_locks = committing - updated
        # A full batch spans batch_size keys by construction; the last one is counted (not timed).
        spanned = operation.batch_size if boundary else keys.filter(**{f"{key}__lte": upper}).count()
        batches.append(
            BackfillBatch(
                index=index,
                after_key=None if last is None else str(last),
                to_key=str(upper),
                keys=spanned,
                rows=rows,
                rows_locked=rows,
                duration_ms=round((ended - started - reading_locks) * 1000, 3),
                lock_ms=round((ended - update_started - reading_locks) * 1000, 3),
                wal_bytes=wal_bytes,
                locks=locks,
            )
        )
        last = upper
        if not boundary:
            exhausted = True
            break

    sampled_rows = sum(batch.rows for batch in batches)
    shadow_batches = math.ceil(rows_total / operation.batch_size)
    batch_ms = statistics.median(batch.duration_ms for batch in batches) if batches else 0.0
    parity = None
    if operation.parity is not None:
        left = manager.filter(operation.parity)
        in_range = left.filter(**{f"{key}__lte": last}).count() if last is not None else 0
        parity = ParityCheck(
            condition=condition_text(operation.parity),
            before=parity_before,
            after=left.count(),
            in_sampled_range=in_range,
            holds_in_sampled_range=in_range == 0,
            count_sql=count_statement(connection, manager.filter(operation.parity)),
        )
    return BackfillTiming(
        migration=migration,
        operation_index=operation_index,
        model=operation.model,
        table=model._meta.db_table,
        key_column=str(key_field.column),
        batch_size=operation.batch_size,
        pause_ms=operation.pause_ms,
        sql=shown,
        rows_total=rows_total,
        rows_matched=rows_matched,
        batches=tuple(batches),
        sampled_rows=sampled_rows,
        sampled_wal_bytes=sum(batch.wal_bytes for batch in batches),
        sampled_keys=sum(batch.keys for batch in batches),
        covers_all_rows=exhausted,
        shadow_batches=shadow_batches,
        shadow_total_ms=round(shadow_batches * batch_ms + max(shadow_batches - 1, 0) * operation.pause_ms, 3),
        parity=parity,
    )
