"""Restoring a schema snapshot on a shadow: the DDL made from typed values, checked before any
database exists, and a restored schema that the catalog query reads back as production's."""

from __future__ import annotations

import uuid
from dataclasses import replace

import pytest
from django.conf import settings

from changeapi.dryrun.drift import Catalog, Column, Constraint, Index, Sequence, Table, catalog_from_json, drift_compare
from changeapi.dryrun.legacy.restore import SnapshotNotRestorable, restore_apply, restore_plan
from changeapi.dryrun.session import shadow_session
from changeapi.shadow.catalog import catalog_read
from changeapi.shadow.servers import configured_servers
from tests.changeapi.test_legacy_baselines import LEGACY_SCHEMA, _snapshot_of

HOSTILE = 'x"; DROP TABLE customer; --'
TABLE = Table(
    name=HOSTILE,
    columns=(
        Column(name="id", type="integer", nullable=False),
        Column(name="it's", type="character varying(20)", nullable=True, default="'a;b'::character varying"),
    ),
)
CATALOG = Catalog(
    server_version="15.20",
    server_version_num=150020,
    schema="public",
    tables=(TABLE,),
    constraints=(Constraint(name=f"{HOSTILE}_pkey", table=HOSTILE, type="primary_key", definition="PRIMARY KEY (id)"),),
)


def _rendered(catalog: Catalog) -> list[str]:
    """The statements of a plan as text, without a connection (`as_string` quotes the same way)."""
    plan = restore_plan(catalog)
    return [step.statement.as_string(None) for step in (*plan.sequences, *plan.after_tables)]


def test_every_name_is_a_quoted_identifier_in_the_ddl():
    (default, primary_key) = _rendered(CATALOG)

    assert default == 'ALTER TABLE "x""; DROP TABLE customer; --" ALTER COLUMN "it\'s" SET DEFAULT (CAST(\'a;b\' AS varchar))'
    assert (
        primary_key
        == 'ALTER TABLE "x""; DROP TABLE customer; --" ADD CONSTRAINT "x""; DROP TABLE customer; --_pkey" PRIMARY KEY ("id")'
    )


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("type", "integer); DROP TABLE customer; --"),
        ("type", "integer) AS t FROM pg_class CROSS JOIN (SELECT 1"),
        ("default", "0; DROP TABLE customer"),
        ("default", "1 FROM pg_class"),
        ("default", "1), (2"),
    ],
)
def test_a_column_value_that_is_not_one_node_of_its_kind_is_refused_at_its_path(path, value):
    column = replace(TABLE.columns[0], **{path: value})
    catalog = replace(CATALOG, tables=(replace(TABLE, columns=(column,)),), constraints=())

    with pytest.raises(SnapshotNotRestorable) as refused:
        restore_plan(catalog)

    assert refused.value.pointer == f"/tables/0/columns/0/{path}"


@pytest.mark.parametrize(
    "definition",
    ["PRIMARY KEY (id); DROP TABLE customer", "CHECK (id > 0)", "PRIMARY KEY (id), DROP COLUMN id"],
)
def test_a_constraint_definition_other_than_its_type_is_refused_at_its_path(definition):
    catalog = replace(CATALOG, constraints=(replace(CATALOG.constraints[0], definition=definition),))

    with pytest.raises(SnapshotNotRestorable) as refused:
        restore_plan(catalog)

    assert refused.value.pointer == "/constraints/0/definition"


def test_an_index_definition_holding_a_second_statement_is_refused_at_its_path():
    index = Index(name="i", table=HOSTILE, definition="CREATE INDEX i ON t (id); DROP TABLE customer")

    with pytest.raises(SnapshotNotRestorable) as refused:
        restore_plan(replace(CATALOG, indexes=(index,)))

    assert refused.value.pointer == "/indexes/0/definition"


def test_an_index_is_made_under_the_snapshots_own_name_and_table_not_the_definitions():
    index = Index(name="by id", table=HOSTILE, definition="CREATE INDEX other ON public.elsewhere USING btree (id DESC)")

    (*_, statement) = _rendered(replace(CATALOG, indexes=(index,)))

    assert statement == 'CREATE INDEX "by id" ON "x""; DROP TABLE customer; --" USING btree ("id" DESC)'


def test_a_sequence_of_another_type_is_refused_at_its_path():
    with pytest.raises(SnapshotNotRestorable) as refused:
        restore_plan(replace(CATALOG, sequences=(Sequence(name="s", type="integer; DROP TABLE customer"),)))

    assert refused.value.pointer == "/sequences/0/type"


@pytest.mark.django_db
def test_a_restored_schema_reads_back_as_the_snapshot_it_came_from():
    production = catalog_from_json(_snapshot_of(LEGACY_SCHEMA))
    server = configured_servers()[0]
    name = f"{settings.SHADOW_DATABASE_PREFIX}legacy_{uuid.uuid4().hex[:12]}"

    with shadow_session(server, template="template0", name=name) as session:
        session.connection.ensure_connection()
        notes = restore_apply(session.connection.connection, restore_plan(production))
        restored = catalog_from_json(catalog_read(server, name))

    assert notes == []
    assert drift_compare(expected=restored, actual=production).items == ()


@pytest.mark.django_db
def test_the_restore_runs_as_the_jobs_own_unprivileged_role():
    production = catalog_from_json(_snapshot_of(LEGACY_SCHEMA))
    server = configured_servers()[0]
    name = f"{settings.SHADOW_DATABASE_PREFIX}legacy_{uuid.uuid4().hex[:12]}"

    with shadow_session(server, template="template0", name=name) as session:
        session.connection.ensure_connection()
        restore_apply(session.connection.connection, restore_plan(production))
        with session.connection.cursor() as cursor:
            cursor.execute(
                "SELECT current_user, rolsuper, (SELECT tableowner FROM pg_tables WHERE tablename = 'customer') "
                "FROM pg_roles WHERE rolname = current_user"
            )
            user, superuser, owner = cursor.fetchone()

    assert (user, superuser, owner) == (server.job_role(name), False, server.job_role(name))
