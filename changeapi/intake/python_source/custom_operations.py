"""Custom migration operation classes, as the project's `operation_map` says they stand in.

Django would run a custom operation's own methods; the service runs no submitted code, so a
project says what each class amounts to (a Django operation, the operation it keeps in an
attribute, a state-only change, or a data step). An unmapped one is refused, naming the class
and the setting that maps it.
"""

from __future__ import annotations

import ast
import json
from typing import TYPE_CHECKING, Any

from django.db.migrations.operations.base import Operation
from django.db.migrations.operations.special import SeparateDatabaseAndState

from .data_steps import DataMigrationStep, SubmittedCode
from .local_objects import LocalClass, Poisoned

if TYPE_CHECKING:
    from .interpreter import Interpreter


def custom_operation(
    interpreter: Interpreter, path: str, local: LocalClass | None, args: list[Any], kwargs: dict[str, Any], node: ast.AST
) -> Operation | None:
    """The operation a call of the custom class `path` stands for, or None if it is no operation.

    `local` is the class when the file defines it. A class the project maps is taken as
    mapped; a class of the file deriving from Operation but unmapped is refused.
    """
    mapping = interpreter.settings.operation_map.get(path)
    if mapping is None:
        if local is not None and local.derives_from(Operation):
            interpreter.fail(refusal_message(path, local), node)
        return None
    if mapping.as_ == "data_step":
        return DataMigrationStep(SubmittedCode(f"custom operation {path}", None), SubmittedCode(path, None))
    if mapping.as_ == "attribute":
        if local is None:
            interpreter.fail(f"{path} is mapped by attribute, but the class is not defined in this file.", node)
        found = local.lookup(mapping.attribute or "")
        if isinstance(found, Poisoned):
            raise found.error
        if not isinstance(found, Operation):
            interpreter.fail(f"{path}.{mapping.attribute} is not a migration operation the service could read.", node)
        return found
    operation_class = interpreter.resolve_known(mapping.operation or "", node)
    if not (isinstance(operation_class, type) and issubclass(operation_class, Operation)):
        interpreter.fail(f"The operation_map entry for {path} names {mapping.operation}, which is not a Django operation.", node)
    operation = interpreter.call(operation_class, args, kwargs, node)
    if mapping.as_ == "state_only":
        return SeparateDatabaseAndState(state_operations=[operation])
    return operation


def refusal_message(path: str, local: LocalClass) -> str:
    example = {path: {"as": "operation", "operation": _nearest_django_operation(local)}}
    return (
        f"{path} is a custom migration operation; Django would run its own code, which the service never "
        "runs. Map it in the project's intake_settings.operation_map: as a Django operation it amounts to, "
        'as the operation it keeps in an attribute ({"as": "attribute", "attribute": "..."}), as "state_only" '
        'or as "data_step". For example: ' + json.dumps(example)
    )


def _nearest_django_operation(local: LocalClass) -> str:
    for base in local.bases:
        if isinstance(base, type) and issubclass(base, Operation) and base is not Operation:
            return f"django.db.migrations.{base.__name__}"
        if isinstance(base, LocalClass):
            return _nearest_django_operation(local=base)
    return "django.db.migrations.RunSQL"
