"""A person signs in with a browser as a demo user, opens a dry-run in the browsable API and sees
its lock timeline with every lock held."""

from __future__ import annotations

import io
import json
import re

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from rest_framework.test import APIClient

from changeapi.dryrun.contract import report_from_json
from tests.approvals.test_release_flow import _submit
from tests.conftest import clone_databases
from tests.support.drawn_timeline import assert_every_lock_is_visible, drawn_timeline

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def _demo_password(username: str) -> str:
    """Run `manage.py demo` as a newcomer would and read the password it prints for `username`."""
    out = io.StringIO()
    call_command("demo", stdout=out)
    found = re.search(rf"^\s+{username}\s+\S+\s+token \S+\s+password (\S+)", out.getvalue(), re.MULTILINE)
    assert found, out.getvalue()
    return found.group(1)


def test_a_demo_user_signs_in_opens_a_change_request_and_its_dry_run_and_sees_every_lock_held(browser, live_server):
    password = _demo_password("alice")
    api = APIClient()
    api.force_authenticate(user=get_user_model().objects.get(username="alice"))
    change_request = _submit(api)
    dry_run = api.get(f"/api/v1/dry-runs/{change_request['latest_dry_run']}/").json()
    change_request_page = f"/api/v1/change-requests/{change_request['id']}/"
    page = f"/api/v1/dry-runs/{dry_run['id']}/"

    browser.open(f"{live_server.url}/api/v1/auth/login/?next={change_request_page}")
    browser.submit(
        "document.querySelector('#id_username').value = 'alice';"
        f"document.querySelector('#id_password').value = {json.dumps(password)};"
        "document.querySelector('#id_password').form.querySelector('[type=submit]').click();"
    )

    assert browser.evaluate("location.pathname") == change_request_page
    assert browser.evaluate("document.querySelector('.page-header h1').textContent.trim()") == "Change Request Instance"
    assert f'"latest_dry_run": {dry_run["id"]}' in browser.evaluate("document.querySelector('.response-info').textContent")
    browser.open(f"{live_server.url}{page}")
    assert browser.evaluate("document.querySelector('.page-header h1').textContent.trim()") == "Dry Run Instance"
    timeline = browser.evaluate(
        "(() => { const img = document.querySelector('#lock-timeline img');"
        " return {src: img.getAttribute('src'), width: img.naturalWidth, height: img.naturalHeight}; })()"
    )
    assert timeline["src"] == f"{page}report.svg" and timeline["width"] == 960 and timeline["height"] > 0
    browser.open(f"{live_server.url}{timeline['src']}")
    assert_every_lock_is_visible(drawn_timeline(browser), report_from_json(dry_run["report"]))
    assert clone_databases() == []
