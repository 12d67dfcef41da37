"""`manage.py verify_bundle FILE [--public-key PEM_FILE]`: check a release bundle offline.

Needs nothing but the archive and the public key (GET /api/v1/signing-key/ serves it);
without --public-key, this service's own key is used. Exits non-zero naming every file that
failed, so a deploy pipeline can gate on it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from approvals.bundles.signing import public_key_pem
from approvals.bundles.verify import bundle_verify


class Command(BaseCommand):
    help = "Verify a release bundle's signature and checksums."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="The bundle archive (.tar.gz).")
        parser.add_argument("--public-key", dest="public_key", help="PEM file of the Ed25519 public key.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            archive = Path(options["file"]).read_bytes()
            key = Path(options["public_key"]).read_text() if options["public_key"] else public_key_pem()
        except OSError as exc:
            raise CommandError(str(exc)) from exc
        try:
            result = bundle_verify(archive, public_key_pem=key)
        except ValueError as exc:
            raise CommandError(f"unusable public key: {exc}") from exc
        if not result.valid:
            for problem in result.problems:
                self.stderr.write(f"FAILED {problem['file'] or '(archive)'}: {problem['problem']}")
            raise CommandError(f"{options['file']}: the bundle does not verify ({len(result.problems)} problem(s))")
        manifest = result.manifest or {}
        project = (manifest.get("project") or {}).get("slug", "?")
        self.stdout.write(
            f"OK {options['file']}: bundle {manifest.get('bundle')} of {project}, "
            f"signature valid, {result.files_checked} files match the manifest"
        )
