"""Comparing MySQL/MariaDB and SQLite catalogs: what the two MySQL flavours spell otherwise is no
drift, indexes are named within their table on MySQL, versions are read per engine, and Django's
history table is never drift; as pure values, from the JSON the catalog queries write."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from changeapi.dryrun.drift import catalog_from_json, drift_compare
from changeapi.dryrun.drift_spelling import mysql_check, mysql_default, mysql_type


def _column(name: str, type_: str, default: str | None = None, **more: Any) -> dict[str, Any]:
    return {"name": name, "type": type_, "nullable": False, "default": default, "collation": None, "identity": None, **more}


def _primary(table: str) -> dict[str, Any]:
    return {"name": "PRIMARY", "table": table, "definition": f"CREATE UNIQUE INDEX PRIMARY ON {table} USING BTREE (id)",
            "unique": True, "primary": True, "valid": True, "predicate": None}  # fmt: skip


# The shop schema as MariaDB 10.11's information_schema writes it.
MARIADB: dict[str, Any] = {
    "engine": "mysql",
    "server_version": "10.11.19-MariaDB-0+deb12u1",
    "server_version_num": 101119,
    "schema": "shop",
    "extensions": [],
    "sequences": [],
    "tables": [
        {"name": "shop_customer", "partitioned": False, "columns": [_column("id", "bigint(20)", identity="by_default")]},
        {
            "name": "shop_order",
            "partitioned": False,
            "columns": [
                _column("id", "bigint(20)", identity="by_default"),
                _column("qty", "int(10) unsigned"),
                _column("paid", "tinyint(1)", "0"),
                _column("status", "varchar(16)", "'it''s new'"),
                {**_column("note", "longtext", "NULL"), "nullable": True},
            ],
        },
    ],
    "indexes": [_primary("shop_customer"), _primary("shop_order")],
    "constraints": [
        {
            "name": "qty_positive",
            "table": "shop_order",
            "type": "check",
            "definition": "CHECK (`qty` >= 0)",
            "validated": True,
        },  # fmt: skip
    ],
}


def _as_mysql_8(catalog: dict[str, Any]) -> dict[str, Any]:
    """The same schema as MySQL 8.0's information_schema writes it."""
    mysql = copy.deepcopy(catalog)
    mysql.update(server_version="8.0.36", server_version_num=80036)
    order = mysql["tables"][1]["columns"]
    order[0]["type"] = mysql["tables"][0]["columns"][0]["type"] = "bigint"
    order[1]["type"], order[3]["default"], order[4]["default"] = "int unsigned", "it's new", None
    mysql["constraints"][0]["definition"] = "CHECK ((`qty` >= 0))"
    return mysql


@pytest.mark.parametrize(
    ("written", "read"),
    [("int(11)", "int"), ("bigint(20) unsigned", "bigint unsigned"), ("tinyint(1)", "tinyint(1)"), ("tinyint(4)", "tinyint"),
     ("varchar(16)", "varchar(16)"), ("decimal(10,2)", "decimal(10,2)"), ("int", "int")],
)  # fmt: skip
def test_an_integer_display_width_is_not_part_of_a_mysql_type_but_a_booleans_is(written, read):
    assert mysql_type(written) == read


@pytest.mark.parametrize(
    ("written", "read"),
    [("NULL", None), (None, None), ("'new'", "new"), ("'it''s'", "it's"), ("'NULL'", "NULL"), ("0", "0"),
     ("current_timestamp()", "current_timestamp()")],
)  # fmt: skip
def test_mariadbs_quoted_defaults_and_its_null_read_as_mysql_writes_them(written, read):
    assert mysql_default(written) == read


@pytest.mark.parametrize(
    ("written", "read"),
    [("CHECK (`qty` >= 0)", "CHECK (qty >= 0)"), ("CHECK (((`qty` >= 0) and (`qty` < 10)))", "CHECK ((qty >= 0) and (qty < 10))"),
     ("CHECK ((a) or (b))", "CHECK ((a) or (b))")],
)  # fmt: skip
def test_a_check_clause_is_compared_without_backquotes_and_outer_parentheses(written, read):
    assert mysql_check(written) == read


def test_a_mysql_8_production_of_the_schema_a_mariadb_shadow_has_differs_only_in_its_server():
    report = drift_compare(expected=catalog_from_json(MARIADB), actual=catalog_from_json(_as_mysql_8(MARIADB)))

    [item] = report.items
    assert (item.kind, item.status) == ("server", "different")
    assert item.detail == "production runs MySQL 8, the shadow MariaDB 10"
    assert "INSTANT" in item.consequence and "PostgreSQL" not in item.consequence


def test_a_mysql_primary_index_missing_on_one_table_is_named_with_that_table():
    production = copy.deepcopy(MARIADB)
    production["indexes"] = [_primary("shop_customer")]

    [item] = drift_compare(expected=catalog_from_json(MARIADB), actual=catalog_from_json(production)).items

    assert (item.kind, item.status, item.name, item.table) == ("index", "missing", "PRIMARY", "shop_order")


def test_a_real_default_difference_is_still_drift_after_the_spellings_are_made_one():
    production = _as_mysql_8(MARIADB)
    production.update(server_version=MARIADB["server_version"], server_version_num=MARIADB["server_version_num"])
    production["tables"][1]["columns"][3]["default"] = "old"

    [item] = drift_compare(expected=catalog_from_json(MARIADB), actual=catalog_from_json(production)).items

    assert (item.kind, item.name, item.detail) == (
        "column",
        "status",
        "column shop_order.status: default old in production, it's new in the migrations",
    )


def test_sqlite_versions_are_read_by_sqlites_own_numbering():
    shadow = {"engine": "sqlite", "server_version": "3.40.1", "server_version_num": 3040001, "schema": "main", "tables": []}
    production = {**shadow, "server_version": "3.45.3", "server_version_num": 3045003}

    assert catalog_from_json(shadow).major_version == 3
    assert drift_compare(expected=catalog_from_json(shadow), actual=catalog_from_json(production)).items == ()


def test_djangos_history_table_in_production_is_not_drift():
    production = copy.deepcopy(MARIADB)
    production["tables"].append({"name": "django_migrations", "partitioned": False, "columns": [_column("id", "int(11)")]})
    production["indexes"].append(_primary("django_migrations"))

    assert drift_compare(expected=catalog_from_json(MARIADB), actual=catalog_from_json(production)).items == ()
