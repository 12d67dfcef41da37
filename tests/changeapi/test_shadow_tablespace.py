"""A PostgreSQL shadow server's URL may name the tablespace its templates are built in
(`?tablespace=`): their clones and spares are copied into it, so shadows can live on a fast
disk, or in memory on a throwaway server, while the server's other databases stay put."""

from __future__ import annotations

import os
import pwd
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from psycopg import sql

from changeapi.shadow import provision
from changeapi.shadow.servers import ShadowServer, configured_servers

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_server_url_names_the_tablespace_of_its_templates():
    assert ShadowServer("postgres://postgres@127.0.0.1:5432/postgres?tablespace=fast_disk").tablespace == "fast_disk"
    assert ShadowServer("postgres://postgres@127.0.0.1:5432/postgres").tablespace == ""


def test_an_empty_database_is_created_in_the_tablespace_named_and_only_there():
    named = provision.create_empty_database_sql("sg_x", tablespace="fast disk").as_string(None)
    default = provision.create_empty_database_sql("sg_x").as_string(None)

    assert named == """CREATE DATABASE "sg_x" TEMPLATE template0 ENCODING 'UTF8' TABLESPACE "fast disk\""""
    assert "TABLESPACE" not in default


@pytest.fixture
def tablespace() -> Iterator[str]:
    """The suite's server's own tablespace when its URL names one (CI's, on tmpfs); else one
    made for this test, where the server's files are on this machine and its owner can be
    given a directory; else the test is skipped, saying why."""
    configured = configured_servers()[0].tablespace
    if configured:
        yield configured
        return
    server = configured_servers()[0]
    with server.admin_connect() as conn:
        row = conn.execute("SELECT current_setting('data_directory')").fetchone()
    data_directory = Path(row[0]) if row else None
    if data_directory is None or not data_directory.is_dir() or os.geteuid() != 0:
        pytest.skip("the shadow server's URL names no tablespace, and none can be made for it from here")
    owner = pwd.getpwuid(data_directory.stat().st_uid)
    directory = Path(tempfile.mkdtemp(prefix="sg-tablespace-"))
    os.chown(directory, owner.pw_uid, owner.pw_gid)
    name = f"{settings.SHADOW_DATABASE_PREFIX}ts_{uuid.uuid4().hex[:8]}"
    with server.admin_connect() as conn:
        conn.execute(sql.SQL("CREATE TABLESPACE {} LOCATION {}").format(sql.Identifier(name), sql.Literal(str(directory))))
    try:
        yield name
    finally:
        with server.admin_connect() as conn:
            conn.execute(sql.SQL("DROP TABLESPACE IF EXISTS {}").format(sql.Identifier(name)))
        shutil.rmtree(directory, ignore_errors=True)


def _tablespace_of(server: ShadowServer, database: str) -> str:
    with server.admin_connect() as conn:
        row = conn.execute(
            "SELECT t.spcname FROM pg_database d JOIN pg_tablespace t ON t.oid = d.dattablespace WHERE d.datname = %s",
            [database],
        ).fetchone()
    assert row is not None, database
    return str(row[0])


def test_a_template_its_clone_and_its_spare_are_in_the_tablespace_of_the_server(tablespace):
    default = configured_servers()[0]
    server = ShadowServer(f"{default.url.split('?')[0]}?tablespace={tablespace}")
    prefix = f"{settings.SHADOW_DATABASE_PREFIX}tsp_{uuid.uuid4().hex[:8]}"
    template, clone, spare = f"{prefix}_tpl", f"{prefix}_clone", f"{prefix}_spare"
    try:
        assert provision.template_ensure(server, template, lambda building: None)
        provision.clone_create(server, template=template, name=clone)
        assert provision.spare_create(server, template=template, name=spare)

        assert [_tablespace_of(server, name) for name in (template, clone, spare)] == [tablespace] * 3
    finally:
        for name in (clone, spare):
            provision.clone_drop(server, name)
        provision.template_drop(server, template)
