"""Bad submissions get a located problem+json and store nothing."""

from __future__ import annotations

import pytest

from changeapi.models import AuditEvent, ChangeRequest, Revision

pytestmark = pytest.mark.django_db(transaction=True)


def _post(api, migrations):  # noqa: ANN001
    return api.post("/api/v1/change-requests/", {"project": "shop", "title": "bad", "operations": migrations}, format="json")


def _nothing_stored() -> bool:
    return not ChangeRequest.objects.exists() and not Revision.objects.exists()


def test_unknown_field_type_is_refused_with_its_json_pointer(project_with_baseline):
    audit_before = AuditEvent.objects.count()
    response = _post(
        project_with_baseline["api"],
        [
            {
                "app_label": "shop",
                "operations": [{"op": "AddField", "model_name": "order", "name": "x", "field": {"type": "MoneyField"}}],
            }
        ],
    )

    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["errors"][0]["pointer"] == "/operations/0/operations/0/field/type"
    assert "MoneyField" in body["detail"]
    assert _nothing_stored()
    assert AuditEvent.objects.count() == audit_before


def test_operation_on_a_missing_model_is_refused_with_its_pointer(project_with_baseline):
    response = _post(
        project_with_baseline["api"],
        [{"app_label": "shop", "operations": [{"op": "RemoveField", "model_name": "invoice", "name": "total"}]}],
    )

    assert response.status_code == 400
    assert response.json()["errors"][0]["pointer"] == "/operations/0/operations/0"
    assert _nothing_stored()


def test_unknown_operation_is_refused(project_with_baseline):
    response = _post(project_with_baseline["api"], [{"app_label": "shop", "operations": [{"op": "RunPython", "code": "x"}]}])

    assert response.status_code == 400
    assert response.json()["errors"][0]["pointer"] == "/operations/0/operations/0/op"
    assert _nothing_stored()


def test_missing_title_is_a_validation_problem(project_with_baseline):
    response = project_with_baseline["api"].post("/api/v1/change-requests/", {"project": "shop", "operations": []}, format="json")

    assert response.status_code == 400
    pointers = {e["pointer"] for e in response.json()["errors"]}
    assert "/title" in pointers
    assert _nothing_stored()


def test_foreign_key_to_a_missing_model_is_refused(project_with_baseline):
    response = _post(
        project_with_baseline["api"],
        [
            {
                "app_label": "shop",
                "operations": [
                    {
                        "op": "AddField",
                        "model_name": "order",
                        "name": "coupon",
                        "field": {"type": "ForeignKey", "to": "shop.Coupon", "on_delete": "CASCADE", "null": True},
                    }
                ],
            }
        ],
    )

    assert response.status_code == 400
    assert "Coupon" in response.json()["detail"] or "coupon" in response.json()["detail"]
    assert _nothing_stored()


def test_project_intake_settings_are_validated_and_stored(project_with_baseline):
    api = project_with_baseline["api"]
    field_map = {
        "shop.fields.MoneyField": {"base": "django.db.models.DecimalField", "kwargs": {"max_digits": 12, "decimal_places": 2}}
    }

    refused = api.patch("/api/v1/projects/shop/", {"intake_settings": {"field_map": {"x.Y": {"kwargs": {}}}}}, format="json")
    accepted = api.patch("/api/v1/projects/shop/", {"intake_settings": {"field_map": field_map}}, format="json")

    assert refused.status_code == 400
    assert refused.json()["errors"][0]["pointer"].startswith("/intake_settings")
    assert accepted.status_code == 200, accepted.content
    assert accepted.json()["intake_settings"]["field_map"] == field_map


def test_a_method_the_endpoint_lacks_is_a_problem_with_a_filled_title(project_with_baseline):
    response = project_with_baseline["api"].delete("/api/v1/change-requests/")

    assert response.status_code == 405
    problem = response.json()
    assert (problem["title"], problem["detail"]) == ("Method not allowed", 'Method "DELETE" not allowed.')


def test_a_body_of_an_unsupported_media_type_is_a_problem_with_a_filled_title(project_with_baseline):
    response = project_with_baseline["api"].post("/api/v1/change-requests/", "x", content_type="text/plain")

    assert response.status_code == 415
    problem = response.json()
    assert problem["title"] == "Unsupported media type"
    assert "text/plain" in problem["detail"]


def test_a_misspelt_field_type_is_answered_with_the_type_it_is_close_to(project_with_baseline):
    field = {"type": "EmailFeld", "max_length": 254, "null": True}
    response = _post(
        project_with_baseline["api"],
        [{"app_label": "shop", "operations": [{"op": "AddField", "model_name": "order", "name": "x", "field": field}]}],
    )

    assert response.status_code == 400
    assert "'EmailFeld' is not one of the allowed values (did you mean 'EmailField'?)" in response.json()["detail"]


def test_a_misspelt_field_of_the_baseline_is_answered_with_the_field_it_is_close_to(project_with_baseline):
    response = _post(
        project_with_baseline["api"],
        [{"app_label": "shop", "operations": [{"op": "RemoveField", "model_name": "order", "name": "totl"}]}],
    )

    assert response.status_code == 400
    assert "did you mean 'total'?" in response.json()["detail"]


def test_a_misspelt_model_of_the_baseline_is_answered_with_the_model_it_is_close_to(project_with_baseline):
    response = _post(
        project_with_baseline["api"],
        [{"app_label": "shop", "operations": [{"op": "RemoveField", "model_name": "ordr", "name": "total"}]}],
    )

    assert response.status_code == 400
    assert "did you mean 'order'?" in response.json()["detail"]
