"""Each operation's schema change gets states holding only the models it reads.

On a schema where every model points at one hub (as real schemas point at auth.User), a change
to one of the leaves must not render the other leaves; a change to the hub itself must render
every model pointing at it, because Django rewrites their foreign keys. The SQL equality with
Django's own `migrate` over real histories (test_sql_equality.py) checks the statements; these
tests check what is rendered.
"""

from __future__ import annotations

from django.db import models
from django.db.migrations import operations as ops
from django.db.migrations.state import ProjectState

from changeapi.intake.python_source import plan_state
from changeapi.intake.state_closure import closure, render_changed, step_forwards
from tests.engine.analysis.conftest import plan_of

LEAVES = 30


def _hub_schema() -> ProjectState:
    creates = [ops.CreateModel("Hub", [("id", models.BigAutoField(primary_key=True))])]
    for n in range(LEAVES):
        creates.append(
            ops.CreateModel(
                f"Leaf{n}",
                [
                    ("id", models.BigAutoField(primary_key=True)),
                    ("hub", models.ForeignKey("shop.Hub", models.CASCADE)),
                ],
            )
        )
    return plan_state(plan_of(creates))


def test_a_change_to_a_leaf_renders_the_leaf_and_what_it_points_at():
    state = _hub_schema()

    step = step_forwards(ops.AddField("leaf3", "size", models.IntegerField(default=0)), "shop", state)

    assert set(step.before.models) == {("shop", "leaf3"), ("shop", "hub")}
    assert set(step.after.models) == {("shop", "leaf3"), ("shop", "hub")}
    assert [f.name for f in step.after.apps.get_model("shop", "leaf3")._meta.local_fields] == ["id", "hub", "size"]
    assert "apps" not in state.__dict__


def test_a_change_to_the_hub_renders_every_model_pointing_at_it():
    state = _hub_schema()

    step = step_forwards(ops.AlterField("hub", "id", models.AutoField(primary_key=True)), "shop", state)

    assert len(step.before.models) == LEAVES + 1
    hub = step.before.apps.get_model("shop", "hub")
    assert len(hub._meta.related_objects) == LEAVES


def test_a_renamed_model_is_before_under_its_old_name_and_after_under_its_new_one():
    state = _hub_schema()

    step = step_forwards(ops.RenameModel("Hub", "Centre"), "shop", state)

    assert ("shop", "hub") in step.before.models and ("shop", "centre") not in step.before.models
    assert ("shop", "centre") in step.after.models and ("shop", "hub") not in step.after.models
    assert len(step.after.models) == LEAVES + 1


def test_the_states_of_a_step_do_not_change_with_later_operations():
    state = _hub_schema()
    step = step_forwards(ops.AddField("leaf1", "size", models.IntegerField(default=0)), "shop", state)

    step_forwards(ops.RemoveField("leaf1", "size"), "shop", state)

    assert "size" in step.after.models[("shop", "leaf1")].fields


def test_the_next_operation_on_the_same_models_starts_from_the_state_the_last_one_ended_with():
    state = _hub_schema()
    first = step_forwards(ops.AddField("leaf1", "size", models.IntegerField(default=0)), "shop", state)

    second = step_forwards(ops.AlterField("leaf1", "size", models.BigIntegerField(default=0)), "shop", state, first)

    assert second.before is first.after
    assert "size" in second.before.models[("shop", "leaf1")].fields


def test_an_operation_on_other_models_gets_its_own_state_before_it():
    state = _hub_schema()
    first = step_forwards(ops.AddField("leaf1", "size", models.IntegerField(default=0)), "shop", state)

    second = step_forwards(ops.AddField("leaf2", "size", models.IntegerField(default=0)), "shop", state, first)

    assert second.before is not first.after
    assert set(second.before.models) == {("shop", "leaf2"), ("shop", "hub")}


def test_an_operation_of_unknown_reach_gets_whole_states():
    state = _hub_schema()
    both = ops.SeparateDatabaseAndState(state_operations=[ops.AddField("leaf2", "x", models.IntegerField(default=1))])

    step = step_forwards(both, "shop", state)

    assert len(step.before.models) == len(state.models) == LEAVES + 1


def test_a_closure_renders_what_the_named_model_points_at_as_stubs():
    state = plan_state(
        plan_of(
            [
                ops.CreateModel("A", [("id", models.BigAutoField(primary_key=True))]),
                ops.CreateModel(
                    "B", [("id", models.BigAutoField(primary_key=True)), ("a", models.ForeignKey("shop.A", models.CASCADE))]
                ),
                ops.CreateModel(
                    "C", [("id", models.BigAutoField(primary_key=True)), ("b", models.ForeignKey("shop.B", models.CASCADE))]
                ),
                ops.CreateModel("D", [("id", models.BigAutoField(primary_key=True))]),
            ]
        )
    )

    of_c = closure(state, {("shop", "c")})
    assert (of_c.full, of_c.stubs) == ({("shop", "c")}, {("shop", "b")}), "B's own relation (to A) is not rendered"
    # B's closure holds C, which points at it, in full, and A, which B points at, as a stub; never D.
    of_b = closure(state, {("shop", "b")})
    assert (of_b.full, of_b.stubs) == ({("shop", "c"), ("shop", "b")}, {("shop", "a")})


def test_a_stub_keeps_its_columns_and_key_but_not_its_relations():
    state = plan_state(
        plan_of(
            [
                ops.CreateModel("A", [("id", models.BigAutoField(primary_key=True))]),
                ops.CreateModel(
                    "B",
                    [
                        ("code", models.CharField(max_length=10, primary_key=True)),
                        ("a", models.ForeignKey("shop.A", models.CASCADE)),
                        ("name", models.CharField(max_length=50)),
                    ],
                    options={"db_table": "legacy_b", "indexes": [models.Index(fields=["a", "name"], name="b_a_name")]},
                ),
                ops.CreateModel(
                    "C", [("id", models.BigAutoField(primary_key=True)), ("b", models.ForeignKey("shop.B", models.CASCADE))]
                ),
            ]
        )
    )

    step = step_forwards(ops.AddField("c", "size", models.IntegerField(default=0)), "shop", state)

    b = step.after.apps.get_model("shop", "b")
    assert [f.name for f in b._meta.local_fields] == ["code", "name"]
    assert b._meta.db_table == "legacy_b" and b._meta.pk.name == "code"
    c = step.after.apps.get_model("shop", "c")
    assert c._meta.get_field("b").target_field.max_length == 10
    assert c._meta.get_field("b").target_field.name == "code"


def test_a_chain_of_parents_renders_only_the_next_link():
    chain = [ops.CreateModel("Link0", [("id", models.BigAutoField(primary_key=True))])]
    for n in range(1, 40):
        chain.append(
            ops.CreateModel(
                f"Link{n}",
                [
                    ("id", models.BigAutoField(primary_key=True)),
                    ("parent", models.ForeignKey(f"shop.Link{n - 1}", models.CASCADE)),
                ],
            )
        )
    state = plan_state(plan_of(chain))

    step = step_forwards(ops.AddIndex("link39", models.Index(fields=["parent"], name="link39_parent")), "shop", state)

    assert set(step.after.models) == {("shop", "link39"), ("shop", "link38")}


def test_the_submission_check_fails_on_a_dangling_relation_of_a_changed_model():
    state = _hub_schema()
    operation = ops.AddField("leaf0", "other", models.ForeignKey("shop.Missing", models.CASCADE))
    operation.state_forwards("shop", state)

    try:
        render_changed(state, [("shop", operation)])
    except ValueError as exc:
        assert "shop.missing" in str(exc).lower()
    else:
        raise AssertionError("a relation to a missing model must fail the check")
