"""A person signs in with a browser, opens a dry-run in the browsable API and sees its lock
timeline with every lock held."""

from __future__ import annotations

import json

import pytest

from changeapi.dryrun.contract import report_from_json
from tests.approvals.test_release_flow import _submit
from tests.support.drawn_timeline import assert_every_lock_is_visible, drawn_timeline

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def test_a_signed_in_person_sees_the_dry_run_timeline_with_every_lock_held(browser, live_server, project_with_baseline):
    api, owner = project_with_baseline["api"], project_with_baseline["owner"]
    dry_run = api.get(f"/api/v1/dry-runs/{_submit(api)['latest_dry_run']}/").json()
    page = f"/api/v1/dry-runs/{dry_run['id']}/"

    browser.open(f"{live_server.url}/api/v1/auth/login/?next={page}")
    browser.submit(
        f"document.querySelector('#id_username').value = {json.dumps(owner.username)};"
        "document.querySelector('#id_password').value = 'correct horse battery staple';"
        "document.querySelector('#id_password').form.querySelector('[type=submit]').click();"
    )

    assert browser.evaluate("location.pathname") == page
    assert browser.evaluate("document.querySelector('.page-header h1').textContent.trim()") == "Dry Run Instance"
    timeline = browser.evaluate(
        "(() => { const img = document.querySelector('#lock-timeline img');"
        " return {src: img.getAttribute('src'), width: img.naturalWidth, height: img.naturalHeight}; })()"
    )
    assert timeline["src"] == f"{page}report.svg" and timeline["width"] == 960 and timeline["height"] > 0
    browser.open(f"{live_server.url}{timeline['src']}")
    assert_every_lock_is_visible(drawn_timeline(browser), report_from_json(dry_run["report"]))
