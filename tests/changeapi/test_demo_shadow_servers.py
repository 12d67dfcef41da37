"""`make demo` shadows on its embedded PostgreSQL, and on the servers DEMO_EXTRA_SHADOW_SERVERS adds
(a local MariaDB for a MySQL project), in that order."""

from __future__ import annotations

from changeapi.demo_server import demo_shadow_servers

EMBEDDED = "postgres://postgres@%2Ftmp%2Fpg/postgres"


def test_the_demo_shadows_on_its_embedded_postgresql_alone_by_default():
    assert demo_shadow_servers(EMBEDDED, "") == EMBEDDED


def test_the_demo_adds_the_extra_shadow_servers_after_its_own():
    extra = " mysql://root@127.0.0.1:3306/ , ,mariadb://root@db:3306/"

    assert demo_shadow_servers(EMBEDDED, extra) == f"{EMBEDDED},mysql://root@127.0.0.1:3306/,mariadb://root@db:3306/"
