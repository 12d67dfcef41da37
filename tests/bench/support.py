"""Shared pieces of the benchmarks: Django set-up, a throwaway service database, generated
migration histories, the obvious `migrate` replay, and printing figures.

Every benchmark is one command (`.venv/bin/python -m tests.bench.<name>`) that creates what it
needs under the configured DATABASE_URL / SHADOW_DATABASE_PREFIX and drops it when it ends.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


def django_setup(*, eager: bool = True) -> None:
    """Configure Django for a benchmark; `eager` runs Celery tasks in-process (no broker)."""
    if eager:
        os.environ.pop("CELERY_BROKER_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("DJANGO_LOG_LEVEL", "WARNING")
    # Benchmarks submit more than a person would: the rate limits are not what is measured.
    os.environ.setdefault("SCHEMAGATE_RATE_LIMIT", "100000/min")
    os.environ.setdefault("SCHEMAGATE_SUBMIT_RATE_LIMIT", "100000/min")
    import django

    django.setup()
    # Register the tasks now: Celery's Django fix-up runs the system checks the first time it
    # imports them, and the histories loaded later register checks of apps not installed here.
    from config.celery import app

    app.loader.import_default_modules()


@contextmanager
def service_database(suffix: str) -> Iterator[str]:
    """A fresh, migrated database for the service's own data (test_<NAME>_<suffix>), dropped afterwards."""
    from django.db import connection

    original = connection.settings_dict["NAME"]
    connection.settings_dict["TEST"]["NAME"] = f"test_{original}_{suffix}"
    name = connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    try:
        yield name
    finally:
        connection.close()
        connection.creation.destroy_test_db(original, verbosity=0)


def drop_shadow_databases() -> list[str]:
    """Drop every database of this run's prefix (templates and clones) on every shadow server."""
    from django.conf import settings

    from changeapi.shadow.provision import databases_with_prefix, drop_database
    from changeapi.shadow.servers import configured_servers

    dropped = []
    for server in configured_servers():
        names = databases_with_prefix(server, settings.SHADOW_DATABASE_PREFIX)
        with server.admin_connect() as conn:
            for name in names:
                drop_database(conn, name)
        dropped.extend(names)
    return dropped


def admin_url() -> dict[str, Any]:
    """Connection settings of the service database server, for `createdb`-like work."""
    from django.db import connection

    cfg = connection.settings_dict
    return {"host": cfg["HOST"] or "127.0.0.1", "port": int(cfg["PORT"] or 5432), "user": cfg["USER"] or "postgres"}


def database_url(name: str) -> str:
    cfg = admin_url()
    return f"postgres://{cfg['user']}@{cfg['host']}:{cfg['port']}/{name}"


# --- generated migration histories --------------------------------------------------------


@dataclass
class MigrationText:
    app_label: str
    name: str
    content: str

    def as_upload(self) -> dict[str, str]:
        return {"path": f"{self.app_label}/migrations/{self.name}.py", "content": self.content}


@dataclass
class History:
    """A migration history as files, and the apps `migrate` needs installed to replay it."""

    files: list[MigrationText]
    installed_apps: list[str]
    generated_apps: list[str]
    middleware: list[str] = field(default_factory=list)
    intake_settings: dict[str, Any] = field(default_factory=dict)
    extra_settings: str = ""


def _write(app_label: str, name: str, operations: list[Any], dependencies: list[Any], initial: bool = False) -> MigrationText:
    from django.db import migrations
    from django.db.migrations.writer import MigrationWriter

    migration = migrations.Migration(name, app_label)
    migration.operations = operations
    migration.dependencies = dependencies
    migration.initial = initial
    return MigrationText(app_label, name, MigrationWriter(migration, include_header=False).as_string())


def _entity_fields(index: int, parent: str | None, owner: str | None) -> list[tuple[str, Any]]:
    from django.db import models

    fields: list[tuple[str, Any]] = [
        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
        ("code", models.CharField(max_length=32, unique=True)),
        ("name", models.CharField(max_length=120, db_index=True)),
        ("status", models.CharField(max_length=16, default="new")),
        ("amount", models.DecimalField(max_digits=12, decimal_places=2, default=0)),
        ("created_at", models.DateTimeField(auto_now_add=True)),
    ]
    if parent:
        fields.append(("parent", models.ForeignKey(null=True, on_delete=models.deletion.SET_NULL, to=parent)))
    if owner:
        fields.append(("owner", models.ForeignKey(on_delete=models.deletion.PROTECT, related_name="+", to=owner)))
    return fields


def synthetic_baseline(*, models_count: int = 200, apps: int = 10) -> History:
    """`models_count` models over `apps` apps, each with foreign keys and indexes.

    Per app: 0001_initial creates its models (a unique code, an indexed name, a foreign key to
    the previous model of the app and one to the first app's first model), 0002 adds a
    composite index to every model, as a team's history would after a first tuning pass.
    """
    from django.db import models
    from django.db.migrations import operations as ops

    per_app = models_count // apps
    files: list[MigrationText] = []
    labels = [f"app{a:02d}" for a in range(apps)]
    for a, label in enumerate(labels):
        creates, indexes = [], []
        for i in range(per_app):
            number = a * per_app + i
            parent = f"{label}.entity{number - 1:03d}" if i else None
            owner = "app00.entity000" if a else None
            creates.append(ops.CreateModel(name=f"Entity{number:03d}", fields=_entity_fields(number, parent, owner)))
            indexes.append(
                ops.AddIndex(
                    model_name=f"entity{number:03d}",
                    index=models.Index(fields=["status", "created_at"], name=f"e{number:03d}_status_created"),
                )
            )
        dependencies = [("app00", "0001_initial")] if a else []
        files.append(_write(label, "0001_initial", creates, dependencies, initial=True))
        files.append(_write(label, "0002_indexes", indexes, [(label, "0001_initial")]))
    return History(files=files, installed_apps=labels, generated_apps=labels)


def synthetic_change_documents(app_label: str = "app03", model: int = 65, new_model: str = "Shipment") -> list[dict[str, Any]]:
    """A 5-operation change on the synthetic baseline, in the operations (JSON) form.

    It touches models `model`, `model + 1` and `model + 2` of `app_label`: a new nullable
    column, a composite index, a wider varchar, a new table (`new_model`) with a foreign key,
    and a column with a default.
    """
    this, after, last = (f"entity{n:03d}" for n in (model, model + 1, model + 2))
    return [
        {
            "app_label": app_label,
            "operations": [
                {"op": "AddField", "model_name": this, "name": "note", "field": {"type": "TextField", "null": True}},
                {
                    "op": "AddIndex",
                    "model_name": this,
                    "index": {"name": f"e{model:03d}_name_amount", "fields": ["name", "amount"]},
                },
                {
                    "op": "AlterField",
                    "model_name": after,
                    "name": "name",
                    "field": {"type": "CharField", "max_length": 200, "db_index": True},
                },
                {
                    "op": "CreateModel",
                    "name": new_model,
                    "fields": [
                        {"name": "id", "field": {"type": "BigAutoField", "primary_key": True}},
                        {"name": "tracking", "field": {"type": "CharField", "max_length": 64, "db_index": True}},
                        {
                            "name": "entity",
                            "field": {"type": "ForeignKey", "to": f"{app_label}.Entity{model:03d}", "on_delete": "CASCADE"},
                        },
                    ],
                },
                {"op": "AddField", "model_name": last, "name": "priority", "field": {"type": "IntegerField", "default": 0}},
            ],
        }
    ]


def synthetic_wide_change_documents(groups: int = 20, *, models_count: int = 200, apps: int = 10) -> list[dict[str, Any]]:
    """A change of `groups` x 5 operations on the synthetic baseline: the 5-operation change on
    models 0-2, 3-5, ... of apps 1, 2, ..., one migration per group, no model touched twice."""
    per_app = models_count // apps
    per_app_groups = per_app // 3
    documents = []
    for group in range(groups):
        app, slot = 1 + group // per_app_groups, group % per_app_groups
        if app >= apps:
            raise ValueError(f"{groups} groups do not fit in {apps - 1} apps of {per_app} models")
        model = app * per_app + 3 * slot
        documents += synthetic_change_documents(f"app{app:02d}", model, new_model=f"Shipment{model:03d}")
    return documents


def synthetic_change_file(app_label: str, previous: str, model: int) -> MigrationText:
    """The same 5 operations as a migration file, for the `migrate` replay."""
    from django.db import models
    from django.db.migrations import operations as ops

    return _write(
        app_label,
        "9999_change",
        [
            ops.AddField(f"entity{model:03d}", "note", models.TextField(null=True)),
            ops.AddIndex(f"entity{model:03d}", models.Index(fields=["name", "amount"], name=f"e{model:03d}_name_amount")),
            ops.AlterField(f"entity{model + 1:03d}", "name", models.CharField(max_length=200, db_index=True)),
            ops.CreateModel(
                "Shipment",
                [
                    ("id", models.BigAutoField(primary_key=True)),
                    ("tracking", models.CharField(max_length=64, db_index=True)),
                    ("entity", models.ForeignKey(on_delete=models.deletion.CASCADE, to=f"{app_label}.entity{model:03d}")),
                ],
            ),
            ops.AddField(f"entity{model + 2:03d}", "priority", models.IntegerField(default=0)),
        ],
        [(app_label, previous)],
    )


def _installed_history_files() -> list[MigrationText]:
    """The migration files of django.contrib, celery-beat, oauth-toolkit, allauth and taggit, as text."""
    from django.db.migrations.loader import MigrationLoader
    from django.test.utils import override_settings

    from tests.engine.intake.intake_support import INSTALLED_HISTORY_APPS, INSTALLED_HISTORY_MIDDLEWARE

    with override_settings(MIDDLEWARE=INSTALLED_HISTORY_MIDDLEWARE, SITE_ID=1):
        with override_settings(INSTALLED_APPS=INSTALLED_HISTORY_APPS):
            loader = MigrationLoader(None, ignore_no_migrations=True)
            files = []
            for (app_label, name), migration in sorted(loader.disk_migrations.items()):
                path = Path(sys.modules[migration.__module__].__file__ or "")
                files.append(MigrationText(app_label, name, path.read_text(encoding="utf-8")))
    return files


def installed_intake_settings() -> dict[str, Any]:
    """The project intake settings a team using these packages would store (see intake_support)."""
    return {
        "field_map": {
            "timezone_field.fields.TimeZoneField": {"base": "django.db.models.CharField", "kwargs": {"max_length": 63}},
            "oauth2_provider.models.ClientSecretField": {"base": "django.db.models.CharField"},
            "oauth2_provider.models.TokenChecksumField": {"base": "django.db.models.CharField"},
            "oauth2_provider.models.ResourceJSONField": {"base": "django.db.models.JSONField"},
        },
        "references": [
            "oauth2_provider.generators.*",
            "django_celery_beat.validators.*",
            "django_celery_beat.models.crontab_schedule_celery_timezone",
            "allauth.idp.oidc.models.default_client_id",
            "allauth.idp.oidc.models.default_client_secret",
        ],
        "setting_values": {
            "allauth.app_settings.SITES_ENABLED": True,
            "oauth2_provider.settings.oauth2_settings.APPLICATION_MODEL": "oauth2_provider.Application",
            "oauth2_provider.settings.oauth2_settings.ACCESS_TOKEN_MODEL": "oauth2_provider.AccessToken",
            "oauth2_provider.settings.oauth2_settings.REFRESH_TOKEN_MODEL": "oauth2_provider.RefreshToken",
            "oauth2_provider.settings.oauth2_settings.ID_TOKEN_MODEL": "oauth2_provider.IDToken",
            "oauth2_provider.settings.oauth2_settings.GRANT_MODEL": "oauth2_provider.Grant",
        },
    }


def _ledger_migrations(app_label: str, count: int, first: int) -> list[MigrationText]:
    """A long-lived app's history: models created, fields added and altered, indexes, links to users.

    `first` numbers the models so two such apps do not clash on index names.
    """
    from django.conf import settings
    from django.db import models
    from django.db.migrations import operations as ops

    files: list[MigrationText] = []
    user_dependency = ("auth", "0012_alter_user_first_name_max_length")
    modelnames: list[str] = []
    previous: str | None = None
    for n in range(1, count + 1):
        name = f"{n:04d}_step"
        step = n % 6
        if n == 1 or step == 1 or not modelnames:
            number = first + len(modelnames)
            model = f"entity{number:03d}"
            parent = f"{app_label}.{modelnames[-1]}" if modelnames else None
            operation: Any = ops.CreateModel(
                name=f"Entity{number:03d}", fields=_entity_fields(number, parent, settings.AUTH_USER_MODEL)
            )
            modelnames.append(model)
        elif step == 2:
            operation = ops.AddField(modelnames[-1], f"extra{n}", models.CharField(max_length=40, null=True, blank=True))
        elif step == 3:
            operation = ops.AddIndex(
                modelnames[-1], models.Index(fields=["name", "status"], name=f"{app_label[:3]}{n}_name_status")
            )
        elif step == 4:
            operation = ops.AlterField(modelnames[-1], f"extra{n - 2}", models.CharField(max_length=80, null=True, blank=True))
        elif step == 5:
            operation = ops.AddField(modelnames[-1], f"flag{n}", models.BooleanField(default=False))
        else:
            operation = ops.AlterField(modelnames[-1], "amount", models.DecimalField(max_digits=14, decimal_places=2, default=0))
        dependencies: list[Any] = [(app_label, previous)] if previous else [user_dependency]
        files.append(_write(app_label, name, [operation], dependencies, initial=n == 1))
        previous = name
    return files


def real_history(*, minimum: int = 400) -> History:
    """The installed packages' histories (94 migrations of 15 apps) plus two generated apps
    (`ledger`, `billing`) whose long histories bring the total to at least `minimum`."""
    from tests.engine.intake.intake_support import INSTALLED_HISTORY_APPS, INSTALLED_HISTORY_MIDDLEWARE

    files = _installed_history_files()
    missing = max(0, minimum - len(files))
    ledger = _ledger_migrations("ledger", (missing + 1) // 2, 300)
    billing = _ledger_migrations("billing", missing // 2, 600)
    return History(
        files=[*files, *ledger, *billing],
        installed_apps=[*INSTALLED_HISTORY_APPS, "ledger", "billing"],
        generated_apps=["ledger", "billing"],
        middleware=[
            "django.contrib.sessions.middleware.SessionMiddleware",
            "django.contrib.auth.middleware.AuthenticationMiddleware",
            "django.contrib.messages.middleware.MessageMiddleware",
            *INSTALLED_HISTORY_MIDDLEWARE,
        ],
        intake_settings=installed_intake_settings(),
        # What the admin and allauth check for at start-up; `migrate` runs the checks first.
        extra_settings=(
            "SITE_ID = 1\n"
            "TEMPLATES = [{'BACKEND': 'django.template.backends.django.DjangoTemplates', 'APP_DIRS': True, 'OPTIONS': "
            "{'context_processors': ['django.template.context_processors.request', "
            "'django.contrib.auth.context_processors.auth', 'django.contrib.messages.context_processors.messages']}}]\n"
        ),
    )


def history_change_documents() -> list[dict[str, Any]]:
    """The same 5-operation change on the `ledger` app of the real history."""
    return synthetic_change_documents("ledger", 300)


# --- the obvious way: an empty database and Django's own `migrate` -------------------------


@contextmanager
def project_on_disk(history: History, extra: list[MigrationText] = ()) -> Iterator[Path]:  # type: ignore[assignment]
    """The generated apps as real Django apps (migration packages) and a settings module, in a temp dir.

    Installed packages' migrations stay where pip put them; only the generated apps are written.
    """
    root = Path(tempfile.mkdtemp(prefix="sgbench_"))
    try:
        for label in history.generated_apps:
            (root / label / "migrations").mkdir(parents=True)
            (root / label / "__init__.py").write_text("")
            (root / label / "migrations" / "__init__.py").write_text("")
        for item in [*history.files, *extra]:
            if item.app_label in history.generated_apps:
                (root / item.app_label / "migrations" / f"{item.name}.py").write_text(item.content)
        (root / "bench_settings.py").write_text(
            "import os\n"
            "import environ\n"
            "SECRET_KEY = 'benchmark-only'\n"
            "USE_TZ = True\n"
            "DEFAULT_AUTO_FIELD = 'django.db.models.BigAutoField'\n"
            f"INSTALLED_APPS = {history.installed_apps!r}\n"
            f"MIDDLEWARE = {history.middleware!r}\n"
            "DATABASES = {'default': environ.Env.db_url_config(os.environ['BENCH_DATABASE_URL'])}\n" + history.extra_settings
        )
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


@dataclass
class ReplayTiming:
    create_ms: float
    migrate_ms: float
    drop_ms: float

    @property
    def total_ms(self) -> float:
        return self.create_ms + self.migrate_ms


def migrate_replay(root: Path, dbname: str) -> ReplayTiming:
    """CREATE DATABASE, then `django-admin migrate` in a fresh process, then drop: timed."""
    import psycopg
    from psycopg import sql

    cfg = admin_url()
    with psycopg.connect(**cfg, dbname="postgres", autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname)))
        started = time.perf_counter()
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
        created = time.perf_counter()
        env = {**os.environ, "PYTHONPATH": f"{root}{os.pathsep}{REPO}", "BENCH_DATABASE_URL": database_url(dbname)}
        env.pop("DJANGO_SETTINGS_MODULE", None)
        result = subprocess.run(
            [sys.executable, "-m", "django", "migrate", "--settings=bench_settings", "--no-input", "-v", "0"],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        migrated = time.perf_counter()
        if result.returncode != 0:
            raise RuntimeError(f"migrate failed:\n{result.stderr[-3000:]}")
        conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(dbname)))
        dropped = time.perf_counter()
    return ReplayTiming(
        create_ms=(created - started) * 1000, migrate_ms=(migrated - created) * 1000, drop_ms=(dropped - migrated) * 1000
    )


# --- figures ---------------------------------------------------------------------------------


def timed(function: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    value = function()
    return (time.perf_counter() - started) * 1000, value


def median(values: list[float]) -> float:
    return statistics.median(values)


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem_kb = next(
            int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")
        )
    except (OSError, StopIteration):
        mem_kb = 0
    return f"{os.cpu_count()} CPU ({cpu}), {mem_kb / 1024 / 1024:.0f} GiB RAM, Python {sys.version.split()[0]}"


def resident_bytes(pid: int) -> int:
    """A process's resident set size now, from /proc (no dependency for one number)."""
    pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE")


def heading(title: str) -> None:
    print(f"\n== {title} ==")
    print(f"machine: {machine()}")


def figure(label: str, value: float, unit: str = "ms") -> None:
    print(f"  {label:<58} {value:>10.1f} {unit}")


def ratio(label: str, value: float, target: str) -> None:
    print(f"  {label:<58} {value:>10.1f} x   (target {target})")


# --- Celery workers with a Redis broker --------------------------------------------------------


def use_broker(url: str | None) -> None:
    """Send this process's tasks to `url` (None: run them in-process, eagerly)."""
    from config.celery import app

    app.conf.task_always_eager = url is None
    app.conf.broker_url = url or "memory://"
    # Producer pools are bound to the broker they were made for.
    app._pool = None
    app.amqp._producer_pool = None


def start_worker(name: str, *, dbname: str, broker: str, extra_env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """A real `celery worker` process (solo pool: one dry-run at a time) on the service database."""
    from django.conf import settings

    env = {
        **os.environ,
        "DATABASE_URL": database_url(dbname),
        "CELERY_BROKER_URL": broker,
        "SHADOW_DATABASE_PREFIX": settings.SHADOW_DATABASE_PREFIX,
        "DJANGO_LOG_LEVEL": "WARNING",
        **(extra_env or {}),
    }
    command = [sys.executable, "-m", "celery", "-A", "config", "worker", "-P", "solo", "-n", f"{name}@%h"]
    command += ["--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "WARNING"]
    # The start-up banner goes to stdout; warnings and errors still reach stderr.
    return subprocess.Popen(command, cwd=REPO, env=env, start_new_session=True, stdout=subprocess.DEVNULL)


def stop_worker(worker: subprocess.Popen[bytes]) -> None:
    import signal

    if worker.poll() is None:
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()


def wait_for(predicate: Callable[[], bool], timeout: float, what: str, interval: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise TimeoutError(f"timed out waiting for {what}")
