"""PostgreSQL-only operations and fields (`django.contrib.postgres`) are refused at intake for a
MySQL/MariaDB or SQLite project, every use at once and each where it is, in every form; a
PostgreSQL project still accepts them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from rest_framework.test import APIClient

from changeapi.models import Baseline, ChangeRequest, Project
from tests.conftest import SHOP_BASELINE

pytestmark = pytest.mark.django_db(transaction=True)

OTHER_ENGINES = ["mysql", "sqlite"]

POSTGRESQL_OPERATIONS: list[dict[str, Any]] = [
    {
        "app_label": "shop",
        "atomic": False,
        "operations": [
            {
                "op": "CreateModel",
                "name": "Tag",
                "fields": [
                    {"name": "id", "field": {"type": "BigAutoField", "primary_key": True}},
                    {"name": "labels", "field": {"type": "ArrayField", "base_field": {"type": "CharField", "max_length": 20}}},
                ],
            },
            {"op": "AddIndexConcurrently", "model_name": "order", "index": {"name": "order_total_idx", "fields": ["total"]}},
        ],
    }
]

INITIAL = """\
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    operations = [
        migrations.CreateModel(
            name='Order',
            fields=[
                ('id', models.BigAutoField(primary_key=True, serialize=False)),
                ('total', models.IntegerField()),
            ],
        ),
    ]
"""

# Line 12 names ArrayField, line 19 AddIndexConcurrently, line 21 GinIndex.
ARRAY_AND_CONCURRENT_INDEX = """\
import django.contrib.postgres.indexes
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False
    dependencies = [('shop', '0001_initial')]
    operations = [
        migrations.AddField(
            'order', 'labels', ArrayField(models.CharField(max_length=20), default=list)
        ),
        migrations.AddIndex(
            'order', models.Index(fields=['total'], name='order_total_plain_idx')
        ),
    ]
    operations += [
        AddIndexConcurrently(
            'order',
            django.contrib.postgres.indexes.GinIndex(fields=['labels'], name='order_labels_gin'),
        ),
    ]
"""

# Line 7 names TrigramExtension.
EXTENSION = """\
from django.contrib.postgres.operations import TrigramExtension
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [('shop', '0002_labels')]
    operations = [TrigramExtension()]
"""

MODELS_WITH_HSTORE = """\
from django.contrib.postgres.fields import HStoreField
from django.db import models


class Customer(models.Model):
    email = models.EmailField(unique=True)


class Order(models.Model):
    total = models.IntegerField()
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE)
    attributes = HStoreField(null=True)
"""


def history(*extra: tuple[str, str]) -> list[dict[str, str]]:
    files = [("0001_initial", INITIAL), *extra]
    return [{"path": f"shop/migrations/{name}.py", "content": text} for name, text in files]


@pytest.fixture
def new_project(owner: Any, client_for: Callable[[Any], APIClient]) -> Callable[[str], APIClient]:
    def make(engine: str) -> APIClient:
        api = client_for(owner)
        project = {"slug": "shop", "name": "Shop", "engine": engine}
        assert api.post("/api/v1/projects/", project, format="json").status_code == 201
        return api

    return make


@pytest.fixture
def parsed_baseline(new_project: Callable[[str], APIClient]) -> Callable[[str], APIClient]:
    """A project of the engine whose baseline (Customer, Order) was read at intake.

    No MySQL or SQLite shadow can build its template yet, so the parsed baseline is made the
    current one here: change requests are read against it exactly as against a built one.
    """

    def make(engine: str) -> APIClient:
        api = new_project(engine)
        response = api.post("/api/v1/projects/shop/baselines/", {"operations": SHOP_BASELINE}, format="json")
        assert response.status_code == 202, response.content
        baseline = Baseline.objects.get(pk=response.json()["id"])
        Baseline.objects.filter(pk=baseline.pk).update(status=Baseline.Status.READY, error="")
        Project.objects.filter(slug="shop").update(current_baseline=baseline)
        return api

    return make


def refused(response: Any) -> dict[str, Any]:
    assert response.status_code == 400, response.content
    assert response["Content-Type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["type"].endswith("/invalid-submission")
    return body


@pytest.mark.parametrize("engine", OTHER_ENGINES)
def test_postgresql_only_operations_and_fields_of_an_operations_baseline_are_refused_at_their_pointers(new_project, engine):
    api = new_project(engine)

    body = refused(api.post("/api/v1/projects/shop/baselines/", {"operations": POSTGRESQL_OPERATIONS}, format="json"))

    assert body["total_errors"] == 2
    assert [error["pointer"] for error in body["errors"]] == [
        "/operations/0/operations/0/fields/1/field/type",
        "/operations/0/operations/1/op",
    ]
    assert all("PostgreSQL-only" in error["detail"] for error in body["errors"])
    assert "ArrayField" in body["errors"][0]["detail"] and "AddIndexConcurrently" in body["errors"][1]["detail"]
    assert not Baseline.objects.exists()


@pytest.mark.parametrize("engine", OTHER_ENGINES)
def test_every_use_of_a_postgresql_only_name_in_migration_files_is_refused_with_its_file_line_and_column(new_project, engine):
    api = new_project(engine)
    files = history(("0002_labels", ARRAY_AND_CONCURRENT_INDEX), ("0003_trigram", EXTENSION))

    body = refused(api.post("/api/v1/projects/shop/baselines/", {"migration_files": files}, format="json"))

    assert body["total_errors"] == 4
    found = [(error["file"], error["line"], error["column"], error["detail"].split(" ")[0]) for error in body["errors"]]
    assert found == [
        ("shop/migrations/0002_labels.py", 12, 32, "ArrayField"),
        ("shop/migrations/0002_labels.py", 19, 9, "AddIndexConcurrently"),
        ("shop/migrations/0002_labels.py", 21, 13, "django.contrib.postgres.indexes.GinIndex"),
        ("shop/migrations/0003_trigram.py", 7, 19, "TrigramExtension"),
    ]
    assert "4 refusals in 2 files" in body["detail"]
    assert not Baseline.objects.exists()


@pytest.mark.parametrize("engine", OTHER_ENGINES)
def test_a_change_request_with_postgresql_only_operations_is_refused_and_nothing_is_stored(parsed_baseline, engine):
    api = parsed_baseline(engine)

    body = refused(
        api.post(
            "/api/v1/change-requests/", {"project": "shop", "title": "Tags", "operations": POSTGRESQL_OPERATIONS}, format="json"
        )
    )

    assert [error["pointer"] for error in body["errors"]] == [
        "/operations/0/operations/0/fields/1/field/type",
        "/operations/0/operations/1/op",
    ]
    assert not ChangeRequest.objects.exists()


@pytest.mark.parametrize("engine", OTHER_ENGINES)
def test_a_change_request_as_migration_files_naming_postgresql_only_names_is_refused_where_they_are_used(parsed_baseline, engine):
    api = parsed_baseline(engine)
    change = [{"path": "shop/migrations/0002_labels.py", "content": ARRAY_AND_CONCURRENT_INDEX}]

    body = refused(
        api.post("/api/v1/change-requests/", {"project": "shop", "title": "Tags", "migration_files": change}, format="json")
    )

    assert body["total_errors"] == 3
    assert [(error["line"], error["column"]) for error in body["errors"]] == [(12, 32), (19, 9), (21, 13)]
    assert not ChangeRequest.objects.exists()


@pytest.mark.parametrize("engine", OTHER_ENGINES)
def test_models_source_with_a_postgresql_only_field_is_refused_at_the_field(parsed_baseline, engine):
    api = parsed_baseline(engine)
    change = {"apps": [{"app_label": "shop", "content": MODELS_WITH_HSTORE}]}

    body = refused(api.post("/api/v1/change-requests/", {"project": "shop", "title": "Attrs", "models": change}, format="json"))

    assert [(error["file"], error["line"], error["column"]) for error in body["errors"]] == [("shop/models.py", 12, 18)]
    assert "HStoreField" in body["detail"] and "PostgreSQL-only" in body["detail"]
    assert not ChangeRequest.objects.exists()


def test_a_postgresql_project_accepts_postgresql_only_operations_and_migration_files(new_project):
    api = new_project("postgresql")

    as_operations = api.post(
        "/api/v1/projects/shop/baselines/", {"operations": [*SHOP_BASELINE, *POSTGRESQL_OPERATIONS]}, format="json"
    )
    files = history(("0002_labels", ARRAY_AND_CONCURRENT_INDEX), ("0003_trigram", EXTENSION))
    as_files = api.post("/api/v1/projects/shop/baselines/", {"migration_files": files}, format="json")

    assert as_operations.status_code == 202, as_operations.content
    assert as_files.status_code == 202, as_files.content
    built = Baseline.objects.order_by("version")
    assert [(b.status, b.operation_count) for b in built] == [(Baseline.Status.READY, 4), (Baseline.Status.READY, 5)]
