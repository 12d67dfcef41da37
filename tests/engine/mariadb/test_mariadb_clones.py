"""A MariaDB template is the baseline applied by Django's MySQL schema editor and seeded; a
clone is a table-by-table copy with its rows and foreign keys, connected as a job user that
can reach only its clone."""

from __future__ import annotations

import time

import MySQLdb
import pytest
from django.conf import settings
from django.db.migrations import operations as ops

from changeapi.dryrun.mysql_run import dry_run_execute_mysql
from changeapi.dryrun.mysql_session import mysql_session
from changeapi.shadow.engine_servers import MySqlShadowServer
from changeapi.shadow.mysql_databases import (
    admin_cursor,
    database_copy,
    database_exists,
    foreign_keys,
    job_user_name,
    spares_ensure,
    spares_ready,
)
from tests.engine.mariadb.conftest import TemplateFactory, plan_of, shop_baseline


def _count(server: MySqlShadowServer, database: str, table: str) -> int:
    with admin_cursor(server) as cursor:
        cursor.execute(f"SELECT count(*) FROM `{database}`.`{table}`")
        return int(cursor.fetchone()[0])


def test_template_holds_the_baseline_seeded_in_foreign_key_order(mariadb: MySqlShadowServer, shop_template: TemplateFactory):
    template = shop_template()
    assert _count(mariadb, template.name, "shop_customer") == 100
    assert _count(mariadb, template.name, "shop_order") == 1000
    with admin_cursor(mariadb) as cursor:
        cursor.execute(
            f"SELECT count(*) FROM `{template.name}`.shop_order o LEFT JOIN `{template.name}`.shop_customer c "
            "ON c.id = o.customer_id WHERE c.id IS NULL"
        )
        assert cursor.fetchone()[0] == 0  # every order's customer exists
        cursor.execute(f"SELECT count(*) FROM `{template.name}`.shop_order WHERE JSON_VALID(meta)")
        assert cursor.fetchone()[0] == 1000


def test_clone_copies_rows_and_foreign_keys_of_the_template(mariadb: MySqlShadowServer, shop_template: TemplateFactory):
    template = shop_template()
    clone = f"{settings.SHADOW_DATABASE_PREFIX}t_clone_copy"
    cost = database_copy(mariadb, source=template.name, name=clone)
    try:
        assert (cost.tables, cost.rows) == (2, 1100)
        assert _count(mariadb, clone, "shop_order") == 1000
        with admin_cursor(mariadb) as cursor:
            keys = foreign_keys(cursor, clone)
        assert [(k.table, k.columns, k.referenced_table) for k in keys] == [("shop_order", ("customer_id",), "shop_customer")]
    finally:
        with admin_cursor(mariadb) as cursor:
            cursor.execute(f"DROP DATABASE `{clone}`")


def test_job_user_reaches_its_clone_only_and_goes_with_it(mariadb: MySqlShadowServer, shop_template: TemplateFactory):
    template = shop_template()
    clone = f"{settings.SHADOW_DATABASE_PREFIX}t_clone_job"
    with mysql_session(mariadb, template=template.name, name=clone) as session:
        with session.connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM shop_order")
            assert cursor.fetchone()[0] == 1000
            with pytest.raises(Exception, match="denied"):
                cursor.execute(f"SELECT count(*) FROM `{template.name}`.shop_order")
            cursor.execute("SELECT @@SESSION.lock_wait_timeout")
            assert cursor.fetchone()[0] == max(1, -(-settings.SHADOW_LOCK_TIMEOUT_MS // 1000))
        with admin_cursor(mariadb) as cursor:
            cursor.execute("SELECT max_statement_time FROM mysql.user WHERE user = %s", [session.user.name])
            assert float(cursor.fetchone()[0]) == settings.SHADOW_STATEMENT_TIMEOUT_MS / 1000
    assert not database_exists(mariadb, clone)
    with admin_cursor(mariadb) as cursor:
        cursor.execute("SELECT count(*) FROM mysql.user WHERE user = %s", [job_user_name(clone)])
        assert cursor.fetchone()[0] == 0


def test_a_job_takes_a_ready_spare_and_no_other_job_can_take_it(mariadb: MySqlShadowServer, shop_template: TemplateFactory):
    template = shop_template()
    spares_ensure(mariadb, template.name, count=1)
    [spare] = spares_ready(mariadb, template.name)
    with mysql_session(mariadb, template=template.name, name="unused", spares=[spare]) as session:
        assert (session.name, session.spare, session.copy) == (spare, spare, None)
        assert spares_ready(mariadb, template.name) == []
        with session.connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM shop_order")
            assert cursor.fetchone()[0] == 1000
    assert not database_exists(mariadb, spare)


def test_a_dropped_job_user_cannot_connect_again(mariadb: MySqlShadowServer, shop_template: TemplateFactory):
    template = shop_template()
    with mysql_session(mariadb, template=template.name, name=f"{settings.SHADOW_DATABASE_PREFIX}t_clone_gone") as session:
        user = session.user
    with pytest.raises(MySQLdb.OperationalError):
        MySQLdb.connect(host=mariadb.host, port=mariadb.port, user=user.name, password=user.password)


def test_a_job_that_lifts_its_own_statement_cap_is_stopped_from_the_admin_side(
    mariadb: MySqlShadowServer, shop_template: TemplateFactory, settings
):
    settings.SHADOW_STATEMENT_TIMEOUT_MS = 1000
    template = shop_template()
    change = plan_of(
        [ops.RunSQL("SET SESSION max_statement_time = 0"), ops.RunSQL("SELECT SLEEP(20) FROM shop_customer LIMIT 1")], start=2
    )
    started = time.monotonic()
    report = dry_run_execute_mysql(
        server=mariadb,
        template=template.name,
        clone_name=f"{settings.SHADOW_DATABASE_PREFIX}t_clone_sleep",
        baseline=plan_of(shop_baseline()),
        change=change,
    )
    assert time.monotonic() - started < 10
    assert report.status == "failed" and report.error is not None
    assert report.error.message.startswith("a statement ran past SHADOW_STATEMENT_TIMEOUT_MS (1000 ms), and was stopped")
