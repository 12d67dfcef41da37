"""What a SQLite clone costs: a backup-API copy of the seeded template against taking a warm
spare (a rename), at three sizes of the shop baseline. Prints figures; not pass/fail.

    .venv/bin/pytest -p no:xdist -q -s tests/bench/bench_sqlite_clone.py
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from changeapi.dryrun.sqlite_session import sqlite_session, template_build
from changeapi.shadow.engine_servers import sqlite_server
from changeapi.shadow.sqlite_files import database_copy, database_drop, shadow_path, spares_ensure, spares_ready
from tests.engine.sqlite.conftest import plan_of, shop_baseline

SIZES = [(10_000, 1_000), (200_000, 20_000), (1_000_000, 100_000)]


@pytest.mark.parametrize(("orders", "customers"), SIZES)
def test_sqlite_clone_cost(orders: int, customers: int, tmp_path: Path, django_db_blocker: Any) -> None:
    server = sqlite_server(f"sqlite://{tmp_path}")
    prefix = settings.SHADOW_DATABASE_PREFIX
    with django_db_blocker.unblock():
        template = template_build(
            server=server,
            name=f"{prefix}tpl_bench",
            baseline=plan_of(shop_baseline()),
            rows={"shop_order": orders, "shop_customer": customers},
        )
        copies = []
        for i in range(3):
            cost = database_copy(server, source=template.name, name=f"{prefix}dr_bench_{i}")
            copies.append(cost.copy_ms)
            database_drop(server, f"{prefix}dr_bench_{i}")
        spares = []
        for i in range(3):
            spares_ensure(server, template.name, count=1)
            started = time.perf_counter()
            with sqlite_session(
                server, template=template.name, name=f"{prefix}dr_spare_{i}", spares=spares_ready(server, template.name)
            ):
                spares.append((time.perf_counter() - started) * 1000)
    size = shadow_path(server, template.name).stat().st_size
    print(
        f"\n{orders + customers:,} rows ({size / 2**20:,.1f} MiB): template built in {template.build_seconds:.2f} s; "
        f"copy {statistics.median(copies):,.1f} ms (median of 3); warm spare taken and connected "
        f"{statistics.median(spares):,.1f} ms"
    )
