"""On production's schema, a statement naming a table or column the baseline's models have and
the snapshot lacks is said to be production's lack, by the object's name."""

from __future__ import annotations

from django.db import models
from django.db.migrations.state import ModelState, ProjectState

from changeapi.dryrun.as_production import missing_objects
from changeapi.dryrun.drift import Catalog, Column, Table

STATE = ProjectState()
STATE.add_model(ModelState("shop", "customer", [("id", models.BigAutoField(primary_key=True))]))
STATE.add_model(
    ModelState(
        "shop",
        "order",
        [
            ("id", models.BigAutoField(primary_key=True)),
            ("total", models.IntegerField()),
            ("customer", models.ForeignKey("shop.customer", models.CASCADE)),
            ("legacy_code", models.TextField(db_column="code")),
        ],
    )
)


def _catalog(*tables: Table) -> Catalog:
    return Catalog(server_version="15.20", server_version_num=150020, schema="public", tables=tables)


def _table(name: str, *columns: str) -> Table:
    return Table(name=name, columns=tuple(Column(name=c, type="integer", nullable=True) for c in columns))


def test_a_table_production_lacks_is_named():
    catalog = _catalog(_table("shop_customer", "id"))

    assert missing_objects(STATE, catalog, 'ALTER TABLE "shop_order" ADD COLUMN "note" text NULL') == ["table shop_order"]


def test_a_column_production_lacks_is_named_by_its_column_not_its_field():
    catalog = _catalog(_table("shop_customer", "id"), _table("shop_order", "id", "total"))

    sql = 'CREATE INDEX "x" ON "shop_order" ("customer_id", "code")'

    assert missing_objects(STATE, catalog, sql) == ["column shop_order.customer_id", "column shop_order.code"]


def test_objects_production_has_are_not_named():
    catalog = _catalog(_table("shop_customer", "id"), _table("shop_order", "id", "total", "customer_id", "code"))

    assert missing_objects(STATE, catalog, 'CREATE INDEX "order_total_idx" ON "shop_order" ("total")') == []
