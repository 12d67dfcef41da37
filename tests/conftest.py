"""Shared test helpers: API clients per user, a baseline, and a check that no shadow is left."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.conf import settings
from rest_framework.test import APIClient

from changeapi.shadow.provision import databases_with_prefix
from changeapi.shadow.servers import configured_servers
from tests.factories import UserFactory
from tests.support.flush_by_delete import flushes_by_delete

SHOP_BASELINE: list[dict[str, Any]] = [
    {
        "app_label": "shop",
        "operations": [
            {
                "op": "CreateModel",
                "name": "Customer",
                "fields": [
                    {"name": "id", "field": {"type": "BigAutoField", "primary_key": True}},
                    {"name": "email", "field": {"type": "EmailField", "max_length": 254, "unique": True}},
                ],
            },
            {
                "op": "CreateModel",
                "name": "Order",
                "fields": [
                    {"name": "id", "field": {"type": "BigAutoField", "primary_key": True}},
                    {"name": "total", "field": {"type": "IntegerField"}},
                    {"name": "customer", "field": {"type": "ForeignKey", "to": "shop.Customer", "on_delete": "CASCADE"}},
                ],
            },
        ],
    }
]

ADD_NOTE_AND_INDEX: list[dict[str, Any]] = [
    {
        "app_label": "shop",
        "operations": [
            {"op": "AddField", "model_name": "order", "name": "note", "field": {"type": "TextField", "null": True}},
            {"op": "AddIndex", "model_name": "order", "index": {"name": "order_total_idx", "fields": ["total"]}},
        ],
    }
]


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist each worker gets shadow databases, an owner role and a Redis database
    of its own, so tests that count clones, reap leftovers or run a Celery worker never see
    another worker's. pytest-django already gives each worker its own test database. The
    environment is set too: subprocesses a test starts (a Celery worker, `migrate`) inherit it.

    Passwords are hashed with a fast hasher: the production one costs a quarter of a second
    per user by design, and most tests make two to four users."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker:
        return
    number = int(worker.removeprefix("gw"))
    prefix = f"{settings.SHADOW_DATABASE_PREFIX}{worker}_"
    owner_role = f"{settings.SHADOW_OWNER_ROLE}_{worker}"
    os.environ["SHADOW_DATABASE_PREFIX"] = settings.SHADOW_DATABASE_PREFIX = prefix
    os.environ["SHADOW_OWNER_ROLE"] = settings.SHADOW_OWNER_ROLE = owner_role
    os.environ.setdefault("TEST_CELERY_BROKER_URL", f"redis://127.0.0.1:6379/{14 - number % 8}")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Modules holding a test marked `slow` are collected first, the rest keep their order.

    Under `--dist loadfile` the workers take modules in collection order; a module with a
    minute of set-up collected last (the corpus SQL-equality runs sit in tests/engine) would
    run alone at the end while the other workers wait.
    """
    slow = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow)


def clone_databases() -> list[str]:
    """Dry-run clones currently on the shadow server (templates are kept on purpose)."""
    prefix = f"{settings.SHADOW_DATABASE_PREFIX}dr_"
    return [name for server in configured_servers() for name in databases_with_prefix(server, prefix)]


@pytest.fixture(autouse=True, scope="session")
def _flush_by_delete() -> Iterator[None]:
    """Transactional tests end with DELETEs rather than a TRUNCATE (tests/support/flush_by_delete.py)."""
    with flushes_by_delete():
        yield


@pytest.fixture(autouse=True, scope="session")
def _shadow_chores_in_the_caller() -> Iterator[None]:
    """After a dry-run, dropping its clone and making the next spare run before the request
    returns, so no background thread outlives (or writes after) the test that started it."""
    previous = settings.SHADOW_CHORES_IN_BACKGROUND
    settings.SHADOW_CHORES_IN_BACKGROUND = False
    yield
    settings.SHADOW_CHORES_IN_BACKGROUND = previous


@pytest.fixture
def client_for() -> Callable[[Any], APIClient]:
    def make(user: Any) -> APIClient:
        client = APIClient()
        if user is not None:
            client.force_authenticate(user=user)
        return client

    return make


@pytest.fixture
def owner() -> Any:
    return UserFactory(username="owner")


@pytest.fixture
def project_with_baseline(owner: Any, client_for: Callable[[Any], APIClient]) -> Iterator[dict[str, Any]]:
    """A project `shop` whose baseline (Customer, Order) has a ready template."""
    api = client_for(owner)
    response = api.post("/api/v1/projects/", {"slug": "shop", "name": "Shop"}, format="json")
    assert response.status_code == 201, response.content
    response = api.post("/api/v1/projects/shop/baselines/", {"operations": SHOP_BASELINE}, format="json")
    assert response.status_code == 202, response.content
    baseline = api.get(f"/api/v1/baselines/{response.json()['id']}/").json()
    assert baseline["status"] == "ready", baseline
    yield {"slug": "shop", "owner": owner, "api": api}
    assert clone_databases() == []
