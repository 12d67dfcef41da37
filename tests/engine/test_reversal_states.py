"""The reversal reuses the states the forwards run rendered, and the baseline state is shared.

Both are speed-ups only: the backwards SQL must be what the reversal computes on its own, and
no dry-run may change the cached baseline state another dry-run starts from.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from django.conf import settings
from django.db import models
from django.db.migrations import operations as ops

from changeapi.dryrun.connection import shadow_connection
from changeapi.dryrun.engine import apply_plan_traced, baseline_state
from changeapi.dryrun.reversibility import reverse_plan
from changeapi.dryrun.run import template_build
from changeapi.shadow import provision
from changeapi.shadow.servers import ShadowServer, configured_servers
from tests.engine.analysis.conftest import plan_of, shop_baseline

BASE = plan_of(shop_baseline())
CHANGE = plan_of(
    [
        ops.AddField("order", "shipped", models.BooleanField(default=False)),
        ops.AlterField("order", "total", models.BigIntegerField()),
        ops.AddIndex("order", models.Index(fields=["total"], name="order_total_ix")),
    ],
    [ops.RemoveField("order", "note"), ops.AlterField("customer", "email", models.EmailField(max_length=300, unique=True))],
    start=2,
)


@pytest.fixture(scope="module")
def server() -> ShadowServer:
    return configured_servers()[0]


@pytest.fixture(autouse=True)
def _shadow_only(django_db_blocker: Any) -> Iterator[None]:
    """Lift the blocker for the shadow connections; the engine never touches the service's database."""
    with django_db_blocker.unblock():
        yield


@pytest.fixture(scope="module")
def template(server: ShadowServer, django_db_blocker: Any) -> Iterator[str]:
    name = f"{settings.SHADOW_DATABASE_PREFIX}tpl_reversal_states"
    with django_db_blocker.unblock():
        template_build(server=server, name=name, baseline=BASE)
    yield name
    with django_db_blocker.unblock():
        provision.template_drop(server, name)


def _backwards(server: ShadowServer, template: str, *, reuse: bool) -> list[dict]:
    clone = f"{settings.SHADOW_DATABASE_PREFIX}dr_reversal_{'reuse' if reuse else 'own'}"
    provision.clone_create(server, template=template, name=clone)
    try:
        with shadow_connection(server, clone) as connection:
            state = baseline_state(BASE)
            run = apply_plan_traced(connection, CHANGE, state)
            assert run.error is None, run.error
            return reverse_plan(connection, CHANGE, state, forwards_states=run.states if reuse else None)
    finally:
        provision.clone_drop(server, clone)


def test_reversal_from_the_forwards_states_gives_the_same_backwards_sql(server, template):
    reused = _backwards(server, template, reuse=True)
    own = _backwards(server, template, reuse=False)

    assert [replace(entry, backwards_ms=None) for entry in reused] == [replace(entry, backwards_ms=None) for entry in own]
    assert all(entry.reversible for entry in reused)
    assert any("DROP COLUMN" in sql and "shipped" in sql for sql in reused[0].backwards_sql)


def test_the_baseline_state_is_built_once_and_a_dry_run_leaves_it_unchanged_and_unrendered(server, template):
    state = baseline_state(BASE)
    fields_before = {key: list(model.fields) for key, model in state.models.items()}

    _backwards(server, template, reuse=True)

    assert baseline_state(BASE) is state
    assert {key: list(model.fields) for key, model in state.models.items()} == fields_before
    assert "apps" not in state.__dict__, "a dry-run renders only what each operation reads, never the whole baseline"
