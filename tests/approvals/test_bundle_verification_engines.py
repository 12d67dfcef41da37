"""Post-deploy verification of MySQL/MariaDB and SQLite bundles: the bundle's forward SQL run for
real on a copy of the baseline's database (a MariaDB database, a SQLite file), the documented
catalog query of that engine read there and uploaded as production's snapshot, then compared
with the catalog of the advanced baseline's template read on that engine's shadow."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import sqlparse

from approvals.models import ReleaseBundle
from tests.approvals import test_bundle_mariadb as mariadb_bundles
from tests.approvals import test_bundle_sqlite as sqlite_bundles
from tests.approvals.bundling import Release, archive_files
from tests.support.catalog_queries import mariadb_snapshot, sqlite_snapshot
from tests.support.mariadb import MARIADB

pytestmark = pytest.mark.django_db(transaction=True)

mariadb_release = mariadb_bundles.release
sqlite_release = sqlite_bundles.release


def _applied(release: Release, migrations: list[dict[str, Any]]) -> tuple[dict[str, Any], list[bytes], str]:
    """A sealed bundle marked applied: its JSON, its forward scripts in order, and the template
    of the baseline it was built on (production before the deploy)."""
    bundle, archive = release.sealed(release.approved(migrations))
    applied = release.api.post(f"/api/v1/bundles/{bundle['id']}/applied/", {}, format="json")
    assert applied.status_code == 200, applied.content
    files = archive_files(archive)
    manifest = json.loads(files["manifest.json"])
    template = ReleaseBundle.objects.select_related("baseline").get(pk=bundle["id"]).baseline.template_name  # type: ignore[union-attr]
    return applied.json(), [files[path] for path in manifest["apply_order"]], template


def _without(scripts: list[bytes], skip: str | None) -> list[bytes]:
    """The scripts without the statements holding `skip`: what a deploy that lost them ran."""
    if skip is None:
        return scripts
    return [
        "\n".join(s for s in sqlparse.split(script.decode()) if skip not in sqlparse.format(s, strip_comments=True)).encode()
        for script in scripts
    ]


def _upload(release: Release, snapshot: dict[str, Any]) -> int:
    response = release.api.post("/api/v1/projects/shop/schema-snapshots/", snapshot, format="json")
    assert response.status_code == 201, response.content
    return int(response.json()["id"])


def _verify(release: Release, bundle: dict[str, Any], snapshot: int) -> dict[str, Any]:
    response = release.api.post(f"/api/v1/bundles/{bundle['id']}/verify/", {"snapshot": snapshot}, format="json")
    assert response.status_code == 200, response.content
    return dict(response.json()["verification"])


def _mariadb_production(
    release: Release, migrations: list[dict[str, Any]], skip: str | None = None
) -> tuple[dict[str, Any], int]:
    """Deploy the bundle's forward SQL (less the statements holding `skip`) on a copy of the baseline's
    MariaDB database, as the mysql client would, and upload its documented snapshot."""
    bundle, scripts, template = _applied(release, migrations)
    with mariadb_bundles._Copy(template) as production:
        mariadb_bundles._run_scripts(production, _without(scripts, skip))
        snapshot = _upload(release, mariadb_snapshot(production))
    return bundle, snapshot


def _sqlite_production(
    release: sqlite_bundles.SqliteRelease, migrations: list[dict[str, Any]], skip: str | None = None
) -> tuple[dict[str, Any], int]:
    """The same on a copy of the baseline's SQLite file, as the sqlite3 shell would."""
    bundle, scripts, template = _applied(release, migrations)
    with sqlite_bundles._Copy(release.server, template) as production:
        sqlite_bundles._run_scripts(production, _without(scripts, skip))
        snapshot = _upload(release, sqlite_snapshot(Path(production)))
    return bundle, snapshot


# Per engine: the release fixture, the change it bundles, its index, and how a deploy runs.
ENGINES = {
    "mariadb": ("mariadb_release", mariadb_bundles.WIDEN_TOTAL_AND_INDEX, "`order_total_idx`", _mariadb_production),
    "sqlite": ("sqlite_release", sqlite_bundles.ADD_STATUS_WITH_DEFAULT_AND_INDEX, '"order_status_idx"', _sqlite_production),
}


def _deployed(
    request: pytest.FixtureRequest, engine: str, *, without_index: bool
) -> tuple[Release, dict[str, Any], dict[str, Any]]:
    """The engine's release, its bundle, and the bundle's verification against a production it
    was deployed on (without its CREATE INDEX when `without_index`)."""
    fixture, migrations, index, deploy = ENGINES[engine]
    release = request.getfixturevalue(fixture)
    bundle, snapshot = deploy(release, migrations, skip=f"CREATE INDEX {index}" if without_index else None)
    return release, bundle, _verify(release, bundle, snapshot)


@pytest.mark.parametrize("engine", ENGINES)
def test_a_bundle_applied_as_sealed_verifies_clean(request, engine):
    _, _, verification = _deployed(request, engine, without_index=False)

    assert (verification["status"], verification["differences"]) == ("verified", [])


@pytest.mark.parametrize("engine", ENGINES)
def test_a_production_without_the_bundles_index_is_reported_missing_it(request, engine):
    _, _, verification = _deployed(request, engine, without_index=True)

    assert verification["status"] == "failed"
    assert [(d["kind"], d["status"], d["name"], d["table"]) for d in verification["differences"]] == [
        ("index", "missing", ENGINES[engine][2].strip('`"'), "shop_order")
    ]


def test_a_mariadb_column_left_of_its_old_type_is_reported_with_both_types(mariadb_release):
    bundle, snapshot = _mariadb_production(mariadb_release, mariadb_bundles.WIDEN_TOTAL_AND_INDEX, skip="MODIFY `total`")

    [difference] = _verify(mariadb_release, bundle, snapshot)["differences"]

    assert (difference["kind"], difference["status"], difference["name"], difference["severity"]) == (
        "column",
        "different",
        "total",
        "high",
    )
    assert (difference["expected"]["type"], difference["actual"]["type"]) == ("bigint", "int")
    assert "type int in production, bigint in the migrations" in difference["detail"]


def test_a_failed_mariadb_verification_reads_as_the_objects_production_has_otherwise(request):
    release, bundle, _ = _deployed(request, "mariadb", without_index=True)

    markdown = release.api.get(f"/api/v1/bundles/{bundle['id']}/verification.md").content.decode()

    assert "❌ production differs" in markdown
    assert "| index `order_total_idx` | missing |" in markdown
    assert "INVALID" not in markdown and "PostgreSQL" not in markdown


def test_the_first_mariadb_snapshot_after_the_deploy_verifies_the_bundle_by_itself(mariadb_release):
    bundle, snapshot = _mariadb_production(mariadb_release, mariadb_bundles.WIDEN_TOTAL_AND_INDEX)

    verification = mariadb_release.api.get(f"/api/v1/bundles/{bundle['id']}/").json()["verification"]

    assert (verification["status"], verification["snapshot"]) == ("verified", snapshot)


def test_the_catalog_copy_of_a_mariadb_template_is_dropped_after_the_read(mariadb_release, settings):
    bundle, snapshot = _mariadb_production(mariadb_release, mariadb_bundles.WIDEN_TOTAL_AND_INDEX)
    _verify(mariadb_release, bundle, snapshot)

    left = [name for name in mariadb_bundles.databases_named(MARIADB, settings.SHADOW_DATABASE_PREFIX) if "snap_" in name]

    assert left == []
