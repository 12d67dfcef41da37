"""A first snapshot reuses relations read before only when the database still has exactly them:
whatever changed a relation's name or file since is read afresh (see dryrun/tracing)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from changeapi.dryrun.connection import shadow_connection
from changeapi.dryrun.tracing import Snapshot, describe_change, take_snapshot
from changeapi.shadow.servers import configured_servers


@pytest.fixture
def connection(clone: str, django_db_blocker: Any) -> Iterator[Any]:
    """A Django connection (autocommit) on a fresh clone of template1."""
    with django_db_blocker.unblock(), shadow_connection(configured_servers()[0], clone) as wrapper:
        yield wrapper


def _run(connection: Any, sql: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql)


def _names(snapshot: Snapshot) -> set[str]:
    return {relation.name for relation in snapshot.relations.values()}


def test_a_table_renamed_since_the_last_snapshot_is_seen_under_its_new_name(connection: Any) -> None:
    _run(connection, "CREATE TABLE parcel (id integer PRIMARY KEY)")
    before = take_snapshot(connection.connection, with_locks=False)
    _run(connection, "ALTER TABLE parcel RENAME TO package")

    after = take_snapshot(connection.connection, with_locks=False)

    assert "parcel" in _names(before)
    assert "package" in _names(after) and "parcel" not in _names(after)


def test_a_table_rewritten_since_the_last_snapshot_is_seen_with_its_new_file(connection: Any) -> None:
    _run(connection, "CREATE TABLE parcel (id integer)")
    before = take_snapshot(connection.connection, with_locks=False)
    _run(connection, "ALTER TABLE parcel ALTER COLUMN id TYPE bigint")

    after = take_snapshot(connection.connection, with_locks=False)

    assert describe_change(before, after).rewrites == ("parcel",)


def test_a_snapshot_of_unchanged_relations_is_its_own_copy(connection: Any) -> None:
    _run(connection, "CREATE TABLE parcel (id integer)")
    first = take_snapshot(connection.connection, with_locks=False)
    first.relations.clear()

    second = take_snapshot(connection.connection, with_locks=False)

    assert "parcel" in _names(second)
