"""Project states cut down to the models one operation needs, so rendering costs what it touches.

Django's executor keeps every model of the project rendered, and after each operation it
re-renders the touched model and every model related to it. On a schema where most models
point at one model (`auth.User`), that is most of the project, per operation. An operation's
schema change needs far less: the models it names, the models pointing at them (a rename or
a primary-key change rewrites their foreign keys), and whatever those need to render: the
targets of their relations and their bases, transitively. Rendering only that closure gives
the same model classes for the statements Django writes, at a cost that follows the change
rather than the project.

Operations this module does not know fall back to whole states, as Django would use them:
slower, never wrong.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.contrib.postgres.operations import CollationOperation, CreateExtension, ValidateConstraint
from django.db.migrations.operations.base import Operation
from django.db.migrations.operations.fields import FieldOperation
from django.db.migrations.operations.models import IndexOperation, ModelOperation, RenameModel
from django.db.migrations.operations.special import RunPython, RunSQL
from django.db.migrations.state import ProjectState
from django.db.migrations.utils import resolve_relation  # type: ignore[attr-defined]  # missing from the stubs

ModelKey = tuple[str, str]

# Operations whose schema change reads no model at all.
_NO_MODELS = (RunSQL, RunPython, CreateExtension, CollationOperation)


def database_models(operation: Operation, app_label: str) -> set[ModelKey] | None:
    """The models an operation's schema change is about (before its closure); None if unknown."""
    if isinstance(operation, _NO_MODELS):
        return set()
    if isinstance(operation, RenameModel):
        return {(app_label, operation.old_name_lower), (app_label, operation.new_name_lower)}
    if isinstance(operation, ModelOperation):
        return {(app_label, operation.name_lower)}
    if isinstance(operation, FieldOperation | IndexOperation):
        return {(app_label, operation.model_name_lower)}
    if isinstance(operation, ValidateConstraint):
        return {(app_label, operation.model_name.lower())}
    return None


def state_models(operation: Operation, app_label: str) -> set[ModelKey] | None:
    """The models an operation's state change alters or adds (before their closure); None if unknown.

    The same as `database_models`, except for RunSQL and RunPython, whose `state_operations`
    (when given) change the state without any schema change of their own.
    """
    if isinstance(operation, RunSQL | RunPython):
        keys: set[ModelKey] = set()
        for inner in getattr(operation, "state_operations", None) or ():
            found = state_models(inner, app_label)
            if found is None:
                return None
            keys |= found
        return keys
    return database_models(operation, app_label)


def _relation_targets(state: ProjectState, key: ModelKey) -> Iterable[ModelKey]:
    """The models `key` needs to render: targets of its relations (and their through models), its bases."""
    model = state.models[key]
    for field in model.fields.values():
        remote = field.remote_field
        if remote is None:
            continue
        yield resolve_relation(remote.model, *key)
        through = getattr(remote, "through", None)
        if through:
            yield resolve_relation(through, *key)
    for base in model.bases:
        if isinstance(base, str):
            yield resolve_relation(base, key[0])


def closure(state: ProjectState, keys: Iterable[ModelKey]) -> set[ModelKey]:
    """`keys`, the models pointing at them, and everything those need to render, as found in `state`.

    Models pointing at a named one come from Django's own reverse-relation index
    (`ProjectState.relations`), which `state_forwards` keeps up to date once built.
    Keys not in `state` (a model the operation creates or deletes, seen from the other
    side) are left out.
    """
    named = {key for key in keys if key in state.models}
    wanted = set(named)
    relations = state.relations
    for key in named:
        pointing = relations.get(key)
        if pointing:
            wanted.update(pointing)
    found: set[ModelKey] = set()
    todo = list(wanted)
    while todo:
        key = todo.pop()
        if key in found or key not in state.models:
            continue
        found.add(key)
        todo.extend(_relation_targets(state, key))
    return found


def partial_state(state: ProjectState, keys: Iterable[ModelKey]) -> ProjectState:
    """A new, unrendered state holding copies of the models `keys` (those of them in `state`).

    Copies, because the state they come from goes on changing in place with the next
    operations, while this one must stay as it was for the operation (and its reversal).
    """
    return ProjectState(models={key: state.models[key].clone() for key in keys if key in state.models}, real_apps=state.real_apps)


@dataclass
class Step:
    """The states on either side of one operation, holding only what its schema change reads."""

    operation: Operation
    before: ProjectState
    after: ProjectState


def step_forwards(operation: Operation, app_label: str, state: ProjectState) -> Step:
    """Apply the operation's state change to `state` (in place) and return the states around it.

    Each side is the closure of the operation's models in the state of that side, so a
    model an operation creates appears only after it and a deleted one only before it.
    Unknown operations get whole copies of the state.
    """
    named = database_models(operation, app_label)
    if named is None:
        before = state.clone()
        operation.state_forwards(app_label, state)
        return Step(operation, before, state.clone())
    before = partial_state(state, closure(state, named)) if named else ProjectState(real_apps=state.real_apps)
    operation.state_forwards(app_label, state)
    after = partial_state(state, closure(state, named)) if named else ProjectState(real_apps=state.real_apps)
    return Step(operation, before, after)


def render_changed(state: ProjectState, operations: Iterable[tuple[str, Operation]]) -> None:
    """Render the models the operations changed or added in `state` (after them), with their closure.

    A relation to a model that is not there fails here, as rendering the whole project
    would; the models the operations did not touch rendered with the baseline already.
    Raises what Django's rendering raises (LookupError, ValueError).
    """
    keys: set[ModelKey] = set()
    for app_label, operation in operations:
        found = state_models(operation, app_label)
        if found is None:
            state.apps  # noqa: B018 - an operation of unknown reach: render everything
            return
        keys |= found
    partial_state(state, closure(state, keys)).apps  # noqa: B018 - rendering is the check
