"""Which MySQL/MariaDB statements are asked how the server would run them (ALGORITHM=, LOCK=),
and on which table: Django's own, and hand-written ones in RunSQL however they name the table."""

from __future__ import annotations

import pytest

from changeapi.dryrun.mysql_ddl import ddl_target


@pytest.mark.parametrize(
    ("sql", "table", "probe"),
    [
        (
            "ALTER TABLE `shop_order` ADD COLUMN `note` integer NULL",
            "shop_order",
            "ALTER TABLE `copy` ADD COLUMN `note` integer NULL, ALGORITHM=INSTANT",
        ),
        (
            "-- a column for notes\nALTER TABLE shop_order ADD COLUMN note int;",
            "shop_order",
            "ALTER TABLE `copy` ADD COLUMN note int, ALGORITHM=INSTANT",
        ),
        (
            "/* by hand */ CREATE INDEX note_idx ON shop_order (note)",
            "shop_order",
            "CREATE INDEX note_idx ON `copy` (note) ALGORITHM=INSTANT",
        ),
        ("ALTER TABLE `odd``name` DROP COLUMN `x`", "odd`name", "ALTER TABLE `copy` DROP COLUMN `x`, ALGORITHM=INSTANT"),
        # Django's editor quotes a default with a backslash escape, which the lexer refuses to read.
        (
            "ALTER TABLE `shop_order` ADD COLUMN `note` varchar(9) DEFAULT 'it\\'s' NOT NULL",
            "shop_order",
            "ALTER TABLE `copy` ADD COLUMN `note` varchar(9) DEFAULT 'it\\'s' NOT NULL, ALGORITHM=INSTANT",
        ),
    ],
)
def test_a_ddl_statement_is_asked_about_on_a_copy_of_its_table(sql, table, probe):
    target = ddl_target(sql)

    assert target is not None and target.table == table
    assert target.on("copy", "ALGORITHM=INSTANT") == probe


@pytest.mark.parametrize(
    "sql",
    [
        # The probe's clause would be appended inside the comment, and every one would seem accepted.
        "ALTER TABLE shop_order ADD COLUMN note int -- for notes",
        # Another database's table: nothing of the clone's.
        "ALTER TABLE shop.shop_order ADD COLUMN note int",
        "UPDATE shop_order SET note = 1",
        "",
    ],
)
def test_a_statement_that_cannot_be_asked_about_safely_is_not(sql):
    assert ddl_target(sql) is None
