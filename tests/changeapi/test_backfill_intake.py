"""A Backfill step in the operations form: read into a declarative step, or refused with the JSON
pointer of what is wrong, and nothing stored."""

from __future__ import annotations

from typing import Any

import pytest

from changeapi.models import ChangeRequest, Revision

pytestmark = pytest.mark.django_db(transaction=True)

ADD_CENTS = {"op": "AddField", "model_name": "order", "name": "cents", "field": {"type": "BigIntegerField", "null": True}}


def backfill(**members: Any) -> dict[str, Any]:
    return {"op": "Backfill", "model": "Order", "assignments": {"cents": {"*": [{"F": "total"}, 100]}}, **members}


def submit(api: Any, *operations: dict[str, Any]) -> Any:
    documents = [{"app_label": "shop", "operations": list(operations)}]
    return api.post("/api/v1/change-requests/", {"project": "shop", "title": "cents", "operations": documents}, format="json")


def refused_at(response: Any) -> str:
    assert response.status_code == 400, response.content
    assert response["Content-Type"] == "application/problem+json"
    assert not ChangeRequest.objects.exists() and not Revision.objects.exists()
    return str(response.json()["errors"][0]["pointer"])


def test_a_backfill_setting_a_field_the_model_lacks_is_refused_at_that_assignment(project_with_baseline):
    response = submit(project_with_baseline["api"], ADD_CENTS, backfill(assignments={"centz": 1}))

    assert refused_at(response) == "/operations/0/operations/1/assignments/centz"


def test_an_assignment_reading_a_column_of_another_table_is_refused_at_its_expression(project_with_baseline):
    response = submit(project_with_baseline["api"], ADD_CENTS, backfill(assignments={"cents": {"F": "customer__email"}}))

    assert refused_at(response) == "/operations/0/operations/1/assignments/cents"
    assert "Joined field references" in response.json()["detail"]


def test_an_unknown_function_in_an_assignment_is_refused_at_its_name(project_with_baseline):
    response = submit(project_with_baseline["api"], ADD_CENTS, backfill(assignments={"cents": {"Sleep": [10]}}))

    assert refused_at(response) == "/operations/0/operations/1/assignments/cents/Sleep"


def test_an_ordering_key_that_is_not_unique_is_refused(project_with_baseline):
    response = submit(project_with_baseline["api"], ADD_CENTS, backfill(order_by="total"))

    assert refused_at(response) == "/operations/0/operations/1/order_by"


def test_a_filter_with_an_unknown_lookup_is_refused_at_the_filter(project_with_baseline):
    response = submit(project_with_baseline["api"], ADD_CENTS, backfill(filter={"cents__isnul": True}))

    assert refused_at(response) == "/operations/0/operations/1/filter"


def test_a_parity_check_on_an_unknown_field_is_refused_at_the_parity_check(project_with_baseline):
    response = submit(project_with_baseline["api"], ADD_CENTS, backfill(parity={"cent__isnull": True}))

    assert refused_at(response) == "/operations/0/operations/1/parity"


def test_a_batch_size_that_is_not_an_integer_is_refused_by_the_published_type(project_with_baseline):
    response = submit(project_with_baseline["api"], ADD_CENTS, backfill(batch_size="1000"))

    assert refused_at(response) == "/operations/0/operations/1/batch_size"


def test_a_schema_operation_after_a_backfill_in_the_same_migration_is_refused(project_with_baseline):
    later = {"op": "AlterField", "model_name": "order", "name": "cents", "field": {"type": "BigIntegerField"}}

    response = submit(project_with_baseline["api"], ADD_CENTS, backfill(), later)

    assert refused_at(response) == "/operations/0/operations/2/op"
    assert "follows a Backfill" in response.json()["detail"]


def test_a_backfill_is_stored_as_a_step_reviewers_can_read(project_with_baseline):
    step = backfill(filter={"cents__isnull": True}, parity={"cents__isnull": True}, batch_size=500, pause_ms=50)

    response = submit(project_with_baseline["api"], ADD_CENTS, step)

    assert response.status_code == 202, response.content
    described = response.json()["latest_revision"]["operations"][0]["operations"][1]
    assert described["type"] == "Backfill"
    assert described["backfill"]["batch_size"] == 500
    assert described["backfill"]["pause_ms"] == 50
    assert "F(total)" in described["backfill"]["assignments"]["cents"]


def test_a_filter_value_its_field_cannot_take_is_refused_at_the_filter(project_with_baseline):
    add_day = {"op": "AddField", "model_name": "order", "name": "day", "field": {"type": "DateField", "null": True}}
    step = {"op": "Backfill", "model": "Order", "assignments": {"day": "2026-01-01"}, "filter": {"day__lt": "not a date"}}

    response = submit(project_with_baseline["api"], add_day, step)

    assert refused_at(response) == "/operations/0/operations/1/filter"
    assert "invalid date format" in response.json()["detail"]


HOSTILE = [
    {"assignments": {"cents": {"Coalesce": {"F": "total"}}}},
    {"assignments": {"cents": {"F": "total", "Value": 1}}},
    {"assignments": {"cents": {"Case": {"when": [{"condition": {"total__in": 5}, "then": 1}]}}}},
    {"assignments": {"cents": {"Case": {"when": [{"then": 1}]}}}},
    {"assignments": {"cents": {"Cast": {"expression": 1, "output_field": {"type": "ForeignKey"}}}}},
    {"assignments": {"cents": {"Left": [{"F": "total"}]}}},
    {"assignments": {"cents": {"+": [{"F": "total"}, {"Now": []}, 1]}}},
    {"assignments": {"cents": {"F": "total__year__gt"}}},
    {"assignments": {"cents": 1}, "filter": {"total__range": "x"}},
    {"assignments": {"cents": 1}, "filter": {"customer__email__regex": {"F": 1}}},
    {"assignments": {"cents": 1}, "order_by": "customer"},
    {"assignments": {"cents": 1}, "model": "shop.order.x"},
    {"assignments": {"customer": {"Value": {"id": 1}}}},
    {"assignments": {"cents": 1}, "extra": True},
]


@pytest.mark.parametrize("members", HOSTILE)
def test_a_hostile_backfill_document_is_answered_without_a_server_error(project_with_baseline, members):
    response = submit(project_with_baseline["api"], ADD_CENTS, backfill(**members))

    assert response.status_code in (202, 400), response.content
    if response.status_code == 400:
        assert response["Content-Type"] == "application/problem+json"
