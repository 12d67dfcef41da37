"""The `operations` form: JSON migration documents validated into real Django operations.

Every name in the JSON (field type, operation, on_delete, default callable) is looked up in an
explicit table, never imported; every value is read as the JSON type it must have (see
`json_reader`), and every error carries the JSON pointer of what is wrong.
"""

from __future__ import annotations

import datetime
import difflib
import re
import uuid
from collections.abc import Callable
from typing import Any

from django.contrib.postgres import fields as pg_fields
from django.contrib.postgres import operations as pg_operations
from django.core.exceptions import ValidationError
from django.db import models
from django.db.migrations import Migration, operations
from django.db.migrations.operations.base import Operation
from django.db.migrations.state import ProjectState
from django.utils import timezone

from changeapi.intake.backfill import Backfill, check_backfill, read_backfill
from changeapi.intake.engines import POSTGRESQL, postgresql_only_message, postgresql_only_path, runs_postgresql_only
from changeapi.intake.errors import IntakeErrors, IntakeLimitExceeded, Location, Problem
from changeapi.intake.expressions_json import build_condition
from changeapi.intake.json_reader import (
    Reader,
    any_json,
    boolean,
    choice,
    elements,
    member,
    natural_number,
    optional,
    positive_integer,
    refusal,
    string,
    string_list,
    typed,
)
from changeapi.intake.names import is_migration_name
from changeapi.intake.plan import Plan, PlannedMigration
from changeapi.intake.sql_policy import RefusedSql, check_sql
from changeapi.intake.state_closure import render_changed

FIELD_TYPES: dict[str, type[models.Field]] = {
    cls.__name__: cls
    for cls in (
        models.AutoField,
        models.BigAutoField,
        models.SmallAutoField,
        models.BooleanField,
        models.CharField,
        models.TextField,
        models.SlugField,
        models.EmailField,
        models.URLField,
        models.UUIDField,
        models.IntegerField,
        models.BigIntegerField,
        models.SmallIntegerField,
        models.PositiveIntegerField,
        models.PositiveBigIntegerField,
        models.PositiveSmallIntegerField,
        models.FloatField,
        models.DecimalField,
        models.DateField,
        models.DateTimeField,
        models.TimeField,
        models.DurationField,
        models.BinaryField,
        models.JSONField,
        models.GenericIPAddressField,
        models.FileField,
        models.ForeignKey,
        models.OneToOneField,
        models.ManyToManyField,
        pg_fields.ArrayField,
    )
}

RELATION_TYPES = {"ForeignKey", "OneToOneField", "ManyToManyField"}

ON_DELETE = {
    "CASCADE": models.CASCADE,
    "PROTECT": models.PROTECT,
    "RESTRICT": models.RESTRICT,
    "SET_NULL": models.SET_NULL,
    "SET_DEFAULT": models.SET_DEFAULT,
    "DO_NOTHING": models.DO_NOTHING,
}

DEFAULT_CALLABLES: dict[str, Callable[[], Any]] = {
    "django.utils.timezone.now": timezone.now,
    "uuid.uuid4": uuid.uuid4,
    "datetime.date.today": datetime.date.today,
    "dict": dict,
    "list": list,
}

# Keyword arguments passed through to the field constructor once read as their JSON type.
FIELD_ARGS: dict[str, Reader] = {
    "null": boolean,
    "blank": boolean,
    "default": any_json,
    "unique": boolean,
    "db_index": boolean,
    "primary_key": boolean,
    "max_length": positive_integer,
    "max_digits": positive_integer,
    "decimal_places": natural_number,
    "db_column": string,
    "db_comment": string,
    "db_tablespace": string,
    "auto_now": boolean,
    "auto_now_add": boolean,
    "related_name": string,
    "related_query_name": string,
    "db_constraint": boolean,
    "to_field": string,
    "editable": boolean,
    "verbose_name": string,
    "help_text": string,
    "size": positive_integer,
    "protocol": string,
    "unpack_ipv4": boolean,
    "upload_to": string,
}

# Model options passed through to CreateModel once read as their JSON type.
MODEL_OPTIONS: dict[str, Reader] = {
    "db_table": string,
    "db_table_comment": string,
    "verbose_name": string,
    "verbose_name_plural": string,
    "managed": boolean,
    "ordering": string_list,
}

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _identifier(value: Any, pointer: str, what: str) -> str:
    if not isinstance(value, str) or not _IDENTIFIER.match(value) or len(value) > 100:
        raise refusal(f"{what} must be a Python identifier (letters, digits, underscores), got {value!r:.60}", pointer)
    return value


def _model_reference(value: Any, pointer: str, app_label: str) -> str:
    """`app.Model`, or `Model` in the migration's own app."""
    if not isinstance(value, str) or not value:
        raise refusal("a model reference such as 'shop.Order' is required", pointer)
    parts = value.split(".")
    if len(parts) == 1:
        parts = [app_label, parts[0]]
    if len(parts) != 2 or not all(_IDENTIFIER.match(p) for p in parts):
        raise refusal(f"model reference must be 'app_label.ModelName', got {value!r:.60}", pointer)
    return ".".join(parts)


def _choices(value: Any, pointer: str) -> list[tuple[Any, Any]]:
    pairs = []
    for here, pair in elements(value, pointer):
        if not isinstance(pair, list) or len(pair) != 2:
            raise refusal("choices must be a list of [value, label] pairs", here)
        pairs.append((pair[0], pair[1]))
    return pairs


def _field_kwargs(spec: dict[str, Any], pointer: str, app_label: str, type_name: str) -> dict[str, Any]:
    """The constructor arguments of a field spec, each read as the type it must have."""
    kwargs: dict[str, Any] = {}
    for key, value in spec.items():
        here = f"{pointer}/{key}"
        if key == "type":
            continue
        if key in FIELD_ARGS:
            kwargs[key] = FIELD_ARGS[key](value, here)
        elif key == "default_callable":
            kwargs["default"] = choice(value, DEFAULT_CALLABLES, here, "default_callable")
        elif key == "db_default":
            kwargs["db_default"] = models.Value(value)
        elif key == "choices":
            kwargs["choices"] = _choices(value, here)
        elif key == "to":
            kwargs["to"] = _model_reference(value, here, app_label)
        elif key == "on_delete":
            kwargs["on_delete"] = choice(value, ON_DELETE, here, "on_delete")
        elif key == "base_field":
            kwargs["base_field"] = build_field(value, here, app_label)
        else:
            raise refusal(f"unknown field option {key!r:.60} for {type_name}", here)
    return kwargs


def _value_fits(field: models.Field, value: Any, pointer: str) -> None:
    """A default must be a value of the field's type, or the dry-run (and production) fails on it."""
    if field.is_relation:
        return  # the target's type is known only once the state is rendered
    try:
        field.to_python(value)
    except (ValidationError, TypeError, ValueError) as exc:
        reason = "; ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
        raise refusal(f"{value!r:.60} is not a value of {type(field).__name__}: {reason}", pointer) from None


def build_field(spec: Any, pointer: str, app_label: str) -> models.Field:
    """A Django field from its JSON spec: `{"type": "CharField", "max_length": 100, ...}`."""
    if not isinstance(spec, dict):
        raise refusal("a field spec must be an object with a 'type'", pointer)
    type_name = member(spec, "type", pointer)
    field_class = FIELD_TYPES.get(type_name) if isinstance(type_name, str) else None
    if field_class is None:
        hint = _did_you_mean(type_name, FIELD_TYPES)
        raise refusal(
            f"unknown field type {type_name!r:.60}{hint}; known types: {', '.join(sorted(FIELD_TYPES))}", f"{pointer}/type"
        )
    kwargs = _field_kwargs(spec, pointer, app_label, type_name)
    if type_name in RELATION_TYPES:
        if "to" not in kwargs:
            raise refusal(f"{type_name} needs 'to' (e.g. 'shop.Customer')", f"{pointer}/to")
        if type_name != "ManyToManyField" and "on_delete" not in kwargs:
            raise refusal(f"{type_name} needs 'on_delete' (e.g. 'CASCADE')", f"{pointer}/on_delete")
    if type_name == "ArrayField" and "base_field" not in kwargs:
        raise refusal("ArrayField needs 'base_field'", f"{pointer}/base_field")
    if kwargs.get("primary_key"):
        # As makemigrations writes a primary key: never serialized with the model's fields.
        kwargs.setdefault("serialize", False)
    try:
        field = field_class(**kwargs)
    except (TypeError, ValueError) as exc:
        raise refusal(f"invalid {type_name}: {exc}", pointer) from exc
    for key in ("default", "db_default"):
        if spec.get(key) is not None:
            _value_fits(field, spec[key], f"{pointer}/{key}")
    return field


def _name_list(value: Any, pointer: str, what: str) -> list[str]:
    names = elements(value, pointer, non_empty=True, what=what)
    for here, item in names:
        name = item[1:] if isinstance(item, str) and item.startswith("-") else item
        _identifier(name, here, "field name")
    return [item for _, item in names]


def _name_lists(value: Any, pointer: str, what: str) -> set[tuple[str, ...]]:
    return {tuple(_name_list(item, here, what)) for here, item in elements(value, pointer)}


def build_index(spec: Any, pointer: str) -> models.Index:
    name = _identifier(member(spec, "name", pointer), f"{pointer}/name", "index name")
    if len(name) > 30:
        raise refusal("index names are at most 30 characters (Django's limit)", f"{pointer}/name")
    unknown = sorted(set(spec) - {"name", "fields", "opclasses", "condition"})
    if unknown:
        raise refusal(f"unknown index option {unknown[0]!r:.60}", f"{pointer}/{unknown[0]}")
    kwargs: dict[str, Any] = {
        "name": name,
        "fields": _name_list(member(spec, "fields", pointer), f"{pointer}/fields", "fields"),
    }
    if spec.get("opclasses") is not None:
        kwargs["opclasses"] = string_list(spec["opclasses"], f"{pointer}/opclasses")
    if spec.get("condition") is not None:
        kwargs["condition"] = build_condition(spec["condition"], f"{pointer}/condition")
    try:
        return models.Index(**kwargs)
    except (TypeError, ValueError) as exc:
        raise refusal(f"invalid index: {exc}", pointer) from exc


def build_constraint(spec: Any, pointer: str) -> models.BaseConstraint:
    kind = member(spec, "kind", pointer)
    name = _identifier(member(spec, "name", pointer), f"{pointer}/name", "constraint name")
    if kind == "check":
        return models.CheckConstraint(
            condition=build_condition(member(spec, "condition", pointer), f"{pointer}/condition"), name=name
        )
    if kind == "unique":
        kwargs: dict[str, Any] = {
            "name": name,
            "fields": _name_list(member(spec, "fields", pointer), f"{pointer}/fields", "fields"),
        }
        if spec.get("condition") is not None:
            kwargs["condition"] = build_condition(spec["condition"], f"{pointer}/condition")
        return models.UniqueConstraint(**kwargs)
    raise refusal("constraint kind must be 'check' or 'unique'", f"{pointer}/kind")


def _field_pairs(value: Any, pointer: str, app_label: str) -> list[tuple[str, models.Field]]:
    pairs = []
    seen = set()
    for here, item in elements(value, pointer, non_empty=True, what="fields"):
        name = _identifier(member(item, "name", here), f"{here}/name", "field name")
        if name in seen:
            raise refusal(f"field {name!r} is declared twice", f"{here}/name")
        seen.add(name)
        pairs.append((name, build_field(member(item, "field", here), f"{here}/field", app_label)))
    return pairs


def _model_options(value: Any, pointer: str) -> dict[str, Any]:
    built: dict[str, Any] = {}
    for key, option in typed(value, dict, pointer).items():
        here = f"{pointer}/{key}"
        if key in MODEL_OPTIONS:
            built[key] = MODEL_OPTIONS[key](option, here)
        elif key == "unique_together":
            built[key] = _name_lists(option, here, "unique_together entry")
        elif key == "indexes":
            built[key] = [build_index(index, at) for at, index in elements(option, here)]
        elif key == "constraints":
            built[key] = [build_constraint(constraint, at) for at, constraint in elements(option, here)]
        else:
            raise refusal(f"unknown model option {key!r:.60}", here)
    return built


def _sql_text(value: Any, pointer: str, engine: str) -> str | list[str]:
    if isinstance(value, str) and value.strip():
        text: str | list[str] = value
    elif isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        text = list(value)
    else:
        raise refusal("SQL must be a non-empty string or a list of strings", pointer)
    try:
        check_sql(text, engine=engine)
    except RefusedSql as exc:
        raise refusal(str(exc), pointer) from None
    return text


def build_operation(doc: Any, pointer: str, app_label: str, engine: str = POSTGRESQL) -> Operation:
    """One operation document -> one Django operation object; RunSQL is read in `engine`'s dialect."""
    op = member(doc, "op", pointer)
    name = lambda key: _identifier(member(doc, key, pointer), f"{pointer}/{key}", key)  # noqa: E731
    field = lambda: build_field(member(doc, "field", pointer), f"{pointer}/field", app_label)  # noqa: E731
    if op == "CreateModel":
        return operations.CreateModel(
            name=name("name"),
            fields=_field_pairs(member(doc, "fields", pointer), f"{pointer}/fields", app_label),
            options=optional(doc, "options", _model_options, pointer, default={}),
        )
    if op == "DeleteModel":
        return operations.DeleteModel(name=name("name"))
    if op == "RenameModel":
        return operations.RenameModel(old_name=name("old_name"), new_name=name("new_name"))
    if op == "AlterModelTable":
        return operations.AlterModelTable(
            name=name("name"), table=_identifier(member(doc, "table", pointer), f"{pointer}/table", "table")
        )
    if op == "AlterUniqueTogether":
        here = f"{pointer}/unique_together"
        return operations.AlterUniqueTogether(
            name=name("name"), unique_together=_name_lists(member(doc, "unique_together", pointer), here, "entry")
        )
    if op == "AddField":
        return operations.AddField(
            model_name=name("model_name"),
            name=name("name"),
            field=field(),
            preserve_default=optional(doc, "preserve_default", boolean, pointer, default=True),
        )
    if op == "RemoveField":
        return operations.RemoveField(model_name=name("model_name"), name=name("name"))
    if op == "AlterField":
        return operations.AlterField(model_name=name("model_name"), name=name("name"), field=field())
    if op == "RenameField":
        return operations.RenameField(model_name=name("model_name"), old_name=name("old_name"), new_name=name("new_name"))
    if op in ("AddIndex", "AddIndexConcurrently"):
        cls = operations.AddIndex if op == "AddIndex" else pg_operations.AddIndexConcurrently
        return cls(model_name=name("model_name"), index=build_index(member(doc, "index", pointer), f"{pointer}/index"))
    if op in ("RemoveIndex", "RemoveIndexConcurrently"):
        remove_cls = operations.RemoveIndex if op == "RemoveIndex" else pg_operations.RemoveIndexConcurrently
        return remove_cls(model_name=name("model_name"), name=name("name"))
    if op in ("AddConstraint", "AddConstraintNotValid"):
        constraint = build_constraint(member(doc, "constraint", pointer), f"{pointer}/constraint")
        if op == "AddConstraintNotValid":
            if not isinstance(constraint, models.CheckConstraint):
                raise refusal("AddConstraintNotValid takes a check constraint", f"{pointer}/constraint/kind")
            return pg_operations.AddConstraintNotValid(model_name=name("model_name"), constraint=constraint)
        return operations.AddConstraint(model_name=name("model_name"), constraint=constraint)
    if op == "RemoveConstraint":
        return operations.RemoveConstraint(model_name=name("model_name"), name=name("name"))
    if op == "ValidateConstraint":
        return pg_operations.ValidateConstraint(model_name=name("model_name"), name=name("name"))
    if op == "Backfill":
        return read_backfill(doc, pointer, app_label, field_reader=lambda spec, at: build_field(spec, at, app_label))
    if op == "RunSQL":
        sql = _sql_text(member(doc, "sql", pointer), f"{pointer}/sql", engine)
        reverse = doc.get("reverse_sql")
        reverse_sql = _sql_text(reverse, f"{pointer}/reverse_sql", engine) if reverse is not None else None
        elidable = optional(doc, "elidable", boolean, pointer, default=False)
        # The stubs take list[str | tuple[str, params]], and list is invariant: a list[str] is valid.
        return operations.RunSQL(sql=sql, reverse_sql=reverse_sql, elidable=elidable)  # type: ignore[arg-type]
    raise refusal(
        f"unknown operation {op!r:.60}{_did_you_mean(op, OPERATION_NAMES)}; known: {', '.join(OPERATION_NAMES)}", f"{pointer}/op"
    )


def _did_you_mean(given: Any, known: Any) -> str:
    """`; did you mean 'EmailField'?` for a near miss among `known` names, else nothing."""
    if not isinstance(given, str):
        return ""
    close = difflib.get_close_matches(given, list(known), n=2, cutoff=0.75)
    return f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


def _missing_name_hint(operation: Operation, app_label: str, state: ProjectState) -> str:
    """For an operation naming a model or field the baseline lacks: the near misses it has."""
    model_name = getattr(operation, "model_name", None) or getattr(operation, "name", None)
    if not isinstance(model_name, str):
        return ""
    models_of_app = {name: model for (label, name), model in state.models.items() if label == app_label}
    model = models_of_app.get(model_name.lower())
    if model is None:
        return _did_you_mean(model_name.lower(), models_of_app)
    field_name = getattr(operation, "name", None) if getattr(operation, "model_name", None) else None
    if isinstance(field_name, str) and field_name not in model.fields:
        return _did_you_mean(field_name, model.fields)
    return ""


OPERATION_NAMES = (
    "CreateModel",
    "DeleteModel",
    "RenameModel",
    "AlterModelTable",
    "AlterUniqueTogether",
    "AddField",
    "RemoveField",
    "AlterField",
    "RenameField",
    "AddIndex",
    "AddIndexConcurrently",
    "RemoveIndex",
    "RemoveIndexConcurrently",
    "AddConstraint",
    "AddConstraintNotValid",
    "RemoveConstraint",
    "ValidateConstraint",
    "RunSQL",
    "Backfill",
)


def _backfills_last(ops: list[Operation], ops_doc: list[tuple[str, Any]]) -> None:
    """A backfill runs after its migration commits, so a schema operation after it in the same
    migration would in production run before it: such a change is refused where it stands."""
    seen_backfill = False
    for operation, (here, _) in zip(ops, ops_doc, strict=True):
        if isinstance(operation, Backfill):
            seen_backfill = True
        elif seen_backfill:
            raise refusal(
                f"{operation.describe()} follows a Backfill in the same migration: the backfill runs after its "
                "migration commits, so this would run before it; move it to the next migration",
                f"{here}/op",
            )


# The operations of the form that only PostgreSQL's schema editor runs, by their `op` name.
POSTGRESQL_ONLY_OPERATIONS: dict[str, type[Operation]] = {
    cls.__name__: cls
    for cls in (
        pg_operations.AddIndexConcurrently,
        pg_operations.RemoveIndexConcurrently,
        pg_operations.AddConstraintNotValid,
        pg_operations.ValidateConstraint,
    )
}
POSTGRESQL_ONLY_FIELDS: dict[str, type[models.Field]] = {
    name: cls for name, cls in FIELD_TYPES.items() if postgresql_only_path(cls) is not None
}


def _postgresql_only_uses(documents: list[tuple[str, Any]], engine: str) -> list[Problem]:
    """Each PostgreSQL-only operation or field type of documents already read, at its pointer."""
    uses: list[Problem] = []

    def use(name: str, cls: type, pointer: str) -> None:
        path = postgresql_only_path(cls) or name
        uses.append(Problem(postgresql_only_message(name, path, engine), Location(pointer=pointer), []))

    def field_spec(spec: Any, pointer: str) -> None:
        if not isinstance(spec, dict):
            return
        if spec.get("type") in POSTGRESQL_ONLY_FIELDS:
            use(spec["type"], POSTGRESQL_ONLY_FIELDS[spec["type"]], f"{pointer}/type")
        if "base_field" in spec:
            field_spec(spec["base_field"], f"{pointer}/base_field")

    for here, doc in documents:
        for index, op_doc in enumerate(doc["operations"]):
            at = f"{here}/operations/{index}"
            if op_doc["op"] in POSTGRESQL_ONLY_OPERATIONS:
                use(op_doc["op"], POSTGRESQL_ONLY_OPERATIONS[op_doc["op"]], f"{at}/op")
            if "field" in op_doc:
                field_spec(op_doc["field"], f"{at}/field")
            for position, item in enumerate(op_doc.get("fields") or []):
                if isinstance(item, dict):
                    field_spec(item.get("field"), f"{at}/fields/{position}/field")
    return uses


def _next_number(leaf: str | None) -> int:
    if leaf:
        match = re.match(r"^(\d+)", leaf)
        if match:
            return int(match.group(1)) + 1
    return 1


def _referenced_apps(ops: list[Operation]) -> set[str]:
    apps = set()
    for op in ops:
        if isinstance(op, Backfill):
            apps.add(op.model_key[0])
        fields = [f for _, f in getattr(op, "fields", [])] + ([op.field] if hasattr(op, "field") else [])
        for field in fields:
            target = getattr(field, "remote_field", None)
            if target is not None and isinstance(target.model, str) and "." in target.model:
                apps.add(target.model.split(".")[0])
    return apps


def parse_migration_documents(
    documents: Any,
    *,
    base_state: ProjectState | None = None,
    leaves: dict[str, str] | None = None,
    max_operations: int = 500,
    limit_setting: str = "SCHEMAGATE_MAX_OPERATIONS",
    pointer: str = "/operations",
    engine: str = POSTGRESQL,
    max_problems: int = 50,
) -> Plan:
    """Validate JSON migration documents into a Plan on top of a baseline.

    `leaves` are the baseline's last migration per app: new migrations depend on them and
    continue their numbering. With `base_state`, every operation is applied to the state so
    references to missing models or fields fail here, with their pointer, not in the dry-run.
    For a project whose `engine` is not PostgreSQL, every PostgreSQL-only operation and field
    type is refused at once (up to `max_problems` listed), each with its pointer.
    """
    migrations = elements(documents, pointer, non_empty=True, what="migrations")
    leaves = dict(leaves or {})
    total = sum(len(d["operations"]) for _, d in migrations if isinstance(d, dict) and isinstance(d.get("operations"), list))
    if total > max_operations:
        raise IntakeLimitExceeded(
            f"too many operations: {total} (limit {max_operations})",
            setting=limit_setting,
            value=max_operations,
            location=Location(pointer=pointer),
        )
    planned: list[PlannedMigration] = []
    for here, doc in migrations:
        app_label = _identifier(member(doc, "app_label", here), f"{here}/app_label", "app_label")
        ops_doc = elements(member(doc, "operations", here), f"{here}/operations", non_empty=True, what="operations")
        ops = [build_operation(op_doc, at, app_label, engine) for at, op_doc in ops_doc]
        _backfills_last(ops, ops_doc)
        atomic = optional(doc, "atomic", boolean, here, default=True)
        name = doc.get("name")
        if name is None:
            probe = Migration("auto", app_label)
            # As in PlannedMigration.to_django: the instance owns these (the stubs say ClassVar).
            probe.operations = ops  # type: ignore[misc]
            probe.initial = app_label not in leaves  # type: ignore[misc]
            suggested: str = probe.suggest_name()  # type: ignore[attr-defined]  # missing from django-stubs
            # Django falls back to a clock-based "auto_<timestamp>": the same submission must
            # always get the same name.
            suggested = "auto" if suggested.startswith("auto_") else suggested
            name = f"{_next_number(leaves.get(app_label)):04d}_{suggested}"[:100]
        elif not is_migration_name(name):
            raise refusal("migration name must be letters, digits and underscores", f"{here}/name")
        dependencies = [(app_label, leaves[app_label])] if app_label in leaves else []
        for other in sorted(_referenced_apps(ops) - {app_label}):
            dependencies.append((other, leaves[other]) if other in leaves else (other, "__first__"))
        planned.append(
            PlannedMigration(
                app_label=app_label,
                name=name,
                operations=ops,
                atomic=atomic,
                dependencies=dependencies,
                initial=app_label not in leaves,
            )
        )
        leaves[app_label] = name
    if not runs_postgresql_only(engine):
        uses = _postgresql_only_uses(migrations, engine)
        if uses:
            summary = f"{len(uses)} uses of PostgreSQL-only operations or field types"
            raise IntakeErrors(uses[:max_problems], total=len(uses), summary=summary)
    plan = Plan(planned)
    if base_state is not None:
        check_plan_against_state(plan, base_state, pointer=pointer)
    return plan


def check_plan_against_state(plan: Plan, base_state: ProjectState, *, pointer: str) -> ProjectState:
    """Apply each operation's state change; a reference to something missing is a located error."""
    state = base_state.clone()
    for i, migration in enumerate(plan.migrations):
        for j, operation in enumerate(migration.operations):
            if isinstance(operation, Backfill):
                check_backfill(operation, state, f"{pointer}/{i}/operations/{j}")
                continue
            try:
                operation.state_forwards(migration.app_label, state)
            except (KeyError, LookupError, ValueError, AttributeError) as exc:
                detail = exc.args[0] if exc.args else exc
                hint = _missing_name_hint(operation, migration.app_label, state)
                raise refusal(
                    f"{operation.describe()} does not apply to the baseline: {detail!r} is not there{hint}",
                    f"{pointer}/{i}/operations/{j}",
                ) from exc
            except Exception as exc:
                raise refusal(
                    f"{operation.describe()} does not apply to the baseline: {exc}", f"{pointer}/{i}/operations/{j}"
                ) from exc
    try:
        # Rendering resolves every relation of the changed models: a dangling one fails here.
        render_changed(state, ((m.app_label, op) for m in plan.migrations for op in m.operations))
    except (LookupError, ValueError) as exc:
        raise refusal(f"the resulting models do not resolve: {exc}", pointer) from exc
    return state
