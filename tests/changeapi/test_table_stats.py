"""Uploading and reading production table stats and activity over HTTP."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from changeapi.models import AuditEvent
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

UPLOAD = {
    "project": "shop",
    "tables": [
        {
            "table": "shop_order",
            "rows": 48_000_000,
            "total_bytes": 9_663_676_416,
            "queries_per_second": 850,
            "oldest_transaction_seconds": 4,
        },
        {"table": "shop_customer", "rows": 1_200_000, "total_bytes": 402_653_184},
    ],
}


@pytest.fixture
def shop(owner, client_for):
    api = client_for(owner)
    assert api.post("/api/v1/projects/", {"slug": "shop", "name": "Shop"}, format="json").status_code == 201
    return api


def _member(api, username, permissions):
    UserFactory(username=username)
    response = api.post("/api/v1/projects/shop/members/", {"username": username, "permissions": permissions}, format="json")
    assert response.status_code == 200, response.content


def test_manager_uploads_sizes_and_traffic_and_reads_them_back(shop):
    response = shop.post("/api/v1/table-stats/", UPLOAD, format="json")

    assert response.status_code == 200, response.content
    listed = shop.get("/api/v1/table-stats/?project=shop").json()["results"]
    order = next(t for t in listed if t["table"] == "shop_order")
    assert (order["rows"], order["total_bytes"], order["queries_per_second"]) == (48_000_000, 9_663_676_416, 850.0)
    assert next(t for t in listed if t["table"] == "shop_customer")["queries_per_second"] is None


def test_upload_with_replace_forgets_tables_not_sent(shop):
    shop.post("/api/v1/table-stats/", UPLOAD, format="json")

    shop.post("/api/v1/table-stats/", {"project": "shop", "tables": [UPLOAD["tables"][1]]}, format="json")

    assert [t["table"] for t in shop.get("/api/v1/table-stats/?project=shop").json()["results"]] == ["shop_customer"]


def test_upload_is_recorded_in_the_audit_trail(shop):
    shop.post("/api/v1/table-stats/", UPLOAD, format="json")

    assert AuditEvent.objects.filter(action="table_stats.uploaded").count() == 1


def test_upload_without_an_identifier_like_table_name_is_refused(shop):
    bad = {"project": "shop", "tables": [{"table": "shop_order; DROP TABLE x", "rows": 1, "total_bytes": 1}]}

    response = shop.post("/api/v1/table-stats/", bad, format="json")

    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"


def test_upload_listing_a_table_twice_is_refused(shop):
    twice = {"project": "shop", "tables": [UPLOAD["tables"][1], UPLOAD["tables"][1]]}

    assert shop.post("/api/v1/table-stats/", twice, format="json").status_code == 400


def test_anonymous_upload_is_unauthorized(shop, client_for):
    assert client_for(None).post("/api/v1/table-stats/", UPLOAD, format="json").status_code == 401


def test_user_without_access_to_the_project_gets_not_found(shop, client_for):
    stranger = UserFactory(username="stranger")

    assert client_for(stranger).post("/api/v1/table-stats/", UPLOAD, format="json").status_code == 404


def test_read_only_member_can_list_but_not_upload(shop, client_for):
    _member(shop, "viewer", ["view_project"])
    shop.post("/api/v1/table-stats/", UPLOAD, format="json")
    viewer = client_for(get_user_model().objects.get(username="viewer"))

    assert viewer.post("/api/v1/table-stats/", UPLOAD, format="json").status_code == 403
    assert len(viewer.get("/api/v1/table-stats/?project=shop").json()["results"]) == 2
