"""Rules about compatibility and safety of the change itself: SG201-SG303.

During a deploy the previous application version keeps running against the migrated
schema, so drops and renames break it; data steps, irreversible steps and per-row defaults
need their own handling. These rules read the plan's operations and the reversibility check.
"""

from __future__ import annotations

from decimal import Decimal

from django.db import models
from django.db.migrations import operations as ops
from django.db.migrations.operations.base import Operation
from django.db.models.fields import NOT_PROVIDED

from changeapi.dryrun.analysis.classify import REWRITE
from changeapi.dryrun.analysis.findings import (
    AnalysisContext,
    RuleFunction,
    estimated_ms,
    finding,
    migration_example,
    operation_code,
)
from changeapi.dryrun.apply import is_data_step, is_noop_data_step
from changeapi.dryrun.contract import Finding, SaferAlternative
from changeapi.dryrun.sql_forms import statement_form
from changeapi.intake.backfill import Backfill


def _operations(ctx: AnalysisContext) -> list[tuple[str, int, ops.base.Operation]]:
    if ctx.plan is None:
        return []
    return [
        (f"{m.app_label}.{m.name}", index, operation) for m in ctx.plan.migrations for index, operation in enumerate(m.operations)
    ]


def _table(ctx: AnalysisContext, migration: str, index: int) -> str | None:
    for s in ctx.statements:
        if s.migration == migration and s.operation_index == index and s.target_tables:
            return str(s.target_tables[0])
    return None


def _first_statement(ctx: AnalysisContext, migration: str, index: int) -> int | None:
    return next((s.index for s in ctx.statements if s.migration == migration and s.operation_index == index), None)


def backward_incompatible_drop(ctx: AnalysisContext) -> list[Finding]:
    """SG201: RemoveField / DeleteModel break the application version still running during the deploy."""
    findings = []
    for migration, index, op in _operations(ctx):
        if not isinstance(op, ops.RemoveField | ops.DeleteModel):
            continue
        table = _table(ctx, migration, index)
        first = _first_statement(ctx, migration, index)
        if ctx.is_new(table, first):
            continue  # no running version knows a table this change created
        state_only = ops.SeparateDatabaseAndState(state_operations=[op], database_operations=[])
        database_only = ops.SeparateDatabaseAndState(state_operations=[], database_operations=[op])
        what = f"column {op.name}" if isinstance(op, ops.RemoveField) else f"table of {op.name}"
        findings.append(
            finding(
                "SG201",
                severity="high",
                message=f"{op.describe()} drops the {what} while the running application version still reads and writes it: "
                f"its queries fail from the moment the migration commits until the new version is everywhere.",
                safer_alternative=SaferAlternative(
                    summary="Expand and contract: stop using it in one release, drop it in the next.",
                    steps=(
                        "Release 1: remove every use from the code; remove it from Django's state only (first example).",
                        "Release 2, once no running version uses it: drop it in the database (second example).",
                    ),
                    example=f"# release 1\n{operation_code(state_only)}\n# release 2\n{operation_code(database_only)}",
                ),
                migration=migration,
                operation_index=index,
                statement_index=first,
                table=table,
            )
        )
    return findings


def _renamed_field(ctx: AnalysisContext, migration: str, index: int, op: ops.RenameField) -> models.Field | None:
    """The field being renamed, as the state before the rename has it (None when the run did not
    complete that migration)."""
    state = ctx.state_before(migration, index)
    model = state.models.get((ctx.app_label(migration), op.model_name_lower)) if state is not None else None
    return model.fields.get(op.old_name) if model is not None else None


def _phased_rename(app_label: str, op: ops.RenameField, old: models.Field) -> str:
    """The rename as expand, backfill and contract migration files a team can submit as the next
    revision (the migration-files form reads the Backfill step): a new nullable column of the same
    type, the copy in batches, and, once the application writes both and reads the new one, the
    NOT NULL (when the old column had it) and the drop. Released, they are a bundle's phases."""
    _, _, args, kwargs = old.deconstruct()
    for option in ("default", "db_column", "unique", "db_index", "primary_key"):
        kwargs.pop(option, None)
    new = type(old)(*args, **{**kwargs, "null": True})
    old_key, new_key = op.old_name, op.new_name
    parity = models.Q(**{f"{new_key}__isnull": True, f"{old_key}__isnull": False})
    backfill = Backfill(
        f"{app_label}.{op.model_name}",
        {new_key: models.F(old_key)},
        filter=models.Q(**{f"{new_key}__isnull": True}),
        parity=parity,
    )
    contract: list[Operation] = []
    if not old.null:
        final = type(old)(*args, **{**kwargs, "null": False})
        contract.append(ops.AlterField(op.model_name, op.new_name, final))
    contract.append(ops.RemoveField(op.model_name, op.old_name))
    return "\n".join(
        [
            f"# --- migration 1. expand: {op.new_name} beside {op.old_name}, copied in batches after this commits",
            migration_example([ops.AddField(op.model_name, op.new_name, new), backfill]),
            f"# deploy code that writes both {op.old_name} and {op.new_name}, then code that reads {op.new_name}",
            "# --- migration 2. contract, once the backfill's parity check counts zero (the bundle's preflight "
            f"refuses it before) and no running version uses {op.old_name}",
            migration_example(contract),
        ]
    )


def backward_incompatible_rename(ctx: AnalysisContext) -> list[Finding]:
    """SG202: renaming a column or table breaks the running version, which still uses the old name."""
    findings = []
    for migration, index, op in _operations(ctx):
        if isinstance(op, ops.RenameField):
            example = (
                f"# keep the column, rename only in Django: on the model, {op.new_name} = models.<Field>(db_column='{op.old_name}')\n"
                + operation_code(
                    ops.SeparateDatabaseAndState(
                        state_operations=[ops.RenameField(op.model_name, op.old_name, op.new_name)], database_operations=[]
                    )
                )
            )
            old = _renamed_field(ctx, migration, index, op)
            if old is not None and not old.primary_key and not old.many_to_many:
                example += "\n# or expand and contract:\n" + _phased_rename(ctx.app_label(migration), op, old)
            subject = f"column {op.old_name} to {op.new_name}"
        elif isinstance(op, ops.RenameModel | ops.AlterModelTable):
            example = "# keep the table name: set Meta.db_table to the current table name, so the rename is state-only"
            subject = "the table"
        else:
            continue
        table = _table(ctx, migration, index)
        first = _first_statement(ctx, migration, index)
        if ctx.is_new(table, first):
            continue
        findings.append(
            finding(
                "SG202",
                severity="high",
                message=f"{op.describe()} renames {subject} in the database; the running version keeps using the old name and fails "
                "until it is replaced.",
                safer_alternative=SaferAlternative(
                    summary="Rename in Django only, or add + copy + drop across releases.",
                    steps=(
                        "Simplest: keep the database name (db_column / db_table) and rename only the Django field or model.",
                        "Or expand and contract: add the new column, write both, backfill in batches, switch reads, drop the "
                        "old column in a later release.",
                    ),
                    example=example,
                ),
                migration=migration,
                operation_index=index,
                statement_index=first,
                table=table,
            )
        )
    return findings


def data_migration_mixed(ctx: AnalysisContext) -> list[Finding]:
    """SG301: a RunPython step shares a migration (and its transaction and locks) with schema operations."""
    findings: list[Finding] = []
    if ctx.plan is None:
        return findings
    for m in ctx.plan.migrations:
        data = [i for i, op in enumerate(m.operations) if is_data_step(op) and not is_noop_data_step(op)]
        schema = [i for i, op in enumerate(m.operations) if not is_data_step(op)]
        if not data or not schema:
            continue
        label = f"{m.app_label}.{m.name}"
        names = ", ".join(m.operations[i].describe() for i in data)
        if ctx.engine in NON_TRANSACTIONAL_DDL:
            # MySQL/MariaDB commit each DDL statement on its own, atomic migration or not.
            effect = (
                "DDL is not transactional on this engine, so each schema statement before the data step has committed "
                "when it runs: it holds none of their locks, but a failure half-way leaves the schema changed and the "
                "data partly migrated"
            )
        elif m.atomic:
            effect = "the data step runs inside the schema change's transaction, holding its locks for as long as it takes"
            if ctx.engine == "sqlite":
                effect += " (on SQLite, the write lock on the whole database)"
        else:
            # Django runs an operation of a non-atomic migration in a transaction of its own only
            # when it says atomic=True (RunPython(atomic=True)); otherwise in autocommit.
            effect = (
                "the migration is not atomic, so the data step runs after the schema operations before it have "
                "committed, in a transaction of its own (RunPython(atomic=True)) or none: it holds none of their locks, "
                "but a failure half-way leaves the schema changed and the data partly migrated"
            )
        findings.append(
            finding(
                "SG301",
                severity="medium",
                message=f"{label} mixes data steps ({names}; not executed by the dry-run) with {len(schema)} schema operation(s): "
                f"{effect}, and its timing is not in this report.",
                safer_alternative=SaferAlternative(
                    summary="Separate data migrations from schema migrations.",
                    steps=(
                        "Schema migration (expand): the new columns or tables, nullable.",
                        "Data migration of its own, `atomic = False`, updating in batches, each batch its own transaction.",
                        "Schema migration (contract): constraints and drops, after the data is in place.",
                    ),
                ),
                migration=label,
                operation_index=data[0],
            )
        )
    return findings


def irreversible_migration(ctx: AnalysisContext) -> list[Finding]:
    """SG302: a migration whose backwards step does not exist or fails on the shadow."""
    findings = []
    for entry in ctx.reversibility:
        if entry.reversible or not entry.checked:
            continue
        reason = entry.reason
        if "RunSQL" in reason:
            steps = ["Give every RunSQL a reverse_sql (RunSQL.noop when there is nothing to undo)."]
        elif "RunPython" in reason:
            steps = ["Give every RunPython a reverse_code (RunPython.noop when the data needs no undoing)."]
        else:
            steps = [
                "Make the rollback possible: a column that is dropped NOT NULL needs a default or null=True first, so "
                "re-adding it works on a table with rows.",
            ]
        findings.append(
            finding(
                "SG302",
                severity="medium",
                message=f"{entry.migration} cannot be rolled back: {reason}.",
                safer_alternative=SaferAlternative(
                    summary="Make the migration reversible, or document the manual rollback.", steps=tuple(steps)
                ),
                migration=entry.migration,
            )
        )
    return findings


def volatile_default(ctx: AnalysisContext) -> list[Finding]:
    """SG303: a per-row (volatile) database default rewrites the table; a Python callable gives all rows one value."""
    findings = []
    for s in ctx.statements:
        tables = [t for t in s.target_tables if not ctx.is_new(t, s.index)]
        if not tables or s.command != "ALTER TABLE":
            continue
        once = statement_form(s.sql).once_default_columns
        if once:
            findings.append(
                finding(
                    "SG303",
                    severity="medium",
                    message=f"Column {', '.join(once)} of {tables[0]} is added with a default PostgreSQL evaluates once, "
                    "when the column is added (now(), CURRENT_TIMESTAMP): no rewrite, but every existing row gets "
                    "that same moment.",
                    safer_alternative=_per_row_alternative(tables[0], once[0], value="<the value for this row>"),
                    migration=s.migration,
                    operation_index=s.operation_index,
                    statement_index=s.index,
                    table=tables[0],
                )
            )
        columns = s.volatile_default_columns
        if not columns or s.work_class != REWRITE:
            continue  # SET DEFAULT gen_random_uuid() only applies to new rows: nothing is rewritten
        findings.append(
            finding(
                "SG303",
                severity=ctx.severity(tables[0], estimated_ms(s)),
                message=f"Column {', '.join(columns)} of {tables[0]} gets a volatile default: PostgreSQL computes it for every "
                "existing row by rewriting the table under ACCESS EXCLUSIVE.",
                safer_alternative=_per_row_alternative(tables[0], columns[0]),
                migration=s.migration,
                operation_index=s.operation_index,
                statement_index=s.index,
                table=tables[0],
            )
        )
    for migration, index, op in _operations(ctx):
        if not isinstance(op, ops.AddField) or not _varying_callable(op.field.default):
            continue
        table = _table(ctx, migration, index)
        if table is None or ctx.is_new(table, _first_statement(ctx, migration, index)):
            continue
        field = op.field.clone()  # type: ignore[attr-defined]
        field.set_attributes_from_name(op.name)
        unique = " As the field is unique, the migration fails on a table with more than one row." if field.unique else ""
        findings.append(
            finding(
                "SG303",
                severity="high" if field.unique else "medium",
                message=f"{op.describe()} has a callable default: Django calls it once, so every existing row of {table} gets the "
                f"same value.{unique}",
                safer_alternative=_per_row_alternative(table, field.column),
                migration=migration,
                operation_index=index,
                statement_index=_first_statement(ctx, migration, index),
                table=table,
            )
        )
    return findings


# Callables whose every call returns the same value (an empty container, zero, ""): Django
# calls one once for the existing rows and once per new row, and each gets that same value,
# which is what the field means. The database sees a constant default, stored in the catalog.
CONSTANT_CALLABLES: tuple[object, ...] = (dict, list, tuple, set, frozenset, str, bytes, int, float, bool, Decimal)


def _varying_callable(default: object) -> bool:
    """A callable default that may return a different value per call (a key, a time, a random token).

    Only those make "every existing row gets the same value" a surprise; constant callables
    (`dict`, `list`, ...) are no finding.
    """
    if default is NOT_PROVIDED or not callable(default):
        return False
    return not any(default is constant for constant in CONSTANT_CALLABLES)


def _per_row_alternative(table: str, column: str, *, value: str = "gen_random_uuid()") -> SaferAlternative:
    add = ops.AddField(model_name="<model>", name=column, field=models.UUIDField(null=True))
    return SaferAlternative(
        summary="Add the column nullable without a default, backfill per row in batches, then constrain it.",
        steps=(
            "Add the column nullable, with no default (catalog only).",
            "Set the default for new rows (db_default or the model's default) without touching existing ones.",
            "Backfill existing rows in batches in a non-atomic data migration, computing a value per row.",
            "Then NOT NULL via a validated CHECK, and unique via a concurrently built unique index.",
        ),
        example=f"{operation_code(add)}  # field type as in the change\n"
        f"-- batches: UPDATE {table} SET {column} = {value} WHERE id IN "
        f"(SELECT id FROM {table} WHERE {column} IS NULL LIMIT 10000);",
    )


NON_TRANSACTIONAL_DDL = frozenset({"mysql", "mariadb"})

EVERY_ENGINE_RULES: list[RuleFunction] = [
    backward_incompatible_drop,
    backward_incompatible_rename,
    data_migration_mixed,
    irreversible_migration,
]
"""The rules of this module every engine's report feeds: they read the plan's operations, the
tables each statement works on and creates, and the reversal of the change on its clone, all of
which each engine's run records. SG303 stays PostgreSQL's: it is about how PostgreSQL stores a
column's default."""

RULES: list[RuleFunction] = [
    backward_incompatible_drop,
    backward_incompatible_rename,
    data_migration_mixed,
    irreversible_migration,
    volatile_default,
]
