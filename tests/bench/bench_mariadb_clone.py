"""Benchmark: what a MariaDB clone costs, against taking a warm spare.

The shop baseline's template is seeded at each size (orders, and a tenth as many customers);
the benchmark then copies it table by table (CREATE TABLE … LIKE, INSERT … SELECT, foreign
keys), prints each phase's time, and the time a job takes to claim a ready spare and connect
to it instead. It prints; it does not fail on figures (a shared machine times noisily).

Run: DATABASE_URL=... SHADOW_DATABASE_PREFIX=... .venv/bin/pytest tests/bench/bench_mariadb_clone.py -s -p no:xdist
"""

from __future__ import annotations

import os
import time
import uuid
from typing import Any

from django.conf import settings

from changeapi.dryrun.mysql_session import mysql_session, template_build
from changeapi.shadow.mysql_databases import database_copy, database_drop, spares_ensure, spares_ready
from tests.engine.mariadb.conftest import plan_of, shop_baseline
from tests.support.mariadb import MARIADB

SIZES = tuple(int(n) for n in os.environ.get("BENCH_ROWS", "10000,200000").split(","))


def test_bench_mariadb_clone_cost(django_db_blocker: Any) -> None:
    with django_db_blocker.unblock():
        for orders in SIZES:
            template = f"{settings.SHADOW_DATABASE_PREFIX}t_bench_{uuid.uuid4().hex[:8]}"
            built = template_build(
                server=MARIADB,
                name=template,
                baseline=plan_of(shop_baseline()),
                rows={"shop_customer": max(orders // 10, 1), "shop_order": orders},
            )
            try:
                clone = f"{template}_c"
                cost = database_copy(MARIADB, source=template, name=clone)
                database_drop(MARIADB, clone)
                spares_ensure(MARIADB, template, count=1)
                started = time.perf_counter()
                with mysql_session(MARIADB, template=template, name="unused", spares=spares_ready(MARIADB, template)) as s:
                    claimed_ms = (time.perf_counter() - started) * 1000
                    assert s.spare
                print(
                    f"\n{orders:>8} orders: template built in {built.build_seconds:.2f} s; "
                    f"copy {cost.total_ms:.0f} ms (create {cost.create_ms:.0f}, rows {cost.copy_ms:.0f}, "
                    f"foreign keys {cost.foreign_keys_ms:.0f}) for {cost.rows} rows; "
                    f"a warm spare claimed and connected in {claimed_ms:.0f} ms"
                )
            finally:
                database_drop(MARIADB, template)
                for spare in spares_ready(MARIADB, template):
                    database_drop(MARIADB, spare)
