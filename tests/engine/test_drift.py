"""Comparing two catalogs: what counts as drift and what does not, as pure values."""

from __future__ import annotations

from dataclasses import replace

from changeapi.dryrun.drift import Catalog, Column, Index, Table, drift_compare

ORDER = Table(name="shop_order", columns=(Column(name="id", type="bigint", nullable=False, identity="by_default"),))
PKEY = Index(
    name="shop_order_pkey",
    table="shop_order",
    definition="CREATE UNIQUE INDEX shop_order_pkey ON public.shop_order USING btree (id)",
    unique=True,
    primary=True,
)
MIGRATIONS = Catalog(server_version="15.20", server_version_num=150020, schema="public", tables=(ORDER,), indexes=(PKEY,))


def test_a_production_schema_other_than_public_is_no_drift():
    production = replace(
        MIGRATIONS,
        schema="app",
        indexes=(replace(PKEY, definition="CREATE UNIQUE INDEX shop_order_pkey ON app.shop_order USING btree (id)"),),
    )

    assert drift_compare(expected=MIGRATIONS, actual=production).items == ()


def test_another_minor_version_is_no_drift():
    production = replace(MIGRATIONS, server_version="15.4", server_version_num=150004)

    assert drift_compare(expected=MIGRATIONS, actual=production).items == ()


def test_another_major_version_is_one_medium_item():
    production = replace(MIGRATIONS, server_version="13.9", server_version_num=130009)

    (item,) = drift_compare(expected=MIGRATIONS, actual=production).items

    assert (item.kind, item.status, item.severity) == ("server", "different", "medium")


def test_a_column_nullable_in_production_but_not_in_the_migrations_is_medium():
    nullable = replace(ORDER, columns=(replace(ORDER.columns[0], nullable=True),))

    (item,) = drift_compare(expected=MIGRATIONS, actual=replace(MIGRATIONS, tables=(nullable,))).items

    assert (item.status, item.severity) == ("different", "medium")
    assert "SET NOT NULL can fail" in item.consequence


def test_reports_of_the_same_schemas_are_equal():
    production = replace(MIGRATIONS, indexes=())

    assert drift_compare(expected=MIGRATIONS, actual=production) == drift_compare(expected=MIGRATIONS, actual=production)


def test_advice_quotes_a_name_that_needs_it():
    invalid = Index(name='Order "Idx"', table="shop_order", definition="CREATE INDEX ...", valid=False)

    (item,) = drift_compare(expected=MIGRATIONS, actual=replace(MIGRATIONS, indexes=(PKEY, invalid))).items

    assert 'DROP INDEX CONCURRENTLY "Order ""Idx"""' in item.consequence
