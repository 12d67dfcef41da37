"""The compatibility findings of every engine on a SQLite dry-run: a drop or a rename of what the
running version uses (SG201, SG202), none for a table the change creates, and a data step among
schema operations (SG301) holding the write lock on the whole database. Django's table remake
(a new__ table renamed over the old one) does not make the remade table new."""

from __future__ import annotations

from django.db import models
from django.db.migrations import operations as ops

from tests.engine.sqlite.conftest import dry_run_of
from tests.support.compat_changes import coupon_then_drop_and_rename, fill_remarks, findings_of


def test_dropping_a_column_of_an_existing_table_is_sg201(server, shop_template):
    report = dry_run_of(server, shop_template().name, [ops.RemoveField("order", "note")])

    [found] = findings_of(report, "SG201")
    assert found.table == "shop_order"


def test_renaming_a_column_after_a_remake_of_its_table_is_still_sg202(server, shop_template):
    remade_then_renamed = [ops.AlterField("order", "total", models.BigIntegerField()), ops.RenameField("order", "note", "remark")]

    report = dry_run_of(server, shop_template().name, remade_then_renamed)

    assert report.remakes and report.remakes[0].table == "shop_order"
    [found] = findings_of(report, "SG202")
    assert found.table == "shop_order"


def test_a_drop_and_a_rename_on_a_table_the_change_creates_are_no_finding(server, shop_template):
    report = dry_run_of(server, shop_template().name, coupon_then_drop_and_rename())

    assert findings_of(report, "SG201") == [] and findings_of(report, "SG202") == []


def test_a_data_step_among_schema_operations_holds_the_databases_write_lock(server, shop_template):
    operations = [ops.AddField("order", "remark", models.TextField(null=True)), ops.RunPython(fill_remarks)]

    report = dry_run_of(server, shop_template().name, operations)

    [found] = findings_of(report, "SG301")
    assert "inside the schema change's transaction" in found.message and "the whole database" in found.message
