"""A SQLite project's whole flow through the client generated from openapi.yaml, on a SQLite
shadow directory: the typed report says per statement what ran, the database's write lock and
the table Django remade, the Markdown and SVG renderings carry it, and the sealed bundle
downloads and verifies.

Only the generated client talks to the server, so a report field of this engine that the
published schema does not describe fails here, not in a team's integration.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from http import HTTPStatus
from pathlib import Path

import pytest
from schemagate_client.api.baselines import baselines_retrieve, projects_baselines_create
from schemagate_client.api.bundles import bundles_create, bundles_download, bundles_verify
from schemagate_client.api.change_requests import change_requests_retrieve, change_requests_submit
from schemagate_client.api.dry_runs import dry_runs_report_markdown, dry_runs_report_svg, dry_runs_retrieve
from schemagate_client.api.projects import projects_create, projects_members_set
from schemagate_client.api.reviews import change_requests_reviews_create
from schemagate_client.models import (
    AlterFieldOpEnum,
    AlterFieldRequest,
    BaselineCreateRequest,
    BaselineStatus,
    BundleCreateRequest,
    BundleVerification,
    ChangeRequestStatus,
    ChangeRequestSubmitRequest,
    DatabaseEngine,
    DryRunReport,
    DryRunStatus,
    MemberPermissionsEnum,
    MemberRequest,
    MigrationDocumentRequest,
    ProjectRequest,
    ReleaseBundle,
    ReviewDecision,
    ReviewDecisionRequest,
    TableRemake,
    TypeEnum,
)
from schemagate_client.types import File

from changeapi.services.shadows import shadow_chores_wait
from tests.e2e.test_generated_client_flow import SHOP_BASELINE, _client, _field, _poll
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

WIDEN_TOTAL = [
    MigrationDocumentRequest(
        app_label="shop",
        operations=[
            AlterFieldRequest(
                op=AlterFieldOpEnum.ALTERFIELD, model_name="order", name="total", field=_field(TypeEnum.BIGINTEGERFIELD)
            ),
        ],
    )
]


@pytest.fixture
def sqlite_shadow(settings, tmp_path: Path) -> Iterator[None]:  # noqa: ANN001
    directory = tmp_path / "shadows"
    directory.mkdir()
    settings.SHADOW_SERVERS = [*settings.SHADOW_SERVERS, f"sqlite://{directory}"]
    settings.SCHEMAGATE_SEED_MAX_ROWS = 2_000
    yield
    shadow_chores_wait()


def test_generated_client_runs_a_sqlite_projects_flow_with_typed_responses(live_server, sqlite_shadow):  # noqa: ANN001
    owner_api = _client(live_server, UserFactory(username="owner"))
    reviewer_api = _client(live_server, UserFactory(username="reviewer"))
    projects_create.sync(
        client=owner_api,
        body=ProjectRequest(slug="shop", name="Shop", engine=DatabaseEngine.SQLITE, engine_version=3),
    )
    baseline = projects_baselines_create.sync(client=owner_api, slug="shop", body=BaselineCreateRequest(operations=SHOP_BASELINE))
    baseline = _poll(
        lambda: baselines_retrieve.sync(client=owner_api, id=baseline.id),
        lambda b: b.status in (BaselineStatus.READY, BaselineStatus.FAILED),
    )
    assert baseline.status == BaselineStatus.READY, baseline.error
    projects_members_set.sync(
        client=owner_api, slug="shop", body=MemberRequest(username="reviewer", permissions=[MemberPermissionsEnum.REVIEW_CHANGE])
    )

    submitted = change_requests_submit.sync_detailed(
        client=owner_api, body=ChangeRequestSubmitRequest(project="shop", title="Wider totals", operations=WIDEN_TOTAL)
    )
    assert submitted.status_code == HTTPStatus.ACCEPTED
    change_request = submitted.parsed
    dry_run = _poll(
        lambda: dry_runs_retrieve.sync(client=owner_api, id=change_request.latest_dry_run),
        lambda d: d.status in (DryRunStatus.SUCCEEDED, DryRunStatus.FAILED),
    )
    assert dry_run.status == DryRunStatus.SUCCEEDED, dry_run.error
    report = dry_run.report
    assert isinstance(report, DryRunReport), type(report)
    assert report.engine == "sqlite"
    (remake,) = report.remakes
    assert isinstance(remake, TableRemake) and remake.table == "shop_order"
    steps = [report.statements[i] for i in remake.statement_indexes]
    assert [s.command for s in steps] == ["CREATE TABLE", "INSERT", "DROP TABLE", "ALTER TABLE", "CREATE INDEX"]
    assert steps[0].sql.startswith('CREATE TABLE "new__shop_order"')
    # The remake is one transaction: the database's write lock is held from its first write to its commit.
    (span,) = report.lock_spans
    assert (span.relation, span.mode, span.blocks_writes, span.blocks_reads) == ("database", "RESERVED", True, False)
    (table,) = report.tables
    assert table.table == "database" and table.writes_blocked_ms >= remake.duration_ms

    markdown = dry_runs_report_markdown.sync(client=owner_api, id=dry_run.id)
    assert isinstance(markdown, str) and "new__shop_order" in markdown
    svg = dry_runs_report_svg.sync_detailed(client=owner_api, id=dry_run.id)
    assert svg.status_code == HTTPStatus.OK and b"database" in svg.content

    change_requests_reviews_create.sync(
        client=reviewer_api,
        id=change_request.id,
        body=ReviewDecisionRequest(decision=ReviewDecision.APPROVE, revision=change_request.latest_revision.id),
    )
    assert change_requests_retrieve.sync(client=owner_api, id=change_request.id).status == ChangeRequestStatus.APPROVED
    bundle = bundles_create.sync(client=owner_api, body=BundleCreateRequest(project="shop", change_requests=[change_request.id]))
    assert isinstance(bundle, ReleaseBundle)
    archive = bundles_download.sync(client=owner_api, id=bundle.id).payload.read()
    assert hashlib.sha256(archive).hexdigest() == bundle.sha256
    verified = bundles_verify.sync(client=owner_api, body=File(payload=io.BytesIO(archive), mime_type="application/gzip"))
    assert isinstance(verified, BundleVerification)
    assert (verified.valid, verified.problems, verified.project) == (True, [], "shop")
