"""A SQLite template is the baseline applied by Django's SQLite schema editor and seeded; a clone
is a backup-API copy of it; spares are claimed by one atomic rename; every file is named inside
the shadow directory with the service's prefix, whatever name is asked for; and a clone's
connection can reach no other file."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from django.conf import settings

from changeapi.dryrun.sqlite_connection import sqlite_connection
from changeapi.dryrun.sqlite_session import sqlite_session
from changeapi.shadow.engine_servers import SqliteShadowServer
from changeapi.shadow.sqlite_files import (
    UnsafeShadowName,
    database_copy,
    database_create,
    database_exists,
    databases_named,
    shadow_path,
    spares_ensure,
    spares_ready,
)
from tests.engine.sqlite.conftest import TemplateFactory


def _count(path: Path, sql: str) -> int:
    connection = sqlite3.connect(path)
    try:
        return int(connection.execute(sql).fetchone()[0])
    finally:
        connection.close()


def test_template_holds_the_baseline_seeded_with_every_order_referring_to_a_customer(
    server: SqliteShadowServer, shop_template: TemplateFactory
):
    template = shop_template(orders=1000, customers=100)
    path = shadow_path(server, template.name)

    assert template.built and [(t.table, t.rows) for t in template.seeded] == [("shop_customer", 100), ("shop_order", 1000)]
    assert (
        _count(path, "SELECT count(*) FROM shop_order o LEFT JOIN shop_customer c ON c.id = o.customer_id WHERE c.id IS NULL")
        == 0
    )
    assert _count(path, "SELECT count(*) FROM shop_order WHERE json_valid(meta)") == 1000
    assert _count(path, "SELECT count(*) FROM pragma_foreign_key_check") == 0


def test_a_template_that_exists_is_not_built_again(shop_template: TemplateFactory):
    shop_template()
    assert shop_template().built is False


def test_a_clone_is_a_copy_with_the_templates_rows_and_the_template_is_untouched(
    server: SqliteShadowServer, shop_template: TemplateFactory
):
    template = shop_template()
    clone = f"{settings.SHADOW_DATABASE_PREFIX}dr_copy"

    cost = database_copy(server, source=template.name, name=clone)

    assert cost.bytes == shadow_path(server, template.name).stat().st_size
    assert _count(shadow_path(server, clone), "SELECT count(*) FROM shop_order") == 1000


def test_a_job_takes_a_ready_spare_and_no_other_job_can_take_it(server: SqliteShadowServer, shop_template: TemplateFactory):
    template = shop_template()
    spares_ensure(server, template.name, count=1)
    [spare] = spares_ready(server, template.name)
    clone = f"{settings.SHADOW_DATABASE_PREFIX}dr_spare"

    with sqlite_session(server, template=template.name, name=clone, spares=[spare]) as session:
        assert (session.name, session.spare, session.copy) == (clone, spare, None)
        assert spares_ready(server, template.name) == []
        with session.connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM shop_order")
            assert cursor.fetchone()[0] == 1000
    with sqlite_session(server, template=template.name, name=f"{clone}_2", spares=[spare]) as second:
        assert second.spare == "" and second.copy is not None  # the spare was gone: a fresh copy
    assert not database_exists(server, clone) and not database_exists(server, spare)


@pytest.mark.parametrize(
    "name",
    ["../outside", "notours_dr_1", "{prefix}a/b", "{prefix}..", "{prefix}x\x00y", "{prefix}dr_1.sqlite3", "{prefix}a b", ""],
)
def test_a_name_that_could_leave_the_directory_or_lacks_the_prefix_is_refused(server: SqliteShadowServer, name: str):
    with pytest.raises(UnsafeShadowName):
        shadow_path(server, name.format(prefix=settings.SHADOW_DATABASE_PREFIX))
    assert list(server.directory.iterdir()) == []


def test_a_file_or_symlink_already_at_a_clones_name_is_not_written_through(server: SqliteShadowServer, tmp_path: Path):
    target = tmp_path / "precious.sqlite3"
    target.write_bytes(b"keep")
    name = f"{settings.SHADOW_DATABASE_PREFIX}dr_link"
    shadow_path(server, name).symlink_to(target)

    with pytest.raises(FileExistsError):
        database_create(server, name)
    assert target.read_bytes() == b"keep"
    assert name not in databases_named(server, settings.SHADOW_DATABASE_PREFIX)


@pytest.mark.parametrize(
    "sql",
    [
        "ATTACH DATABASE '{outside}' AS other",
        "VACUUM INTO '{outside}'",
        "PRAGMA max_page_count = 2147483646",
        "PRAGMA writable_schema = ON",
        "PRAGMA journal_mode = OFF",
    ],
)
def test_a_clones_connection_cannot_reach_another_file_or_lift_its_limits(
    server: SqliteShadowServer, shop_template: TemplateFactory, tmp_path: Path, sql: str
):
    template = shop_template()
    outside = tmp_path / "outside.sqlite3"
    clone = f"{settings.SHADOW_DATABASE_PREFIX}dr_fenced"
    database_copy(server, source=template.name, name=clone)

    with sqlite_connection(shadow_path(server, clone), alias="test_fenced", max_bytes=1 << 30) as connection:
        with connection.cursor() as cursor, pytest.raises(Exception, match="not authorized|authorization denied"):
            cursor.execute(sql.format(outside=outside))
    assert not outside.exists()
