"""Proposed models source diffs against the baseline into what makemigrations would write."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import migrations, models
from django.db.migrations.autodetector import MigrationAutodetector
from django.db.migrations.graph import MigrationGraph
from django.db.migrations.questioner import MigrationQuestioner
from django.db.migrations.state import ModelState, ProjectState

from changeapi.intake.errors import IntakeError
from changeapi.intake.plan import Plan, PlannedMigration
from changeapi.intake.python_source.history import plan_state
from changeapi.intake.python_source.models_source import models_source_plan
from changeapi.intake.python_source.questioner import ChangeIntent
from tests.engine.intake.intake_support import canonical

HEADER = "from django.db import models\n\n\n"


def pk() -> models.Field:
    return models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")


def baseline_models() -> list[ModelState]:
    return [
        ModelState("shop", "Customer", [("id", pk()), ("email", models.EmailField(max_length=254))]),
        ModelState(
            "shop",
            "Order",
            [
                ("id", pk()),
                ("total", models.IntegerField()),
                ("customer", models.ForeignKey("shop.customer", on_delete=models.CASCADE)),
            ],
        ),
    ]


def baseline() -> tuple[ProjectState, Plan]:
    state = ProjectState()
    for model in baseline_models():
        state.add_model(model)
    history = Plan(
        migrations=[
            PlannedMigration(
                app_label="shop",
                name="0001_initial",
                initial=True,
                operations=[migrations.CreateModel(m.name, list(m.fields.items()), options=m.options) for m in baseline_models()],
            )
        ]
    )
    return state, history


BASELINE_SOURCE = HEADER + (
    "class Customer(models.Model):\n"
    "    email = models.EmailField()\n\n\n"
    "class Order(models.Model):\n"
    "    total = models.IntegerField()\n"
    "    customer = models.ForeignKey(Customer, on_delete=models.CASCADE)\n"
)


class _Answers(MigrationQuestioner):
    def __init__(self, **answers: Any) -> None:
        super().__init__()
        self.answers = answers

    def ask_initial(self, app_label: str) -> bool:
        return True

    def ask_rename_model(self, old_model_state: ModelState, new_model_state: ModelState) -> bool:
        return bool(self.answers.get("rename_model"))


def makemigrations_operations(to_models: list[ModelState], **answers: Any) -> list[Any]:
    """What Django's autodetector makes from the same change expressed as real model states."""
    state, _ = baseline()
    to_state = ProjectState()
    for model in to_models:
        to_state.add_model(model)
    graph = MigrationGraph()
    graph.add_node(("shop", "0001_initial"), None)
    changes = MigrationAutodetector(state, to_state, _Answers(**answers)).changes(graph=graph)
    return [operation for migration in changes.get("shop", []) for operation in migration.operations]


def proposed(source: str, intent: ChangeIntent | None = None):
    state, history = baseline()
    return models_source_plan(sources={"shop": source}, baseline_state=state, baseline=history, intent=intent)


def test_unchanged_models_give_no_migration() -> None:
    assert proposed(BASELINE_SOURCE).plan.migrations == []


def test_an_added_field_gives_the_operations_makemigrations_gives() -> None:
    change = proposed(BASELINE_SOURCE + "    note = models.TextField(blank=True, default='')\n")
    customer, order = baseline_models()
    order.fields["note"] = models.TextField(blank=True, default="")
    assert canonical(change.plan.migrations[0].operations) == canonical(makemigrations_operations([customer, order]))


def test_a_changed_field_gives_the_operations_makemigrations_gives() -> None:
    change = proposed(BASELINE_SOURCE.replace("models.IntegerField()", "models.BigIntegerField(db_index=True)"))
    customer, order = baseline_models()
    order.fields["total"] = models.BigIntegerField(db_index=True)
    operations = change.plan.migrations[0].operations
    assert [type(o).__name__ for o in operations] == ["AlterField"]
    assert canonical(operations) == canonical(makemigrations_operations([customer, order]))


def test_an_added_index_gives_the_operations_makemigrations_gives() -> None:
    source = BASELINE_SOURCE + (
        "\n    class Meta:\n"
        "        indexes = [models.Index(fields=['total'], name='order_total_idx'),\n"
        "                   models.Index(models.F('total').desc(), name='order_total_desc')]\n"
    )
    change = proposed(source)
    customer, order = baseline_models()
    order.options["indexes"] = [
        models.Index(fields=["total"], name="order_total_idx"),
        models.Index(models.F("total").desc(), name="order_total_desc"),
    ]
    operations = change.plan.migrations[0].operations
    assert [type(o).__name__ for o in operations] == ["AddIndex", "AddIndex"]
    assert canonical(operations) == canonical(makemigrations_operations([customer, order]))


def test_a_renamed_model_with_rename_intent_gives_the_operations_makemigrations_gives() -> None:
    source = BASELINE_SOURCE.replace("class Customer", "class Client").replace("(Customer,", "(Client,")
    change = proposed(source, ChangeIntent.build(renames={"models": {"shop.Customer": "Client"}}))
    customer, order = baseline_models()
    client = ModelState("shop", "Client", list(customer.fields.items()))
    order.fields["customer"] = models.ForeignKey("shop.client", on_delete=models.CASCADE)
    operations = change.plan.migrations[0].operations
    assert [type(o).__name__ for o in operations] == ["RenameModel"]
    assert canonical(operations) == canonical(makemigrations_operations([client, order], rename_model=True))


def test_a_renamed_model_without_intent_is_a_delete_and_a_create() -> None:
    source = BASELINE_SOURCE.replace("class Customer", "class Client").replace("(Customer,", "(Client,")
    names = {type(o).__name__ for o in proposed(source).plan.migrations[0].operations}
    assert "RenameModel" not in names and {"CreateModel", "DeleteModel"} <= names


def test_a_renamed_field_with_intent_is_a_rename() -> None:
    change = proposed(
        BASELINE_SOURCE.replace("total =", "amount ="),
        ChangeIntent.build(renames={"fields": {"shop.Order.total": "amount"}}),
    )
    assert [type(o).__name__ for o in change.plan.migrations[0].operations] == ["RenameField"]


def test_new_migrations_continue_the_baselines_numbering_and_depend_on_its_leaf() -> None:
    change = proposed(BASELINE_SOURCE + "    note = models.TextField(null=True)\n")
    migration = change.plan.migrations[0]
    assert migration.name == "0002_order_note"
    assert ("shop", "0001_initial") in migration.dependencies


def test_the_written_file_is_what_migration_writer_writes_without_a_timestamp() -> None:
    change = proposed(BASELINE_SOURCE + "    note = models.TextField(null=True)\n")
    text = change.files[("shop", "0002_order_note")]
    assert "Generated by Django" not in text
    assert "migrations.AddField(" in text and "('shop', '0001_initial')" in text


def test_replaying_the_plan_on_the_baseline_gives_the_proposed_state() -> None:
    change = proposed(BASELINE_SOURCE + "    note = models.TextField(null=True)\n")
    state, _ = baseline()
    assert plan_state(change.plan, state) == change.state


def test_a_not_null_field_without_default_is_refused_at_its_line() -> None:
    with pytest.raises(IntakeError) as caught:
        proposed(BASELINE_SOURCE + "    code = models.CharField(max_length=9)\n")
    assert "order.code" in caught.value.message
    assert (caught.value.location.file, caught.value.location.line) == ("shop/models.py", 11)


def test_a_one_off_default_from_intent_answers_the_not_null_question() -> None:
    change = proposed(
        BASELINE_SOURCE + "    code = models.CharField(max_length=9)\n",
        ChangeIntent.build(defaults={"shop.Order.code": "none"}),
    )
    operation = change.plan.migrations[0].operations[0]
    assert (operation.field.default, operation.preserve_default) == ("none", False)


def test_a_new_app_gets_an_initial_migration() -> None:
    state, history = baseline()
    change = models_source_plan(
        sources={"billing": HEADER + "class Invoice(models.Model):\n    number = models.IntegerField()\n"},
        baseline_state=state,
        baseline=history,
    )
    assert [m.key for m in change.plan.migrations] == [("billing", "0001_initial")]
    assert change.plan.migrations[0].initial


def test_abstract_bases_choices_and_meta_inheritance_are_read_as_django_would() -> None:
    source = HEADER + (
        "class Stamped(models.Model):\n"
        "    created = models.DateTimeField(auto_now_add=True)\n\n"
        "    class Meta:\n        abstract = True\n        ordering = ['-created']\n\n\n"
        "class Status(models.TextChoices):\n    OPEN = 'o', 'Open'\n    PAID = 'p', 'Paid'\n\n\n"
        "class Invoice(Stamped):\n"
        "    status = models.CharField(max_length=1, choices=Status.choices, default=Status.OPEN)\n"
    )
    change = models_source_plan(sources={"billing": source}, baseline_state=ProjectState())
    invoice = change.state.models["billing", "invoice"]
    assert list(invoice.fields) == ["id", "created", "status"]
    assert invoice.options["ordering"] == ["-created"]
    assert invoice.fields["status"].choices == [("o", "Open"), ("p", "Paid")]


def test_functions_of_the_models_module_are_written_as_references_and_never_run() -> None:
    source = (
        BASELINE_SOURCE.replace("class Customer", "def upload(instance, filename):\n    raise SystemExit\n\n\nclass Customer")
        + "    scan = models.FileField(upload_to=upload, null=True)\n"
    )
    change = proposed(source)
    text = change.files[("shop", "0002_order_scan")]
    assert "import shop.models" in text and "upload_to=shop.models.upload" in text


def test_a_renamed_field_without_intent_is_refused_naming_the_renames_entry() -> None:
    with pytest.raises(IntakeError) as refused:
        proposed(BASELINE_SOURCE.replace("total =", "amount ="))
    assert refused.value.suggestion == {"renames": {"fields": {"shop.Order.total": "amount"}}}


def test_a_renamed_field_that_also_changes_type_gets_no_rename_suggestion() -> None:
    with pytest.raises(IntakeError) as refused:
        proposed(BASELINE_SOURCE.replace("total = models.IntegerField()", "amount = models.TextField()"))
    assert refused.value.suggestion is None
