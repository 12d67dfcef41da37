"""What goes into a bundle: migration files, forward and rollback SQL, the manifest, its signature.

Everything here is a pure function of its inputs (no clock, no randomness, no database), which
is what makes the archive reproducible: the same approved revisions, reviews, dry-run results
and baseline give the same bytes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db.migrations.operations import RunPython
from django.db.migrations.operations.base import Operation
from django.db.migrations.serializer import BaseSerializer
from django.db.migrations.writer import MigrationWriter

from approvals.bundles.backfills import (
    BACKFILL_HELPER,
    backfill_command_file,
    backfill_helper,
    backfill_rollout,
    backfill_steps,
    backfill_task_file,
    parity_preflight,
    shipped_backfill,
)
from approvals.bundles.phases import phased_plan
from approvals.bundles.scripts import (
    MYSQL_ENGINES,
    SQLITE_ENGINE,
    RecordedStatement,
    history_statement,
    mysql_guards,
    mysql_history_statement,
    mysql_readme,
    mysql_sql_script,
    sql_script,
    sqlite_guards,
    sqlite_history_statement,
    sqlite_readme,
    sqlite_sql_script,
)
from approvals.bundles.signing import sign
from changeapi.dryrun.apply import is_data_step
from changeapi.dryrun.contract import Report, StatementTrace
from changeapi.intake.backfill import Backfill
from changeapi.intake.plan import Plan, PlannedMigration
from changeapi.intake.python_source.data_steps import SubmittedCode

FORMAT = "schemagate-bundle/1"

# Parts of a dry-run summary that do not depend on timing, so they can enter the manifest.
SUMMARY_KEYS = ("migrations", "operations", "statements", "rewrites", "tables_scanned", "data_steps_not_executed")


@dataclass
class BundleEntry:
    """One approved change request as it enters the bundle."""

    number: int
    title: str
    author: str
    revision: int
    revision_sha256: str
    plan: Plan
    report: Report
    dry_run_id: int
    reviews: list[dict[str, Any]]


@dataclass
class BundledMigration:
    """A migration under its final name, with the change request it comes from."""

    entry: BundleEntry
    migration: PlannedMigration
    source_name: str

    @property
    def label(self) -> str:
        return f"{self.migration.app_label}.{self.migration.name}"


@dataclass
class RollbackStep:
    """The rollback of one migration as traced on a shadow that had the bundle applied.

    `statements` carry `sql`, `transactional`, `transaction` and `operation_index`, like the
    statements of a dry-run report. `reached` is False when an irreversible step later in the
    bundle stops the rollback before this migration.
    """

    label: str
    statements: list[dict[str, Any]] = field(default_factory=list)
    notes: list[dict[str, Any]] = field(default_factory=list)
    reached: bool = True


def _number(name: str) -> int:
    match = re.match(r"^(\d+)", name)
    return int(match.group(1)) if match else 0


def _suffix(name: str) -> str:
    """The name without its number; Django's clock-based `auto_YYYYMMDD_HHMM` becomes `auto`,
    or the bundle's names would depend on when it was built."""
    suffix = re.sub(r"^\d+_?", "", name)
    return "auto" if not suffix or re.fullmatch(r"auto_\d{8}_\d{4}", suffix) else suffix


def renumber(entries: list[BundleEntry], history: Iterable[tuple[str, str]]) -> list[BundledMigration]:
    """Continue each app's numbering after the baseline's history, chaining requests in bundle order.

    Each request was planned on its own against the baseline, so two requests may both call
    their migration `0004_...` of the same app: the second becomes `0005_...` and depends on
    the first. A dependency on another app is re-pointed to that app's final name when it
    names a migration of the same request, and `__first__` is resolved to a real name.
    """
    numbers: dict[str, int] = {}
    leaves: dict[str, str] = {}
    firsts: dict[str, str] = {}
    for app_label, name in history:
        numbers[app_label] = max(numbers.get(app_label, 0), _number(name))
        leaves[app_label] = name
        firsts.setdefault(app_label, name)
    bundled: list[BundledMigration] = []
    for entry in entries:
        renamed: dict[tuple[str, str], str] = {}
        for migration in entry.plan.migrations:
            app_label = migration.app_label
            number = numbers.get(app_label, 0) + 1
            name = f"{number:04d}_{_suffix(migration.name)}"
            dependencies: list[tuple[str, str]] = []
            if app_label in leaves:
                dependencies.append((app_label, leaves[app_label]))
            for app, dependency in migration.dependencies:
                if app == app_label:
                    continue
                if (app, dependency) in renamed:
                    target = renamed[(app, dependency)]
                elif dependency == "__first__":
                    target = firsts.get(app, dependency)
                elif dependency == "__latest__":
                    target = leaves.get(app, dependency)
                else:
                    target = dependency
                if (app, target) not in dependencies:
                    dependencies.append((app, target))
            final = PlannedMigration(
                app_label=app_label,
                name=name,
                operations=migration.operations,
                atomic=migration.atomic,
                dependencies=dependencies,
                initial=app_label not in leaves,
            )
            bundled.append(BundledMigration(entry=entry, migration=final, source_name=migration.name))
            renamed[(app_label, migration.name)] = name
            numbers[app_label] = number
            leaves[app_label] = name
            firsts.setdefault(app_label, name)
    return bundled


def bundle_plan(bundled: list[BundledMigration]) -> Plan:
    """The whole bundle as one plan: what the combined dry-run applies."""
    return Plan([item.migration for item in bundled])


class _SubmittedCodeSerializer(BaseSerializer):
    """A data step's function: by name when its reviewed source is written into the file,
    else by its dotted path (it lives in the project, outside the submitted file)."""

    def serialize(self) -> tuple[str, set[str]]:
        name = self.value.name
        if self.value.source is not None or "." not in name:
            return name.rsplit(".", 1)[-1], set()
        module = name.rsplit(".", 1)[0]
        return name, {f"import {module}"}


MigrationWriter.register_serializer(SubmittedCode, _SubmittedCodeSerializer)


def _as_written(operation: Operation) -> Operation:
    """A submitted data step is written as the plain `migrations.RunPython` it was; a Backfill as
    the shipped helper's step, which a project can import."""
    if isinstance(operation, Backfill):
        return shipped_backfill(operation)
    if isinstance(operation, RunPython) and type(operation) is not RunPython:
        return RunPython(
            operation.code,
            operation.reverse_code,
            atomic=operation.atomic,
            hints=operation.hints,
            elidable=operation.elidable,
        )
    return operation


def _data_step_sources(migration: PlannedMigration) -> list[str]:
    """The reviewed source of each function the migration's data steps run, once each."""
    sources: list[str] = []
    for operation in migration.operations:
        for code in (getattr(operation, "code", None), getattr(operation, "reverse_code", None)):
            if isinstance(code, SubmittedCode) and code.source is not None and code.source.strip() not in sources:
                sources.append(code.source.strip())
    return sources


def migration_file(item: BundledMigration, *, project_slug: str, bundle_number: int) -> bytes:
    """Django's own MigrationWriter output, with a fixed header instead of the timestamped one.

    MigrationWriter does not write `atomic`, so a non-atomic migration (CONCURRENTLY) gets
    `atomic = False` added, or Django's `migrate` would run it in a transaction and fail. The
    functions of data steps are written back as they were submitted and reviewed.
    """
    written = dataclasses.replace(item.migration, operations=[_as_written(op) for op in item.migration.operations])
    text = MigrationWriter(written.to_django(), include_header=False).as_string()
    if not item.migration.atomic:
        text = text.replace("\n    dependencies = [", "\n    atomic = False\n\n    dependencies = [", 1)
    functions = _data_step_sources(item.migration)
    if functions:
        text = text.replace("\n\nclass Migration(", "\n\n" + "\n\n\n".join(functions) + "\n\n\nclass Migration(", 1)
    header = (
        f"# Release bundle {bundle_number} of {project_slug}: change request #{item.entry.number}, "
        f"revision {item.entry.revision} ({item.source_name}).\n"
    )
    return (header + text).encode()


def _descriptions(migration: PlannedMigration) -> dict[int, str]:
    return {index: operation.describe() for index, operation in enumerate(migration.operations)}


def _data_step_notes(item: BundledMigration) -> list[dict[str, Any]]:
    return [
        {
            "migration": item.label,
            "operation_index": index,
            "operation": operation.describe(),
            "reason": "data migration step: not part of the SQL; run it with Django's migrate or by hand",
        }
        for index, operation in enumerate(item.migration.operations)
        if is_data_step(operation)
    ]


def _summary(report: Report) -> dict[str, Any]:
    return {key: getattr(report.summary, key) for key in SUMMARY_KEYS}


def bundle_files(
    *,
    project: dict[str, Any],
    bundle_number: int,
    bundled: list[BundledMigration],
    combined_report: Report,
    rollback: list[RollbackStep],
    lock_timeout_ms: int,
) -> dict[str, bytes]:
    """All files of the archive, with the manifest (sha256 of every file) and its signature.

    `combined_report` is the dry-run of the whole bundle under its final migration names, so
    its statements are exactly the forward SQL; `rollback` is in rollback order (last
    migration first). The report's engine picks the scripts' guards: for MySQL/MariaDB and SQLite
    the manifest also names the engine, its version and the guards, and a README says how to apply.
    """
    mysql = combined_report.engine in MYSQL_ENGINES
    sqlite = combined_report.engine == SQLITE_ENGINE
    script = mysql_sql_script if mysql else sqlite_sql_script if sqlite else sql_script
    history = mysql_history_statement if mysql else sqlite_history_statement if sqlite else history_statement
    atomic_note = " (no effect on MySQL/MariaDB: each statement commits on its own)" if mysql else ""
    files: dict[str, bytes] = {}
    by_migration: dict[str, list[StatementTrace]] = {}
    for statement in combined_report.statements:
        by_migration.setdefault(statement.migration, []).append(statement)
    width = max(3, len(str(len(bundled))))
    migration_paths: dict[str, dict[str, str]] = {}
    forward_order: list[str] = []
    data_steps: list[dict[str, Any]] = []
    backfills = backfill_steps(bundled, bundle_number=bundle_number)
    counts = {
        (timing.migration, timing.operation_index): timing.parity.count_sql
        for timing in combined_report.backfills
        if timing.parity is not None and timing.parity.count_sql
    }
    waiting_for: list[dict[str, Any]] = []  # the backfills of the migrations already written
    for position, item in enumerate(bundled, start=1):
        migration = item.migration
        stem = f"{position:0{width}d}_{migration.app_label}_{migration.name}"
        python_path = f"migrations/{migration.app_label}/{migration.name}.py"
        forward_path = f"sql/forward/{stem}.sql"
        files[python_path] = migration_file(item, project_slug=project["slug"], bundle_number=bundle_number)
        steps = _data_step_notes(item)
        data_steps += steps
        files[forward_path] = script(
            header=[
                f"{item.label}: forward (change request #{item.entry.number}, revision {item.entry.revision})",
                f"atomic: {'yes' if migration.atomic else 'no'}{atomic_note}",
            ],
            statements=by_migration.get(item.label, []),
            descriptions=_descriptions(migration),
            lock_timeout_ms=lock_timeout_ms,
            history=history(migration.app_label, migration.name, applied=True),
            notes=[f"DATA STEP, operation {s['operation_index']}: {s['operation']}: {s['reason']}" for s in steps]
            + [
                f"BACKFILL, operation {b['operation_index']}: {b['description']}: not part of the SQL; once this file "
                f"committed, run `python manage.py {b['command']}` (resumable)"
                for b in backfills
                if b["migration"] == item.label
            ]
            + [
                f"PREFLIGHT: the backfill of {b['migration']} (operation {b['operation_index']}) must have reached parity "
                "on this database first; the statement below stops this file while its check counts rows"
                for b in waiting_for
            ],
            preflight=[parity_preflight(b, count_sql=counts[(b["migration"], b["operation_index"])]) for b in waiting_for],
        )
        waiting_for += [b for b in backfills if b["migration"] == item.label and (b["migration"], b["operation_index"]) in counts]
        forward_order.append(forward_path)
        migration_paths[item.label] = {"file": python_path, "forward_sql": forward_path}
    rollback_order: list[str] = []
    irreversible: list[dict[str, Any]] = []
    not_restored: list[dict[str, Any]] = []
    by_label = {item.label: item for item in bundled}
    for position, step in enumerate(rollback, start=1):
        item = by_label[step.label]
        migration = item.migration
        path = f"sql/rollback/{position:0{width}d}_{migration.app_label}_{migration.name}.sql"
        notes = [f"{note['kind'].upper()}, operation {note['operation_index']}: {note['reason']}" for note in step.notes]
        irreversible += [{"migration": step.label, **n} for n in step.notes if n["kind"] == "irreversible"]
        not_restored += [{"migration": step.label, **n} for n in step.notes if n["kind"] == "data_not_restored"]
        if not step.reached:
            notes.insert(0, "NOT REACHED: an irreversible step in a later migration stops the rollback before this one")
        files[path] = script(
            header=[
                f"{step.label}: rollback (change request #{item.entry.number}, revision {item.entry.revision})",
                f"atomic: {'yes' if migration.atomic else 'no'}{atomic_note}",
            ],
            statements=[RecordedStatement(**s) for s in step.statements] if step.reached else [],
            descriptions=_descriptions(migration),
            lock_timeout_ms=lock_timeout_ms,
            history=history(migration.app_label, migration.name, applied=False)
            if step.reached and not any(n["kind"] == "irreversible" for n in step.notes)
            else "-- the migration stays recorded as applied",
            notes=notes,
        )
        rollback_order.append(path)
        migration_paths[step.label]["rollback_sql"] = path
    if backfills:
        files[BACKFILL_HELPER] = backfill_helper()
    for backfill in backfills:
        files[backfill["command_file"]] = backfill_command_file(
            backfill, project_slug=project["slug"], bundle_number=bundle_number
        )
        files[backfill["task_file"]] = backfill_task_file(backfill, project_slug=project["slug"], bundle_number=bundle_number)
    phases = phased_plan(bundled=bundled, combined_report=combined_report, backfills=backfills)
    if phases is not None:
        rollout = phases.markdown(paths=migration_paths, backfills=backfills)
        files["PHASES.md"] = (rollout + backfill_rollout(backfills, paths=migration_paths)).encode()
    engine_facts: dict[str, Any] = {}
    if mysql:
        files["README.md"] = mysql_readme(
            engine=combined_report.engine,
            server_version=combined_report.server_version,
            apply_order=forward_order,
            rollback_order=rollback_order,
            lock_timeout_ms=lock_timeout_ms,
        )
        engine_facts = {
            "engine": {"name": combined_report.engine, "server_version": combined_report.server_version},
            "guards": mysql_guards(lock_timeout_ms),
        }
    elif sqlite:
        files["README.md"] = sqlite_readme(
            server_version=combined_report.server_version,
            apply_order=forward_order,
            rollback_order=rollback_order,
            lock_timeout_ms=lock_timeout_ms,
        )
        engine_facts = {
            "engine": {"name": combined_report.engine, "server_version": combined_report.server_version},
            "guards": sqlite_guards(lock_timeout_ms),
        }
    manifest_requests = []
    for position, entry in enumerate(_unique_entries(bundled), start=1):
        manifest_requests.append(
            {
                "position": position,
                "number": entry.number,
                "title": entry.title,
                "author": entry.author,
                "revision": entry.revision,
                "revision_sha256": entry.revision_sha256,
                "reviews": entry.reviews,
                "dry_run": {
                    "id": entry.dry_run_id,
                    "status": entry.report.status,
                    "server_version": entry.report.server_version,
                    "summary": _summary(entry.report),
                },
                "migrations": [
                    {"app_label": i.migration.app_label, "name": i.migration.name, "submitted_as": i.source_name}
                    | migration_paths[i.label]
                    for i in bundled
                    if i.entry is entry
                ],
            }
        )
    manifest = {
        "format": FORMAT,
        "project": project,
        "bundle": bundle_number,
        "lock_timeout_ms": int(lock_timeout_ms),
        "change_requests": manifest_requests,
        "dry_run": {
            "scope": "bundle",
            "status": combined_report.status,
            "engine": combined_report.engine,
            "server_version": combined_report.server_version,
            "summary": _summary(combined_report),
        },
        "apply_order": forward_order,
        "rollback_order": rollback_order,
        "rollback": {
            "complete": not irreversible and all(step.reached for step in rollback),
            "irreversible": irreversible,
            "data_not_restored": not_restored,
        },
        "data_steps": data_steps,
        **({"backfills": backfills} if backfills else {}),
        "phases": phases.as_manifest() if phases is not None else None,
        **engine_facts,
        "files": {path: hashlib.sha256(data).hexdigest() for path, data in sorted(files.items())},
    }
    manifest_bytes = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
    files["manifest.json"] = manifest_bytes
    files["manifest.json.sig"] = sign(manifest_bytes)
    return files


def _unique_entries(bundled: list[BundledMigration]) -> list[BundleEntry]:
    entries: list[BundleEntry] = []
    for item in bundled:
        if not any(e is item.entry for e in entries):
            entries.append(item.entry)
    return entries
