"""A baseline's submitted source (hundreds of migration files for a real history) is read only
where it is needed: loading a baseline, alone or beside a dry-run or a project, leaves it in
the database until `source` is read."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from changeapi.models import Baseline, DryRun, Project
from tests.conftest import ADD_NOTE_AND_INDEX, SHOP_BASELINE

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_baseline_is_loaded_without_its_source(project_with_baseline: dict[str, Any]) -> None:
    baseline = Baseline.objects.get(project__slug="shop")

    assert baseline.get_deferred_fields() == {"source"}


def test_reading_the_source_loads_it_with_one_query(project_with_baseline: dict[str, Any]) -> None:
    baseline = Baseline.objects.get(project__slug="shop")
    stored = Baseline.objects.values_list("source", flat=True).get(pk=baseline.pk)

    with CaptureQueriesContext(connection) as queries:
        source = baseline.source

    assert len(queries.captured_queries) == 1
    assert source == stored
    assert source[0]["app_label"] == SHOP_BASELINE[0]["app_label"]


def test_a_dry_runs_baseline_comes_without_its_source(project_with_baseline: dict[str, Any]) -> None:
    api = project_with_baseline["api"]
    response = api.post(
        "/api/v1/change-requests/", {"project": "shop", "title": "note", "operations": ADD_NOTE_AND_INDEX}, format="json"
    )
    assert response.status_code == 202, response.content

    dry_run = DryRun.objects.get(pk=response.json()["latest_dry_run"])

    assert "source" in dry_run.baseline.get_deferred_fields()
    assert "source" in Project.objects.get(slug="shop").current_baseline.get_deferred_fields()
