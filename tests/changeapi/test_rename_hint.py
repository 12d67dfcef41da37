"""A models-form rename sent without `renames` is refused with the `renames` entry that would confirm it."""

from __future__ import annotations

import pytest

from changeapi.models import ChangeRequest
from tests.changeapi.test_intake_forms import MODELS, models_change, shop  # noqa: F401 - the fixture

pytestmark = pytest.mark.django_db(transaction=True)

RENAMED_TOTAL = MODELS.replace("total = models.IntegerField()", "amount = models.IntegerField()")


def _post(api, models):  # noqa: ANN001, ANN202
    return api.post("/api/v1/change-requests/", {"project": "shop", "title": "Rename", "models": models}, format="json")


def test_a_rename_without_renames_is_refused_with_the_renames_entry_to_add(shop):  # noqa: F811
    response = _post(shop, models_change(RENAMED_TOTAL))

    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["suggestion"] == {"renames": {"fields": {"shop.Order.total": "amount"}}}
    assert (
        'If total was renamed to amount, say so in models.renames: {"fields": {"shop.Order.total": "amount"}}' in body["detail"]
    )
    assert body["errors"][0]["file"] == "shop/models.py"
    assert not ChangeRequest.objects.exists()


def test_the_suggested_renames_entry_makes_the_same_models_a_rename(shop):  # noqa: F811
    refused = _post(shop, models_change(RENAMED_TOTAL)).json()

    response = _post(shop, models_change(RENAMED_TOTAL, **refused["suggestion"]))

    assert response.status_code == 202, response.content
    [migration] = response.json()["latest_revision"]["operations"]
    assert [op["type"] for op in migration["operations"]] == ["RenameField"]


def test_a_new_not_null_field_of_another_type_gets_no_rename_suggestion(shop):  # noqa: F811
    response = _post(shop, models_change(MODELS.replace("total = models.IntegerField()", "amount = models.TextField()")))

    assert response.status_code == 400
    assert "suggestion" not in response.json()
    assert "renames" not in response.json()["detail"]
