"""A pull request's dry-run check run says in its title when production has drifted on objects
the change touches, so the list of checks shows it without opening the report."""

from __future__ import annotations

import pytest

from tests.changeapi.test_dry_run_drift_warnings import _upload_snapshot
from tests.changeapi.test_github import REPO, _deliver, _pull_request, github  # noqa: F401 - fixture
from tests.support.fake_http import fake_http  # noqa: F401 - fixture

pytestmark = pytest.mark.django_db(transaction=True)


def _check_run(github) -> dict:  # noqa: ANN001, F811
    (check_run,) = github.sent("POST", f"/repos/{REPO}/check-runs")
    return check_run.json()


def test_the_check_run_title_counts_the_drifted_objects_the_change_touches(github, client, project_with_baseline):  # noqa: F811
    _upload_snapshot(project_with_baseline["api"], "CREATE INDEX order_total_idx ON shop_order (total)")

    _deliver(client, "pull_request", _pull_request())

    sent = _check_run(github)
    assert sent["output"]["title"] == "No high-severity findings; production has drifted on 1 object it touches"
    assert "#### Production has drifted" in sent["output"]["summary"]


def test_drift_the_change_does_not_touch_leaves_the_title_as_it_is(github, client, project_with_baseline):  # noqa: F811
    _upload_snapshot(project_with_baseline["api"], "CREATE INDEX customer_email_idx ON shop_customer (email)")

    _deliver(client, "pull_request", _pull_request())

    assert _check_run(github)["output"]["title"] == "No high-severity findings"
