"""The `operations` form: JSON migration documents validated into real Django operations.

Every name in the JSON (field type, operation, on_delete, default callable) is looked up in an
explicit table, never imported, and every error carries the JSON pointer of what is wrong.
"""

from __future__ import annotations

import datetime
import re
import uuid
from collections.abc import Callable
from typing import Any

from django.contrib.postgres import fields as pg_fields
from django.contrib.postgres import operations as pg_operations
from django.db import models
from django.db.migrations import Migration, operations
from django.db.migrations.operations.base import Operation
from django.db.migrations.state import ProjectState
from django.db.models import F, Q
from django.utils import timezone

from changeapi.intake.errors import IntakeError, IntakeLimitExceeded, Location
from changeapi.intake.names import is_migration_name
from changeapi.intake.plan import Plan, PlannedMigration
from changeapi.intake.sql_policy import RefusedSql, check_sql

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

# Keyword arguments passed through to the field constructor as they are (already JSON types).
PLAIN_FIELD_ARGS = {
    "null",
    "blank",
    "default",
    "unique",
    "db_index",
    "primary_key",
    "max_length",
    "max_digits",
    "decimal_places",
    "db_column",
    "db_comment",
    "db_tablespace",
    "auto_now",
    "auto_now_add",
    "related_name",
    "related_query_name",
    "db_constraint",
    "to_field",
    "editable",
    "verbose_name",
    "help_text",
    "size",
    "protocol",
    "unpack_ipv4",
    "upload_to",
}

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _fail(message: str, pointer: str) -> IntakeError:
    return IntakeError(message, Location(pointer=pointer))


def _identifier(value: Any, pointer: str, what: str) -> str:
    if not isinstance(value, str) or not _IDENTIFIER.match(value) or len(value) > 100:
        raise _fail(f"{what} must be a Python identifier (letters, digits, underscores), got {value!r}", pointer)
    return value


def _required(doc: dict[str, Any], key: str, pointer: str) -> Any:
    if not isinstance(doc, dict):
        raise _fail("expected an object", pointer)
    if key not in doc or doc[key] is None:
        raise _fail(f"'{key}' is required", f"{pointer}/{key}")
    return doc[key]


def _model_reference(value: Any, pointer: str, app_label: str) -> str:
    """`app.Model`, or `Model` in the migration's own app."""
    if not isinstance(value, str) or not value:
        raise _fail("a model reference such as 'shop.Order' is required", pointer)
    parts = value.split(".")
    if len(parts) == 1:
        parts = [app_label, parts[0]]
    if len(parts) != 2 or not all(_IDENTIFIER.match(p) for p in parts):
        raise _fail(f"model reference must be 'app_label.ModelName', got {value!r}", pointer)
    return ".".join(parts)


def build_field(spec: Any, pointer: str, app_label: str) -> models.Field:
    """A Django field from its JSON spec: `{"type": "CharField", "max_length": 100, ...}`."""
    if not isinstance(spec, dict):
        raise _fail("a field spec must be an object with a 'type'", pointer)
    type_name = _required(spec, "type", pointer)
    field_class = FIELD_TYPES.get(type_name) if isinstance(type_name, str) else None
    if field_class is None:
        raise _fail(f"unknown field type {type_name!r}; known types: {', '.join(sorted(FIELD_TYPES))}", f"{pointer}/type")
    kwargs: dict[str, Any] = {}
    for key, value in spec.items():
        here = f"{pointer}/{key}"
        if key == "type":
            continue
        if key in PLAIN_FIELD_ARGS:
            kwargs[key] = value
        elif key == "default_callable":
            if value not in DEFAULT_CALLABLES:
                raise _fail(f"default_callable must be one of {', '.join(sorted(DEFAULT_CALLABLES))}", here)
            kwargs["default"] = DEFAULT_CALLABLES[value]
        elif key == "db_default":
            kwargs["db_default"] = models.Value(value)
        elif key == "choices":
            if not isinstance(value, list) or not all(isinstance(c, list) and len(c) == 2 for c in value):
                raise _fail("choices must be a list of [value, label] pairs", here)
            kwargs["choices"] = [tuple(c) for c in value]
        elif key == "to":
            kwargs["to"] = _model_reference(value, here, app_label)
        elif key == "on_delete":
            if value not in ON_DELETE:
                raise _fail(f"on_delete must be one of {', '.join(ON_DELETE)}", here)
            kwargs["on_delete"] = ON_DELETE[value]
        elif key == "base_field":
            kwargs["base_field"] = build_field(value, here, app_label)
        else:
            raise _fail(f"unknown field option {key!r} for {type_name}", here)
    if type_name in RELATION_TYPES:
        if "to" not in kwargs:
            raise _fail(f"{type_name} needs 'to' (e.g. 'shop.Customer')", f"{pointer}/to")
        if type_name != "ManyToManyField" and "on_delete" not in kwargs:
            raise _fail(f"{type_name} needs 'on_delete' (e.g. 'CASCADE')", f"{pointer}/on_delete")
    if type_name == "ArrayField" and "base_field" not in kwargs:
        raise _fail("ArrayField needs 'base_field'", f"{pointer}/base_field")
    if kwargs.get("primary_key"):
        # As makemigrations writes a primary key: never serialized with the model's fields.
        kwargs.setdefault("serialize", False)
    try:
        return field_class(**kwargs)
    except (TypeError, ValueError) as exc:
        raise _fail(f"invalid {type_name}: {exc}", pointer) from exc


def _lookup_value(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"F"} and isinstance(value["F"], str):
        return F(value["F"])
    return value


def build_condition(spec: Any, pointer: str) -> Q:
    """`{"price__gte": 0, "status__in": ["a", "b"]}` -> Q(price__gte=0, status__in=[...]);
    a value `{"F": "other"}` refers to another column."""
    if not isinstance(spec, dict) or not spec:
        raise _fail('a condition is an object of Django lookups, e.g. {"price__gte": 0}', pointer)
    for key in spec:
        if not isinstance(key, str) or not all(_IDENTIFIER.match(part) for part in key.split("__")):
            raise _fail(f"invalid lookup {key!r}", f"{pointer}/{key}")
    return Q(**{key: _lookup_value(value) for key, value in spec.items()})


def _name_list(value: Any, pointer: str, what: str) -> list[str]:
    if not isinstance(value, list) or not value:
        raise _fail(f"{what} must be a non-empty list of field names", pointer)
    for i, item in enumerate(value):
        name = item[1:] if isinstance(item, str) and item.startswith("-") else item
        _identifier(name, f"{pointer}/{i}", "field name")
    return list(value)


def build_index(spec: Any, pointer: str) -> models.Index:
    name = _identifier(_required(spec, "name", pointer), f"{pointer}/name", "index name")
    if len(name) > 30:
        raise _fail("index names are at most 30 characters (Django's limit)", f"{pointer}/name")
    kwargs: dict[str, Any] = {
        "name": name,
        "fields": _name_list(_required(spec, "fields", pointer), f"{pointer}/fields", "fields"),
    }
    if "opclasses" in spec:
        kwargs["opclasses"] = list(spec["opclasses"])
    if "condition" in spec:
        kwargs["condition"] = build_condition(spec["condition"], f"{pointer}/condition")
    unknown = set(spec) - {"name", "fields", "opclasses", "condition"}
    if unknown:
        raise _fail(f"unknown index option {sorted(unknown)[0]!r}", f"{pointer}/{sorted(unknown)[0]}")
    try:
        return models.Index(**kwargs)
    except (TypeError, ValueError) as exc:
        raise _fail(f"invalid index: {exc}", pointer) from exc


def build_constraint(spec: Any, pointer: str) -> models.BaseConstraint:
    kind = _required(spec, "kind", pointer)
    name = _identifier(_required(spec, "name", pointer), f"{pointer}/name", "constraint name")
    if kind == "check":
        return models.CheckConstraint(
            condition=build_condition(_required(spec, "condition", pointer), f"{pointer}/condition"), name=name
        )
    if kind == "unique":
        kwargs: dict[str, Any] = {
            "name": name,
            "fields": _name_list(_required(spec, "fields", pointer), f"{pointer}/fields", "fields"),
        }
        if "condition" in spec:
            kwargs["condition"] = build_condition(spec["condition"], f"{pointer}/condition")
        return models.UniqueConstraint(**kwargs)
    raise _fail("constraint kind must be 'check' or 'unique'", f"{pointer}/kind")


def _field_pairs(value: Any, pointer: str, app_label: str) -> list[tuple[str, models.Field]]:
    if not isinstance(value, list) or not value:
        raise _fail("fields must be a non-empty list of {name, field}", pointer)
    pairs = []
    seen = set()
    for i, item in enumerate(value):
        here = f"{pointer}/{i}"
        name = _identifier(_required(item, "name", here), f"{here}/name", "field name")
        if name in seen:
            raise _fail(f"field {name!r} is declared twice", f"{here}/name")
        seen.add(name)
        pairs.append((name, build_field(_required(item, "field", here), f"{here}/field", app_label)))
    return pairs


def _sql_text(value: Any, pointer: str) -> str | list[str]:
    if isinstance(value, str) and value.strip():
        text: str | list[str] = value
    elif isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        text = list(value)
    else:
        raise _fail("SQL must be a non-empty string or a list of strings", pointer)
    try:
        check_sql(text)
    except RefusedSql as exc:
        raise _fail(str(exc), pointer) from None
    return text


def build_operation(doc: Any, pointer: str, app_label: str) -> Operation:
    """One operation document -> one Django operation object."""
    op = _required(doc, "op", pointer)
    name = lambda key: _identifier(_required(doc, key, pointer), f"{pointer}/{key}", key)  # noqa: E731
    if op == "CreateModel":
        options = doc.get("options") or {}
        if not isinstance(options, dict):
            raise _fail("options must be an object", f"{pointer}/options")
        built_options: dict[str, Any] = {}
        for key, value in options.items():
            here = f"{pointer}/options/{key}"
            if key in ("db_table", "db_table_comment", "verbose_name", "verbose_name_plural", "managed", "ordering"):
                built_options[key] = value
            elif key == "unique_together":
                built_options[key] = {tuple(_name_list(v, f"{here}/{i}", "unique_together entry")) for i, v in enumerate(value)}
            elif key == "indexes":
                built_options[key] = [build_index(v, f"{here}/{i}") for i, v in enumerate(value)]
            elif key == "constraints":
                built_options[key] = [build_constraint(v, f"{here}/{i}") for i, v in enumerate(value)]
            else:
                raise _fail(f"unknown model option {key!r}", here)
        return operations.CreateModel(
            name=name("name"),
            fields=_field_pairs(_required(doc, "fields", pointer), f"{pointer}/fields", app_label),
            options=built_options,
        )
    if op == "DeleteModel":
        return operations.DeleteModel(name=name("name"))
    if op == "RenameModel":
        return operations.RenameModel(old_name=name("old_name"), new_name=name("new_name"))
    if op == "AlterModelTable":
        return operations.AlterModelTable(
            name=name("name"), table=_identifier(_required(doc, "table", pointer), f"{pointer}/table", "table")
        )
    if op == "AlterUniqueTogether":
        value = _required(doc, "unique_together", pointer)
        return operations.AlterUniqueTogether(
            name=name("name"),
            unique_together={tuple(_name_list(v, f"{pointer}/unique_together/{i}", "entry")) for i, v in enumerate(value)},
        )
    if op == "AddField":
        return operations.AddField(
            model_name=name("model_name"),
            name=name("name"),
            field=build_field(_required(doc, "field", pointer), f"{pointer}/field", app_label),
            preserve_default=bool(doc.get("preserve_default", True)),
        )
    if op == "RemoveField":
        return operations.RemoveField(model_name=name("model_name"), name=name("name"))
    if op == "AlterField":
        return operations.AlterField(
            model_name=name("model_name"),
            name=name("name"),
            field=build_field(_required(doc, "field", pointer), f"{pointer}/field", app_label),
        )
    if op == "RenameField":
        return operations.RenameField(model_name=name("model_name"), old_name=name("old_name"), new_name=name("new_name"))
    if op in ("AddIndex", "AddIndexConcurrently"):
        cls = operations.AddIndex if op == "AddIndex" else pg_operations.AddIndexConcurrently
        return cls(model_name=name("model_name"), index=build_index(_required(doc, "index", pointer), f"{pointer}/index"))
    if op in ("RemoveIndex", "RemoveIndexConcurrently"):
        remove_cls = operations.RemoveIndex if op == "RemoveIndex" else pg_operations.RemoveIndexConcurrently
        return remove_cls(model_name=name("model_name"), name=name("name"))
    if op in ("AddConstraint", "AddConstraintNotValid"):
        constraint = build_constraint(_required(doc, "constraint", pointer), f"{pointer}/constraint")
        if op == "AddConstraintNotValid":
            if not isinstance(constraint, models.CheckConstraint):
                raise _fail("AddConstraintNotValid takes a check constraint", f"{pointer}/constraint/kind")
            return pg_operations.AddConstraintNotValid(model_name=name("model_name"), constraint=constraint)
        return operations.AddConstraint(model_name=name("model_name"), constraint=constraint)
    if op == "RemoveConstraint":
        return operations.RemoveConstraint(model_name=name("model_name"), name=name("name"))
    if op == "ValidateConstraint":
        return pg_operations.ValidateConstraint(model_name=name("model_name"), name=name("name"))
    if op == "RunSQL":
        sql = _sql_text(_required(doc, "sql", pointer), f"{pointer}/sql")
        reverse = doc.get("reverse_sql")
        reverse_sql = _sql_text(reverse, f"{pointer}/reverse_sql") if reverse is not None else None
        # The stubs take list[str | tuple[str, params]], and list is invariant: a list[str] is valid.
        return operations.RunSQL(sql=sql, reverse_sql=reverse_sql, elidable=bool(doc.get("elidable", False)))  # type: ignore[arg-type]
    raise _fail(f"unknown operation {op!r}; known: {', '.join(OPERATION_NAMES)}", f"{pointer}/op")


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
)


def _next_number(leaf: str | None) -> int:
    if leaf:
        match = re.match(r"^(\d+)", leaf)
        if match:
            return int(match.group(1)) + 1
    return 1


def _referenced_apps(ops: list[Operation]) -> set[str]:
    apps = set()
    for op in ops:
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
    pointer: str = "/migrations",
) -> Plan:
    """Validate JSON migration documents into a Plan on top of a baseline.

    `leaves` are the baseline's last migration per app: new migrations depend on them and
    continue their numbering. With `base_state`, every operation is applied to the state so
    references to missing models or fields fail here, with their pointer, not in the dry-run.
    """
    if not isinstance(documents, list) or not documents:
        raise _fail("a non-empty list of migrations is required", pointer)
    leaves = dict(leaves or {})
    total = sum(len(d.get("operations") or []) for d in documents if isinstance(d, dict))
    if total > max_operations:
        raise IntakeLimitExceeded(
            f"too many operations: {total} (limit {max_operations})",
            setting=limit_setting,
            value=max_operations,
            location=Location(pointer=pointer),
        )
    planned: list[PlannedMigration] = []
    for i, doc in enumerate(documents):
        here = f"{pointer}/{i}"
        app_label = _identifier(_required(doc, "app_label", here), f"{here}/app_label", "app_label")
        ops_doc = _required(doc, "operations", here)
        if not isinstance(ops_doc, list) or not ops_doc:
            raise _fail("operations must be a non-empty list", f"{here}/operations")
        ops = [build_operation(op_doc, f"{here}/operations/{j}", app_label) for j, op_doc in enumerate(ops_doc)]
        atomic = doc.get("atomic", True)
        if not isinstance(atomic, bool):
            raise _fail("atomic must be true or false", f"{here}/atomic")
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
            raise _fail("migration name must be letters, digits and underscores", f"{here}/name")
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
    plan = Plan(planned)
    if base_state is not None:
        check_plan_against_state(plan, base_state, pointer=pointer)
    return plan


def check_plan_against_state(plan: Plan, base_state: ProjectState, *, pointer: str) -> ProjectState:
    """Apply each operation's state change; a reference to something missing is a located error."""
    state = base_state.clone()
    for i, migration in enumerate(plan.migrations):
        for j, operation in enumerate(migration.operations):
            try:
                operation.state_forwards(migration.app_label, state)
            except (KeyError, LookupError, ValueError, AttributeError) as exc:
                detail = exc.args[0] if exc.args else exc
                raise _fail(
                    f"{operation.describe()} does not apply to the baseline: {detail!r} is not there",
                    f"{pointer}/{i}/operations/{j}",
                ) from exc
            except Exception as exc:
                raise _fail(
                    f"{operation.describe()} does not apply to the baseline: {exc}", f"{pointer}/{i}/operations/{j}"
                ) from exc
    try:
        state.apps  # noqa: B018 - rendering resolves every relation: a dangling one fails here
    except (LookupError, ValueError) as exc:
        raise _fail(f"the resulting models do not resolve: {exc}", pointer) from exc
    return state
