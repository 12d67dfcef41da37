"""A server's calibration is measured once and reused by the templates built after it, for a
while: it times the server on scratch tables of its own, not the template."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.conf import settings

from changeapi.caches import BoundedCache
from changeapi.dryrun import run
from changeapi.dryrun.profile import ProductionProfile, TableFigures
from changeapi.dryrun.template_facts import facts_read
from changeapi.shadow.servers import ShadowServer
from tests.engine.analysis.conftest import plan_of, shop_baseline


@pytest.fixture
def calibrations(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The seed caps of the calibrations measured during the test, none reused from before it."""
    measured: list[int] = []
    real = run.calibrate

    def counted(conn: Any, *, seed_max_rows: int) -> Any:
        measured.append(seed_max_rows)
        return real(conn, seed_max_rows=seed_max_rows)

    monkeypatch.setattr(run, "calibrate", counted)
    monkeypatch.setattr(run, "_calibrations", BoundedCache(16))
    return measured


@pytest.fixture
def build(shadow_server: ShadowServer, templates_made: set[str], django_db_blocker: Any) -> Callable[[str, int], Any]:
    """build(suffix, orders) -> the facts of a new seeded template of the shop baseline."""

    def make(suffix: str, orders: int) -> Any:
        name = f"{settings.SHADOW_DATABASE_PREFIX}tpl_calreuse_{suffix}"
        profile = ProductionProfile(
            {"shop_order": TableFigures(orders, orders * 160), "shop_customer": TableFigures(100, 16_000)},
            seed_max_rows=2_000,
        )
        with django_db_blocker.unblock():
            run.template_build(server=shadow_server, name=name, baseline=plan_of(shop_baseline()), profile=profile)
            templates_made.add(name)
            return facts_read(shadow_server, name)

    return make


def test_a_template_built_after_another_on_the_same_server_reuses_its_calibration(calibrations, build):
    first = build("a", 1_000)
    second = build("b", 2_000)

    assert calibrations == [2_000]
    assert second.calibration == first.calibration
    assert second.seeded["shop_order"]["rows"] == 2_000


def test_a_calibration_older_than_the_reuse_window_is_measured_again(calibrations, build, monkeypatch):
    monkeypatch.setattr(run, "CALIBRATION_REUSE_SECONDS", 0.0)

    build("c", 1_000)
    build("d", 2_000)

    assert calibrations == [2_000, 2_000]
