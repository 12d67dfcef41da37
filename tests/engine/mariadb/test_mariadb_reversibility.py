"""A MariaDB dry-run reverses the change on its clone after the forwards run: the backwards SQL
is what Django's MySQL schema editor runs to reverse it, a step without a backwards step is
irreversible (SG302), and a rollback that fails on the shadow says at which statement, and that
the statements before it stay applied, since this engine's DDL commits per statement."""

from __future__ import annotations

import time
import uuid

import pytest
from django.conf import settings
from django.db import models
from django.db.migrations import operations as ops
from django.db.migrations.operations.base import Operation

from changeapi.dryrun.contract import Report
from changeapi.dryrun.mysql_run import dry_run_execute_mysql
from changeapi.intake.plan import Plan
from changeapi.shadow.engine_servers import MySqlShadowServer
from changeapi.shadow.mysql_databases import database_copy, database_drop
from tests.engine.mariadb.conftest import TemplateFactory, plan_of, shop_baseline
from tests.support.django_backwards import django_backwards_sql
from tests.support.mariadb import mariadb_connection

BASELINE = plan_of(shop_baseline())


def _clone_name() -> str:
    return f"{settings.SHADOW_DATABASE_PREFIX}t_rv_{uuid.uuid4().hex[:8]}"


@pytest.fixture
def dry_run(mariadb: MySqlShadowServer, shop_template: TemplateFactory):
    template = shop_template(orders=500, customers=50)

    def run(*migrations: list[Operation], drop_clone: bool = True) -> Report:
        return dry_run_execute_mysql(
            server=mariadb,
            template=template.name,
            clone_name=_clone_name(),
            baseline=BASELINE,
            change=plan_of(*migrations, start=2),
            drop_clone=drop_clone,
        )

    return run


def _djangos_backwards(mariadb: MySqlShadowServer, template: str, change: Plan) -> list[list[str]]:
    scratch = _clone_name()
    database_copy(mariadb, source=template, name=scratch)
    try:
        with mariadb_connection(scratch) as connection:
            return django_backwards_sql(connection, BASELINE, change)
    finally:
        database_drop(mariadb, scratch)


REVERSIBLE = (
    [
        ops.AddField("order", "shipped", models.BooleanField(default=False)),
        ops.AlterField("order", "total", models.BigIntegerField()),
        ops.AddIndex("order", models.Index(fields=["total"], name="order_total_ix")),
    ],
    [
        ops.AlterField("order", "code", models.CharField(max_length=40, db_index=True)),
        ops.RemoveField("order", "note"),
    ],
)


def test_a_reversible_change_reverses_with_the_sql_djangos_mysql_schema_editor_runs(
    dry_run, mariadb: MySqlShadowServer, shop_template: TemplateFactory
):
    report = dry_run(*REVERSIBLE)

    assert report.status == "succeeded", report.error
    assert [(r.migration, r.reversible, r.checked, r.reason) for r in report.reversibility] == [
        ("shop.0002_step", True, True, ""),
        ("shop.0003_step", True, True, ""),
    ]
    expected = _djangos_backwards(mariadb, shop_template(orders=500, customers=50).name, plan_of(*REVERSIBLE, start=2))
    assert [list(r.backwards_sql) for r in report.reversibility] == expected
    assert "ALTER TABLE `shop_order` MODIFY `total` integer NOT NULL" in report.reversibility[0].backwards_sql
    assert all(r.backwards_ms is not None for r in report.reversibility)
    assert report.reversibility[1].data_loss  # the dropped note comes back empty
    assert report.summary.reversible is True
    assert "SG302" not in [f.code for f in report.findings]


def test_run_sql_without_reverse_sql_is_irreversible_and_sg302_and_earlier_migrations_are_not_checked(dry_run):
    report = dry_run(
        [ops.AddField("order", "shipped", models.BooleanField(default=False))],
        [ops.RunSQL("CREATE INDEX order_note_ix ON shop_order (note(20))")],
    )

    first, second = report.reversibility
    assert (second.checked, second.reversible, second.reason, second.backwards_sql) == (
        True,
        False,
        "RunSQL without reverse_sql",
        (),
    )
    assert (first.checked, first.reversible) == (False, False)
    assert first.reason == "not checked: shop.0003_step cannot be reversed first"
    [found] = [f for f in report.findings if f.code == "SG302"]
    assert found.migration == "shop.0003_step" and "RunSQL without reverse_sql" in found.message
    assert report.summary.reversible is False


def test_a_rollback_failing_half_way_names_its_statement_and_what_stays_applied(dry_run, mariadb: MySqlShadowServer):
    # Backwards: DROP the new column (commits), nothing for the UPDATE, then narrowing total back
    # to integer fails on the row the UPDATE put out of its range.
    report = dry_run(
        [
            ops.AlterField("order", "total", models.BigIntegerField()),
            ops.RunSQL("UPDATE shop_order SET total = 10000000000 WHERE id = 1", reverse_sql=ops.RunSQL.noop),
            ops.AddField("order", "shipped", models.BooleanField(null=True)),
        ],
        drop_clone=False,
    )

    [entry] = report.reversibility
    try:
        assert report.status == "succeeded", report.error
        assert entry.checked and not entry.reversible
        assert entry.reason.startswith("the backwards SQL fails on the shadow at its statement 2: ")
        assert "Out of range value for column 'total'" in entry.reason
        assert "the 1 statement(s) before it committed on their own and stay applied" in entry.reason
        assert "MariaDB DDL is not transactional" in entry.reason
        assert entry.backwards_sql == (
            "ALTER TABLE `shop_order` DROP COLUMN `shipped`",
            "ALTER TABLE `shop_order` MODIFY `total` integer NOT NULL",
        )
        with mariadb_connection(report.shadow_database) as connection, connection.cursor() as cursor:
            columns = {c.name: c for c in connection.introspection.get_table_description(cursor, "shop_order")}
        assert "shipped" not in columns  # the rollback's first statement stayed applied
        [found] = [f for f in report.findings if f.code == "SG302"]
        assert "Out of range value" in found.message
    finally:
        database_drop(mariadb, report.shadow_database)


def test_re_adding_a_dropped_not_null_column_reverses_on_mariadb_with_its_data_lost(dry_run):
    # PostgreSQL and SQLite refuse the NOT NULL column on rows; MariaDB fills it with zeros.
    report = dry_run([ops.RemoveField("order", "total")])

    [entry] = report.reversibility
    assert (entry.checked, entry.reversible) == (True, True)
    assert entry.backwards_sql == ("ALTER TABLE `shop_order` ADD COLUMN `total` integer NOT NULL",)
    assert entry.data_loss == (
        "reversing 'Remove field total from order' re-creates the column empty (or with its default): its data is gone",
    )
    assert "SG302" not in [f.code for f in report.findings]


def test_a_failed_forwards_run_is_not_reversed(dry_run):
    report = dry_run([ops.RunSQL("ALTER TABLE shop_order ADD COLUMN broken nosuchtype", reverse_sql=ops.RunSQL.noop)])

    assert report.status == "failed"
    assert report.reversibility == () and report.summary.reversible is False


def test_the_rollback_runs_in_the_jobs_session_under_its_watchdog(dry_run, settings):
    # The forwards run lifts the session's statement cap; only the watchdog can stop the rollback.
    settings.SHADOW_STATEMENT_TIMEOUT_MS = 1000
    started = time.monotonic()

    report = dry_run(
        [ops.RunSQL("SET SESSION max_statement_time = 0", reverse_sql="SELECT SLEEP(20) FROM shop_customer LIMIT 1")]
    )

    assert time.monotonic() - started < 15
    [entry] = report.reversibility
    assert report.status == "succeeded" and not entry.reversible
    assert entry.reason.startswith(
        "a statement ran past SHADOW_STATEMENT_TIMEOUT_MS (1000 ms), and was stopped: "
        "the backwards SQL fails on the shadow at its statement 1: "
    )
