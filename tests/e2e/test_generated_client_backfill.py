"""A Backfill step through the client generated from openapi.yaml: the union member decodes to its
own class, and the dry-run report's backfill block to its typed parts."""

from __future__ import annotations

from http import HTTPStatus

import pytest
from schemagate_client.api.baselines import baselines_retrieve, projects_baselines_create
from schemagate_client.api.change_requests import change_requests_submit
from schemagate_client.api.dry_runs import dry_runs_retrieve
from schemagate_client.api.projects import projects_create
from schemagate_client.models import (
    AddFieldOpEnum,
    AddFieldRequest,
    Backfill,
    BackfillOpEnum,
    BackfillRequest,
    BackfillRequestAssignments,
    BackfillRequestParity,
    BackfillTiming,
    BaselineCreateRequest,
    BaselineStatus,
    ChangeRequestSubmitRequest,
    DryRunStatus,
    MigrationDocumentRequest,
    ProjectRequest,
    TypeEnum,
)

from tests.e2e.test_generated_client_flow import SHOP_BASELINE, _client, _field, _poll
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

CENTS = [
    MigrationDocumentRequest(
        app_label="shop",
        operations=[
            AddFieldRequest(
                op=AddFieldOpEnum.ADDFIELD, model_name="order", name="cents", field=_field(TypeEnum.BIGINTEGERFIELD, null=True)
            ),
            BackfillRequest(
                op=BackfillOpEnum.BACKFILL,
                model="shop.Order",
                assignments=BackfillRequestAssignments.from_dict({"cents": {"*": [{"F": "total"}, 100]}}),
                batch_size=500,
                parity=BackfillRequestParity.from_dict({"cents__isnull": True}),
            ),
        ],
    )
]


def test_generated_client_submits_a_backfill_and_reads_its_typed_timing(live_server):
    api = _client(live_server, UserFactory(username="owner"))
    projects_create.sync(client=api, body=ProjectRequest(slug="shop", name="Shop"))
    baseline = projects_baselines_create.sync(client=api, slug="shop", body=BaselineCreateRequest(operations=SHOP_BASELINE))
    baseline = _poll(lambda: baselines_retrieve.sync(client=api, id=baseline.id), lambda b: b.status != BaselineStatus.BUILDING)
    assert baseline.status == BaselineStatus.READY, baseline.error

    submitted = change_requests_submit.sync_detailed(
        client=api, body=ChangeRequestSubmitRequest(project="shop", title="Cents", operations=CENTS)
    )

    assert submitted.status_code == HTTPStatus.ACCEPTED
    _, step = submitted.parsed.latest_revision.source.operations[0].operations
    assert type(step) is Backfill and step.batch_size == 500
    dry_run = _poll(
        lambda: dry_runs_retrieve.sync(client=api, id=submitted.parsed.latest_dry_run),
        lambda d: d.status in (DryRunStatus.SUCCEEDED, DryRunStatus.FAILED),
    )
    assert dry_run.status == DryRunStatus.SUCCEEDED, dry_run.error
    (timing,) = dry_run.report.backfills
    assert isinstance(timing, BackfillTiming)
    assert (timing.model, timing.key_column, timing.batch_size) == ("shop.Order", "id", 500)
