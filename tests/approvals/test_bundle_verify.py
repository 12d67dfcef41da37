"""Verifying a bundle with nothing but the archive and the public key: the command and the
endpoint accept an untouched bundle and name the file when anything was changed."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.management import CommandError, call_command

from approvals.bundles.verify import bundle_verify
from tests.approvals.bundling import ADD_STATUS_CONCURRENTLY, Release, archive_files, repack
from tests.conftest import ADD_NOTE_AND_INDEX

pytestmark = pytest.mark.django_db(transaction=True)


# The sealed archive and the served key are plain bytes that no test changes: they are made
# through the whole flow by the first test of the module that needs them, and read by the rest.
_SEALED: dict[str, Any] = {}


@pytest.fixture
def sealed(request, client_for):  # noqa: ANN001, ANN201
    """An archive of two change requests, and the public key served by the API."""
    if not _SEALED:
        project = request.getfixturevalue("project_with_baseline")
        release = Release(project, client_for)
        _, archive = release.sealed(release.approved(ADD_NOTE_AND_INDEX), release.approved(ADD_STATUS_CONCURRENTLY))
        key = client_for(None).get("/api/v1/signing-key/").json()["public_key_pem"]
        _SEALED.update(archive=archive, key=key, files=archive_files(archive))
    return {**_SEALED, "client": client_for(None)}


def _changed(data: bytes) -> bytes:
    return data[:-2] + (b"X" if data[-2:-1] != b"X" else b"Y") + data[-1:]


def test_an_untouched_bundle_verifies_with_the_served_public_key(sealed, tmp_path):
    (tmp_path / "bundle.tar.gz").write_bytes(sealed["archive"])
    (tmp_path / "key.pem").write_text(sealed["key"])
    out = io.StringIO()

    call_command("verify_bundle", str(tmp_path / "bundle.tar.gz"), "--public-key", str(tmp_path / "key.pem"), stdout=out)

    assert "signature valid" in out.getvalue()
    assert f"{len(sealed['files']) - 2} files match the manifest" in out.getvalue()


def test_tampering_with_any_file_is_detected_and_the_file_named(sealed):
    listed = list(json.loads(sealed["files"]["manifest.json"])["files"])
    assert len(listed) == len(sealed["files"]) - 2

    for path in listed:
        tampered = repack({**sealed["files"], path: _changed(sealed["files"][path])})
        result = bundle_verify(tampered, public_key_pem=sealed["key"])
        assert [p["file"] for p in result.problems] == [path], path


def test_tampering_with_the_manifest_is_detected(sealed):
    manifest = json.loads(sealed["files"]["manifest.json"])
    victim = next(iter(manifest["files"]))
    manifest["files"][victim] = "0" * 64
    tampered = repack({**sealed["files"], "manifest.json": json.dumps(manifest, indent=2, sort_keys=True).encode() + b"\n"})

    result = bundle_verify(tampered, public_key_pem=sealed["key"])

    assert [p["file"] for p in result.problems] == ["manifest.json.sig", victim]


def test_tampering_with_the_signature_is_detected(sealed):
    tampered = repack({**sealed["files"], "manifest.json.sig": _changed(sealed["files"]["manifest.json.sig"])})

    result = bundle_verify(tampered, public_key_pem=sealed["key"])

    assert [p["file"] for p in result.problems] == ["manifest.json.sig"]


def test_a_file_added_or_removed_is_detected(sealed):
    files = dict(sealed["files"])
    removed = next(path for path in files if path.startswith("sql/rollback/"))
    del files[removed]
    files["sql/forward/000_first.sql"] = b"DROP TABLE shop_order;\n"

    result = bundle_verify(repack(files), public_key_pem=sealed["key"])

    assert {(p["file"], p["problem"].split(" ")[0]) for p in result.problems} == {
        (removed, "listed"),
        ("sql/forward/000_first.sql", "in"),
    }


def test_a_bundle_does_not_verify_with_another_key(sealed):
    other = (
        Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )

    result = bundle_verify(sealed["archive"], public_key_pem=other)

    assert [p["file"] for p in result.problems] == ["manifest.json.sig"]


def test_the_command_fails_naming_the_tampered_file(sealed, tmp_path):
    path = "sql/forward/001_shop_0002_order_note_order_order_total_idx.sql"
    (tmp_path / "bundle.tar.gz").write_bytes(repack({**sealed["files"], path: b"DROP TABLE shop_order;\n"}))
    err = io.StringIO()

    with pytest.raises(CommandError, match="does not verify"):
        call_command("verify_bundle", str(tmp_path / "bundle.tar.gz"), stderr=err)

    assert f"FAILED {path}: sha256" in err.getvalue()


def test_the_endpoint_verifies_a_gzip_body_without_authentication(sealed):
    response = sealed["client"].post("/api/v1/bundles/verify/", sealed["archive"], content_type="application/gzip")

    assert response.status_code == 200, response.content
    listed = json.loads(sealed["files"]["manifest.json"])["files"]
    assert response.json() == {"valid": True, "project": "shop", "bundle": 1, "files_checked": len(listed), "problems": []}


def test_the_endpoint_names_the_tampered_file_of_a_multipart_upload(sealed):
    path = "migrations/shop/0002_order_note_order_order_total_idx.py"
    upload = io.BytesIO(repack({**sealed["files"], path: _changed(sealed["files"][path])}))
    upload.name = "bundle.tar.gz"

    response = sealed["client"].post("/api/v1/bundles/verify/", {"file": upload}, format="multipart")

    assert response.status_code == 200, response.content
    assert response.json()["valid"] is False
    assert [p["file"] for p in response.json()["problems"]] == [path]


def test_the_endpoint_reports_garbage_as_no_bundle(sealed):
    response = sealed["client"].post("/api/v1/bundles/verify/", b"not a gzip file", content_type="application/gzip")

    assert response.status_code == 200
    assert response.json()["valid"] is False
    assert response.json()["problems"][0]["problem"].startswith("not a gzip file")
