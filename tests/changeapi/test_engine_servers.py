"""A project whose engine has no configured shadow server fails at once, naming the engine and
the setting, and nothing of it is built on a PostgreSQL server."""

from __future__ import annotations

import pytest

from changeapi.shadow.provision import databases_with_prefix
from changeapi.shadow.servers import configured_servers
from tests.conftest import SHOP_BASELINE
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("engine", ["mysql", "sqlite"])
def test_project_without_a_server_of_its_engine_fails_naming_the_engine_and_setting(client_for, settings, engine):
    api = client_for(UserFactory(username="owner"))
    project = {"slug": "shop", "name": "Shop", "engine": engine, "engine_version": 10}
    assert api.post("/api/v1/projects/", project, format="json").status_code == 201
    before = {server.key: databases_with_prefix(server, settings.SHADOW_DATABASE_PREFIX) for server in configured_servers()}

    baseline = api.post("/api/v1/projects/shop/baselines/", {"operations": SHOP_BASELINE}, format="json").json()
    shown = api.get(f"/api/v1/baselines/{baseline['id']}/").json()

    assert shown["status"] == "failed"
    assert f"'{engine}'" in shown["error"]
    assert "SHADOW_SERVERS" in shown["error"]
    after = {server.key: databases_with_prefix(server, settings.SHADOW_DATABASE_PREFIX) for server in configured_servers()}
    assert after == before
