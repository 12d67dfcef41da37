"""Checking a bundle with nothing but its archive and the public key: signature, then checksums."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from approvals.bundles.archive import ArchiveError, archive_read
from approvals.bundles.signing import verify

MANIFEST = "manifest.json"
SIGNATURE = "manifest.json.sig"


@dataclass
class Verification:
    """The verdict, and for each failure the file it concerns."""

    problems: list[dict[str, str]] = field(default_factory=list)
    manifest: dict[str, Any] | None = None
    files_checked: int = 0

    @property
    def valid(self) -> bool:
        return not self.problems

    def fail(self, path: str, problem: str) -> None:
        self.problems.append({"file": path, "problem": problem})


def bundle_verify(archive: bytes, *, public_key_pem: str) -> Verification:
    """Verify the signature of manifest.json, then every file against the manifest's sha256.

    Every problem is reported, not only the first: a changed file, a missing one, one the
    manifest does not list, a manifest or signature that does not verify. Raises ValueError
    only when the public key itself is unusable.
    """
    result = Verification()
    try:
        files = archive_read(archive)
    except ArchiveError as exc:
        result.fail("", str(exc))
        return result
    manifest_bytes, signature = files.get(MANIFEST), files.get(SIGNATURE)
    if manifest_bytes is None:
        result.fail(MANIFEST, "missing")
    if signature is None:
        result.fail(SIGNATURE, "missing")
    if manifest_bytes is None or signature is None:
        return result
    if not verify(manifest_bytes, signature, public_key_pem):
        result.fail(SIGNATURE, f"does not verify {MANIFEST} with this public key: one of them was altered, or another key signed")
    try:
        manifest = json.loads(manifest_bytes)
        listed = manifest["files"]
        if not isinstance(listed, dict) or not all(isinstance(v, str) for v in listed.values()):
            raise TypeError("files is not a map of path to sha256")
    except (ValueError, KeyError, TypeError) as exc:
        result.fail(MANIFEST, f"not a bundle manifest: {exc}")
        return result
    result.manifest = manifest
    for path, expected in sorted(listed.items()):
        data = files.get(path)
        if data is None:
            result.fail(path, "listed in the manifest but missing from the archive")
            continue
        actual = hashlib.sha256(data).hexdigest()
        result.files_checked += 1
        if actual != expected:
            result.fail(path, f"sha256 {actual} does not match the manifest's {expected}")
    for path in sorted(set(files) - set(listed) - {MANIFEST, SIGNATURE}):
        result.fail(path, "in the archive but not listed in the manifest")
    return result
