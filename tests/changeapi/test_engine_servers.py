"""Shadow servers of every engine in SHADOW_SERVERS: typed values naming their engine, a project
given one of its engine (and major version), PostgreSQL routines given only PostgreSQL servers;
a project whose engine has no server fails at once, naming why, and nothing of a project of
another engine is built on a PostgreSQL server."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from changeapi.services.shadows import shadows_reap
from changeapi.shadow.engine_servers import MySqlShadowServer, SqliteShadowServer
from changeapi.shadow.provision import databases_with_prefix
from changeapi.shadow.servers import ShadowServer, configured_servers, pick_server, shadow_servers
from tests.conftest import SHOP_BASELINE
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("engine", ["mysql", "sqlite"])
def test_project_without_a_server_of_its_engine_fails_naming_the_engine_and_setting(client_for, settings, engine):
    api = client_for(UserFactory(username="owner"))
    project = {"slug": "shop", "name": "Shop", "engine": engine, "engine_version": {"mysql": 10, "sqlite": 3}[engine]}
    assert api.post("/api/v1/projects/", project, format="json").status_code == 201
    before = {server.key: databases_with_prefix(server, settings.SHADOW_DATABASE_PREFIX) for server in configured_servers()}

    baseline = api.post("/api/v1/projects/shop/baselines/", {"operations": SHOP_BASELINE}, format="json").json()
    shown = api.get(f"/api/v1/baselines/{baseline['id']}/").json()

    assert shown["status"] == "failed"
    assert f"'{engine}'" in shown["error"]
    assert "SHADOW_SERVERS" in shown["error"]
    after = {server.key: databases_with_prefix(server, settings.SHADOW_DATABASE_PREFIX) for server in configured_servers()}
    assert after == before


MARIADB = "mysql://root@127.0.0.1:3306/"


def test_shadow_servers_of_every_engine_are_typed_values_that_name_their_engine(settings, tmp_path):
    postgresql = settings.SHADOW_SERVERS[0]
    settings.SHADOW_SERVERS = [postgresql, MARIADB, "mariadb://root@127.0.0.1:3306/", f"sqlite://{tmp_path}"]

    servers = shadow_servers()

    assert [(type(server), server.engine) for server in servers] == [
        (ShadowServer, "postgresql"),
        (MySqlShadowServer, "mysql"),
        (MySqlShadowServer, "mysql"),
        (SqliteShadowServer, "sqlite"),
    ]
    assert servers[1].key == "mysql:127.0.0.1:3306"
    assert servers[3] == SqliteShadowServer(tmp_path)


def test_only_postgresql_servers_are_given_to_postgresql_provisioning_and_mariadb_is_reaped_by_its_own(settings, tmp_path):
    postgresql = settings.SHADOW_SERVERS[0]
    settings.SHADOW_SERVERS = [MARIADB, postgresql, f"sqlite://{tmp_path}"]

    assert configured_servers() == [ShadowServer(postgresql)]
    assert [result.server for result in shadows_reap()] == [
        ShadowServer(postgresql).key,
        MySqlShadowServer(MARIADB).key,
        SqliteShadowServer(tmp_path).key,
    ]


def test_the_major_version_and_flavor_of_a_mariadb_server_are_read_from_the_server(settings):
    server = MySqlShadowServer(MARIADB)

    assert server.major_version() == 10
    assert server.flavor() == "mariadb"


@pytest.mark.parametrize(
    ("engine", "kind"), [("postgresql", ShadowServer), ("mysql", MySqlShadowServer), ("sqlite", SqliteShadowServer)]
)
def test_a_project_is_given_a_server_of_its_engine(settings, tmp_path, engine, kind):
    settings.SHADOW_SERVERS = [f"sqlite://{tmp_path}", MARIADB, *settings.SHADOW_SERVERS]

    assert type(pick_server(engine=engine, engine_version=10)) is kind


def test_among_servers_of_its_engine_a_project_is_given_one_of_its_major_version(settings):
    # 3307 does not answer: its version cannot be read, so it is not taken for a version-10 project.
    settings.SHADOW_SERVERS = ["mysql://root@127.0.0.1:3307/", MARIADB]

    picks = {pick_server(engine="mysql", engine_version=10).key for _ in range(10)}

    assert picks == {"mysql:127.0.0.1:3306"}


def test_a_sqlite_projects_baseline_is_built_in_its_directory_and_nothing_on_postgresql(client_for, settings, tmp_path):
    settings.SHADOW_SERVERS = [*settings.SHADOW_SERVERS, f"sqlite://{tmp_path}"]
    api = client_for(UserFactory(username="owner"))
    project = {"slug": "shop", "name": "Shop", "engine": "sqlite", "engine_version": 3}
    assert api.post("/api/v1/projects/", project, format="json").status_code == 201
    before = {server.key: databases_with_prefix(server, settings.SHADOW_DATABASE_PREFIX) for server in configured_servers()}

    baseline = api.post("/api/v1/projects/shop/baselines/", {"operations": SHOP_BASELINE}, format="json").json()
    shown = api.get(f"/api/v1/baselines/{baseline['id']}/").json()

    assert shown["status"] == "ready", shown["error"]
    assert any(p.name.startswith(f"{settings.SHADOW_DATABASE_PREFIX}tpl_") for p in tmp_path.iterdir())
    after = {server.key: databases_with_prefix(server, settings.SHADOW_DATABASE_PREFIX) for server in configured_servers()}
    assert after == before


@pytest.mark.parametrize(
    "entry",
    ["redis://:hunter2@127.0.0.1:6379/0", "mysql://root:hunter2@/", "mysql://root:hunter2@db:port/", "sqlite://hunter2/relative"],
)
def test_a_malformed_entry_fails_the_system_check_without_showing_it(settings, entry):
    settings.SHADOW_SERVERS = [entry]

    with pytest.raises(SystemCheckError) as raised:
        call_command("check")

    assert "SHADOW_SERVERS" in str(raised.value) and "schemagate.E001" in str(raised.value)
    assert "hunter2" not in str(raised.value)


def test_a_malformed_entry_fails_the_work_that_needs_a_server_not_the_request(client_for, settings):
    settings.SHADOW_SERVERS = ["mysql://root:hunter2@/"]
    api = client_for(UserFactory(username="owner"))
    assert api.post("/api/v1/projects/", {"slug": "shop", "name": "Shop"}, format="json").status_code == 201

    response = api.post("/api/v1/projects/shop/baselines/", {"operations": SHOP_BASELINE}, format="json")
    shown = api.get(f"/api/v1/baselines/{response.json()['id']}/").json()

    assert response.status_code == 202
    assert shown["status"] == "failed" and "SHADOW_SERVERS" in shown["error"] and "hunter2" not in shown["error"]


@pytest.mark.parametrize(("engine", "version"), [("sqlite", 3), ("mysql", 8), ("mysql", 11), ("postgresql", 17)])
def test_a_project_names_the_major_version_its_engine_has(client_for, engine, version):
    api = client_for(UserFactory(username="owner"))

    response = api.post(
        "/api/v1/projects/", {"slug": "shop", "name": "Shop", "engine": engine, "engine_version": version}, format="json"
    )

    assert response.status_code == 201, response.content
    assert response.json()["engine_version"] == version


@pytest.mark.parametrize(("engine", "version"), [("postgresql", 15), ("mysql", 10), ("sqlite", 3)])
def test_a_project_that_names_no_version_gets_its_engines_default(client_for, engine, version):
    api = client_for(UserFactory(username="owner"))

    response = api.post("/api/v1/projects/", {"slug": "shop", "name": "Shop", "engine": engine}, format="json")

    assert response.status_code == 201, response.content
    assert response.json()["engine_version"] == version


@pytest.mark.parametrize(("engine", "version"), [("sqlite", 15), ("mysql", 4), ("postgresql", 8)])
def test_a_major_version_its_engine_never_had_is_refused_at_its_pointer(client_for, engine, version):
    api = client_for(UserFactory(username="owner"))

    response = api.post(
        "/api/v1/projects/", {"slug": "shop", "name": "Shop", "engine": engine, "engine_version": version}, format="json"
    )

    assert response.status_code == 400, response.content
    assert response["Content-Type"] == "application/problem+json"
    assert [error["pointer"] for error in response.json()["errors"]] == ["/engine_version"]
