"""The whole flow through the client generated from openapi.yaml, against a live server.

Only the generated client talks to the server: every response is decoded into its generated
type (`raise_on_unexpected_status` makes an undocumented status an error too), so a schema
that does not describe what the server sends fails here, not in a user's integration.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
import time
from http import HTTPStatus

import pytest
from rest_framework.authtoken.models import Token
from schemagate_client import AuthenticatedClient
from schemagate_client.api.baselines import baselines_retrieve, projects_baselines_create
from schemagate_client.api.bundles import bundles_create, bundles_download, bundles_verify
from schemagate_client.api.change_requests import change_requests_retrieve, change_requests_submit
from schemagate_client.api.dry_runs import dry_runs_retrieve
from schemagate_client.api.projects import projects_create, projects_members_set
from schemagate_client.api.reviews import change_requests_reviews_create
from schemagate_client.models import (
    AddField,
    AddFieldOpEnum,
    AddFieldRequest,
    AddIndex,
    AddIndexOpEnum,
    AddIndexRequest,
    Baseline,
    BaselineCreateRequest,
    BaselineStatus,
    BundleCreateRequest,
    BundleVerification,
    ChangeRequest,
    ChangeRequestStatus,
    ChangeRequestSubmitRequest,
    CreateModelOpEnum,
    CreateModelRequest,
    DryRun,
    DryRunStatus,
    FieldSpecRequest,
    IndexSpecRequest,
    Member,
    MemberPermissionsEnum,
    MemberRequest,
    MigrationDocumentRequest,
    NamedFieldRequest,
    OnDeleteEnum,
    Problem,
    Project,
    ProjectRequest,
    ReleaseBundle,
    Review,
    ReviewDecision,
    ReviewDecisionRequest,
    TypeEnum,
)
from schemagate_client.types import File

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _client(live_server, user) -> AuthenticatedClient:  # noqa: ANN001
    token, _ = Token.objects.get_or_create(user=user)
    return AuthenticatedClient(base_url=live_server.url, token=token.key, raise_on_unexpected_status=True, timeout=120)


def _field(type_: TypeEnum, **options) -> FieldSpecRequest:  # noqa: ANN003
    return FieldSpecRequest(type_=type_, **options)


SHOP_BASELINE = [
    MigrationDocumentRequest(
        app_label="shop",
        operations=[
            CreateModelRequest(
                op=CreateModelOpEnum.CREATEMODEL,
                name="Customer",
                fields=[
                    NamedFieldRequest(name="id", field=_field(TypeEnum.BIGAUTOFIELD, primary_key=True)),
                    NamedFieldRequest(name="email", field=_field(TypeEnum.EMAILFIELD, max_length=254, unique=True)),
                ],
            ),
            CreateModelRequest(
                op=CreateModelOpEnum.CREATEMODEL,
                name="Order",
                fields=[
                    NamedFieldRequest(name="id", field=_field(TypeEnum.BIGAUTOFIELD, primary_key=True)),
                    NamedFieldRequest(name="total", field=_field(TypeEnum.INTEGERFIELD)),
                    NamedFieldRequest(
                        name="customer",
                        field=_field(TypeEnum.FOREIGNKEY, to="shop.Customer", on_delete=OnDeleteEnum.CASCADE),
                    ),
                ],
            ),
        ],
    )
]

ADD_NOTE_AND_INDEX = [
    MigrationDocumentRequest(
        app_label="shop",
        operations=[
            AddFieldRequest(
                op=AddFieldOpEnum.ADDFIELD, model_name="order", name="note", field=_field(TypeEnum.TEXTFIELD, null=True)
            ),
            AddIndexRequest(
                op=AddIndexOpEnum.ADDINDEX, model_name="order", index=IndexSpecRequest(name="order_total_idx", fields=["total"])
            ),
        ],
    )
]


def _poll(fetch, done, timeout: float = 60.0):  # noqa: ANN001, ANN202
    """Fetch until `done(result)`; the eager in-process queue usually finishes before the first poll."""
    deadline = time.monotonic() + timeout
    while True:
        result = fetch()
        if done(result) or time.monotonic() > deadline:
            return result
        time.sleep(0.2)


def _with_file_changed(archive: bytes, suffix: str) -> bytes:
    """The same archive with one more line in its first file ending in `suffix`."""
    out = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as source, tarfile.open(fileobj=out, mode="w:gz") as target:
        changed = False
        for member in source.getmembers():
            data = source.extractfile(member).read() if member.isfile() else None
            if data is not None and not changed and member.name.endswith(suffix):
                data += b"\n-- changed after signing\n"
                member.size = len(data)
                changed = True
            target.addfile(member, io.BytesIO(data) if data is not None else None)
    assert changed, f"no {suffix} file in the bundle"
    return out.getvalue()


def test_generated_client_runs_the_whole_flow_with_typed_responses(live_server):
    owner = UserFactory(username="owner")
    reviewer = UserFactory(username="reviewer")
    owner_api = _client(live_server, owner)
    reviewer_api = _client(live_server, reviewer)

    project = projects_create.sync(client=owner_api, body=ProjectRequest(slug="shop", name="Shop"))
    assert isinstance(project, Project) and project.slug == "shop"

    baseline = projects_baselines_create.sync(client=owner_api, slug="shop", body=BaselineCreateRequest(operations=SHOP_BASELINE))
    assert isinstance(baseline, Baseline)
    baseline = _poll(
        lambda: baselines_retrieve.sync(client=owner_api, id=baseline.id),
        lambda b: b.status in (BaselineStatus.READY, BaselineStatus.FAILED),
    )
    assert baseline.status == BaselineStatus.READY, baseline.error

    member = projects_members_set.sync(
        client=owner_api, slug="shop", body=MemberRequest(username="reviewer", permissions=[MemberPermissionsEnum.REVIEW_CHANGE])
    )
    assert isinstance(member, Member) and MemberPermissionsEnum.REVIEW_CHANGE in member.permissions

    submitted = change_requests_submit.sync_detailed(
        client=owner_api, body=ChangeRequestSubmitRequest(project="shop", title="Order notes", operations=ADD_NOTE_AND_INDEX)
    )
    assert submitted.status_code == HTTPStatus.ACCEPTED
    change_request = submitted.parsed
    assert isinstance(change_request, ChangeRequest)
    revision = change_request.latest_revision
    # The union of operations decodes each member to its own class (distinct required `op`).
    add_field, add_index = revision.source.operations[0].operations
    assert type(add_field) is AddField and add_field.op == AddFieldOpEnum.ADDFIELD and add_field.field.null is True
    assert type(add_index) is AddIndex and add_index.index.fields == ["total"]

    dry_run = _poll(
        lambda: dry_runs_retrieve.sync(client=owner_api, id=change_request.latest_dry_run),
        lambda d: d.status in (DryRunStatus.SUCCEEDED, DryRunStatus.FAILED),
    )
    assert isinstance(dry_run, DryRun) and dry_run.status == DryRunStatus.SUCCEEDED, dry_run.error
    statements = dry_run.report.statements
    add_column = next(s for s in statements if "ADD COLUMN" in s.sql)
    create_index = next(s for s in statements if s.sql.startswith("CREATE INDEX"))
    assert any(lock.relation == "shop_order" and lock.mode == "AccessExclusiveLock" for lock in add_column.locks)
    assert any(lock.relation == "shop_order" and lock.mode == "ShareLock" for lock in create_index.locks)
    assert [(scan.table, scan.count) for scan in create_index.sequential_scans] == [("shop_order", 1)]
    assert change_requests_retrieve.sync(client=owner_api, id=change_request.id).status == ChangeRequestStatus.READY_FOR_REVIEW

    refused = change_requests_reviews_create.sync_detailed(
        client=owner_api,
        id=change_request.id,
        body=ReviewDecisionRequest(decision=ReviewDecision.APPROVE, revision=revision.id),
    )
    assert refused.status_code == HTTPStatus.FORBIDDEN
    assert refused.headers["content-type"] == "application/problem+json"
    assert isinstance(refused.parsed, Problem) and refused.parsed.status == 403

    review = change_requests_reviews_create.sync(
        client=reviewer_api,
        id=change_request.id,
        body=ReviewDecisionRequest(decision=ReviewDecision.APPROVE, revision=revision.id, comment="fine"),
    )
    assert isinstance(review, Review) and review.reviewer == "reviewer" and review.revision == revision.id
    assert change_requests_retrieve.sync(client=owner_api, id=change_request.id).status == ChangeRequestStatus.APPROVED

    bundle = bundles_create.sync(client=owner_api, body=BundleCreateRequest(project="shop", change_requests=[change_request.id]))
    assert isinstance(bundle, ReleaseBundle) and [item.change_request for item in bundle.items] == [change_request.id]
    downloaded = bundles_download.sync(client=owner_api, id=bundle.id)
    assert isinstance(downloaded, File)
    archive = downloaded.payload.read()
    assert hashlib.sha256(archive).hexdigest() == bundle.sha256

    verified = bundles_verify.sync(client=owner_api, body=File(payload=io.BytesIO(archive), mime_type="application/gzip"))
    assert isinstance(verified, BundleVerification)
    assert (verified.valid, verified.problems, verified.project, verified.bundle) == (True, [], "shop", bundle.number)
    assert verified.files_checked > 0

    tampered = bundles_verify.sync(
        client=owner_api, body=File(payload=io.BytesIO(_with_file_changed(archive, ".sql")), mime_type="application/gzip")
    )
    assert isinstance(tampered, BundleVerification) and tampered.valid is False
    assert any(problem.file.endswith(".sql") for problem in tampered.problems), tampered.problems
    assert change_requests_retrieve.sync(client=owner_api, id=change_request.id).status == ChangeRequestStatus.RELEASED
