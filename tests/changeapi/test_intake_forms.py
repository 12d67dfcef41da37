"""Change requests as migration files and as models source, over HTTP, on a migration-file baseline.

The project's baseline is the `0001_initial` that `makemigrations` writes for Customer and
Order. What `makemigrations` would make of a models change is computed here with Django's
own autodetector and MigrationWriter on the same change expressed as real model states.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import models
from django.db.migrations.autodetector import MigrationAutodetector
from django.db.migrations.graph import MigrationGraph
from django.db.migrations.questioner import MigrationQuestioner
from django.db.migrations.state import ModelState, ProjectState
from django.db.migrations.writer import MigrationWriter
from rest_framework.test import APIClient

from tests.conftest import clone_databases

pytestmark = pytest.mark.django_db(transaction=True)

INITIAL = """\
import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = []

    operations = [
        migrations.CreateModel(
            name='Customer',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('email', models.EmailField(max_length=254, unique=True)),
            ],
        ),
        migrations.CreateModel(
            name='Order',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('total', models.IntegerField()),
                ('customer', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, to='shop.customer')),
            ],
        ),
    ]
"""

MODELS = """\
from django.db import models


class Customer(models.Model):
    email = models.EmailField(unique=True)


class Order(models.Model):
    total = models.IntegerField()
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE)
"""

ADD_NOTE = """\
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('shop', '0001_initial'),
    ]

    operations = [
        migrations.AddField(
            model_name='order',
            name='note',
            field=models.TextField(null=True),
        ),
    ]
"""

INDEX_CONCURRENTLY = """\
from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):

    atomic = False

    dependencies = [
        ('shop', '0002_order_note'),
    ]

    operations = [
        AddIndexConcurrently(
            model_name='order',
            index=models.Index(fields=['total'], name='order_total_idx'),
        ),
    ]
"""

DATA_AND_SQL = """\
from django.db import migrations


def fill_totals(apps, schema_editor):
    Order = apps.get_model("shop", "Order")
    Order.objects.filter(total__lt=0).update(total=0)


class Migration(migrations.Migration):

    dependencies = [
        ('shop', '0001_initial'),
    ]

    operations = [
        migrations.RunPython(fill_totals, migrations.RunPython.noop),
        migrations.RunSQL(
            "ALTER TABLE shop_order ADD CONSTRAINT order_total_positive CHECK (total >= 0)",
            reverse_sql="ALTER TABLE shop_order DROP CONSTRAINT order_total_positive",
        ),
    ]
"""


@pytest.fixture
def shop(owner: Any, client_for: Callable[[Any], APIClient]) -> Any:
    """A project `shop` whose baseline is the migration file 0001_initial, template ready."""
    api = client_for(owner)
    assert api.post("/api/v1/projects/", {"slug": "shop", "name": "Shop"}, format="json").status_code == 201
    response = api.post(
        "/api/v1/projects/shop/baselines/",
        {"migration_files": [{"path": "shop/migrations/0001_initial.py", "content": INITIAL}]},
        format="json",
    )
    assert response.status_code == 202, response.content
    assert api.get(f"/api/v1/baselines/{response.json()['id']}/").json()["status"] == "ready"
    yield api
    assert clone_databases() == []


def submit(api: APIClient, **form: Any) -> dict[str, Any]:
    response = api.post("/api/v1/change-requests/", {"project": "shop", "title": "Change", **form}, format="json")
    assert response.status_code == 202, response.content
    return response.json()


def dry_run_report(api: APIClient, change_request: dict[str, Any]) -> dict[str, Any]:
    dry_run = api.get(f"/api/v1/dry-runs/{change_request['latest_dry_run']}/").json()
    assert dry_run["status"] == "succeeded", dry_run
    return dry_run["report"]


def files(**contents: str) -> list[dict[str, str]]:
    return [{"path": f"shop/migrations/{name}.py", "content": text} for name, text in contents.items()]


def models_change(content: str, **intent: Any) -> dict[str, Any]:
    return {"apps": [{"app_label": "shop", "content": content}], **intent}


# -- what makemigrations gives ---------------------------------------------------------------


def _pk() -> models.Field:
    return models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")


def baseline_models() -> tuple[ModelState, ModelState]:
    customer = ModelState("shop", "Customer", [("id", _pk()), ("email", models.EmailField(max_length=254, unique=True))])
    order = ModelState(
        "shop",
        "Order",
        [
            ("id", _pk()),
            ("total", models.IntegerField()),
            ("customer", models.ForeignKey("shop.customer", on_delete=models.CASCADE)),
        ],
    )
    return customer, order


class _RenameAnswers(MigrationQuestioner):
    """makemigrations' answers when the developer confirms the rename it asks about."""

    def ask_rename_model(self, old_model_state: ModelState, new_model_state: ModelState) -> bool:
        return True


def makemigrations(to_models: list[ModelState]) -> list[dict[str, Any]]:
    """The migrations Django's autodetector and writer make from the baseline to `to_models`."""
    before, after = ProjectState(), ProjectState()
    for model in baseline_models():
        before.add_model(model)
    for model in to_models:
        after.add_model(model)
    graph = MigrationGraph()
    graph.add_node(("shop", "0001_initial"), None)
    changes = MigrationAutodetector(before, after, _RenameAnswers()).changes(graph=graph)
    return [
        {
            "name": migration.name,
            "operations": [{"type": type(op).__name__, "description": op.describe()} for op in migration.operations],
            "migration_file": MigrationWriter(migration, include_header=False).as_string(),
        }
        for migration in changes["shop"]
    ]


def written(change_request: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"name": m["name"], "operations": m["operations"], "migration_file": m["migration_file"]}
        for m in change_request["latest_revision"]["operations"]
    ]


# -- the migration_files form ------------------------------------------------------------------


def test_migration_files_are_applied_in_dependency_order_whatever_order_they_are_sent_in(shop):
    change_request = submit(
        shop, migration_files=files(**{"0003_order_total_idx": INDEX_CONCURRENTLY, "0002_order_note": ADD_NOTE})
    )

    report = dry_run_report(shop, change_request)

    assert [m["name"] for m in report["migrations"]] == ["0002_order_note", "0003_order_total_idx"]
    assert [s["migration"] for s in report["statements"]] == ["shop.0002_order_note", "shop.0003_order_total_idx"]


def test_a_non_atomic_migration_file_runs_add_index_concurrently_outside_a_transaction(shop):
    change_request = submit(
        shop, migration_files=files(**{"0002_order_note": ADD_NOTE, "0003_order_total_idx": INDEX_CONCURRENTLY})
    )

    report = dry_run_report(shop, change_request)

    add_column, create_index = report["statements"]
    assert [m["atomic"] for m in report["migrations"]] == [True, False]
    assert add_column["transactional"] is True and "ADD COLUMN" in add_column["sql"]
    assert create_index["sql"].startswith("CREATE INDEX CONCURRENTLY")
    assert create_index["transactional"] is False


def test_the_revision_lists_the_migration_files_operations_and_atomic_flags(shop):
    change_request = submit(
        shop, migration_files=files(**{"0002_order_note": ADD_NOTE, "0003_order_total_idx": INDEX_CONCURRENTLY})
    )

    migrations = change_request["latest_revision"]["operations"]

    assert [(m["name"], m["atomic"], [o["type"] for o in m["operations"]]) for m in migrations] == [
        ("0002_order_note", True, ["AddField"]),
        ("0003_order_total_idx", False, [AddIndexConcurrently.__name__]),
    ]


def test_a_run_python_step_in_a_migration_file_is_reported_as_not_executed(shop):
    change_request = submit(shop, migration_files=files(**{"0002_checks": DATA_AND_SQL}))

    report = dry_run_report(shop, change_request)

    run_python, run_sql = report["migrations"][0]["operations"]
    assert run_python["type"] == "DataMigrationStep"
    assert run_python["executed"] is False
    assert "fill_totals" in run_python["description"]
    assert run_python["note"] == "data migration step: recorded for review, not executed"
    assert run_sql["executed"] is True
    assert report["summary"]["data_steps_not_executed"] == 1
    assert [s["sql"] for s in report["statements"]] == [
        "ALTER TABLE shop_order ADD CONSTRAINT order_total_positive CHECK (total >= 0)"
    ]


def test_a_run_python_step_keeps_its_source_for_reviewers(shop):
    change_request = submit(shop, migration_files=files(**{"0002_checks": DATA_AND_SQL}))

    revision = shop.get(f"/api/v1/revisions/{change_request['latest_revision']['id']}/").json()

    assert revision["source"]["migration_files"][0]["content"] == DATA_AND_SQL
    assert revision["operations"][0]["operations"][0]["description"] == "Data migration step fill_totals (not executed)"


def test_run_sql_keeps_its_reverse_sql(shop):
    change_request = submit(shop, migration_files=files(**{"0002_checks": DATA_AND_SQL}))

    report = dry_run_report(shop, change_request)

    [reversal] = report["reversibility"]
    assert reversal["reversible"] is True
    assert reversal["backwards_sql"] == ["ALTER TABLE shop_order DROP CONSTRAINT order_total_positive"]
    assert reversal["data_steps_not_executed"] == 1


# -- the models form -----------------------------------------------------------------------------


def test_models_with_an_added_field_give_the_migration_makemigrations_gives(shop):
    change_request = submit(shop, models=models_change(MODELS + "    note = models.TextField(blank=True, default='')\n"))

    customer, order = baseline_models()
    order.fields["note"] = models.TextField(blank=True, default="")
    assert written(change_request) == makemigrations([customer, order])
    assert written(change_request)[0]["name"] == "0002_order_note"


def test_models_with_a_changed_field_give_the_migration_makemigrations_gives(shop):
    change_request = submit(
        shop, models=models_change(MODELS.replace("models.IntegerField()", "models.BigIntegerField(db_index=True)"))
    )

    customer, order = baseline_models()
    order.fields["total"] = models.BigIntegerField(db_index=True)
    assert written(change_request) == makemigrations([customer, order])
    assert [o["type"] for o in written(change_request)[0]["operations"]] == ["AlterField"]


def test_models_with_an_added_index_give_the_migration_makemigrations_gives(shop):
    meta = "\n    class Meta:\n        indexes = [models.Index(fields=['total'], name='order_total_idx')]\n"
    change_request = submit(shop, models=models_change(MODELS + meta))

    customer, order = baseline_models()
    order.options["indexes"] = [models.Index(fields=["total"], name="order_total_idx")]
    assert written(change_request) == makemigrations([customer, order])
    assert [o["type"] for o in written(change_request)[0]["operations"]] == ["AddIndex"]


def test_models_with_a_renamed_model_and_rename_intent_give_the_migration_makemigrations_gives(shop):
    source = MODELS.replace("class Customer", "class Client").replace("(Customer,", "(Client,")
    change_request = submit(shop, models=models_change(source, renames={"models": {"shop.Customer": "Client"}}))

    customer, order = baseline_models()
    client = ModelState("shop", "Client", list(customer.fields.items()))
    order.fields["customer"] = models.ForeignKey("shop.client", on_delete=models.CASCADE)
    assert written(change_request) == makemigrations([client, order])
    assert [o["type"] for o in written(change_request)[0]["operations"]] == ["RenameModel"]


def test_a_models_change_dry_runs_the_migration_it_wrote(shop):
    change_request = submit(shop, models=models_change(MODELS + "    note = models.TextField(null=True)\n"))

    report = dry_run_report(shop, change_request)

    assert [s["sql"] for s in report["statements"]] == ['ALTER TABLE "shop_order" ADD COLUMN "note" text NULL']


# -- one change, three forms ---------------------------------------------------------------------

ADD_NOTE_OPERATIONS = [
    {
        "app_label": "shop",
        "operations": [{"op": "AddField", "model_name": "order", "name": "note", "field": {"type": "TextField", "null": True}}],
    }
]


def _three_forms(api: APIClient) -> list[dict[str, Any]]:
    return [
        submit(api, operations=ADD_NOTE_OPERATIONS),
        submit(api, migration_files=files(**{"0002_order_note": ADD_NOTE})),
        submit(api, models=models_change(MODELS + "    note = models.TextField(null=True)\n")),
    ]


def test_the_three_forms_of_one_change_normalise_to_the_same_operations(shop):
    described = [
        [(o["type"], o["description"]) for m in cr["latest_revision"]["operations"] for o in m["operations"]]
        for cr in _three_forms(shop)
    ]

    assert described[0] == [("AddField", "Add field note to order")]
    assert described[1] == described[0]
    assert described[2] == described[0]


def test_the_three_forms_of_one_change_dry_run_the_same_sql(shop):
    statements = [[s["sql"] for s in dry_run_report(shop, cr)["statements"]] for cr in _three_forms(shop)]

    assert statements[0] == ['ALTER TABLE "shop_order" ADD COLUMN "note" text NULL']
    assert statements[1] == statements[0]
    assert statements[2] == statements[0]


def test_add_index_concurrently_in_an_atomic_migration_file_fails_the_dry_run_as_migrate_would(shop):
    atomic = INDEX_CONCURRENTLY.replace("    atomic = False\n\n", "")
    change_request = submit(shop, migration_files=files(**{"0002_order_note": ADD_NOTE, "0003_order_total_idx": atomic}))

    dry_run = shop.get(f"/api/v1/dry-runs/{change_request['latest_dry_run']}/").json()

    assert dry_run["status"] == "failed"
    assert dry_run["report"]["error"]["migration"] == "shop.0003_order_total_idx"
    assert dry_run["report"]["error"]["message"] == (
        "The AddIndexConcurrently operation cannot be executed inside a transaction (set atomic = False on the migration)."
    )
