"""Project states cut down to the models one operation needs, so rendering costs what it touches.

Django's executor keeps every model of the project rendered, and after each operation it
re-renders the touched model and every model related to it. On a schema where most models
point at one model (`auth.User`), that is most of the project, per operation. An operation's
schema change needs far less: the models it names, the models pointing at them (a rename or
a primary-key change rewrites their foreign keys), and whatever those need to render. What
they point at is rendered as a stub: its table, its columns and its key, without its own
relations, so the targets of the targets (a chain of parents, the whole schema behind a hub)
are not rendered. Rendering only that closure gives the same model classes for the
statements Django writes, at a cost that follows the change rather than the project.

Operations this module does not know fall back to whole states, as Django would use them:
slower, never wrong.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.contrib.postgres.operations import CollationOperation, CreateExtension, ValidateConstraint
from django.db.migrations.operations.base import Operation
from django.db.migrations.operations.fields import FieldOperation
from django.db.migrations.operations.models import IndexOperation, ModelOperation, RenameModel
from django.db.migrations.operations.special import RunPython, RunSQL
from django.db.migrations.state import ModelState, ProjectState
from django.db.migrations.utils import resolve_relation  # type: ignore[attr-defined]  # missing from the stubs

ModelKey = tuple[str, str]

# Operations whose schema change reads no model at all.
_NO_MODELS = (RunSQL, RunPython, CreateExtension, CollationOperation)


def database_models(operation: Operation, app_label: str) -> set[ModelKey] | None:
    """The models an operation's schema change is about (before its closure); None if unknown."""
    if isinstance(operation, _NO_MODELS) or getattr(operation, "changes_no_schema", False):
        # `changes_no_schema`: an operation of rows only (a backfill step), whose migration's
        # run does nothing for it.
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


def _target(field: Any, key: ModelKey) -> ModelKey:
    return resolve_relation(field.remote_field.model, *key)  # type: ignore[no-any-return]


def _string_bases(model: ModelState, key: ModelKey) -> Iterable[ModelKey]:
    for base in model.bases:
        if isinstance(base, str):
            yield resolve_relation(base, key[0])


def _stub_keeps(field: Any) -> bool:
    """A stub keeps every column-only field, and the relations other models can point at
    through it: a primary key (multi-table inheritance, a one-to-one as key) or a unique one
    (a `to_field` target)."""
    return field.remote_field is None or field.primary_key or field.unique


@dataclass(frozen=True)
class Closure:
    """The models to render for one operation: `full` ones as they are, `stubs` cut down.

    Full: the named models, the models pointing at them, the through models of their
    many-to-many fields and their bases. Stubs: what those point at, kept only as far as
    rendering a relation to them needs (table, columns, key), so the targets of the targets
    are not rendered at all, except as the key of a stub needs them.
    """

    full: frozenset[ModelKey]
    stubs: frozenset[ModelKey]

    def __len__(self) -> int:
        return len(self.full) + len(self.stubs)


def closure(state: ProjectState, keys: Iterable[ModelKey]) -> Closure:
    """`keys`, the models pointing at them, and what rendering those needs, as found in `state`.

    Models pointing at a named one come from Django's own reverse-relation index
    (`ProjectState.relations`), which `state_forwards` keeps up to date once built.
    Keys not in `state` (a model the operation creates or deletes, seen from the other
    side) are left out.
    """
    named = {key for key in keys if key in state.models}
    todo = list(named)
    relations = state.relations
    for key in named:
        todo.extend(relations.get(key, ()))
    full: set[ModelKey] = set()
    targets: list[ModelKey] = []
    while todo:
        key = todo.pop()
        if key in full or key not in state.models:
            continue
        full.add(key)
        model = state.models[key]
        for field in model.fields.values():
            if field.remote_field is None:
                continue
            targets.append(_target(field, key))
            through = getattr(field.remote_field, "through", None)
            if through:
                todo.append(resolve_relation(through, *key))
        todo.extend(_string_bases(model, key))
    stubs: set[ModelKey] = set()
    while targets:
        key = targets.pop()
        if key in full or key in stubs or key not in state.models:
            continue
        stubs.add(key)
        model = state.models[key]
        targets.extend(_target(f, key) for f in model.fields.values() if f.remote_field is not None and _stub_keeps(f))
        targets.extend(_string_bases(model, key))
    return Closure(frozenset(full), frozenset(stubs))


# Options a stub drops: they name fields the stub may not keep, and no other model reads them.
_STUB_DROPPED_OPTIONS = ("indexes", "constraints", "unique_together", "index_together", "order_with_respect_to")


def stub_model(model: ModelState) -> ModelState:
    """A copy of `model` holding only what a relation to it needs (see `_stub_keeps`).

    The fields are shared with `model`, as `ModelState.clone` shares those of the full copies;
    rendering clones every field it puts on a model class.
    """
    return ModelState(
        model.app_label,
        model.name,
        [(name, field) for name, field in model.fields.items() if _stub_keeps(field)],
        options={name: value for name, value in model.options.items() if name not in _STUB_DROPPED_OPTIONS},
        bases=model.bases,
        managers=list(model.managers),
    )


def partial_state(state: ProjectState, models: Closure) -> ProjectState:
    """A new, unrendered state holding copies of the closure's models (those of them in `state`).

    Copies, because the state they come from goes on changing in place with the next
    operations, while this one must stay as it was for the operation (and its reversal).
    """
    copies = {key: state.models[key].clone() for key in models.full if key in state.models}
    copies.update({key: stub_model(state.models[key]) for key in models.stubs if key in state.models})
    return ProjectState(models=copies, real_apps=state.real_apps)


@dataclass
class Step:
    """The states on either side of one operation, holding only what its schema change reads."""

    operation: Operation
    before: ProjectState
    after: ProjectState
    # The models `after` holds, when it is a closure: the next step's `before`, when it is the
    # same closure of the same state, is `after` itself (rendered once, not twice).
    after_models: Closure | None = None


def step_forwards(operation: Operation, app_label: str, state: ProjectState, previous: Step | None = None) -> Step:
    """Apply the operation's state change to `state` (in place) and return the states around it.

    Each side is the closure of the operation's models in the state of that side, so a
    model an operation creates appears only after it and a deleted one only before it.
    Unknown operations get whole copies of the state. `previous` is the step just taken on
    `state`: when this operation's models before it are the closure `previous.after` holds,
    that state is this one's `before`, as Django's executor hands one operation's state on
    to the next, and its rendering serves both.
    """
    named = database_models(operation, app_label)
    if named is None:
        before = state.clone()
        operation.state_forwards(app_label, state)
        return Step(operation, before, state.clone())
    if not named:
        operation.state_forwards(app_label, state)
        return Step(operation, ProjectState(real_apps=state.real_apps), ProjectState(real_apps=state.real_apps))
    models_before = closure(state, named)
    if previous is not None and previous.after_models == models_before:
        before = previous.after
    else:
        before = partial_state(state, models_before)
    operation.state_forwards(app_label, state)
    models_after = closure(state, named)
    return Step(operation, before, partial_state(state, models_after), models_after)


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
