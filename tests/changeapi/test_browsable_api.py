"""A person signs in with a password and reads the API in a browser; clients still get JSON."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _signed_in(client: Client) -> Client:
    user = UserFactory(username="reader")
    user.set_password("a long demo password")
    user.save()
    assert client.login(username="reader", password="a long demo password")
    return client


def test_the_sign_in_page_is_served():
    response = Client().get("/api/v1/auth/login/")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")


def test_a_signed_in_browser_gets_the_browsable_api():
    response = _signed_in(Client()).get("/api/v1/projects/", HTTP_ACCEPT="text/html")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    assert b"Project" in response.content


def test_a_client_that_accepts_anything_still_gets_json():
    response = _signed_in(Client()).get("/api/v1/projects/", HTTP_ACCEPT="*/*")

    assert response["Content-Type"] == "application/json"


def test_an_error_for_a_browser_is_a_page_not_html_labelled_as_json():
    response = _signed_in(Client()).get("/api/v1/change-requests/999999/", HTTP_ACCEPT="text/html")

    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")
