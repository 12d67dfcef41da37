"""List and detail endpoints cost a fixed number of queries, however many objects they show.

Each endpoint is read with 2 objects, then with 20 (rows, or children of the one object a
detail shows); the number of SQL queries must not change. Objects are made directly in the
database: what is measured is the read path, and a real dry-run per row would only be slow.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from approvals.models import BundleItem, ReleaseBundle, Review
from changeapi.audit import AuditContext, audit_record
from changeapi.dryrun.contract import to_json
from changeapi.models import Baseline, ChangeRequest, DryRun, Project, Revision
from changeapi.services.projects import project_create
from tests.factories import ReportFactory, StatementTraceFactory, UserFactory

pytestmark = pytest.mark.django_db

_numbers = itertools.count(1)

REPORT = to_json(
    ReportFactory(statements=(StatementTraceFactory(index=0, sql="ALTER TABLE shop_order ADD COLUMN note text NULL"),))
)


@dataclass
class World:
    """One project seen by its owner, and a way to add more of each kind of object to it."""

    owner: Any
    project: Project
    baseline: Baseline
    api: APIClient

    def change_request(self, *, revisions: int = 1) -> ChangeRequest:
        change_request = ChangeRequest.objects.create(
            project=self.project, number=next(_numbers), title="Order notes", author=self.owner
        )
        for _ in range(revisions):
            self.revision(change_request)
        return change_request

    def revision(self, change_request: ChangeRequest) -> Revision:
        number = change_request.revisions.count() + 1
        revision = Revision.objects.create(
            change_request=change_request,
            number=number,
            form="operations",
            source=[{"app_label": "shop", "operations": []}],
            sha256=f"{number:064d}",
            operations=[{"app_label": "shop", "name": "0002_note", "atomic": True, "dependencies": [], "operations": []}],
            baseline=self.baseline,
            created_by=self.owner,
        )
        self.dry_run(revision)
        return revision

    def dry_run(self, revision: Revision) -> DryRun:
        return DryRun.objects.create(
            revision=revision,
            baseline=self.baseline,
            status=DryRun.Status.SUCCEEDED,
            progress_done=1,
            progress_total=1,
            report=REPORT,
            finished_at=timezone.now(),
        )

    def review(self, change_request: ChangeRequest) -> Review:
        reviewer = UserFactory()
        revision = change_request.revisions.order_by("-number").first()
        return Review.objects.create(revision=revision, dry_run=revision.dry_runs.first(), reviewer=reviewer, decision="approve")

    def bundle(self, *, items: int = 1) -> ReleaseBundle:
        bundle = ReleaseBundle.objects.create(
            project=self.project,
            number=next(_numbers),
            archive=b"",
            sha256="0" * 64,
            manifest={},
            baseline=self.baseline,
            created_by=self.owner,
        )
        for position in range(1, items + 1):
            self.bundle_item(bundle, position)
        return bundle

    def bundle_item(self, bundle: ReleaseBundle, position: int) -> BundleItem:
        change_request = self.change_request()
        revision = change_request.revisions.get()
        return BundleItem.objects.create(
            bundle=bundle, change_request=change_request, revision=revision, dry_run=revision.dry_runs.get(), position=position
        )

    def audit_event(self) -> None:
        audit_record(
            context=AuditContext(user=self.owner, via="session", source_ip="127.0.0.1"),
            action="change_request.submitted",
            target=self.project,
            project=self.project,
            after={"number": next(_numbers)},
        )

    def other_project(self) -> Project:
        project = project_create(creator=self.owner, slug=f"p{next(_numbers)}", name="Other", context=_context(self.owner))
        baseline = _ready_baseline(project, self.owner)
        Project.objects.filter(pk=project.pk).update(current_baseline=baseline)
        return project


def _context(user: Any) -> AuditContext:
    return AuditContext(user=user, via="session", source_ip="127.0.0.1")


def _ready_baseline(project: Project, author: Any) -> Baseline:
    return Baseline.objects.create(
        project=project,
        version=1,
        form="operations",
        source=[{"app_label": "shop", "operations": []}],
        sha256="a" * 64,
        status=Baseline.Status.READY,
        created_by=author,
    )


@pytest.fixture
def world() -> World:
    owner = UserFactory(username="owner")
    project = project_create(creator=owner, slug="shop", name="Shop", context=_context(owner))
    baseline = _ready_baseline(project, owner)
    Project.objects.filter(pk=project.pk).update(current_baseline=baseline)
    project.refresh_from_db()
    api = APIClient()
    api.force_authenticate(user=owner)
    return World(owner=owner, project=project, baseline=baseline, api=api)


def _queries(api: APIClient, url: str) -> int:
    """Queries of one GET, after a first one has filled the per-process caches (content types)."""
    assert api.get(url).status_code == 200
    with CaptureQueriesContext(connection) as captured:
        response = api.get(url)
    assert response.status_code == 200, response.content
    return len(captured.captured_queries)


@dataclass
class Endpoint:
    """How to add one more object the endpoint shows, and its URL (given the world's first object)."""

    setup: Callable[[World], Any]
    add: Callable[[World, Any], Any]
    url: Callable[[World, Any], str]


ENDPOINTS: dict[str, Endpoint] = {
    "projects list": Endpoint(
        setup=lambda w: None,
        add=lambda w, _: w.other_project(),
        url=lambda w, _: "/api/v1/projects/?page_size=50",
    ),
    "project detail": Endpoint(
        setup=lambda w: None,
        add=lambda w, _: w.change_request(),
        url=lambda w, _: "/api/v1/projects/shop/",
    ),
    "baselines list": Endpoint(
        setup=lambda w: None,
        add=lambda w, _: w.other_project(),
        url=lambda w, _: "/api/v1/baselines/?page_size=50",
    ),
    "change-requests list": Endpoint(
        setup=lambda w: None,
        add=lambda w, _: w.change_request(revisions=2),
        url=lambda w, _: "/api/v1/change-requests/?page_size=50",
    ),
    "change-request detail": Endpoint(
        setup=lambda w: w.change_request(revisions=0),
        add=lambda w, cr: w.revision(cr),
        url=lambda w, cr: f"/api/v1/change-requests/{cr.pk}/",
    ),
    "revisions list": Endpoint(
        setup=lambda w: w.change_request(revisions=0),
        add=lambda w, cr: w.revision(cr),
        url=lambda w, cr: f"/api/v1/change-requests/{cr.pk}/revisions/",
    ),
    "revision detail": Endpoint(
        setup=lambda w: w.change_request(revisions=1),
        add=lambda w, cr: w.dry_run(cr.revisions.get()),
        url=lambda w, cr: f"/api/v1/revisions/{cr.revisions.get().pk}/",
    ),
    "dry-runs list": Endpoint(
        setup=lambda w: w.change_request(revisions=1),
        add=lambda w, cr: w.dry_run(cr.revisions.get()),
        url=lambda w, cr: f"/api/v1/dry-runs/?page_size=50&change_request={cr.pk}",
    ),
    "dry-run detail": Endpoint(
        setup=lambda w: w.change_request(revisions=1),
        add=lambda w, cr: w.dry_run(cr.revisions.get()),
        url=lambda w, cr: f"/api/v1/dry-runs/{cr.revisions.get().dry_runs.order_by('id').first().pk}/",
    ),
    "reviews list": Endpoint(
        setup=lambda w: w.change_request(revisions=1),
        add=lambda w, cr: w.review(cr),
        url=lambda w, cr: f"/api/v1/change-requests/{cr.pk}/reviews/",
    ),
    "bundles list": Endpoint(
        setup=lambda w: None,
        add=lambda w, _: w.bundle(items=2),
        url=lambda w, _: "/api/v1/bundles/?page_size=50",
    ),
    "bundle detail": Endpoint(
        setup=lambda w: w.bundle(items=0),
        add=lambda w, bundle: w.bundle_item(bundle, bundle.items.count() + 1),
        url=lambda w, bundle: f"/api/v1/bundles/{bundle.pk}/",
    ),
    "audit-events list": Endpoint(
        setup=lambda w: None,
        add=lambda w, _: w.audit_event(),
        url=lambda w, _: "/api/v1/audit-events/?page_size=200",
    ),
}


@pytest.mark.parametrize("name", list(ENDPOINTS))
def test_an_endpoint_costs_the_same_number_of_queries_for_2_and_20_objects(world: World, name: str) -> None:
    endpoint = ENDPOINTS[name]
    subject = endpoint.setup(world)
    for _ in range(2):
        endpoint.add(world, subject)
    with_two = _queries(world.api, endpoint.url(world, subject))
    for _ in range(18):
        endpoint.add(world, subject)
    with_twenty = _queries(world.api, endpoint.url(world, subject))

    assert with_twenty == with_two, f"{name}: {with_two} queries for 2 objects, {with_twenty} for 20"


def test_a_page_of_change_requests_shows_every_one_of_them_with_its_latest_revision(world: World) -> None:
    for _ in range(20):
        world.change_request(revisions=2)

    body = world.api.get("/api/v1/change-requests/?page_size=50").json()

    assert len(body["results"]) == 20
    assert {item["latest_revision"]["number"] for item in body["results"]} == {2}
    assert all(item["latest_dry_run"] is not None for item in body["results"])
