"""The lock timeline over HTTP: as SVG and as PNG, and drawn on the dry-run's browsable API page."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.approvals.test_release_flow import _submit
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def dry_run_id(project_with_baseline):
    change_request = _submit(project_with_baseline["api"])
    return change_request["latest_dry_run"]


def test_the_timeline_is_served_as_png_for_places_that_show_no_svg(project_with_baseline, dry_run_id):
    response = project_with_baseline["api"].get(f"/api/v1/dry-runs/{dry_run_id}/report.png", HTTP_ACCEPT="image/png")

    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert response.content.startswith(PNG_SIGNATURE)


def test_the_svg_is_served_to_a_client_that_asks_for_svg(project_with_baseline, dry_run_id):
    response = project_with_baseline["api"].get(f"/api/v1/dry-runs/{dry_run_id}/report.svg", HTTP_ACCEPT="image/svg+xml")

    assert response.status_code == 200
    assert response["Content-Type"] == "image/svg+xml"


def test_the_png_of_a_dry_run_the_user_cannot_see_is_not_found(project_with_baseline, dry_run_id, client_for):
    response = client_for(UserFactory()).get(f"/api/v1/dry-runs/{dry_run_id}/report.png")

    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"


def test_the_dry_run_page_of_the_browsable_api_draws_the_timeline(project_with_baseline, dry_run_id):
    browser = Client()
    assert browser.login(username=project_with_baseline["owner"].username, password="correct horse battery staple")

    page = browser.get(f"/api/v1/dry-runs/{dry_run_id}/", HTTP_ACCEPT="text/html").content.decode()

    assert f'<img src="/api/v1/dry-runs/{dry_run_id}/report.svg"' in page
    assert f'href="/api/v1/dry-runs/{dry_run_id}/report.png"' in page
