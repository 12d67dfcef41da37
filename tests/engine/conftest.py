"""Fixtures of the engine tests that need a database of their own on the shadow server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings

from changeapi.shadow import provision
from changeapi.shadow.servers import configured_servers


@pytest.fixture
def clone(request: pytest.FixtureRequest, django_db_blocker: Any) -> Iterator[str]:
    """A fresh clone of template1 named after the test module, dropped after the test."""
    server = configured_servers()[0]
    name = f"{settings.SHADOW_DATABASE_PREFIX}dr_{request.module.__name__.rsplit('.', 1)[-1].removeprefix('test_')}"
    with django_db_blocker.unblock():
        provision.clone_create(server, template="template1", name=name)
        try:
            yield name
        finally:
            provision.clone_drop(server, name)
