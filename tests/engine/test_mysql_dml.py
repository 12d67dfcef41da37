"""How the dry-run reads a MySQL/MariaDB data statement written by hand in RunSQL: which table's
rows it changes, and whether it changes them all in one go (SG304)."""

from __future__ import annotations

import pytest

from changeapi.dryrun.mysql_dml import DataStatement, data_statement, leading_word, mysql_unbatched_changes, rows_changed_table


@pytest.mark.parametrize(
    ("sql", "table"),
    [
        ("UPDATE shop_order SET note = 'x'", "shop_order"),
        ("UPDATE `shop_order` SET `note` = ''", "shop_order"),
        ("UPDATE LOW_PRIORITY IGNORE `shop`.`shop_order` SET total = 0", "shop_order"),
        ("-- clean up\nDELETE QUICK FROM shop.shop_order WHERE total < 0", "shop_order"),
        ("DELETE FROM `odd``name` WHERE id = 1", "odd`name"),
        ("INSERT IGNORE INTO shop_order (id) VALUES (1)", "shop_order"),
        ("REPLACE INTO `shop_order` (id) VALUES (1)", "shop_order"),
    ],
)
def test_the_table_whose_rows_change_is_found_however_it_is_named(sql, table):
    assert rows_changed_table(sql) == table


@pytest.mark.parametrize(
    "sql",
    ["SELECT * FROM shop_order", "ALTER TABLE `shop_order` ADD COLUMN `x` int NULL", "SET SESSION sql_mode = ''", ""],
)
def test_a_statement_that_changes_no_rows_has_no_such_table(sql):
    assert rows_changed_table(sql) is None


def test_a_leading_comment_does_not_hide_what_the_statement_does():
    statement = data_statement("/* nightly */ -- clean up\nUPDATE `shop_order` SET total = 0")

    assert statement == DataStatement("UPDATE", "shop_order") and statement.locks_existing_rows


@pytest.mark.parametrize(
    ("sql", "word"),
    [
        ("-- add the column\nALTER TABLE shop_order ADD note int", "ALTER"),
        ("/* nightly */ drop table shop_note", "DROP"),
        ("# MySQL comment\nRENAME TABLE a TO b", "RENAME"),
        ("  update shop_order set note = 1", "UPDATE"),
        ("", ""),
    ],
)
def test_the_first_keyword_is_read_past_comments(sql, word):
    assert leading_word(sql) == word


def test_an_insert_adds_rows_without_locking_existing_ones():
    statement = data_statement("INSERT INTO shop_order (id) VALUES (1)")

    assert statement == DataStatement("INSERT", "shop_order") and not statement.locks_existing_rows


def test_a_whole_table_update_is_unbatched_and_its_batched_form_keeps_mysql_quoting():
    [change] = mysql_unbatched_changes('UPDATE `shop_order` SET `note` = "it\'s" WHERE `Note2` IS NULL')

    assert (change.command, change.table) == ("UPDATE", "shop_order")
    assert "`Note2` IS NULL" in change.reason
    assert change.batched_sql == "UPDATE shop_order SET note = 'it''s' WHERE `Note2` IS NULL AND id >= %s AND id < %s"


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE `shop_order` SET `note` = '' WHERE `id` >= 1 AND `id` < 10001",
        "UPDATE shop_order SET note = '' WHERE note IS NULL LIMIT 10000",
        "DELETE FROM shop_order WHERE id IN (1, 2, 3)",
        "SELECT 1",
    ],
)
def test_a_batch_or_a_statement_that_is_not_a_data_change_is_not_judged_unbatched(sql):
    assert mysql_unbatched_changes(sql) == []


def test_text_the_lexer_will_not_read_one_way_is_not_judged():
    assert mysql_unbatched_changes("UPDATE t SET a = 'back\\\\slash'") == []
    assert rows_changed_table("UPDATE t SET a = 'back\\\\slash'") is None
