"""A statement's time is its execution's: the tables a change names are opened before its
statements are timed (see dryrun/warm_up), and the clock is read right around each one."""

from __future__ import annotations

import pytest
from django.db import models
from django.db.migrations import operations as ops

from changeapi.dryrun.engine import _RunningStatement, baseline_state
from changeapi.dryrun.sql_forms import statement_form
from changeapi.dryrun.warm_up import plan_tables
from tests.engine.analysis.conftest import plan_of, shop_baseline

STATE = baseline_state(plan_of(shop_baseline()))


def test_the_tables_of_the_models_a_change_names_are_warmed_once_each():
    change = plan_of(
        [
            ops.AddField("order", "flag", models.BooleanField(null=True)),
            ops.AlterField("order", "total", models.BigIntegerField()),
            ops.DeleteModel("Customer"),
        ],
        start=2,
    )

    assert plan_tables(change, STATE, max_name_length=63) == ["shop_order", "shop_customer"]


def test_a_model_the_change_creates_and_sql_of_its_own_name_no_table():
    change = plan_of(
        [ops.CreateModel("Refund", [("id", models.BigAutoField(primary_key=True))]), ops.RunSQL("SELECT 1")], start=2
    )

    assert plan_tables(change, STATE, max_name_length=63) == []


def test_a_custom_table_name_is_warmed_as_the_schema_names_it():
    state = baseline_state(
        plan_of([ops.CreateModel("Ledger", [("id", models.BigAutoField(primary_key=True))], options={"db_table": "Ledger"})])
    )
    change = plan_of([ops.AddField("ledger", "flag", models.BooleanField(null=True))], start=2)

    assert plan_tables(change, state, max_name_length=63) == ["Ledger"]


def _running(sql: str = "ALTER TABLE shop_order RENAME COLUMN note TO memo") -> _RunningStatement:
    return _RunningStatement(
        index=0,
        migration="shop.0002_step",
        operation_index=0,
        sql=sql,
        form=statement_form(sql),
        transactional=True,
        transaction=1,
        started_ms=0.0,
    )


def test_a_statements_time_is_taken_right_around_its_execution():
    clock = iter([10.0, 12.5])
    running = _running()
    calls: list[str] = []

    running.timed(lambda: calls.append("ran"), lambda: next(clock))()

    assert calls == ["ran"]
    assert (running.started_ms, running.ended_ms) == (10.0, 12.5)


def test_a_statement_that_fails_still_ends_when_its_execution_did():
    clock = iter([3.0, 4.0])
    running = _running()

    def fail() -> None:
        raise RuntimeError("value too long")

    with pytest.raises(RuntimeError):
        running.timed(fail, lambda: next(clock))()

    assert (running.started_ms, running.ended_ms) == (3.0, 4.0)
