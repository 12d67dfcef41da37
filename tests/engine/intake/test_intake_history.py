"""A migration history is ordered as Django's executor would apply it, or refused with a reason."""

from __future__ import annotations

import pytest
from django.db import migrations, models

from changeapi.intake.errors import IntakeError
from changeapi.intake.plan import PlannedMigration
from changeapi.intake.python_source.history import plan_history, plan_state
from changeapi.intake.python_source.migration_files import read_migration_file


def step(app: str, name: str, *deps: tuple[str, str], **extra: object) -> PlannedMigration:
    return PlannedMigration(app_label=app, name=name, operations=[], dependencies=list(deps), **extra)  # type: ignore[arg-type]


def keys(migrations_: list[PlannedMigration]) -> list[tuple[str, str]]:
    return [m.key for m in plan_history(migrations_).migrations]


def test_cross_app_dependencies_order_the_plan() -> None:
    history = [
        step("shop", "0002_order", ("shop", "0001_initial"), ("billing", "0001_initial")),
        step("shop", "0001_initial"),
        step("billing", "0001_initial"),
    ]
    order = keys(history)
    assert order.index(("billing", "0001_initial")) < order.index(("shop", "0002_order"))
    assert order.index(("shop", "0001_initial")) < order.index(("shop", "0002_order"))


def test_run_before_puts_a_migration_ahead_of_another_app() -> None:
    history = [
        step("shop", "0001_initial"),
        step("billing", "0001_initial", run_before=[("shop", "0001_initial")]),
    ]
    assert keys(history) == [("billing", "0001_initial"), ("shop", "0001_initial")]


def test_first_and_latest_dependencies_resolve_to_the_apps_root_and_leaf() -> None:
    history = [
        step("billing", "0001_initial"),
        step("billing", "0002_more", ("billing", "0001_initial")),
        step("shop", "0001_initial", ("billing", "__latest__")),
        step("stock", "0001_initial", ("billing", "__first__")),
    ]
    order = keys(history)
    assert order.index(("billing", "0002_more")) < order.index(("shop", "0001_initial"))
    assert order.index(("billing", "0001_initial")) < order.index(("stock", "0001_initial"))


def test_a_squashed_migration_replaces_its_originals_when_none_are_applied() -> None:
    history = [
        step("shop", "0001_initial"),
        step("shop", "0002_a", ("shop", "0001_initial")),
        step("shop", "0001_squashed_0002", replaces=[("shop", "0001_initial"), ("shop", "0002_a")]),
        step("shop", "0003_b", ("shop", "0002_a")),
    ]
    assert keys(history) == [("shop", "0001_squashed_0002"), ("shop", "0003_b")]


def test_a_squashed_migration_alone_stands_for_originals_that_are_gone() -> None:
    history = [
        step("shop", "0001_squashed_0002", replaces=[("shop", "0001_initial"), ("shop", "0002_a")]),
        step("shop", "0003_b", ("shop", "0002_a")),
    ]
    assert keys(history) == [("shop", "0001_squashed_0002"), ("shop", "0003_b")]


def test_a_partly_applied_squash_falls_back_to_the_originals() -> None:
    history = [
        step("shop", "0001_initial"),
        step("shop", "0002_a", ("shop", "0001_initial")),
        step("shop", "0001_squashed_0002", replaces=[("shop", "0001_initial"), ("shop", "0002_a")]),
    ]
    plan = plan_history(history, applied=[("shop", "0001_initial")])
    assert [m.key for m in plan.migrations] == [("shop", "0002_a")]


def test_a_missing_dependency_is_refused_naming_both_migrations_at_the_dependencies_line() -> None:
    source = (
        "from django.db import migrations\n\n\nclass Migration(migrations.Migration):\n"
        "    dependencies = [('billing', '0007_gone')]\n    operations = []\n"
    )
    parsed = read_migration_file(app_label="shop", name="0001_initial", source=source, filename="shop/0001.py")
    with pytest.raises(IntakeError) as caught:
        plan_history([parsed])
    assert "shop.0001_initial" in caught.value.message and "billing.0007_gone" in caught.value.message
    assert (caught.value.location.file, caught.value.location.line) == ("shop/0001.py", 5)


def test_a_dependency_cycle_is_refused() -> None:
    history = [
        step("shop", "0001_initial", ("billing", "0001_initial")),
        step("billing", "0001_initial", ("shop", "0001_initial")),
    ]
    with pytest.raises(IntakeError, match="cycle"):
        plan_history(history)


def test_two_leaf_migrations_in_one_app_are_a_conflict_naming_both() -> None:
    history = [
        step("shop", "0001_initial"),
        step("shop", "0002_a", ("shop", "0001_initial")),
        step("shop", "0002_b", ("shop", "0001_initial")),
    ]
    with pytest.raises(IntakeError, match="0002_a, 0002_b"):
        plan_history(history)


def test_a_duplicated_migration_is_refused() -> None:
    with pytest.raises(IntakeError, match="given twice"):
        plan_history([step("shop", "0001_initial"), step("shop", "0001_initial")])


def test_applied_migrations_are_left_out_of_the_plan() -> None:
    history = [step("shop", "0001_initial"), step("shop", "0002_a", ("shop", "0001_initial"))]
    assert [m.key for m in plan_history(history, applied=[("shop", "0001_initial")]).migrations] == [("shop", "0002_a")]


def test_plan_state_applies_operations_on_top_of_a_base_state_without_changing_it() -> None:
    create = step("shop", "0001_initial")
    create.operations = [migrations.CreateModel("Order", [("id", models.BigAutoField(primary_key=True))])]
    add = step("shop", "0002_total", ("shop", "0001_initial"))
    add.operations = [migrations.AddField("order", "total", models.IntegerField(default=0))]
    base = plan_state(plan_history([create]))

    change = plan_history([create, add], applied=[create.key])
    after = plan_state(change, base)

    assert [m.key for m in change.migrations] == [add.key]
    assert "total" in after.models["shop", "order"].fields
    assert "total" not in base.models["shop", "order"].fields
