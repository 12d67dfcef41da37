"""A state walked forward without rendering ends where Django's ProjectState ends: the
reference scan it leaves out of AlterField only ever decided how rendered models reload."""

from __future__ import annotations

from django.db import migrations, models
from django.db.migrations.state import ProjectState

from changeapi.intake.unrendered_state import UnrenderedState

OPERATIONS = [
    migrations.CreateModel(
        "Customer", [("id", models.BigAutoField(primary_key=True)), ("code", models.CharField(max_length=10, unique=True))]
    ),
    migrations.CreateModel(
        "Order",
        [
            ("id", models.BigAutoField(primary_key=True)),
            ("customer", models.ForeignKey("shop.Customer", models.CASCADE, to_field="code")),
            ("note", models.TextField(default="")),
        ],
    ),
    # A field another model's foreign key points at, then one nothing references.
    migrations.AlterField("customer", "code", models.CharField(max_length=20, unique=True)),
    migrations.AlterField("order", "note", models.TextField(default="-"), preserve_default=False),
    migrations.RenameField("customer", "code", "ref"),
]


def _walked(state: ProjectState) -> ProjectState:
    for operation in OPERATIONS:
        operation.state_forwards("shop", state)
    return state


def test_an_unrendered_walk_ends_in_the_state_django_reaches():
    assert _walked(UnrenderedState()).models == _walked(ProjectState()).models


def test_an_unrendered_walk_with_relations_resolved_ends_in_the_state_django_reaches():
    ours, django = UnrenderedState(), ProjectState()
    ours.relations, django.relations  # noqa: B018 - resolving relations changes how alter_field stores the field

    assert _walked(ours).models == _walked(django).models
    assert list(ours.models["shop", "customer"].fields) == list(django.models["shop", "customer"].fields)


def test_once_rendered_a_changed_field_reaches_the_rendered_models():
    state = UnrenderedState()
    OPERATIONS[0].state_forwards("shop", state)
    state.apps  # noqa: B018 - rendering is what this is about

    migrations.AlterField("customer", "code", models.CharField(max_length=30, unique=True)).state_forwards("shop", state)

    assert state.apps.get_model("shop", "customer")._meta.get_field("code").max_length == 30
