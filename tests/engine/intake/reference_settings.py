"""Test-only settings for a real `manage.py migrate` of installed apps, recording the SQL it runs.

Used by test_sql_equality.py (and test_sql_equality_mariadb.py) in a subprocess against a fresh,
empty PostgreSQL (or MariaDB) database: the apps, middleware, database and its backend come
from the environment (SQL_REFERENCE_APPS, SQL_REFERENCE_MIDDLEWARE, SQL_REFERENCE_DATABASE,
SQL_REFERENCE_ENGINE, default PostgreSQL's), SQL_REFERENCE_SETTINGS (a JSON object) adds
or overrides any other module-level setting the apps need (it is applied last, so it wins over
the defaults here), and the `sql_capture` app below records
every statement Django sends, with the migration being applied, whether the schema editor or a
RunPython function sent it and whether it ran inside a transaction, into SQL_REFERENCE_OUTPUT (JSON).
"""

from __future__ import annotations

import atexit
import functools
import json
import os
from typing import Any

from django.apps import AppConfig

SECRET_KEY = "sql-reference-only"
USE_TZ = True
TIME_ZONE = "UTC"
SITE_ID = 1
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
DATABASES = {
    "default": {
        "ENGINE": os.environ.get("SQL_REFERENCE_ENGINE", "django.db.backends.postgresql"),
        **json.loads(os.environ.get("SQL_REFERENCE_DATABASE", "{}")),
    }
}
INSTALLED_APPS = [
    *filter(None, os.environ.get("SQL_REFERENCE_APPS", "").split(",")),
    "tests.engine.intake.reference_settings.SqlCaptureConfig",
]
MIDDLEWARE = list(filter(None, os.environ.get("SQL_REFERENCE_MIDDLEWARE", "").split(",")))
globals().update(json.loads(os.environ.get("SQL_REFERENCE_SETTINGS", "{}")))


class SqlCaptureConfig(AppConfig):
    """Records what `migrate` executes: at the cursor, so it is what PostgreSQL received."""

    name = "tests.engine.intake"
    label = "sql_capture"

    def ready(self) -> None:
        from django.db import connections
        from django.db.backends.base.schema import BaseDatabaseSchemaEditor
        from django.db.migrations.executor import MigrationExecutor
        from django.db.migrations.operations.special import RunPython

        context: dict[str, Any] = {"migration": None, "schema_editor": 0, "data_step": 0}
        records: list[dict[str, Any]] = []

        def inside(key: str, method: Any) -> Any:
            @functools.wraps(method)
            def wrapped(*args: Any, **kwargs: Any) -> Any:
                context[key] += 1
                try:
                    return method(*args, **kwargs)
                finally:
                    context[key] -= 1

            return wrapped

        apply_migration = MigrationExecutor.apply_migration

        @functools.wraps(apply_migration)
        def applying(executor: Any, state: Any, migration: Any, *args: Any, **kwargs: Any) -> Any:
            context["migration"] = f"{migration.app_label}.{migration.name}"
            records.append({"applied": context["migration"]})
            try:
                return apply_migration(executor, state, migration, *args, **kwargs)
            finally:
                context["migration"] = None

        MigrationExecutor.apply_migration = applying  # type: ignore[method-assign]
        BaseDatabaseSchemaEditor.execute = inside("schema_editor", BaseDatabaseSchemaEditor.execute)  # type: ignore[method-assign]
        RunPython.database_forwards = inside("data_step", RunPython.database_forwards)  # type: ignore[method-assign]

        def capture(execute: Any, sql: Any, params: Any, many: bool, call: dict[str, Any]) -> Any:
            connection = call["connection"]
            record = {
                "migration": context["migration"],
                "by_schema_editor": context["schema_editor"] > 0,
                "in_data_step": context["data_step"] > 0,
                "in_transaction": connection.in_atomic_block,
            }
            if connection.vendor != "postgresql":
                # MySQLdb interpolates parameters itself: the text it sent is known once it ran.
                result = execute(sql, params, many, call)
                text = connection.ops.last_executed_query(call["cursor"].cursor, sql, params) if params else str(sql)
                records.append({**record, "sql": text})
                return result
            text = str(sql)
            if params:
                try:
                    text = str(connection.ops.compose_sql(text, params))
                except Exception:  # noqa: BLE001 - unbound parameters still show the statement
                    text = f"{text} -- params: {params!r}"
            records.append({**record, "sql": text})
            return execute(sql, params, many, call)

        connections["default"].execute_wrappers.append(capture)

        def write() -> None:
            with open(os.environ["SQL_REFERENCE_OUTPUT"], "w", encoding="utf-8") as out:
                json.dump(records, out)

        if os.environ.get("SQL_REFERENCE_OUTPUT"):
            atexit.register(write)
