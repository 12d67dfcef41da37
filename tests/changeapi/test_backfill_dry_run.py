"""A change with a Backfill step, dry-run through the API on a seeded clone: the report's backfill
block, the project's target lock time, and who may see and change them."""

from __future__ import annotations

from typing import Any

import pytest

from changeapi.models import AuditEvent
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

STATS = {
    "project": "shop",
    "tables": [
        {"table": "shop_order", "rows": 30_000, "total_bytes": 30_000 * 120},
        {"table": "shop_customer", "rows": 300, "total_bytes": 300 * 100},
    ],
}
CHANGE = [
    {
        "app_label": "shop",
        "operations": [
            {"op": "AddField", "model_name": "order", "name": "cents", "field": {"type": "BigIntegerField", "null": True}},
            {
                "op": "Backfill",
                "model": "shop.Order",
                "assignments": {"cents": {"*": [{"F": "total"}, 100]}},
                "filter": {"cents__isnull": True},
                "batch_size": 500,
                "pause_ms": 20,
                "parity": {"cents__isnull": True},
            },
        ],
    }
]


def dry_run_of_backfill(api: Any) -> dict[str, Any]:
    assert api.post("/api/v1/table-stats/", STATS, format="json").status_code in (200, 201)
    response = api.post("/api/v1/change-requests/", {"project": "shop", "title": "cents", "operations": CHANGE}, format="json")
    assert response.status_code == 202, response.content
    dry_run = api.get(f"/api/v1/dry-runs/{response.json()['latest_dry_run']}/").json()
    assert dry_run["status"] == "succeeded", dry_run
    return dry_run


def test_a_dry_run_reports_the_sampled_batches_and_the_whole_backfill_at_production_size(project_with_baseline):
    timing = dry_run_of_backfill(project_with_baseline["api"])["report"]["backfills"][0]

    assert [batch["rows"] for batch in timing["batches"]] == [500] * 5
    assert all(batch["wal_bytes"] > 0 and batch["lock_ms"] > 0 for batch in timing["batches"])
    assert timing["at_production"]["rows"] == 30_000
    assert timing["at_production"]["batches"] == 60
    assert timing["at_production"]["pauses_ms"] == 59 * 20
    assert timing["recommended_batch_size"] >= 1
    assert timing["parity"]["after"] == timing["parity"]["before"] - 2_500


def test_the_recommendation_follows_the_projects_target_lock_time(project_with_baseline):
    api = project_with_baseline["api"]
    assert api.patch("/api/v1/projects/shop/", {"backfill_target_lock_ms": 50}, format="json").status_code == 200

    timing = dry_run_of_backfill(api)["report"]["backfills"][0]

    assert timing["target_lock_ms"] == 50
    assert "under 50 ms" in timing["recommendation"]


def test_changing_the_target_lock_time_is_audited_with_its_values(project_with_baseline):
    api = project_with_baseline["api"]

    response = api.patch("/api/v1/projects/shop/", {"backfill_target_lock_ms": 120}, format="json")

    assert response.status_code == 200
    assert response.json()["backfill_target_lock_ms"] == 120
    event = AuditEvent.objects.filter(action="project.updated").latest("id")
    assert event.before == {"backfill_target_lock_ms": 200}
    assert event.after == {"backfill_target_lock_ms": 120}


def test_a_target_lock_time_of_zero_is_refused(project_with_baseline):
    response = project_with_baseline["api"].patch("/api/v1/projects/shop/", {"backfill_target_lock_ms": 0}, format="json")

    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"


def test_an_outsider_gets_404_on_a_dry_run_with_a_backfill(project_with_baseline, client_for):
    dry_run = dry_run_of_backfill(project_with_baseline["api"])
    outsider = client_for(UserFactory(username="outsider"))

    response = outsider.get(f"/api/v1/dry-runs/{dry_run['id']}/")

    assert response.status_code == 404


def test_a_read_only_member_reads_the_backfill_but_cannot_change_the_target(project_with_baseline, client_for):
    api = project_with_baseline["api"]
    dry_run = dry_run_of_backfill(api)
    UserFactory(username="viewer")
    api.post("/api/v1/projects/shop/members/", {"username": "viewer", "permissions": ["view_project"]}, format="json")
    viewer = client_for(type(project_with_baseline["owner"]).objects.get(username="viewer"))

    read = viewer.get(f"/api/v1/dry-runs/{dry_run['id']}/")
    change = viewer.patch("/api/v1/projects/shop/", {"backfill_target_lock_ms": 10}, format="json")

    assert read.status_code == 200
    assert read.json()["report"]["backfills"][0]["batch_size"] == 500
    assert change.status_code == 403
