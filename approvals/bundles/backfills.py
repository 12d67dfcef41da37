"""What a bundle with Backfill steps adds: the helper module its migration files import the step
from, a generated management command and Celery task per step, the contract phase's SQL
preflight, and the rollout order in PHASES.md.

The helper is the service's own file (`shipped/schemagate_backfill.py`), copied byte for byte;
the commands and tasks are generated from each step's migration, index and description alone, so
the bundle stays reproducible.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import TYPE_CHECKING, Any

from approvals.bundles.shipped import schemagate_backfill
from changeapi.intake.backfill import Backfill

if TYPE_CHECKING:
    from approvals.bundles.contents import BundledMigration

# The module a bundle with a Backfill step ships at its root, for its migration files to import.
BACKFILL_HELPER = "schemagate_backfill.py"


class _ShippedBackfill(schemagate_backfill.Backfill):
    """The bundle's own `schemagate_backfill.Backfill`, as MigrationWriter names a class: by its
    module and the name `deconstruct()` gives, so the file imports the module the bundle ships."""


_ShippedBackfill.__module__ = "schemagate_backfill"


def shipped_backfill(operation: Backfill) -> schemagate_backfill.Backfill:
    """The service's step as the helper's, which MigrationWriter writes as
    `schemagate_backfill.Backfill(...)` with every argument."""
    return _ShippedBackfill(
        model=operation.model,
        assignments=operation.assignments,
        filter=operation.filter,
        batch_size=operation.batch_size,
        order_by=operation.order_by,
        pause_ms=operation.pause_ms,
        parity=operation.parity,
    )


def backfill_helper() -> bytes:
    """The helper module's text, shipped as it is in the service: the same bytes in every bundle."""
    return resources.files(schemagate_backfill.__package__ or "").joinpath(BACKFILL_HELPER).read_bytes()


def backfill_steps(bundled: list[BundledMigration], *, bundle_number: int) -> list[dict[str, Any]]:
    """The Backfill steps of the bundle, in apply order: what runs after their migration commits,
    each by its own generated command (`schemagate_backfill_<bundle>_<n>`)."""
    steps: list[dict[str, Any]] = []
    for item in bundled:
        for index, operation in enumerate(item.migration.operations):
            if isinstance(operation, Backfill):
                command = f"schemagate_backfill_{bundle_number}_{len(steps) + 1}"
                steps.append(
                    {
                        "migration": item.label,
                        "operation_index": index,
                        "model": operation.model,
                        "description": operation.describe(),
                        "helper": BACKFILL_HELPER,
                        "command": command,
                        "command_file": f"management/commands/{command}.py",
                        "task": command,
                        "task_file": f"tasks/{command}.py",
                        "change_request": item.entry.number,
                    }
                )
    return steps


def backfill_rollout(backfills: list[dict[str, Any]], *, paths: dict[str, dict[str, str]]) -> str:
    """PHASES.md's part on the Backfill steps: each runs between its migration and the next one,
    which may need its rows (a NOT NULL, a validated CHECK)."""
    if not backfills:
        return ""
    lines = [
        "",
        "## Backfills",
        "",
        "Each backfill runs after its migration commits, off the deploy path, and before the bundle's",
        "later migrations, which may need its rows. Put `schemagate_backfill.py` on the project's import",
        "path and each command file in the `management/commands/` package of an installed app, then:",
        "",
    ]
    for step in backfills:
        app_label, name = step["migration"].split(".", 1)
        lines += [
            f"1. Apply up to {step['migration']} (`python manage.py migrate {app_label} {name}`, or the SQL files "
            f"up to `{paths[step['migration']]['forward_sql']}`).",
            f"   Run `python manage.py {step['command']}` ({step['description']}) until it says finished,",
            f"   or the Celery task `{step['task']}` (`{step['task_file']}`); stopped or killed, either resumes",
            "   after its last committed batch.",
            f"   `python manage.py {step['command']} --check-parity` must succeed before the migrations after",
            "   it are applied: it fails until the backfill finished and its parity check counts zero.",
        ]
    return "\n".join(lines) + "\n"


def _dollar_tag(body: str) -> str:
    """A dollar-quote tag that does not occur in `body`, so no value in it can end the quote."""
    tag, number = "$preflight$", 0
    while tag in body:
        number += 1
        tag = f"$preflight{number}$"
    return tag


def parity_preflight(step: dict[str, Any], *, count_sql: str) -> str:
    """The contract phase's preflight in SQL: a statement that stops the script (`psql -v
    ON_ERROR_STOP=1`) while the step's parity check still counts rows on the target database, with
    what to do about it. `count_sql` is the count as the dry-run compiled it."""
    message = (
        f"Schemagate preflight: the backfill of {step['migration']} (operation {step['operation_index']}) has not reached "
        f"parity: its check counts % rows. Run `python manage.py {step['command']}` until it says finished, "
        "then apply this file again."
    ).replace("'", "''")
    body = (
        f" DECLARE remaining bigint; BEGIN SELECT ({count_sql}) INTO remaining; "
        f"IF remaining > 0 THEN RAISE EXCEPTION '{message}', remaining; END IF; END "
    )
    tag = _dollar_tag(body)
    return f"DO {tag}{body}{tag};"


def backfill_command_file(step: dict[str, Any], *, project_slug: str, bundle_number: int) -> bytes:
    """The management command of one Backfill step: a subclass of the helper's `BackfillCommand`
    naming the step by its migration and operation index, which is where the command reads it.
    Strings are written as JSON strings: valid Python, in the quotes a formatter would choose."""
    app_label, name = step["migration"].split(".", 1)
    return (
        f"# Release bundle {bundle_number} of {project_slug}: change request #{step['change_request']}, "
        f"{step['migration']}, operation {step['operation_index']}.\n"
        f'"""{step["description"]}.\n\n'
        f"Run after {step['migration']} is applied: `python manage.py {step['command']}` (resumable; see\n"
        '`--help` and schemagate_backfill.py)."""\n\n'
        "from schemagate_backfill import BackfillCommand\n\n\n"
        "class Command(BackfillCommand):\n"
        f"    help = {json.dumps(step['description'] + ', resumably.')}\n"
        f"    migration = ({json.dumps(app_label)}, {json.dumps(name)})\n"
        f"    operation_index = {step['operation_index']}\n"
    ).encode()


def backfill_task_file(step: dict[str, Any], *, project_slug: str, bundle_number: int) -> bytes:
    """The Celery task of one Backfill step, beside its command: the helper's loop in chunks of
    batches, each chunk enqueueing the next. Idempotent (checkpointed by key), so it is declared
    `acks_late` with `reject_on_worker_lost`: a chunk lost with its worker is delivered again."""
    app_label, name = step["migration"].split(".", 1)
    task = step["task"]
    return (
        f"# Release bundle {bundle_number} of {project_slug}: change request #{step['change_request']}, "
        f"{step['migration']}, operation {step['operation_index']}.\n"
        f'"""{step["description"]}, as a Celery task.\n\n'
        f"Run after {step['migration']} is applied: `{task}.delay()` (resumable: each call runs a chunk of\n"
        'batches from the checkpoint and enqueues the next; see schemagate_backfill.py)."""\n\n'
        "from celery import shared_task\n\n"
        "from schemagate_backfill import DEFAULT_TASK_BATCHES, backfill_task_run\n\n\n"
        f"@shared_task(bind=True, name={json.dumps(task)}, acks_late=True, reject_on_worker_lost=True)\n"
        f"def {task}(\n"
        "    self,\n"
        '    database="default",\n'
        "    chunk_batches=DEFAULT_TASK_BATCHES,\n"
        "    report_url=None,\n"
        "    api_key=None,\n"
        "):\n"
        f"    return backfill_task_run(\n"
        "        self,\n"
        f"        migration=({json.dumps(app_label)}, {json.dumps(name)}),\n"
        f"        operation_index={step['operation_index']},\n"
        "        database=database,\n"
        "        chunk_batches=chunk_batches,\n"
        "        report_url=report_url,\n"
        "        api_key=api_key,\n"
        "    )\n"
    ).encode()
