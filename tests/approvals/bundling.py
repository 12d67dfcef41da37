"""Helpers of the bundle tests: approved change requests over HTTP, archives, and shadow copies
of a baseline database to apply a bundle's SQL or migration files to and read catalogs from."""

from __future__ import annotations

import io
import tarfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import sqlparse
from django.conf import settings

from changeapi.shadow import provision
from changeapi.shadow.servers import ShadowServer, configured_servers
from tests.factories import UserFactory

ADD_STATUS_CONCURRENTLY: list[dict[str, Any]] = [
    {
        "app_label": "shop",
        "atomic": False,
        "operations": [
            {
                "op": "AddField",
                "model_name": "order",
                "name": "status",
                "field": {"type": "CharField", "max_length": 16, "default": "new"},
            },
            {"op": "AlterField", "model_name": "order", "name": "total", "field": {"type": "BigIntegerField"}},
            {"op": "AddIndexConcurrently", "model_name": "order", "index": {"name": "order_status_idx", "fields": ["status"]}},
        ],
    }
]

ADD_NOTE_AGAIN: list[dict[str, Any]] = [
    {
        "app_label": "shop",
        "operations": [{"op": "AddField", "model_name": "order", "name": "note", "field": {"type": "TextField", "null": True}}],
    }
]

ADD_INVOICE_APP: list[dict[str, Any]] = [
    {
        "app_label": "billing",
        "operations": [
            {
                "op": "CreateModel",
                "name": "Invoice",
                "fields": [
                    {"name": "id", "field": {"type": "BigAutoField", "primary_key": True}},
                    {"name": "order", "field": {"type": "ForeignKey", "to": "shop.Order", "on_delete": "PROTECT"}},
                ],
            }
        ],
    }
]

FLAG_WITH_DATA_STEP_FILE: list[dict[str, Any]] = [
    {
        "path": "shop/migrations/0002_order_flag.py",
        "content": """from django.db import migrations, models


def flag_big_orders(apps, schema_editor):
    Order = apps.get_model("shop", "Order")
    Order.objects.filter(total__gte=1000).update(flag=True)


class Migration(migrations.Migration):
    dependencies = [("shop", "0001_initial")]

    operations = [
        migrations.AddField("order", "flag", models.BooleanField(default=False)),
        migrations.RunPython(flag_big_orders, migrations.RunPython.noop),
    ]
""",
    }
]

DROP_CUSTOMER_EMAIL: list[dict[str, Any]] = [
    {"app_label": "shop", "operations": [{"op": "RemoveField", "model_name": "customer", "name": "email"}]}
]

IRREVERSIBLE_SQL: list[dict[str, Any]] = [
    {
        "app_label": "shop",
        "operations": [{"op": "RunSQL", "sql": "CREATE TABLE shop_legacy_copy (id bigint)"}],
    }
]


class Release:
    """A project with a reviewer; submits, approves and bundles change requests over HTTP."""

    def __init__(self, project: dict[str, Any], client_for: Any) -> None:
        self.api = project["api"]
        reviewer = UserFactory(username="reviewer")
        response = self.api.post(
            "/api/v1/projects/shop/members/", {"username": "reviewer", "permissions": ["review_change"]}, format="json"
        )
        assert response.status_code == 200, response.content
        self.reviewer_api = client_for(reviewer)

    def submit(self, migrations: list[dict[str, Any]], title: str = "A change", form: str = "operations") -> dict[str, Any]:
        response = self.api.post("/api/v1/change-requests/", {"project": "shop", "title": title, form: migrations}, format="json")
        assert response.status_code == 202, response.content
        return self.api.get(f"/api/v1/change-requests/{response.json()['id']}/").json()

    def approve(self, change_request: dict[str, Any]) -> None:
        response = self.reviewer_api.post(
            f"/api/v1/change-requests/{change_request['id']}/reviews/",
            {"decision": "approve", "revision": change_request["latest_revision"]["id"]},
            format="json",
        )
        assert response.status_code == 201, response.content

    def approved(self, migrations: list[dict[str, Any]], title: str = "A change", form: str = "operations") -> dict[str, Any]:
        change_request = self.submit(migrations, title, form)
        self.approve(change_request)
        return change_request

    def bundle(self, *change_requests: dict[str, Any]) -> Any:
        return self.api.post(
            "/api/v1/bundles/", {"project": "shop", "change_requests": [cr["id"] for cr in change_requests]}, format="json"
        )

    def sealed(self, *change_requests: dict[str, Any]) -> tuple[dict[str, Any], bytes]:
        response = self.bundle(*change_requests)
        assert response.status_code == 201, response.content
        archive = self.api.get(response.json()["download_url"])
        assert archive.status_code == 200
        return response.json(), archive.content


def archive_files(archive: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        return {member.name: tar.extractfile(member).read() for member in tar.getmembers()}  # type: ignore[union-attr]


def repack(files: dict[str, bytes]) -> bytes:
    """An archive with these files, packed plainly (as someone tampering would)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        for path, data in files.items():
            info = tarfile.TarInfo(path)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return raw.getvalue()


def shadow_server() -> ShadowServer:
    return configured_servers()[0]


@contextmanager
def baseline_copy(template: str) -> Iterator[str]:
    """A fresh copy of a baseline's template database, dropped afterwards."""
    server = shadow_server()
    name = f"{settings.SHADOW_DATABASE_PREFIX}test_{uuid.uuid4().hex[:12]}"
    provision.clone_create(server, template=template, name=name)
    try:
        yield name
    finally:
        provision.clone_drop(server, name)


def admin_connect(dbname: str) -> psycopg.Connection:
    return psycopg.connect(**{**shadow_server().admin_conninfo(), "dbname": dbname}, autocommit=True)  # type: ignore[arg-type]


def run_sql_files(dbname: str, scripts: list[bytes]) -> None:
    """As `psql -v ON_ERROR_STOP=1 -f` would: each statement sent on its own, in order."""
    with admin_connect(dbname) as conn:
        for script in scripts:
            for statement in sqlparse.split(script.decode()):
                if sqlparse.format(statement, strip_comments=True).strip():
                    conn.execute(statement.encode())


def catalog(dbname: str) -> dict[str, list[tuple[Any, ...]]]:
    """What the schema is: columns, indexes and constraints of the public schema."""
    with admin_connect(dbname) as conn:
        return {
            "columns": conn.execute(
                "SELECT table_name, ordinal_position, column_name, data_type, is_nullable, column_default,"
                " character_maximum_length FROM information_schema.columns WHERE table_schema = 'public' ORDER BY 1, 2"
            ).fetchall(),
            "indexes": conn.execute(
                "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1, 2"
            ).fetchall(),
            "constraints": conn.execute(
                "SELECT conrelid::regclass::text, conname, contype, pg_get_constraintdef(oid), convalidated"
                " FROM pg_constraint WHERE connamespace = 'public'::regnamespace ORDER BY 1, 2"
            ).fetchall(),
        }
