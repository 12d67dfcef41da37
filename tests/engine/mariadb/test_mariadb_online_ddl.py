"""What MariaDB itself says about each statement of a change, on a clone with 200,000 orders:
the algorithm and lock it accepts (asked with ALGORITHM= and LOCK= on a scratch copy), whether
the table was rebuilt (a new InnoDB table id), what the statement blocks, and that DDL
commits on its own."""

from __future__ import annotations

import uuid

import pytest
from django.conf import settings
from django.db import models
from django.db.migrations import operations as ops
from django.db.migrations.operations.base import Operation

from changeapi.dryrun.contract import OnlineDdl, Report, StatementTrace, report_from_json, to_json
from changeapi.dryrun.mysql_run import dry_run_execute_mysql
from changeapi.shadow.engine_servers import MySqlShadowServer
from tests.engine.mariadb.conftest import TemplateFactory, plan_of, shop_baseline

pytestmark = pytest.mark.slow

ORDERS = 200_000


@pytest.fixture
def dry_run(mariadb: MySqlShadowServer, shop_template: TemplateFactory):
    template = shop_template(orders=ORDERS, customers=20_000)

    def run(*operations: Operation) -> Report:
        return dry_run_execute_mysql(
            server=mariadb,
            template=template.name,
            clone_name=f"{settings.SHADOW_DATABASE_PREFIX}t_dr_{uuid.uuid4().hex[:8]}",
            baseline=plan_of(shop_baseline()),
            change=plan_of(list(operations), start=2),
        )

    return run


def _alter(report: Report) -> tuple[StatementTrace, OnlineDdl]:
    assert report.error is None, report.error
    [statement] = [s for s in report.statements if s.online_ddl is not None]
    assert statement.online_ddl is not None
    return statement, statement.online_ddl


def test_adding_a_nullable_column_is_instant_and_blocks_nothing(dry_run):
    report = dry_run(ops.AddField("order", "coupon", models.CharField(max_length=20, null=True)))
    statement, ddl = _alter(report)
    assert statement.sql == "ALTER TABLE `shop_order` ADD COLUMN `coupon` varchar(20) NULL"
    assert (ddl.algorithm, ddl.lock, ddl.refusals) == ("INSTANT", "NONE", ())
    assert (ddl.blocks_reads, ddl.blocks_writes, ddl.rebuilt) == (False, False, False)
    assert statement.commits_on_its_own and not statement.transactional
    assert report.engine == "mariadb" and "MariaDB" in report.server_version


def test_adding_an_index_is_built_in_place_without_blocking_writes(dry_run):
    report = dry_run(ops.AddIndex("order", models.Index(fields=["total"], name="order_total_idx")))
    statement, ddl = _alter(report)
    assert statement.sql.startswith("CREATE INDEX `order_total_idx` ON `shop_order`")
    # NOCOPY is MariaDB's in-place without a table copy; INSTANT is refused with its reason.
    assert (ddl.algorithm, ddl.lock) == ("NOCOPY", "NONE")
    assert [(r.clause, r.code) for r in ddl.refusals] == [("ALGORITHM=INSTANT", 1846)]
    assert "ADD INDEX" in ddl.refusals[0].message
    assert (ddl.blocks_reads, ddl.blocks_writes, ddl.rebuilt) == (False, False, False)


def test_int_to_bigint_copies_the_table_and_blocks_writes(dry_run):
    report = dry_run(ops.AlterField("order", "total", models.BigIntegerField()))
    statement, ddl = _alter(report)
    assert statement.sql == "ALTER TABLE `shop_order` MODIFY `total` bigint NOT NULL"
    assert (ddl.algorithm, ddl.lock) == ("COPY", "SHARED")
    assert [r.clause for r in ddl.refusals] == ["ALGORITHM=INSTANT", "ALGORITHM=NOCOPY", "ALGORITHM=INPLACE", "LOCK=NONE"]
    assert all("Cannot change column type" in r.message for r in ddl.refusals)
    assert (ddl.blocks_reads, ddl.blocks_writes) == (False, True)
    assert ddl.rebuilt and ddl.table_id_after != ddl.table_id_before
    assert ddl.rows_copied == ORDERS
    assert report.summary.rewrites == ("shop_order",)
    assert statement.locks is not None and statement.locks[0].mode == "LOCK=SHARED"


def test_widening_a_varchar_within_its_length_byte_is_instant(dry_run):
    # 20 and 60 characters of utf8mb4 are at most 80 and 240 bytes: one length byte either way.
    report = dry_run(ops.AlterField("order", "code", models.CharField(max_length=60)))
    _, ddl = _alter(report)
    assert (ddl.algorithm, ddl.lock, ddl.rebuilt) == ("INSTANT", "NONE", False)


def test_widening_a_varchar_from_one_length_byte_to_two_copies_the_table(dry_run):
    # varchar(20) utf8mb4 is at most 80 bytes, stored with one length byte whatever it grows to:
    # widening it to 40 (160 bytes) is instant. From 160 bytes, values past 127 bytes already take
    # two length bytes, and 100 characters (400 bytes) changes the format: the table is copied.
    report = dry_run(
        ops.AlterField("order", "code", models.CharField(max_length=40)),
        ops.AlterField("order", "code", models.CharField(max_length=100)),
    )
    assert report.error is None
    first, second = (s.online_ddl for s in report.statements)
    assert first is not None and second is not None
    assert (first.algorithm, first.rebuilt) == ("INSTANT", False)
    assert (second.algorithm, second.lock, second.rebuilt, second.rows_copied) == ("COPY", "SHARED", True, ORDERS)
    assert (second.blocks_reads, second.blocks_writes) == (False, True)


def test_renaming_a_column_is_instant(dry_run):
    report = dry_run(ops.RenameField("order", "note", "remark"))
    statement, ddl = _alter(report)
    assert statement.sql == "ALTER TABLE `shop_order` RENAME COLUMN `note` TO `remark`"
    assert (ddl.algorithm, ddl.lock, ddl.rebuilt) == ("INSTANT", "NONE", False)


def test_dropping_an_unindexed_column_is_instant(dry_run):
    report = dry_run(ops.RemoveField("order", "note"))
    statement, ddl = _alter(report)
    assert statement.sql == "ALTER TABLE `shop_order` DROP COLUMN `note`"
    assert (ddl.algorithm, ddl.lock, ddl.rebuilt, ddl.blocks_writes) == ("INSTANT", "NONE", False, False)


def test_a_migration_failing_half_way_says_its_earlier_ddl_stays_applied(dry_run):
    report = dry_run(
        ops.AddField("order", "coupon", models.CharField(max_length=20, null=True)),
        ops.AddField("order", "coupon2", models.IntegerField(unique=True, default=1)),
    )
    assert report.status == "failed" and report.error is not None
    assert "Duplicate entry" in report.error.message
    assert "committed on their own and stay applied" in report.error.message
    assert report.statements[0].error is None and report.statements[-1].error is not None


def test_the_mariadb_report_reads_back_from_its_json(dry_run):
    report = dry_run(ops.AlterField("order", "total", models.BigIntegerField()))
    assert report_from_json(to_json(report)) == report


def test_a_read_and_a_write_from_other_sessions_meet_what_the_server_said(dry_run):
    # The copy of 200,000 rows takes long enough to be watched: a read goes on, a write waits.
    copy = _alter(dry_run(ops.AlterField("order", "total", models.BigIntegerField())))[1]
    assert (copy.observed_blocks_reads, copy.observed_blocks_writes) == (False, True)
    # The index build lets both go on (when it lasts long enough to be watched at all).
    build = _alter(dry_run(ops.AddIndex("order", models.Index(fields=["total"], name="order_total_idx"))))[1]
    assert build.observed_blocks_reads in (False, None) and build.observed_blocks_writes in (False, None)


def test_adding_a_column_with_a_default_is_instant_and_shows_the_default_as_run(dry_run):
    report = dry_run(ops.AddField("order", "status", models.CharField(max_length=10, default="new")))
    assert report.error is None
    add, drop_default = report.statements
    assert add.sql == "ALTER TABLE `shop_order` ADD COLUMN `status` varchar(10) DEFAULT 'new' NOT NULL"
    assert add.online_ddl is not None and (add.online_ddl.algorithm, add.online_ddl.rebuilt) == ("INSTANT", False)
    assert drop_default.sql == "ALTER TABLE `shop_order` ALTER COLUMN `status` DROP DEFAULT"


def test_a_foreign_key_drop_is_not_asked_of_a_copy_that_has_none_and_says_so(dry_run):
    report = dry_run(ops.RemoveField("order", "customer"))
    assert report.error is None
    drop_key, drop_column = report.statements
    assert drop_key.online_ddl is not None and drop_key.online_ddl.algorithm is None
    assert drop_key.online_ddl.probe_error is not None and "foreign keys" in drop_key.online_ddl.probe_error
    # An indexed column (the key's index) is not dropped instantly: MariaDB drops it in place.
    assert drop_column.online_ddl is not None and drop_column.online_ddl.algorithm == "NOCOPY"


def test_narrowing_a_varchar_copies_the_table(dry_run):
    _, ddl = _alter(dry_run(ops.AlterField("order", "code", models.CharField(max_length=10))))
    assert (ddl.algorithm, ddl.lock, ddl.rebuilt, ddl.rows_copied) == ("COPY", "SHARED", True, ORDERS)


def test_not_null_with_a_default_updates_then_rebuilds_in_place_without_a_lock(dry_run):
    report = dry_run(ops.AlterField("order", "note", models.TextField(default="")))
    assert report.error is None
    update, modify = report.statements
    assert update.sql == "UPDATE `shop_order` SET `note` = '' WHERE `note` IS NULL"
    assert update.online_ddl is None and not update.commits_on_its_own
    assert modify.online_ddl is not None
    assert (modify.online_ddl.algorithm, modify.online_ddl.lock) == ("INPLACE", "NONE")
    # Rebuilt in place: a new table id, but no row passed through a copy.
    assert (modify.online_ddl.rebuilt, modify.online_ddl.rows_copied) == (True, 0)


def test_a_check_constraint_copies_the_table_to_check_every_row(dry_run):
    check = models.CheckConstraint(condition=models.Q(total__gte=0), name="total_gte_0")
    _, ddl = _alter(dry_run(ops.AddConstraint("order", check)))
    assert (ddl.algorithm, ddl.lock, ddl.rebuilt, ddl.blocks_writes) == ("COPY", "SHARED", True, True)


def test_a_unique_constraint_is_built_in_place_without_blocking_writes(dry_run):
    _, ddl = _alter(dry_run(ops.AlterField("order", "code", models.CharField(max_length=20, unique=True))))
    assert (ddl.algorithm, ddl.lock, ddl.rebuilt, ddl.blocks_writes) == ("NOCOPY", "NONE", False, False)


def test_a_foreign_key_column_is_added_with_its_constraint_by_a_copy(dry_run):
    field = models.ForeignKey("shop.Customer", models.CASCADE, null=True, related_name="+")
    statement, ddl = _alter(dry_run(ops.AddField("order", "referrer", field)))
    assert "ADD COLUMN `referrer_id` bigint NULL" in statement.sql and "FOREIGN KEY" in statement.sql
    assert (ddl.algorithm, ddl.lock, ddl.rebuilt, ddl.rows_copied, ddl.blocks_writes) == ("COPY", "SHARED", True, ORDERS, True)


def test_a_column_then_its_index_is_instant_then_built_in_place(dry_run):
    report = dry_run(
        ops.AddField("order", "ref", models.IntegerField(null=True)),
        ops.AddIndex("order", models.Index(fields=["ref"], name="order_ref_idx")),
    )
    assert report.error is None
    add, index = (s.online_ddl for s in report.statements)
    assert add is not None and index is not None
    assert (add.algorithm, index.algorithm, index.lock) == ("INSTANT", "NOCOPY", "NONE")


def test_dropping_a_table_commits_on_its_own_and_is_not_asked_about(dry_run):
    report = dry_run(ops.DeleteModel("order"))
    assert report.error is None
    [drop] = report.statements
    assert drop.sql == "DROP TABLE `shop_order` CASCADE"
    assert drop.commits_on_its_own and drop.online_ddl is None


def test_a_backfill_in_run_sql_changes_every_row_under_row_locks_and_is_an_unbatched_data_change(dry_run):
    report = dry_run(ops.RunSQL("UPDATE shop_order SET note = 'checked'", reverse_sql=ops.RunSQL.noop))
    assert report.error is None
    [update] = report.statements
    # A data statement: no online DDL to ask about, nothing committed behind it, and no
    # transaction around it (Django's MySQL editor opens none for a migration).
    assert update.online_ddl is None and not update.commits_on_its_own and not update.transactional
    assert update.target_tables == ("shop_order",)
    assert update.work_class == "backfill" and update.work_tables == ("shop_order",)
    # Work that grows with the table: without uploaded table stats it is measured, not scaled.
    assert update.estimate is not None and update.estimate.basis.startswith("not estimated")
    [lock] = update.locks
    assert update.locks_source == "documented"
    assert (lock.table, lock.blocks_reads, lock.blocks_writes, lock.blocks_ddl, lock.source) == (
        "shop_order",
        False,
        True,
        True,
        "documented",
    )
    [finding] = [f for f in report.findings if f.code == "SG304"]
    assert finding.table == "shop_order" and "its row locks until it ends" in finding.message
    assert finding.safer_alternative is not None and finding.safer_alternative.example is not None
    assert "UPDATE shop_order SET note = 'checked' WHERE id >= %s AND id < %s" in finding.safer_alternative.example


def test_a_hand_written_alter_in_run_sql_is_asked_about_like_djangos_own(dry_run):
    # Bare names and a leading comment, as a team writes it; the column change copies the table.
    report = dry_run(
        ops.RunSQL("-- widen the total by hand\nALTER TABLE shop_order MODIFY total bigint NOT NULL", reverse_sql=ops.RunSQL.noop)
    )
    assert report.error is None
    [alter] = report.statements
    ddl = alter.online_ddl
    assert ddl is not None and alter.target_tables == ("shop_order",)
    assert (ddl.algorithm, ddl.lock, ddl.rebuilt, ddl.rows_copied) == ("COPY", "SHARED", True, ORDERS)
    assert alter.commits_on_its_own and not alter.transactional
    assert alter.locks and alter.locks_source == "server"
