"""The docs pages that report links point at are served by the service, and nothing else is."""

from __future__ import annotations

import pytest
from django.test import Client

from changeapi.dryrun.analysis.findings import CATALOG

pytestmark = pytest.mark.django_db


def test_the_findings_page_is_served_as_markdown_without_signing_in():
    response = Client().get("/docs/findings.md")

    assert response.status_code == 200
    assert response["Content-Type"] == "text/markdown; charset=utf-8"
    assert b"SG101" in response.content


def test_every_finding_links_to_a_page_the_service_serves():
    pages = {rule.docs.split("#")[0] for rule in CATALOG.values()}

    assert all(Client().get(f"/{page}").status_code == 200 for page in pages), pages


@pytest.mark.parametrize(
    "path",
    ["/docs/ci.md", "/docs/..%2Fsettings.md", "/docs/%2E%2E%2Fconfig%2Fsettings.md", "/docs/README.md", "/docs/findings"],
)
def test_a_page_outside_the_allow_list_is_a_problem_404(path):
    response = Client().get(path)

    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"


def test_a_write_to_a_docs_page_is_a_problem_405():
    response = Client().post("/docs/findings.md", "x", content_type="text/plain")

    assert response.status_code == 405
    assert response["Content-Type"] == "application/problem+json"
    assert "{" not in response.json()["title"]
