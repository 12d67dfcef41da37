"""A MySQL/MariaDB project's RunSQL is read in its own dialect: backticks and ALGORITHM= pass, what
would escape the dry-run or cannot be checked is refused with the statement and the reason,
and a PostgreSQL project's SQL is still read by PostgreSQL's parser."""

from __future__ import annotations

import pytest

from changeapi.intake.errors import IntakeError
from changeapi.intake.operations_json import parse_migration_documents
from changeapi.intake.python_source.migration_files import parse_migration_file
from changeapi.intake.sql_policy import RefusedSql, check_sql
from changeapi.intake.submission import source_settings


@pytest.mark.parametrize(
    "sql",
    [
        "ALTER TABLE `shop_order` ADD COLUMN `coupon` varchar(20) NULL, ALGORITHM=INSTANT, LOCK=NONE",
        "CREATE INDEX `order_total_idx` ON `shop_order` (`total`) ALGORITHM=INPLACE LOCK=NONE",
        "UPDATE `shop_order` SET `note` = 'it''s \"done\"' WHERE `note` IS NULL -- backfill\n",
        "SET foreign_key_checks = 0; ALTER TABLE `shop_order` DROP FOREIGN KEY `fk`; SET foreign_key_checks = 1",
        "SET @batch := 1000, @@session.unique_checks = 0",
        "CREATE TABLE `t` (`id` bigint AUTO_INCREMENT PRIMARY KEY) ENGINE=InnoDB # the new table",
        "CREATE OR REPLACE ALGORITHM = MERGE VIEW `v` AS SELECT `id` FROM `t`",
        "DROP TABLE IF EXISTS `t`; RENAME TABLE `a` TO `b`; TRUNCATE TABLE `c`",
        "/* a plain comment */ INSERT INTO `t` (`id`) SELECT `id` FROM `u`",
        ["SELECT 1", ("UPDATE `t` SET `c` = %s WHERE `d` = %(d)s AND `e` LIKE 'x%%'", {"d": 1})],
    ],
)
def test_ordinary_mysql_migration_sql_passes(sql: object) -> None:
    check_sql(sql, engine="mysql")


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("START TRANSACTION", "transaction control"),
        ("ALTER TABLE `t` ADD `c` int; COMMIT", "transaction control"),
        ("LOCK TABLES `t` WRITE", "LOCK TABLES"),
        ("SET SESSION lock_wait_timeout = 31536000", "SET of lock_wait_timeout: the dry-run's limits"),
        ("SET max_statement_time = 0", "SET of max_statement_time"),
        ("SET sql_mode = 'NO_BACKSLASH_ESCAPES'", "SET of sql_mode"),
        ("SET STATEMENT max_statement_time = 0 FOR ALTER TABLE `t` FORCE", "SET STATEMENT"),
        ("SET GLOBAL max_connections = 1", "SET GLOBAL"),
        ("SET @@global.read_only = 1", "SET GLOBAL"),
        ("SET ROLE `admin`", "accounts"),
        ("CREATE USER `x`@`%`", "accounts"),
        ("GRANT ALL ON *.* TO CURRENT_USER", "accounts"),
        ("DROP DATABASE `mysql`", "databases are the service's"),
        ("USE `other`", "databases are the service's"),
        ("KILL 42", "other sessions"),
        ("SELECT GET_LOCK('schemagate-template:x', 10)", "named locks"),
        ("SELECT * FROM `t` INTO OUTFILE '/tmp/x'", "INTO OUTFILE"),
        ("SELECT LOAD_FILE('/etc/passwd')", "LOAD_FILE"),
        ("LOAD DATA INFILE '/etc/passwd' INTO TABLE `t`", "file system"),
        ("CREATE TABLE `t` (`id` int) ENGINE=CONNECT TABLE_TYPE=DOS FILE_NAME='/etc/passwd'", "storage engine CONNECT"),
        ("CREATE TABLE `t` (`id` int) DATA DIRECTORY = '/tmp'", "DATA DIRECTORY"),
        ("CREATE DEFINER = `root`@`localhost` VIEW `v` AS SELECT 1", "DEFINER"),
        ("CREATE TRIGGER `t` BEFORE INSERT ON `x` FOR EACH ROW SET NEW.a = 1", "stored programs"),
        ("PREPARE s FROM 'DROP DATABASE mysql'", "dynamic SQL"),
        ("DO SLEEP(1)", "DO statements cannot be checked"),
        ("/*!50000 DROP DATABASE `mysql` */", "versioned comment"),
        ("SELECT 'a\\'; DROP DATABASE `mysql`; -- '", "backslash"),
        ("SELECT 1 --\x01 '\n; DROP DATABASE `mysql`; -- '", "control character"),
        ("SELECT 'not closed", "not closed"),
    ],
)
def test_mysql_sql_that_would_escape_the_dry_run_or_cannot_be_checked_is_refused_with_the_reason(sql: str, reason: str) -> None:
    with pytest.raises(RefusedSql, match=reason):
        check_sql(sql, engine="mysql")


def test_a_refusal_quotes_the_statement_it_refuses() -> None:
    with pytest.raises(RefusedSql) as caught:
        check_sql("UPDATE `t` SET `c` = 1; SET SESSION lock_wait_timeout = 0; SELECT 1", engine="mysql")

    assert str(caught.value).startswith("'SET SESSION lock_wait_timeout = 0' is refused: ")


def test_sql_the_reader_cannot_split_is_located_by_its_character() -> None:
    with pytest.raises(RefusedSql) as caught:
        check_sql("SELECT 1; /* never closed", engine="mysql")

    assert str(caught.value) == "the SQL cannot be checked at character 11 ('/* never closed'): the comment is not closed."


def test_a_postgresql_project_still_reads_backticks_with_postgresqls_parser() -> None:
    with pytest.raises(RefusedSql, match="PostgreSQL's parser"):
        check_sql("ALTER TABLE `shop_order` ADD COLUMN `c` int, ALGORITHM=INSTANT")


def test_mysql_dialect_run_sql_in_an_operations_document_passes_for_a_mysql_project() -> None:
    sql = "ALTER TABLE `shop_order` ADD COLUMN `c` int NULL, ALGORITHM=INSTANT"
    documents = [{"app_label": "shop", "operations": [{"op": "RunSQL", "sql": sql, "reverse_sql": "SELECT 1"}]}]

    plan = parse_migration_documents(documents, engine="mysql")

    assert plan.migrations[0].operations[0].sql == sql


def test_a_refused_run_sql_in_an_operations_document_is_located_at_its_pointer() -> None:
    documents = [
        {"app_label": "shop", "operations": [{"op": "RunSQL", "sql": "SELECT 1", "reverse_sql": "SET GLOBAL read_only = 1"}]}
    ]

    with pytest.raises(IntakeError, match="SET GLOBAL") as caught:
        parse_migration_documents(documents, engine="mysql")

    assert caught.value.location.pointer == "/operations/0/operations/0/reverse_sql"


def test_a_refused_run_sql_in_a_mysql_projects_migration_file_is_located_at_the_call() -> None:
    source = (
        "from django.db import migrations\n\n\nclass Migration(migrations.Migration):\n"
        "    operations = [\n        migrations.RunSQL('ALTER TABLE `t` FORCE', reverse_sql='KILL 1'),\n    ]\n"
    )
    with pytest.raises(IntakeError, match="RunSQL: 'KILL 1' is refused") as caught:
        parse_migration_file(
            app_label="shop",
            name="0002_x",
            source=source,
            filename="shop/migrations/0002_x.py",
            settings=source_settings(None, engine="mysql"),
        )
    assert (caught.value.location.line, caught.value.location.column) == (6, 9)
