"""A shadow server that goes away mid-run fails the dry-run with the reason; after it is back,
a rerun succeeds and the reaper removes what the interrupted run left behind."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import psycopg
import pytest
from django.conf import settings as django_settings

from changeapi.models import ChangeRequest
from changeapi.services.shadows import shadows_reap
from changeapi.shadow.provision import databases_with_prefix
from changeapi.shadow.servers import ShadowServer
from tests.conftest import SHOP_BASELINE
from tests.factories import UserFactory
from tests.support.second_postgres import SecondPostgres

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def second_server(settings) -> Iterator[SecondPostgres]:  # noqa: ANN001
    server = SecondPostgres()
    server.start()
    settings.SHADOW_SERVERS = [server.url]
    yield server
    server.destroy()


def _clones(server: SecondPostgres) -> list[str]:
    return databases_with_prefix(ShadowServer(server.url), f"{django_settings.SHADOW_DATABASE_PREFIX}dr_")


def _stop_once_sleeping(server: SecondPostgres, *, within_seconds: float = 120.0) -> threading.Thread:
    """Stop `server` as soon as a session on it is inside `pg_sleep`, so the server goes away
    in the middle of the dry-run's statement however slowly the run got there."""

    def watch() -> None:
        deadline = time.monotonic() + within_seconds
        while time.monotonic() < deadline:
            try:
                with psycopg.connect(server.url, autocommit=True, connect_timeout=2) as conn:
                    sleeping = conn.execute(
                        "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE '%%pg_sleep(%%'"
                        " AND pid <> pg_backend_pid()"
                    ).fetchone()
            except psycopg.OperationalError:
                sleeping = None
            if sleeping and sleeping[0]:
                server.stop()
                return
            time.sleep(0.05)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    return watcher


def test_server_lost_mid_run_fails_with_the_reason_then_a_rerun_succeeds(second_server, client_for):
    api = client_for(UserFactory(username="owner"))
    assert api.post("/api/v1/projects/", {"slug": "shop", "name": "Shop"}, format="json").status_code == 201
    baseline = api.post("/api/v1/projects/shop/baselines/", {"operations": SHOP_BASELINE}, format="json").json()
    assert api.get(f"/api/v1/baselines/{baseline['id']}/").json()["status"] == "ready"

    watcher = _stop_once_sleeping(second_server)
    body = {
        "project": "shop",
        "title": "slow",
        "operations": [{"app_label": "shop", "operations": [{"op": "RunSQL", "sql": "SELECT pg_sleep(6)"}]}],
    }
    change_request = api.post("/api/v1/change-requests/", body, format="json").json()
    watcher.join()
    failed = api.get(f"/api/v1/dry-runs/{change_request['latest_dry_run']}/").json()

    # The server was stopped within moments of the sleep starting, seconds before it could end.
    assert failed["status"] == "failed"
    assert "unavailable" in failed["error"] or "terminat" in failed["error"] or "closed" in failed["error"]
    assert ChangeRequest.objects.get(pk=change_request["id"]).status == "dry_run_failed"
    health = api.get("/healthz").json()
    assert health["shadow_servers"][0]["available"] is False

    second_server.start()
    rerun = api.post(f"/api/v1/dry-runs/{failed['id']}/rerun/")
    assert rerun.status_code == 202, rerun.content
    succeeded = api.get(f"/api/v1/dry-runs/{rerun.json()['id']}/").json()

    assert succeeded["status"] == "succeeded", succeeded["error"]
    assert ChangeRequest.objects.get(pk=change_request["id"]).status == "ready_for_review"
    shadows_reap()
    assert _clones(second_server) == []
