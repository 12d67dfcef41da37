"""An upload of migration files is answered with every refusal at once, and names that could
escape a bundle's directory are refused before anything is read or stored."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from changeapi.models import Baseline

pytestmark = pytest.mark.django_db(transaction=True)

GOOD = "from django.db import migrations\n\n\nclass Migration(migrations.Migration):\n    dependencies = {deps}\n    operations = []\n"
BAD = "from django.db import migrations\nimport os\n\n\nclass Migration(migrations.Migration):\n    operations = [os.system('id')]\n"


def baseline(api: APIClient, files: list[dict[str, Any]]) -> Any:
    return api.post("/api/v1/projects/shop/baselines/", {"migration_files": files}, format="json")


@pytest.fixture
def api(owner: Any, client_for: Any) -> APIClient:
    client = client_for(owner)
    assert client.post("/api/v1/projects/", {"slug": "shop", "name": "Shop"}, format="json").status_code == 201
    return client


def test_every_refused_file_of_an_upload_is_listed_with_the_migrations_it_blocks(api: APIClient) -> None:
    files = [
        {"path": "shop/migrations/0001_initial.py", "content": BAD},
        {"path": "shop/migrations/0002_next.py", "content": GOOD.format(deps="[('shop', '0001_initial')]")},
        {"path": "shop/migrations/0003_last.py", "content": GOOD.format(deps="[('shop', '0002_next')]")},
        {"path": "billing/migrations/0001_initial.py", "content": BAD},
    ]

    response = baseline(api, files)

    assert response.status_code == 400, response.content
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["total_errors"] == 2
    by_file = {error["file"]: error for error in body["errors"]}
    assert set(by_file) == {"shop/migrations/0001_initial.py", "billing/migrations/0001_initial.py"}
    assert by_file["shop/migrations/0001_initial.py"]["line"] == 6
    assert by_file["shop/migrations/0001_initial.py"]["blocks"] == ["shop.0002_next", "shop.0003_last"]
    assert "blocks" not in by_file["billing/migrations/0001_initial.py"]
    assert not Baseline.objects.exists()


@pytest.mark.parametrize(
    "item",
    [
        {"path": "../../../../tmp/x/migrations/0001_initial.py"},
        {"path": "/etc/shop/migrations/0001_initial.py"},
        {"path": "shop/migrations/0001_initial.py", "app_label": "../../../../tmp/x"},
        {"path": "shop/migrations/0001_initial.py", "name": "../0001_initial"},
        {"path": "shop/migrations/0001_initial.py", "name": "0001_initial\x00"},
        {"path": "shop/migrations/0001_initial.py", "app_label": "class"},
    ],
)
def test_names_that_are_not_django_identifiers_are_refused_with_a_pointer(api: APIClient, item: dict[str, Any]) -> None:
    response = baseline(api, [{**item, "content": GOOD.format(deps="[]")}])

    assert response.status_code == 400, response.content
    assert response.json()["errors"][0]["pointer"].startswith("/migration_files/0")
    assert not Baseline.objects.exists()
