"""A team's Django project made from a release bundle, as the team would lay it out: app `shop`
with the baseline's history, the bundle's migration files, its backfill commands and tasks, the
helper beside the settings; run in subprocesses against a copy of a baseline database."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from django.db.migrations.writer import MigrationWriter

from approvals.models import ReleaseBundle
from changeapi.selectors import baseline_plan
from tests.approvals.bundling import admin_connect, shadow_server


def project_from_bundle(root: Path, files: dict[str, bytes], bundle: ReleaseBundle, dbname: str) -> dict[str, str]:
    """The project on database `dbname`, and the environment that runs it. The bundle's Celery
    tasks go into the app (`shop/<task>.py`) and a Celery app `team_celery` includes them."""
    app = root / "shop"
    for package in (app, app / "migrations", app / "management", app / "management" / "commands"):
        package.mkdir(parents=True, exist_ok=True)
        (package / "__init__.py").write_text("")
    (app / "models.py").write_text("")
    for migration in baseline_plan(bundle.baseline).migrations:
        text = MigrationWriter(migration.to_django(), include_header=False).as_string()
        (app / "migrations" / f"{migration.name}.py").write_text(text)
    tasks = []
    for path, data in files.items():
        if path.startswith("migrations/shop/"):
            (app / "migrations" / path.rsplit("/", 1)[1]).write_bytes(data)
        elif path.startswith("management/commands/"):
            (app / "management" / "commands" / path.rsplit("/", 1)[1]).write_bytes(data)
        elif path.startswith("tasks/"):
            (app / path.rsplit("/", 1)[1]).write_bytes(data)
            tasks.append(f"shop.{path.rsplit('/', 1)[1].removesuffix('.py')}")
    (root / "schemagate_backfill.py").write_bytes(files["schemagate_backfill.py"])
    conninfo = shadow_server().admin_conninfo(dbname)
    database = {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": dbname,
        "USER": conninfo["user"] or "",
        "PASSWORD": conninfo["password"] or "",
        "HOST": conninfo["host"] or "",
        "PORT": str(conninfo["port"] or ""),
    }
    (root / "team_settings.py").write_text(
        f"SECRET_KEY = 'x'\nUSE_TZ = True\nINSTALLED_APPS = ['shop']\nDATABASES = {{'default': {database!r}}}\n"
    )
    broker = os.environ.get("TEST_CELERY_BROKER_URL", "redis://127.0.0.1:6379/15")
    (root / "team_celery.py").write_text(
        f"from celery import Celery\n\napp = Celery('team', broker={broker!r}, include={tasks!r})\n"
        "app.conf.worker_prefetch_multiplier = 1\n"
    )
    return {"PATH": os.environ["PATH"], "PYTHONPATH": str(root), "DJANGO_SETTINGS_MODULE": "team_settings"}


def manage(env: dict[str, str], root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "django", *args], env=env, cwd=root, capture_output=True, text=True, timeout=300, check=False
    )


def counts(dbname: str, column: str = "cents") -> dict[Any, int]:
    with admin_connect(dbname) as conn:
        return dict(conn.execute(f"SELECT {column}, count(*) FROM shop_order GROUP BY {column}").fetchall())  # type: ignore[arg-type]


def checkpoint(dbname: str) -> tuple[Any, ...]:
    """The step's checkpoint: step, batches, rows done, finished, parity remaining."""
    with admin_connect(dbname) as conn:
        row = conn.execute(
            "SELECT step, batches, rows_done, finished, parity_remaining, work_ms FROM schemagate_backfill_checkpoint"
        ).fetchone()
        assert row is not None
        assert row[5] >= 0 and (row[5] > 0) == (row[1] > 0)
        return tuple(row[:5])


def work_ms(dbname: str) -> int:
    with admin_connect(dbname) as conn:
        row = conn.execute("SELECT work_ms FROM schemagate_backfill_checkpoint").fetchone()
        assert row is not None
        return int(row[0])
