"""What goes into a bundle: migration files, forward SQL, the manifest and its signature.

Everything here is a pure function of its inputs (no clock, no randomness), which is what
makes the archive reproducible.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from django.db.migrations.writer import MigrationWriter

from approvals.bundles.signing import sign
from changeapi.intake.plan import Plan, PlannedMigration


@dataclass
class BundleEntry:
    """One approved change request as it enters the bundle."""

    number: int
    title: str
    author: str
    revision: int
    revision_sha256: str
    plan: Plan
    report: dict[str, Any]
    dry_run_id: int
    reviews: list[dict[str, str]]


def _suffix(name: str) -> str:
    return re.sub(r"^\d+_?", "", name) or "auto"


def renumber(entries: list[BundleEntry], leaves: dict[str, str]) -> list[tuple[BundleEntry, list[PlannedMigration]]]:
    """Continue each app's numbering from the baseline, chaining the requests in bundle order."""
    leaves = dict(leaves)
    renamed: dict[tuple[str, str], str] = {}
    result = []
    for entry in entries:
        migrations = []
        for migration in entry.plan.migrations:
            leaf = leaves.get(migration.app_label)
            number = int(re.match(r"^(\d*)", leaf or "").group(1) or 0) + 1 if leaf else 1
            name = f"{number:04d}_{_suffix(migration.name)}"
            renamed[(migration.app_label, migration.name)] = name
            dependencies = []
            for app, dep in migration.dependencies:
                if app == migration.app_label:
                    continue
                dependencies.append((app, renamed.get((app, dep), leaves.get(app, dep))))
            if leaf:
                dependencies.insert(0, (migration.app_label, leaf))
            migrations.append(
                PlannedMigration(
                    app_label=migration.app_label,
                    name=name,
                    operations=migration.operations,
                    atomic=migration.atomic,
                    dependencies=dependencies,
                    initial=leaf is None,
                )
            )
            leaves[migration.app_label] = name
        result.append((entry, migrations))
    return result


def migration_file(migration: PlannedMigration) -> bytes:
    """Django's own MigrationWriter output, without the timestamped header."""
    return MigrationWriter(migration.to_django(), include_header=False).as_string().encode()


def forward_sql(entry: BundleEntry, lock_timeout_ms: int) -> dict[str, bytes]:
    """The SQL the dry-run executed, per migration, guarded by lock_timeout.

    Statements of an atomic migration run in one transaction; statements that ran outside a
    transaction (CONCURRENTLY) are written outside any transaction block.
    """
    files: dict[str, bytes] = {}
    by_migration: dict[str, list[dict[str, Any]]] = {}
    for statement in entry.report.get("statements", []):
        by_migration.setdefault(statement["migration"], []).append(statement)
    for migration in entry.report.get("migrations", []):
        label = f"{migration['app_label']}.{migration['name']}"
        lines = [f"-- {label} (change request #{entry.number}, revision {entry.revision})"]
        in_transaction = False
        for statement in by_migration.get(label, []):
            if statement["transactional"] and not in_transaction:
                lines += ["BEGIN;", f"SET LOCAL lock_timeout = '{int(lock_timeout_ms)}ms';"]
                in_transaction = True
            elif not statement["transactional"] and in_transaction:
                lines.append("COMMIT;")
                in_transaction = False
            if not statement["transactional"]:
                lines.append(f"SET lock_timeout = '{int(lock_timeout_ms)}ms';")
            lines.append(statement["sql"].rstrip().rstrip(";") + ";")
        if in_transaction:
            lines.append("COMMIT;")
        files[f"{migration['app_label']}-{migration['name']}.forward.sql"] = ("\n".join(lines) + "\n").encode()
    return files


def bundle_files(
    *, project: dict[str, Any], bundle_number: int, entries: list[BundleEntry], leaves: dict[str, str], lock_timeout_ms: int
) -> dict[str, bytes]:
    """All files of the archive, with the manifest (sha256 of every file) and its signature."""
    files: dict[str, bytes] = {}
    manifest_requests = []
    for position, (entry, migrations) in enumerate(renumber(entries, leaves), start=1):
        prefix = f"{position:02d}-cr{entry.number}"
        written = []
        for migration in migrations:
            path = f"{prefix}/migrations/{migration.app_label}/{migration.name}.py"
            files[path] = migration_file(migration)
            written.append(path)
        for name, data in forward_sql(entry, lock_timeout_ms).items():
            files[f"{prefix}/sql/{name}"] = data
        summary = entry.report.get("summary", {})
        manifest_requests.append(
            {
                "position": position,
                "number": entry.number,
                "title": entry.title,
                "author": entry.author,
                "revision": entry.revision,
                "revision_sha256": entry.revision_sha256,
                "migrations": written,
                "reviews": entry.reviews,
                "dry_run": {
                    "id": entry.dry_run_id,
                    "status": entry.report.get("status"),
                    "server_version": entry.report.get("server_version"),
                    "statements": summary.get("statements"),
                    "rewrites": summary.get("rewrites", []),
                },
            }
        )
    manifest = {
        "format": "schemagate-bundle/1",
        "project": project,
        "bundle": bundle_number,
        "change_requests": manifest_requests,
        "files": {path: hashlib.sha256(data).hexdigest() for path, data in sorted(files.items())},
    }
    manifest_bytes = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
    files["manifest.json"] = manifest_bytes
    files["manifest.json.sig"] = sign(manifest_bytes)
    return files
