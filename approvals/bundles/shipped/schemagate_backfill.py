"""Schemagate's declarative Backfill step, as a release bundle's migration files name it, and
the resumable runner of its batches that the bundle's generated management commands call.

Shipped in every release bundle that has a Backfill step: put this file on the project's import
path (beside manage.py). It depends on Django only. Applying a migration that holds the step
(`migrate`) does nothing for it: the backfill runs after the migration commits, off the deploy
path, in keyset batches, each committed with its checkpoint in the table
`schemagate_backfill_checkpoint`, so a run stopped at any point resumes after the last batch done.
Given `--report-url` and `--api-key` it reports its progress to Schemagate (standard library only).
The same loop runs as a Celery task (`backfill_task_run`, called by the bundle's generated task
modules). While a step's parity check still counts rows, `migrate` refuses the migrations that
depend on its migration (the contract phase's preflight, connected to `pre_migrate` when this
module is imported, as the migration files do).
"""

from __future__ import annotations

import json
import logging
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.apps import apps as global_apps
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DEFAULT_DB_ALIAS, DatabaseError, IntegrityError, connections, transaction
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.operations.base import Operation
from django.db.models import BigIntegerField, BooleanField, CharField, DateTimeField, Field, Max, Model, TextField
from django.db.models.signals import pre_migrate
from django.utils import timezone

DEFAULT_BATCH_SIZE = 1000
CHECKPOINT_TABLE = "schemagate_backfill_checkpoint"


class Backfill(Operation):
    """Set `assignments` (field name -> Django expression) on the rows of `model`
    ("app_label.ModelName") matching `filter` (a `Q`, or None for every row), `batch_size` rows
    at a time in the order of `order_by` (a unique, non-null column; None for the primary key),
    pausing `pause_ms` milliseconds between batches, until `parity` (a `Q` of the rows still to
    do) counts zero.

    The step is data: a label, field names, Django expressions and `Q`s, numbers; no code. It
    changes neither the models nor the schema.
    """

    reduces_to_sql = False
    reversible = True

    def __init__(
        self,
        model: str,
        assignments: dict[str, Any],
        filter: Any = None,  # noqa: A002 - the step's own name for it
        batch_size: int = DEFAULT_BATCH_SIZE,
        order_by: str | None = None,
        pause_ms: int = 0,
        parity: Any = None,
    ) -> None:
        self.model = model
        self.assignments = dict(assignments)
        self.filter = filter
        self.batch_size = batch_size
        self.order_by = order_by
        self.pause_ms = pause_ms
        self.parity = parity
        super().__init__()

    def deconstruct(self) -> tuple[str, list[Any], dict[str, Any]]:
        return (
            "Backfill",
            [],
            {
                "model": self.model,
                "assignments": self.assignments,
                "filter": self.filter,
                "batch_size": self.batch_size,
                "order_by": self.order_by,
                "pause_ms": self.pause_ms,
                "parity": self.parity,
            },
        )

    def state_forwards(self, app_label: str, state: Any) -> None:
        return None  # rows change, the models do not

    def database_forwards(self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any) -> None:
        return None  # the batches run after the migration commits, off the deploy path

    def database_backwards(self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any) -> None:
        return None  # undoing the schema change (dropping the column) undoes the backfill

    def references_model(self, name: str, app_label: str) -> bool:
        model_app, _, model_name = self.model.partition(".")
        return (model_app, model_name.lower()) == (app_label, name.lower())

    def describe(self) -> str:
        key = self.order_by or "primary key"
        return f"Backfill {self.model}: set {', '.join(self.assignments)} in batches of {self.batch_size} by {key}"

    @property
    def migration_name_fragment(self) -> str:
        return f"backfill_{self.model.partition('.')[2].lower()}"


@dataclass
class Checkpoint:
    """How far one step got: the last key of the last committed batch (exclusive start of the next,
    None before the first), batches and rows done, the batches' time (pauses excluded, to set
    beside the dry-run's `work_ms`) and, once no key is left, the parity count."""

    step: str
    last_key: str | None
    batches: int
    rows: int
    finished: bool
    parity_remaining: int | None
    work_ms: int = 0


class ProgressReporter:
    """Sends the run's progress to Schemagate (`POST /api/v1/bundles/{id}/phases/{n}/progress/`)
    with a project API key. The service being slow or unreachable never stops the backfill: a
    report that fails is written to the output and the batches go on. At most one report every
    `interval_s` seconds, besides the last one and a failure's."""

    def __init__(
        self, *, url: str, api_key: str, write: Callable[[str], Any] = print, interval_s: float = 5.0, timeout_s: float = 5.0
    ) -> None:
        if not url.startswith(("https://", "http://")):
            raise ValueError(f"the report URL must be http(s): {url!r}")
        self.url, self.api_key, self.write = url, api_key, write
        self.interval_s, self.timeout_s = interval_s, timeout_s
        self.sent_at: float | None = None

    def report(
        self, checkpoint: Checkpoint, *, rate_rows_per_s: float, eta_s: float | None, errors: int = 0, force: bool = False
    ) -> bool:
        """Send one report (sequence: the time in microseconds, repeated by the one retry, so the
        service stores a retried report once). False when it was skipped or not delivered."""
        now = time.monotonic()
        if not force and self.sent_at is not None and now - self.sent_at < self.interval_s:
            return False
        self.sent_at = now
        body = json.dumps(
            {
                "sequence": time.time_ns() // 1000,
                "batches": checkpoint.batches,
                "rows": checkpoint.rows,
                "errors": errors,
                "rate_rows_per_s": round(max(rate_rows_per_s, 0.0), 3),
                "eta_s": None if eta_s is None else round(max(eta_s, 0.0), 1),
                "finished": checkpoint.finished,
                "parity_remaining": checkpoint.parity_remaining,
            }
        ).encode()
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {self.api_key}"}
        problem = ""
        for _attempt in range(2):
            request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")  # noqa: S310 (http(s) only, checked above)
            try:
                with urllib.request.urlopen(request, timeout=self.timeout_s) as response:  # noqa: S310 (the operator's URL)
                    response.read()
                return True
            except urllib.error.HTTPError as exc:
                problem = f"HTTP {exc.code}: {exc.read(500).decode('utf-8', 'replace')}"
                if exc.code < 500:
                    break  # refused (a bad key, a wrong URL): repeating it will not help
            except (OSError, ValueError) as exc:  # unreachable, timed out, a malformed URL
                problem = str(exc)
        self.write(f"progress not reported to {self.url} ({problem}); the backfill goes on.")
        return False


def _step_model(loader: MigrationLoader, node: tuple[str, str], step: Backfill) -> type[Model]:
    """The step's model as its migration's state renders it (as `RunPython` gets it from `apps`)."""
    return loader.project_state(node, at_end=True).apps.get_model(step.model)


def parity_count(loader: MigrationLoader, node: tuple[str, str], step: Backfill, *, using: str) -> int | None:
    """The rows the step's parity check counts on `using` now (None: the step has no check)."""
    if step.parity is None:
        return None
    return _step_model(loader, node, step)._base_manager.using(using).filter(step.parity).count()


def contract_preflight(*, plan: list[tuple[Any, bool]], using: str = DEFAULT_DB_ALIAS) -> None:
    """Refuse a `migrate` whose plan applies a migration that depends on an applied migration
    holding a Backfill step whose parity check still counts rows: the contract phase (a NOT NULL,
    a validated CHECK, a drop) must wait for the backfill. A plan that also applies the step's own
    migration (a new database) is not refused: the step's table has had no backfill to wait for."""
    forwards = [(migration.app_label, migration.name) for migration, backwards in plan if not backwards]
    if not forwards:
        return
    loader = MigrationLoader(connections[using])
    for node in loader.applied_migrations:
        migration = loader.graph.nodes.get(node)
        if migration is None:
            continue
        for index, step in enumerate(migration.operations):
            if not isinstance(step, Backfill) or step.parity is None:
                continue
            waiting = [later for later in forwards if node in loader.graph.forwards_plan(later) and later != node]
            if not waiting:
                continue
            remaining = parity_count(loader, node, step, using=using)
            if remaining:
                raise CommandError(
                    f"Schemagate preflight: {'.'.join(waiting[0])} depends on {'.'.join(node)}, whose backfill "
                    f"(operation {index}) has not reached parity: its check counts {remaining:,} rows on database "
                    f"{using!r}. Run the bundle's backfill command (or task) until it says finished, then migrate again."
                )


def _preflight_receiver(sender: Any, *, plan: Any = None, using: str = DEFAULT_DB_ALIAS, **kwargs: Any) -> None:
    """`pre_migrate` is sent once per installed app with models, with the same plan: check it
    when the first of them is the sender."""
    first = next((config for config in global_apps.get_app_configs() if config.models_module is not None), None)
    if plan and sender is first:
        contract_preflight(plan=plan, using=using)


# Connected where the module is the bundle's helper, imported by a team's migration files under its
# shipped name; the service that ships it imports it under its own package and runs no team's migrate.
if __name__ == "schemagate_backfill":
    pre_migrate.connect(_preflight_receiver, dispatch_uid="schemagate_backfill.contract_preflight")


class BackfillRun:
    """One Backfill step of an applied migration, run in keyset batches against the project's own
    database through Django's ORM, on the model as the migration's state renders it.

    Each batch is one transaction: it locks the step's checkpoint row, takes the next range of
    `batch_size` keys after the checkpoint (found on the ordering key alone), updates the rows of
    it the step's filter matches, and moves the checkpoint to the range's last key before it
    commits. A batch is thus done exactly once, whether the run is stopped, killed or started
    twice at the same time; a killed batch rolls back with its checkpoint and is done again.
    """

    def __init__(
        self,
        *,
        migration: tuple[str, str],
        operation_index: int,
        using: str = DEFAULT_DB_ALIAS,
        write: Callable[[str], Any] = print,
        reporter: ProgressReporter | None = None,
    ) -> None:
        self.reporter = reporter
        self.migration = migration
        self.operation_index = operation_index
        self.using = using
        self.write = write
        self.step_name = f"{migration[0]}.{migration[1]}:{operation_index}"
        self.connection = connections[using]
        self.table = self.connection.ops.quote_name(CHECKPOINT_TABLE)
        self.step, self.model = self._load()
        key = self.model._meta.pk if self.step.order_by is None else self.model._meta.get_field(self.step.order_by)
        self.key_field: Any = key
        self.key = key.name

    def _load(self) -> tuple[Backfill, type[Model]]:
        loader = MigrationLoader(self.connection)
        if self.migration not in loader.graph.nodes:
            raise CommandError(f"No migration {'.'.join(self.migration)}: copy the bundle's migration files first.")
        if self.migration not in loader.applied_migrations:
            raise CommandError(f"Apply {'.'.join(self.migration)} first: the backfill runs after its migration commits.")
        operations = loader.graph.nodes[self.migration].operations
        step = operations[self.operation_index] if self.operation_index < len(operations) else None
        if not isinstance(step, Backfill):
            raise CommandError(f"Operation {self.operation_index} of {'.'.join(self.migration)} is not a Backfill step.")
        return step, _step_model(loader, self.migration, step)

    # -- the checkpoint -------------------------------------------------------------------

    def _now(self) -> Any:
        return self.connection.ops.adapt_datetimefield_value(timezone.now())

    def _create_table(self) -> None:
        """The checkpoint table; column types are what the backend makes of Django's fields
        (`Field.db_type`), so the SQL is not PostgreSQL's alone."""
        fields: tuple[Field[Any, Any], ...] = (
            CharField(max_length=255),
            TextField(),
            BigIntegerField(),
            BooleanField(),
            DateTimeField(),
        )
        key, text, big, flag, moment = (field.db_type(self.connection) for field in fields)
        try:
            with transaction.atomic(using=self.using), self.connection.cursor() as cursor:
                cursor.execute(
                    f"CREATE TABLE IF NOT EXISTS {self.table} (step {key} PRIMARY KEY, "
                    f"last_key {text} NULL, batches {big} NOT NULL, rows_done {big} NOT NULL, finished {flag} NOT NULL, "
                    f"parity_remaining {big} NULL, work_ms {big} NOT NULL, updated_at {moment} NOT NULL)"
                )
        except DatabaseError:
            # Two first runs at once: PostgreSQL's IF NOT EXISTS does not stop the second
            # from failing on the catalog while the first commits its table.
            if CHECKPOINT_TABLE not in self.connection.introspection.table_names():
                raise

    def _ensure_checkpoint(self) -> None:
        """The checkpoint table and the step's row in it, made once."""
        if CHECKPOINT_TABLE not in self.connection.introspection.table_names():
            self._create_table()
        with self.connection.cursor() as cursor:
            cursor.execute(f"SELECT 1 FROM {self.table} WHERE step = %s", [self.step_name])
            if cursor.fetchone() is not None:
                return
        try:
            with transaction.atomic(using=self.using), self.connection.cursor() as cursor:
                cursor.execute(
                    f"INSERT INTO {self.table} (step, last_key, batches, rows_done, finished, work_ms, updated_at) "
                    "VALUES (%s, NULL, 0, 0, %s, 0, %s)",
                    [self.step_name, False, self._now()],
                )
        except IntegrityError:
            pass  # another run of the step made the row first

    def checkpoint(self, *, lock: bool = False) -> Checkpoint:
        """The step's checkpoint; with `lock`, held until the transaction ends (inside one, after
        an unlocked read made sure the row exists)."""
        if not lock:
            self._ensure_checkpoint()
        for_update = " FOR UPDATE" if lock and self.connection.features.has_select_for_update else ""
        with self.connection.cursor() as cursor:
            cursor.execute(
                f"SELECT last_key, batches, rows_done, finished, parity_remaining, work_ms FROM {self.table} WHERE step = %s"
                + for_update,
                [self.step_name],
            )
            last_key, batches, rows, finished, parity, work_ms = cursor.fetchone()
        return Checkpoint(self.step_name, last_key, int(batches), int(rows), bool(finished), parity, int(work_ms))

    def _save(self, checkpoint: Checkpoint) -> None:
        with self.connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {self.table} SET last_key = %s, batches = %s, rows_done = %s, finished = %s, "
                "parity_remaining = %s, work_ms = %s, updated_at = %s WHERE step = %s",
                [
                    checkpoint.last_key,
                    checkpoint.batches,
                    checkpoint.rows,
                    checkpoint.finished,
                    checkpoint.parity_remaining,
                    checkpoint.work_ms,
                    self._now(),
                    self.step_name,
                ],
            )

    def reset(self) -> None:
        """Forget the checkpoint: the next run starts again from the first key."""
        self._ensure_checkpoint()
        with self.connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {self.table} WHERE step = %s", [self.step_name])

    # -- the batches ----------------------------------------------------------------------

    def _rows(self) -> Any:
        return self.model._base_manager.using(self.using)

    def _after(self, last: Any) -> Any:
        rows = self._rows()
        return rows if last is None else rows.filter(**{f"{self.key}__gt": last})

    def _upper(self, last: Any) -> Any:
        """The last key of the next batch: the `batch_size`-th key after `last`, else the largest."""
        keys = self._after(last).order_by(self.key).values_list(self.key, flat=True)
        found = list(keys[self.step.batch_size - 1 : self.step.batch_size])
        if found:
            return found[0]
        return self._after(last).aggregate(upper=Max(self.key))["upper"]

    def parity(self) -> int | None:
        """The rows the step's parity check still counts (None: the step has no check)."""
        return None if self.step.parity is None else self._rows().filter(self.step.parity).count()

    def run(self, *, max_batches: int | None = None) -> Checkpoint:
        """Run batches from the checkpoint until no key is left (or `max_batches` of them)."""
        started, done = time.monotonic(), 0
        checkpoint = self.checkpoint()
        if checkpoint.finished:
            self.write(f"{self.step_name}: already finished ({checkpoint.rows:,} rows in {checkpoint.batches:,} batches).")
            self._report(checkpoint, started, checkpoint.rows, 0.0, force=True)  # in case an earlier report was lost
            return checkpoint
        if checkpoint.last_key is not None:
            self.write(f"{self.step_name}: resuming after key {checkpoint.last_key} ({checkpoint.batches:,} batches done).")
        # For the ETA only: the keys left, counted once per run, and only when reporting.
        keys_left = None
        if self.reporter is not None:
            last_key = None if checkpoint.last_key is None else self.key_field.to_python(checkpoint.last_key)
            keys_left = self._after(last_key).count()
        rows_at_start = checkpoint.rows
        while max_batches is None or done < max_batches:
            if done and self.step.pause_ms:
                time.sleep(self.step.pause_ms / 1000)
            batch_started = time.monotonic()
            try:
                checkpoint, upper, changed = self._batch()
            except DatabaseError:
                self._report(checkpoint, started, rows_at_start, None, errors=1, force=True)
                raise
            if upper is None:
                break
            done += 1
            elapsed = time.monotonic() - started
            self.write(
                f"{self.step_name}: batch {checkpoint.batches:,} up to key {upper}: {changed:,} rows in "
                f"{(time.monotonic() - batch_started) * 1000:.0f} ms; {checkpoint.rows:,} rows in all, "
                f"{done / elapsed if elapsed else 0:.1f} batches/s this run"
            )
            if keys_left is not None:
                batches_left = max(keys_left - done * self.step.batch_size, 0) / self.step.batch_size
                eta = batches_left * (elapsed / done)
                self._report(checkpoint, started, rows_at_start, eta)
        if checkpoint.finished:
            self._report(checkpoint, started, rows_at_start, 0.0, force=True)
            parity = "" if checkpoint.parity_remaining is None else f"; parity check counts {checkpoint.parity_remaining:,}"
            self.write(
                f"{self.step_name}: finished, {checkpoint.rows:,} rows in {checkpoint.batches:,} batches, "
                f"{checkpoint.work_ms:,} ms of batch work (pauses excluded){parity}."
            )
        else:
            self._report(checkpoint, started, rows_at_start, None, force=True)
            self.write(f"{self.step_name}: stopped after {done:,} batches; run again to resume after key {checkpoint.last_key}.")
        return checkpoint

    def _report(
        self,
        checkpoint: Checkpoint,
        started: float,
        rows_at_start: int,
        eta_s: float | None,
        *,
        errors: int = 0,
        force: bool = False,
    ) -> None:
        if self.reporter is None:
            return
        elapsed = time.monotonic() - started
        rate = (checkpoint.rows - rows_at_start) / elapsed if elapsed > 0 else 0.0
        self.reporter.report(checkpoint, rate_rows_per_s=rate, eta_s=eta_s, errors=errors, force=force)

    def _batch(self) -> tuple[Checkpoint, Any, int]:
        """One batch in its own transaction: the checkpoint, the batch's upper key (None when no key
        was left, and the checkpoint is then finished) and the rows it changed."""
        batch_started = time.monotonic()
        with transaction.atomic(using=self.using):
            checkpoint = self.checkpoint(lock=True)
            if checkpoint.finished:
                return checkpoint, None, 0
            last = None if checkpoint.last_key is None else self.key_field.to_python(checkpoint.last_key)
            upper = self._upper(last)
            if upper is None:
                checkpoint.finished, checkpoint.parity_remaining = True, self.parity()
                self._save(checkpoint)
                return checkpoint, None, 0
            rows = self._after(last).filter(**{f"{self.key}__lte": upper})
            if self.step.filter is not None:
                rows = rows.filter(self.step.filter)
            changed = rows.update(**self.step.assignments)
            checkpoint.last_key, checkpoint.batches, checkpoint.rows = (
                str(upper),
                checkpoint.batches + 1,
                checkpoint.rows + changed,
            )
            checkpoint.work_ms += round((time.monotonic() - batch_started) * 1000)
            self._save(checkpoint)
        return checkpoint, upper, changed


class BackfillCommand(BaseCommand):
    """A bundle's generated command for one Backfill step: `migration` and `operation_index` name
    it; run, resumed, inspected (`--status`) or used as the contract phase's preflight
    (`--check-parity`, which fails until the backfill finished and its parity check counts zero)."""

    migration: tuple[str, str]
    operation_index: int

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--database", default=DEFAULT_DB_ALIAS, help="The database to backfill.")
        parser.add_argument("--max-batches", type=int, default=None, help="Stop after this many batches; run again to resume.")
        parser.add_argument("--status", action="store_true", help="Print the checkpoint and the parity count; change nothing.")
        parser.add_argument(
            "--check-parity", action="store_true", help="Fail unless the backfill finished and its parity check counts zero."
        )
        parser.add_argument(
            "--reset", action="store_true", help="Forget the checkpoint, so the next run starts from the first key."
        )
        parser.add_argument(
            "--report-url",
            default=os.environ.get("SCHEMAGATE_REPORT_URL", ""),
            help="Schemagate's progress URL of this step (/api/v1/bundles/{id}/phases/{n}/progress/); "
            "default $SCHEMAGATE_REPORT_URL.",
        )
        parser.add_argument(
            "--api-key",
            default=os.environ.get("SCHEMAGATE_API_KEY", ""),
            help="A project API key with release_bundle; default $SCHEMAGATE_API_KEY (prefer it: arguments show in ps).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        reporter = None
        if options["report_url"]:
            if not options["api_key"]:
                raise CommandError("--report-url needs --api-key (or SCHEMAGATE_API_KEY).")
            try:
                reporter = ProgressReporter(url=options["report_url"], api_key=options["api_key"], write=self.stdout.write)
            except ValueError as exc:
                raise CommandError(str(exc)) from exc
        run = BackfillRun(
            migration=self.migration,
            operation_index=self.operation_index,
            using=options["database"],
            write=self.stdout.write,
            reporter=reporter,
        )
        if options["reset"]:
            run.reset()
            self.stdout.write(f"{run.step_name}: checkpoint forgotten.")
        elif options["status"] or options["check_parity"]:
            checkpoint, parity = run.checkpoint(), run.parity()
            state = "finished" if checkpoint.finished else f"after key {checkpoint.last_key}"
            counted = "no parity check" if parity is None else f"parity check counts {parity:,}"
            self.stdout.write(f"{run.step_name}: {state}, {checkpoint.rows:,} rows in {checkpoint.batches:,} batches; {counted}.")
            if options["check_parity"] and not (checkpoint.finished and not parity):
                raise CommandError(f"{run.step_name}: the backfill has not reached parity; the contract phase must wait.")
        else:
            max_batches = options["max_batches"]
            if max_batches is not None and max_batches < 1:
                raise CommandError("--max-batches must be at least 1.")
            run.run(max_batches=max_batches)


logger = logging.getLogger("schemagate_backfill")

DEFAULT_TASK_BATCHES = 100


def backfill_task_run(
    task: Any,
    *,
    migration: tuple[str, str],
    operation_index: int,
    database: str = DEFAULT_DB_ALIAS,
    chunk_batches: int = DEFAULT_TASK_BATCHES,
    report_url: str | None = None,
    api_key: str | None = None,
) -> dict[str, Any]:
    """The body of a bundle's generated Celery task for one Backfill step: up to `chunk_batches`
    batches from the checkpoint, then, unless no key is left, the same task enqueued again (after
    the step's pause) for the next chunk. `task` is the bound task (`bind=True`): its
    `apply_async` and `request` (its arguments) are all this uses, so the helper needs no Celery.

    Every chunk is short, so a worker's time limit or a broker's visibility timeout never meets
    a long run; a chunk redelivered after a lost worker (`acks_late`) resumes from the checkpoint,
    and two chains at once take turns on it batch by batch: each key range is done once.
    Progress goes to `report_url` (default `$SCHEMAGATE_REPORT_URL`) with `api_key` (default
    `$SCHEMAGATE_API_KEY`), as the command sends it. Returns the checkpoint, as the task's result.
    """
    if chunk_batches < 1:
        raise ValueError("chunk_batches must be at least 1")
    url = report_url if report_url is not None else os.environ.get("SCHEMAGATE_REPORT_URL", "")
    key = api_key if api_key is not None else os.environ.get("SCHEMAGATE_API_KEY", "")
    reporter = ProgressReporter(url=url, api_key=key, write=logger.warning) if url and key else None
    run = BackfillRun(migration=migration, operation_index=operation_index, using=database, write=logger.info, reporter=reporter)
    checkpoint = run.run(max_batches=chunk_batches)
    if not checkpoint.finished:
        request = task.request
        task.apply_async(args=tuple(request.args or ()), kwargs=dict(request.kwargs or {}), countdown=run.step.pause_ms / 1000)
    return {
        "step": checkpoint.step,
        "last_key": checkpoint.last_key,
        "batches": checkpoint.batches,
        "rows": checkpoint.rows,
        "finished": checkpoint.finished,
        "parity_remaining": checkpoint.parity_remaining,
        "work_ms": checkpoint.work_ms,
    }
