"""A safe evaluator of submitted Python: builds Django objects from an AST, never runs the source.

Literals, containers, comprehensions, names bound from the allow-list (through `import` lines,
read as bindings), attribute access through explicit tables, calls of allowed classes and
functions, of well-known third-party helpers (the registry) and of functions the file defines
(interpreted, never run by Python), simple operators and conditionals are evaluated; the
statements around them are read by `statements.StatementRunner`. Every step counts against a
budget and every value is weighed. Everything else is refused with a located IntakeError; any
error an allowed constructor raises is reported at the call that caused it.
"""

from __future__ import annotations

import ast
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NoReturn

from django.db import models
from django.db.migrations.operations.base import Operation
from django.db.migrations.operations.models import CreateModel
from django.db.migrations.operations.special import RunPython, RunSQL
from django.db.models.expressions import Combinable

from changeapi.intake.engines import postgresql_only_message, postgresql_only_path, runs_postgresql_only
from changeapi.intake.errors import IntakeBoundExceeded, IntakeBudgetExceeded, IntakeError, IntakeErrors, Location, Problem
from changeapi.intake.sql_policy import RefusedSql, check_sql

from . import allowlist
from . import builtins as safe
from .catalog import GET_USER_MODEL, MISSING, Catalog, MappedFieldClass, ModelLabel, ModelMeta, Namespace, Unresolved
from .config import SourceSettings
from .custom_operations import custom_operation
from .data_steps import DataMigrationStep, SubmittedCode
from .local_objects import (
    DatabaseConnectionStandIn,
    LocalClass,
    LocalFunction,
    MigrationInstance,
    Poisoned,
    SchemaEditorStandIn,
    Scope,
    SourcePath,
    function_closure,
)
from .mapped_fields import construct_mapped_field, mapped_field_class
from .operators import binary_operation, compare
from .parsing import REFUSED_BUILTINS, ParsedSource, is_forbidden, node_location, source_lines, source_segment
from .reference_bases import create_model_with_referenced_bases
from .references import InertCall, InertReference, referenced_storage
from .registry import RegistryFunction
from .statements import StatementRunner

_NUMBERS = (int, float)
_SEQUENCES = (str, bytes, list, tuple)
_RUN_PYTHON_PARAMETERS = ("code", "reverse_code", "atomic", "hints", "elidable")
# How often (in steps) the CPU clock of the reading thread is looked at.
_CLOCK_EVERY = 1024


class _Getattr:
    """The `getattr` builtin, honoured only as `getattr(<imported module or settings>, "NAME", default)`."""


class _Hasattr:
    """The `hasattr` builtin, honoured only as `hasattr(<imported module or settings>, "NAME")`."""


GETATTR = _Getattr()
HASATTR = _Hasattr()


class Interpreter:
    """Evaluates expressions of one submitted file against its module-level bindings."""

    def __init__(
        self,
        *,
        source: str,
        filename: str,
        settings: SourceSettings,
        package: str | None,
        module: str | None = None,
        catalog: Catalog | None = None,
        listing: tuple[str, ...] = (),
    ) -> None:
        self.source = source
        self._lines: list[str] | None = None
        self.filename = filename
        self.settings = settings
        self.package = package
        # The dotted module of the file: functions and classes it defines are named under it.
        self.module = module
        # The files beside this one (its app's submitted migrations), for os.listdir(dir of __file__).
        self.listing = listing
        self.catalog = catalog or Catalog(settings)
        self.bindings: dict[str, Any] = {}
        # The innermost function, class-body or comprehension scope; None at module level.
        self.scope: Scope | None = None
        self.runner = StatementRunner(self)
        self.steps = 0
        self._max_steps = settings.limits.max_steps
        self._clock_start = time.thread_time()
        self._weights: dict[int, tuple[Any, int]] = {}
        # Classes the models reader builds (models, choices, Meta) and what may be read or
        # called on them, keyed by identity.
        self.local_attributes: dict[int, tuple[Any, dict[str, Any]]] = {}
        self.local_calls: dict[int, tuple[Any, Any]] = {}
        # Uses of names the project's engine cannot run, refused together once the file is read.
        self.engine_refusals: list[Problem] = []
        self.engine_refusal_count = 0
        # Set by run_module from what parsing found (see refuse_forbidden).
        self.forbidden_free = False
        # On PostgreSQL every name is runnable: no use is looked at (see note_engine_use).
        self._notes_engine_uses = not runs_postgresql_only(settings.engine)

    # -- errors and budget ----------------------------------------------------------------

    def location(self, node: ast.AST | None) -> Location:
        return node_location(self.filename, node)

    def source_segment(self, node: ast.AST) -> str:
        """The text of a node of the file (a function or lambda kept as source)."""
        if self._lines is None:
            self._lines = source_lines(self.source)
        return source_segment(self._lines, node)

    def fail(self, message: str, node: ast.AST | None) -> NoReturn:
        raise IntakeError(message, self.location(node))

    def fail_bound(self, message: str, node: ast.AST | None) -> NoReturn:
        """Refuse a value past a size bound; never deferred, even where the value is unused."""
        raise IntakeBoundExceeded(message, self.location(node))

    def tick(self, node: ast.AST) -> None:
        """Count one step of reading; refuse a file past the step or CPU-time budget."""
        self.steps += 1
        if self.steps > self._max_steps or self.steps % _CLOCK_EVERY == 0:
            self._check_budget(node)

    def _check_budget(self, node: ast.AST) -> None:
        limits = self.settings.limits
        if self.steps > limits.max_steps:
            raise IntakeBudgetExceeded(
                f"Reading the file takes more than {limits.max_steps} steps (a loop or recursion that does not end?).",
                setting="SCHEMAGATE_MAX_INTAKE_STEPS",
                value=limits.max_steps,
                location=self.location(node),
            )
        if self.steps % _CLOCK_EVERY == 0 and time.thread_time() - self._clock_start > limits.max_cpu_seconds:
            raise IntakeBudgetExceeded(
                f"Reading the file took more than {limits.max_cpu_seconds:g} s of CPU time.",
                setting="SCHEMAGATE_MAX_INTAKE_CPU_SECONDS",
                value=int(limits.max_cpu_seconds),
                location=self.location(node),
            )

    def refuse_forbidden(self, node: ast.AST) -> None:
        """Refuse dunder attributes and dangerous builtins anywhere in an expression, even unread.

        A file in which parsing found none of them anywhere (`ParsedSource.forbidden_free`,
        most migration files) has none in this expression either: it is not walked again.
        """
        if self.forbidden_free:
            return
        for child in ast.walk(node):
            if not is_forbidden(child):
                continue
            if isinstance(child, ast.Attribute):
                self.fail(f"The attribute {child.attr} is not allowed.", child)
            if isinstance(child, ast.Name):
                self.fail(f"`{child.id}` is not allowed: submitted source is read, never run.", child)
            self.fail(f"{_describe(child)} is not supported in submitted source: it is never run.", child)

    # -- names ----------------------------------------------------------------------------

    def run_module(self, parsed: ParsedSource) -> None:
        """Read the file's module-level statements in order, as an import would run them.

        Uses of names the project's engine cannot run do not stop the reading: the file is read
        to its end, so one answer lists every use, each where it is.
        """
        self.forbidden_free = parsed.forbidden_free
        self.runner.run_module(parsed.tree.body)
        if self.engine_refusals:
            raise IntakeErrors(
                self.engine_refusals,
                total=self.engine_refusal_count,
                summary=f"{self.engine_refusal_count} uses of PostgreSQL-only names in {self.filename}",
            )

    def close(self) -> None:
        """The file is read: drop the statement runner, which points back here (as the
        reader's class hook does), so that the reading's objects are freed by reference
        counting as soon as the caller lets go of the interpreter, instead of waiting as a
        cycle for a garbage collection (paused while an intake reads, see gc_pause)."""
        self.runner.module_class_reader = None
        del self.runner

    def note_engine_use(self, value: Any, spelled: str, node: ast.AST) -> None:
        """Refuse (once the file is read) a PostgreSQL-only class or function named here, unless
        the project runs on PostgreSQL."""
        if runs_postgresql_only(self.settings.engine):
            return
        path = postgresql_only_path(value)
        if path is None:
            return
        self.engine_refusal_count += 1
        if len(self.engine_refusals) < self.settings.limits.max_problems:
            message = postgresql_only_message(spelled, path, self.settings.engine)
            self.engine_refusals.append(Problem(message, self.location(node), []))

    def bind_import(self, node: ast.Import | ast.ImportFrom) -> None:
        """Read an import line as name bindings; nothing is imported."""
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    self._bind(alias.asname, alias.name, node)
                else:
                    root = alias.name.split(".")[0]
                    self._bind(root, root, node)
            return
        module = self._absolute_module(node)
        if module == "__future__":
            return
        for alias in node.names:
            if alias.name == "*":
                self.fail("`from ... import *` is not supported: import the names you use.", node)
            self._bind(alias.asname or alias.name, f"{module}.{alias.name}", node)

    def _absolute_module(self, node: ast.ImportFrom) -> str:
        if not node.level:
            return node.module or ""
        if not self.package:
            self.fail("A relative import needs the app's package, which is unknown here.", node)
        parts = self.package.split(".")
        if node.level - 1 >= len(parts):
            self.fail("The relative import goes above the app's package.", node)
        base = ".".join(parts[: len(parts) - (node.level - 1)])
        return f"{base}.{node.module}" if node.module else base

    def _bind(self, name: str, path: str, node: ast.AST) -> None:
        value = self.catalog.resolve(path)
        if isinstance(value, Unresolved):
            value = Unresolved(path, self.location(node))
        self.bind_name(name, value)

    def bind_name(self, name: str, value: Any) -> None:
        """Bind a name in the innermost scope (the module's bindings at module level)."""
        if self.scope is None:
            self.bindings[name] = value
        else:
            self.scope.names[name] = value

    def unbind(self, name: str, node: ast.AST) -> None:
        names = self.bindings if self.scope is None else self.scope.names
        if name not in names:
            self.fail(f"The name {name} is not defined here.", node)
        del names[name]

    def dotted_path_of(self, name: str) -> str | None:
        """The dotted path Django would write for a module-level definition of the file."""
        if self.scope is not None or not self.module:
            return None
        return f"{self.module}.{name}"

    @contextmanager
    def class_body(self, names: dict[str, Any] | None = None) -> Iterator[dict[str, Any]]:
        """Read inside a class body whose names are `names` (class bodies see their own names)."""
        scope = Scope(names={} if names is None else names, parent=self.scope, is_class=True)
        saved = self.scope
        self.scope = scope
        try:
            yield scope.names
        finally:
            self.scope = saved

    def resolve_known(self, path: str, node: ast.AST) -> Any:
        """What a dotted path names on the allow-list, in the registry or the project's settings."""
        value = self.catalog.resolve(path)
        if isinstance(value, (Unresolved, Namespace)):
            self.fail(f"{path} is not a name the service knows.", node)
        return value

    def lookup(self, name: str) -> Any:
        """The value a name has where the interpreter reads now, or MISSING."""
        scope = self.scope
        while scope is not None:
            if name in scope.names:
                return scope.names[name]
            scope = scope.parent
        return self.bindings.get(name, MISSING)

    # -- expressions ----------------------------------------------------------------------

    def evaluate(self, node: ast.expr) -> Any:
        """The value of an expression, or a located IntakeError; never a module or stand-in."""
        value = self._raw(node)
        if _AS_IS.get(type(value)):
            return value
        return self._usable(value, node)

    def evaluate_base(self, node: ast.expr) -> Any:
        """A base class named in a class statement or `bases=`: unknown classes stay dotted references."""
        value = self._raw(node)
        if isinstance(value, Unresolved):
            return InertReference(value.path)
        return self._usable(value, node)

    def _usable(self, value: Any, node: ast.AST) -> Any:
        if _passes_as_is(type(value)):
            return value
        if isinstance(value, Unresolved):
            return self._unresolved_value(value, node)
        if isinstance(value, Namespace):
            self.fail(f"{value.path} is a module; name one of its members instead.", node)
        if isinstance(value, MappedFieldClass):
            self.fail(f"{value.path} is a field class; call it to make a field.", node)
        if isinstance(value, LocalFunction):
            if value.path is None:
                self.fail(
                    "A lambda can only be called here, or be the code of a migrations.RunPython step: "
                    "it has no name Django could write.",
                    node,
                )
            # As Django writes a function it was given: a reference by dotted path.
            return InertReference(value.path)
        if isinstance(value, LocalClass):
            return InertReference(value.path)
        if isinstance(value, RegistryFunction):
            return InertReference(value.path)
        if value is GETATTR or value is GET_USER_MODEL or value is HASATTR:
            self.fail('getattr can only be called, as getattr(settings, "NAME", default).', node)
        if isinstance(value, safe.PlainMethod):
            self.fail(f"The method {value.name} can only be called here.", node)
        if isinstance(value, safe.Builtin):
            real = safe.builtin_value(value)
            if real is None:
                self.fail(f"{value.name}() can only be called here.", node)
            return real
        return value

    def _unresolved_value(self, value: Unresolved, node: ast.AST) -> Any:
        """A name no table knows, used as a value: a reference, unless it looks like a constant.

        Django keeps functions and classes a migration names (defaults, validators, storages,
        encoders, mixin bases) only as dotted paths for writing files; so does the service,
        without importing anything. A constant's value matters (`max_length=X`), so it must be
        given in the project's setting_values.
        """
        last = value.path.rpartition(".")[2]
        if last.isupper() or last.startswith("_"):
            self.fail(
                f"{value.path} is a value the service cannot know; give it in the project's setting_values, "
                f'e.g. {{"{value.path}": ...}}. Submitted code is never imported.',
                node,
            )
        return self.catalog.reference(value.path)

    def _raw(self, node: ast.expr) -> Any:
        self.tick(node)
        method = _EVALUATORS.get(type(node))
        if method is None:
            self.fail(f"{_describe(node)} is not supported in submitted source: it is never run.", node)
        try:
            value = method(self, node)
            if self._notes_engine_uses and isinstance(node, (ast.Name, ast.Attribute)):
                self.note_engine_use(value, _dotted(node), node)
            return value
        except IntakeError:
            raise
        except RecursionError:
            self.fail("The expression is nested too deeply.", node)
        except Exception as exc:  # noqa: BLE001 - any failure of Django's constructors is the submitter's to fix
            self.fail(f"{_describe(node)} failed: {type(exc).__name__}: {exc}", node)

    def _eval_Constant(self, node: ast.Constant) -> Any:
        if node.value is Ellipsis:
            self.fail("`...` has no meaning in a migration.", node)
        return node.value

    def _eval_Name(self, node: ast.Name) -> Any:
        name = node.id
        value = self.lookup(name)
        if isinstance(value, Poisoned):
            raise value.error
        if value is not MISSING:
            return value
        if name == "getattr":
            return GETATTR
        if name == "hasattr":
            return HASATTR
        if name in safe.BUILTINS:
            return safe.BUILTINS[name]
        if name == "__file__":
            return SourcePath(self.filename.replace("\\", "/"), self.listing)
        if name == "__name__":
            return self.module or ""
        if name in REFUSED_BUILTINS or name.startswith("__"):
            self.fail(f"`{name}` is not allowed: submitted source is read, never run.", node)
        self.fail(
            f"The name {name} is not defined in the file by an import or an assignment the service can read.",
            node,
        )

    def _eval_Attribute(self, node: ast.Attribute) -> Any:
        if node.attr.startswith("__"):
            self.fail(f"The attribute {node.attr} is not allowed.", node)
        base = self._raw(node.value)
        if isinstance(base, Poisoned):
            raise base.error
        local = self.local_attributes.get(id(base))
        if local is not None and local[0] is base:
            if node.attr not in local[1]:
                self.fail(f"{_dotted(node)} is not an attribute the service can read.", node)
            return local[1][node.attr]
        if type(base) is Namespace:
            # `models.CharField`, `migrations.AddField`: none of the cases below is a module.
            return self._catalog_attribute(base, node)
        if isinstance(base, LocalClass):
            found = base.lookup(node.attr)
            if found is MISSING:
                self.fail(f"{_dotted(node)}: class {base.name} of the file sets no {node.attr} the service can read.", node)
            if isinstance(found, Poisoned):
                raise found.error
            return found
        if isinstance(base, LocalFunction):
            self.fail(f"The function {base.name} defined in the file has no readable attributes.", node)
        if isinstance(base, MigrationInstance):
            if node.attr not in base.names:
                self.fail(f"The migration has no attribute {node.attr} here.", node)
            found = base.names[node.attr]
            if isinstance(found, Poisoned):
                raise found.error
            return found
        if isinstance(base, SchemaEditorStandIn) and node.attr == "connection":
            return base.connection
        if isinstance(base, DatabaseConnectionStandIn) and node.attr == "vendor":
            return base.vendor
        if isinstance(base, (SchemaEditorStandIn, DatabaseConnectionStandIn)):
            self.fail(f"{_dotted(node)}: only schema_editor.connection.vendor can be read here.", node)
        if isinstance(base, SourcePath):
            return _path_attribute(self, base, node)
        if isinstance(base, ModelLabel) and node.attr == "_meta":
            return base.meta
        if isinstance(base, ModelMeta):
            if node.attr not in ("app_label", "object_name", "model_name", "label", "label_lower"):
                self.fail(f"{_dotted(node)} is not a model option the service knows here.", node)
            return getattr(base, node.attr)
        if isinstance(base, safe.PLAIN_TYPES):
            return safe.plain_method(self, base, node.attr, node)
        return self._catalog_attribute(base, node)

    def _catalog_attribute(self, base: Any, node: ast.Attribute) -> Any:
        found = self.catalog.attribute(base, node.attr)
        if found is MISSING:
            self.fail(f"{_dotted(node)} is not an attribute the service knows.", node)
        return found

    def _eval_List(self, node: ast.List) -> list[Any]:
        return self._weighed(self._elements(node.elts), node)

    def _eval_Tuple(self, node: ast.Tuple) -> tuple[Any, ...]:
        return self._weighed(tuple(self._elements(node.elts)), node)

    def _eval_Set(self, node: ast.Set) -> set[Any]:
        return self._weighed(set(self._elements(node.elts)), node)

    def _eval_Dict(self, node: ast.Dict) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        for key_node, value_node in zip(node.keys, node.values, strict=True):
            if key_node is None:
                unpacked = self.evaluate(value_node)
                if not isinstance(unpacked, dict):
                    self.fail("Only a dict can be unpacked with ** here.", value_node)
                result.update(unpacked)
            else:
                result[self.evaluate(key_node)] = self.evaluate(value_node)
        return self._weighed(result, node)

    def _elements(self, nodes: list[ast.expr]) -> list[Any]:
        values: list[Any] = []
        for element in nodes:
            if isinstance(element, ast.Starred):
                unpacked = self.evaluate(element.value)
                if not isinstance(unpacked, (list, tuple)):
                    self.fail("Only a list or tuple can be unpacked with * here.", element)
                values.extend(unpacked)
            else:
                values.append(self.evaluate(element))
        return values

    def _eval_UnaryOp(self, node: ast.UnaryOp) -> Any:
        operand = self.evaluate(node.operand)
        if isinstance(node.op, ast.Not):
            return not operand
        if isinstance(operand, bool) and not isinstance(node.op, ast.Not):
            self.fail("Arithmetic on True/False is not supported.", node)
        if isinstance(node.op, ast.USub) and isinstance(operand, (*_NUMBERS, Combinable)):
            return -operand
        if isinstance(node.op, ast.UAdd) and isinstance(operand, _NUMBERS):
            return +operand
        if isinstance(node.op, ast.Invert) and isinstance(operand, (int, models.Q, Combinable)):
            return ~operand
        self.fail(f"{_describe(node)} is not supported on {type(operand).__name__}.", node)

    def _eval_BinOp(self, node: ast.BinOp) -> Any:
        left = self.evaluate(node.left)
        right = self.evaluate(node.right)
        return self._weighed(binary_operation(self, node, left, right), node)

    def _eval_BoolOp(self, node: ast.BoolOp) -> Any:
        value: Any = None
        for operand in node.values:
            value = self.evaluate(operand)
            if isinstance(node.op, ast.And) and not value:
                return value
            if isinstance(node.op, ast.Or) and value:
                return value
        return value

    def _eval_Compare(self, node: ast.Compare) -> bool:
        left = self.evaluate(node.left)
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            right = self.evaluate(comparator)
            if not compare(self, node, op, left, right):
                return False
            left = right
        return True

    def _eval_IfExp(self, node: ast.IfExp) -> Any:
        return self.evaluate(node.body if self.evaluate(node.test) else node.orelse)

    def _eval_Subscript(self, node: ast.Subscript) -> Any:
        container = self.evaluate(node.value)
        if not isinstance(container, (*_SEQUENCES, dict)):
            self.fail(f"Indexing a {type(container).__name__} is not supported.", node)
        if isinstance(node.slice, ast.Slice):
            parts = [None if n is None else self.evaluate(n) for n in (node.slice.lower, node.slice.upper, node.slice.step)]
            if not all(p is None or (isinstance(p, int) and not isinstance(p, bool)) for p in parts):
                self.fail("Slice bounds must be integers.", node)
            return container[slice(*parts)]  # type: ignore[index]
        return container[self.evaluate(node.slice)]  # type: ignore[index]

    def _eval_JoinedStr(self, node: ast.JoinedStr) -> str:
        pieces: list[str] = []
        for part in node.values:
            if isinstance(part, ast.Constant) and isinstance(part.value, str):
                pieces.append(part.value)
                continue
            if not isinstance(part, ast.FormattedValue) or part.format_spec is not None or part.conversion not in (-1, 115):
                self.fail("Only plain {name} substitutions are supported in f-strings.", part)
            value = self.evaluate(part.value)
            if not isinstance(value, (str, int, float, bool, type(None))):
                self.fail(f"A {type(value).__name__} cannot be put into an f-string here.", part)
            pieces.append(str(value))
        result = "".join(pieces)
        if len(result) > self.settings.limits.max_bytes:
            self.fail_bound("The string is too long.", node)
        return result

    def _eval_ListComp(self, node: ast.ListComp) -> list[Any]:
        result: list[Any] = []
        self._comprehension(node.generators, lambda: result.append(self.evaluate(node.elt)))
        return self._weighed(result, node)

    def _eval_GeneratorExp(self, node: ast.GeneratorExp) -> list[Any]:
        # Read eagerly: every consumer the service allows (tuple, any, sorted, ...) takes it whole.
        result: list[Any] = []
        self._comprehension(node.generators, lambda: result.append(self.evaluate(node.elt)))
        return self._weighed(result, node)

    def _eval_SetComp(self, node: ast.SetComp) -> set[Any]:
        result: set[Any] = set()
        self._comprehension(node.generators, lambda: result.add(self.evaluate(node.elt)))
        return self._weighed(result, node)

    def _eval_DictComp(self, node: ast.DictComp) -> dict[Any, Any]:
        result: dict[Any, Any] = {}

        def produce() -> None:
            key = self.evaluate(node.key)
            result[key] = self.evaluate(node.value)

        self._comprehension(node.generators, produce)
        return self._weighed(result, node)

    def _comprehension(self, generators: list[ast.comprehension], produce: Any) -> None:
        """Run a comprehension's loops in a scope of their own, within the step budget."""
        saved = self.scope
        self.scope = Scope(names={}, parent=saved)
        produced = 0
        limit = self.settings.limits.max_items

        def loop(index: int) -> None:
            nonlocal produced
            if index == len(generators):
                produced += 1
                if produced > limit:
                    self.fail_bound(f"The comprehension makes more than {limit} items.", generators[0].iter)
                produce()
                return
            generator = generators[index]
            if generator.is_async:
                self.fail("async comprehensions are not supported.", generator.iter)
            for item in self.iterable(self.evaluate(generator.iter), generator.iter):
                self.tick(generator.iter)
                self.runner.assign(generator.target, item)
                if all(self.evaluate(condition) for condition in generator.ifs):
                    loop(index + 1)

        try:
            loop(0)
        finally:
            self.scope = saved

    def _eval_Lambda(self, node: ast.Lambda) -> LocalFunction:
        return LocalFunction(
            name="<lambda>",
            node=node,
            source=self.source_segment(node),
            defined_at=self.location(node),
            path=None,
            closure=function_closure(self.scope),
        )

    def iterable(self, value: Any, node: ast.AST) -> list[Any]:
        """The items of a finite plain value a loop or unpacking goes over."""
        if isinstance(value, (list, tuple, str, bytes, set, frozenset, dict, range)):
            if len(value) > self.settings.limits.max_items:
                self.fail_bound(f"The value has more than {self.settings.limits.max_items} items.", node)
            return list(value)
        self.fail(f"A {type(value).__name__} cannot be looped over or unpacked here.", node)

    def operate(self, node: ast.AST, op: ast.operator, left: Any, right: Any) -> Any:
        """`left op right` as the binary operators are evaluated, for augmented assignments."""
        expression = ast.copy_location(ast.BinOp(left=ast.Constant(None), op=op, right=ast.Constant(None)), node)
        return self._weighed(binary_operation(self, expression, left, right), node)

    def extend_list(self, target: list[Any], items: Iterable[Any], node: ast.AST) -> None:
        added = list(items)
        target.extend(added)
        self.grow(target, added, node)

    def grow(self, container: Any, added: Iterable[Any], node: ast.AST) -> None:
        """Account for items put into an existing container (append, item assignment, +=)."""
        total = self.weight(container) + sum(self.weight(item) for item in added)
        if total > self.settings.limits.max_items:
            self.fail_bound(f"The value is too large (over {self.settings.limits.max_items} items).", node)
        self._weights[id(container)] = (container, total)

    def _eval_Call(self, node: ast.Call) -> Any:
        callee = self._raw(node.func)
        if isinstance(callee, Poisoned):
            raise callee.error
        if callee is RunPython:
            return self._run_python(node)
        if callee is GETATTR:
            return self._getattr(node)
        if callee is HASATTR:
            return self._hasattr(node)
        args, kwargs = self._arguments(node)
        return self._weighed(self.call(callee, args, kwargs, node), node, args, kwargs)

    def call(self, callee: Any, args: list[Any], kwargs: dict[str, Any], node: ast.AST) -> Any:
        """Call what a file may call: allowed Django names, registry helpers, its own functions."""
        if isinstance(callee, Unresolved):
            mapped = custom_operation(self, callee.path, None, args, kwargs, node)
            if mapped is not None:
                return mapped
            if _is_instance_of_unknown_class(callee.path):
                # A validator, storage or encoder instance of a class the service does not
                # know: kept as the call, written back as Django would write it.
                return InertCall(self.catalog.reference(callee.path), tuple(args), kwargs)
            self.fail(unresolved_message(callee.path, callee.imported_at, self.catalog.close_names(callee.path)), node)
        local = self.local_calls.get(id(callee))
        if local is not None and local[0] is callee:
            return local[1](args, kwargs)
        if isinstance(callee, type):
            # A class (a field or an operation, most calls of a file): none of the file's own,
            # the registry's or the builtins' callables below is one.
            return self._call_class(callee, args, kwargs, node)
        if isinstance(callee, LocalFunction):
            return self.runner.call(callee, args, kwargs, node)
        if isinstance(callee, LocalClass):
            mapped = custom_operation(self, callee.path, callee, args, kwargs, node)
            if mapped is not None:
                return mapped
            self.fail(f"class {callee.name} is defined in the file and is never instantiated by the service.", node)
        if isinstance(callee, RegistryFunction):
            return callee.call(self, args, kwargs, node)
        if isinstance(callee, safe.PlainMethod):
            return callee.call(self, args, kwargs, node)
        if callee is GET_USER_MODEL:
            if args or kwargs:
                self.fail("get_user_model() takes no arguments.", node)
            return ModelLabel(self.settings.auth_user_model)
        if isinstance(callee, MappedFieldClass):
            self.note_engine_use(callee.base, callee.path, node)
            klass = mapped_field_class(callee.path, callee.mapping, callee.base, self.location(node))
            return construct_mapped_field(klass, callee.mapping, callee.path, args, kwargs, self.location(node))
        if isinstance(callee, InertReference):
            mapped = custom_operation(self, callee.path, None, args, kwargs, node)
            if mapped is not None:
                return mapped
            return InertCall(callee, tuple(args), kwargs)
        if isinstance(callee, safe.Builtin):
            return callee.call(self, args, kwargs, node)
        if self._is_allowed_callable(callee):
            return safe.checked_number(self, callee(*args, **kwargs), node)
        self._refuse_call(callee, node)

    def _call_class(self, klass: type, args: list[Any], kwargs: dict[str, Any], node: ast.AST) -> Any:
        """A builtin type as that builtin (`kind = dict; kind()`); an allowed class with the
        checks of its kind (operations' fields, RunSQL's SQL, file fields' storage)."""
        builtin = safe.builtin_of_value(klass)
        if builtin is not None:
            return builtin.call(self, args, kwargs, node)
        if not self._is_allowed_callable(klass):
            self._refuse_call(klass, node)
        if issubclass(klass, Operation):
            self._refuse_unknown_fields(args, kwargs, node)
        if issubclass(klass, CreateModel):
            return create_model_with_referenced_bases(klass, args, kwargs)
        if issubclass(klass, RunSQL):
            self._check_run_sql(args, kwargs, node)
        if issubclass(klass, models.FileField) and "storage" in kwargs:
            kwargs = {**kwargs, "storage": referenced_storage(kwargs["storage"])}
        return safe.checked_number(self, klass(*args, **kwargs), node)

    def _refuse_call(self, callee: Any, node: ast.AST) -> NoReturn:
        self.fail(
            f"{_dotted(node.func) if isinstance(node, ast.Call) else repr(callee)} cannot be called in submitted source.", node
        )

    def _check_run_sql(self, args: list[Any], kwargs: dict[str, Any], node: ast.AST) -> None:
        """RunSQL's SQL and reverse SQL, read in the dialect of the project's engine before anything runs it."""
        for sql in [*args[:2], kwargs.get("sql"), kwargs.get("reverse_sql")]:
            if sql is None or sql is RunSQL.noop:
                continue
            try:
                check_sql(sql, engine=self.settings.engine)
            except RefusedSql as exc:
                self.fail(f"RunSQL: {exc}", node)

    def _refuse_unknown_fields(self, args: list[Any], kwargs: dict[str, Any], node: ast.AST) -> None:
        """A field the service cannot build (an unknown class's call) is refused where it is given."""
        candidates = [*args, *kwargs.values()]
        for value in list(candidates):
            if isinstance(value, (list, tuple)):
                candidates.extend(item[1] for item in value if isinstance(item, tuple) and len(item) == 2)
        for value in candidates:
            if isinstance(value, InertCall):
                self.fail(unresolved_message(value.reference.path, None, self.catalog.close_names(value.reference.path)), node)

    def _is_allowed_callable(self, callee: Any) -> bool:
        if allowlist.is_callable_allowed(callee) and self.catalog.is_allowed_object(callee):
            return True
        # Bound methods from the instance table (e.g. F("x").desc) and local choices classes.
        owner = getattr(callee, "__self__", None)
        name = getattr(callee, "__name__", None)
        return owner is not None and any(
            isinstance(owner, klass) and name in methods for klass, methods in allowlist.INSTANCE_METHODS
        )

    def _arguments(self, node: ast.Call) -> tuple[list[Any], dict[str, Any]]:
        args = self._elements(node.args)
        kwargs: dict[str, Any] = {}
        for keyword in node.keywords:
            if keyword.arg is None:
                unpacked = self.evaluate(keyword.value)
                if not isinstance(unpacked, dict) or not all(isinstance(k, str) for k in unpacked):
                    self.fail("Only a dict with string keys can be unpacked with ** here.", keyword)
                kwargs.update(unpacked)
            elif keyword.arg == "choices":
                kwargs[keyword.arg] = self._choices(keyword.value)
            else:
                kwargs[keyword.arg] = self.evaluate(keyword.value)
        return args, kwargs

    def _choices(self, node: ast.expr) -> Any:
        """A field's choices; an imported constant the service cannot know stays a reference.

        Choices make no schema (no SQL on any engine), so `choices=Page.STATUS_CHOICES` is kept
        by name, as a callable Django would evaluate lazily, here to no choices at all.
        """
        value = self._raw(node)
        if isinstance(value, Unresolved):
            return InertReference(value.path, stand_in=[])
        return self._usable(value, node)

    def _getattr(self, node: ast.Call) -> Any:
        if node.keywords or len(node.args) not in (2, 3):
            self.fail('getattr is supported only as getattr(settings, "NAME", default).', node)
        target = self._raw(node.args[0])
        name = self.evaluate(node.args[1])
        if not isinstance(target, Namespace) or not isinstance(name, str) or not name.isidentifier():
            self.fail(
                "getattr is supported only on an imported settings object or module with a literal "
                'name, as in getattr(settings, "NAME", default).',
                node,
            )
        if name.startswith("__"):
            self.fail(f"The attribute {name} is not allowed.", node.args[1])
        found = self.catalog.attribute(target, name)
        if isinstance(found, (Unresolved, Namespace)) or found is MISSING:
            if len(node.args) == 3:
                return self.evaluate(node.args[2])
            if not _is_settings_path(target.path):
                self.fail(
                    f"getattr({target.path}, {name!r}): {target.path}.{name} is not a name the service knows; "
                    'getattr is meant for settings, as in getattr(settings, "NAME", default).',
                    node,
                )
            self.fail(missing_setting_message(f"{target.path}.{name}"), node)
        return found

    def _hasattr(self, node: ast.Call) -> bool:
        if node.keywords or len(node.args) != 2:
            self.fail('hasattr is supported only as hasattr(settings, "NAME").', node)
        target = self._raw(node.args[0])
        name = self.evaluate(node.args[1])
        if not isinstance(target, Namespace) or not isinstance(name, str) or not name.isidentifier():
            self.fail('hasattr is supported only on an imported settings object or module, as hasattr(settings, "NAME").', node)
        found = self.catalog.attribute(target, name)
        return not (isinstance(found, (Unresolved, Namespace)) or found is MISSING)

    # -- RunPython ------------------------------------------------------------------------

    def _run_python(self, node: ast.Call) -> DataMigrationStep:
        """A RunPython step whose code is kept as text; the functions are never called."""
        bound: dict[str, ast.expr] = {}
        if len(node.args) > len(_RUN_PYTHON_PARAMETERS):
            self.fail("RunPython takes at most five arguments.", node)
        for parameter, arg in zip(_RUN_PYTHON_PARAMETERS, node.args, strict=False):
            if isinstance(arg, ast.Starred):
                self.fail("Pass RunPython's arguments one by one.", arg)
            bound[parameter] = arg
        for keyword in node.keywords:
            if keyword.arg is None or keyword.arg not in _RUN_PYTHON_PARAMETERS or keyword.arg in bound:
                self.fail("RunPython takes code, reverse_code, atomic, hints and elidable.", keyword)
            bound[keyword.arg] = keyword.value
        if "code" not in bound:
            self.fail("RunPython needs the function to run.", node)
        code = self._submitted_code(bound["code"])
        reverse = None
        if "reverse_code" in bound and not _is_none(bound["reverse_code"]):
            reverse = self._submitted_code(bound["reverse_code"])
        options = {key: self.evaluate(bound[key]) for key in ("atomic", "hints", "elidable") if key in bound}
        return DataMigrationStep(code, reverse, **options)

    def _submitted_code(self, node: ast.expr) -> Any:
        if isinstance(node, ast.Lambda):
            return SubmittedCode("<lambda>", self.source_segment(node))
        if isinstance(node, ast.Name):
            bound = self.lookup(node.id)
            if isinstance(bound, LocalFunction):
                if bound.decorated and self.runner.refuse_decorators:
                    self.fail(f"The function {bound.name} has decorators, which would run code; remove them.", node)
                return SubmittedCode(bound.name, bound.source)
        if isinstance(node, (ast.Name, ast.Attribute)):
            try:
                value = self._raw(node)
            except IntakeError:
                value = None
            if value is RunPython.noop:
                return RunPython.noop
            if isinstance(value, (Unresolved, InertReference)):
                return SubmittedCode(value.path, None)
        self.fail(
            "RunPython's code must be a function defined in the file, a lambda, "
            "migrations.RunPython.noop, or an imported function.",
            node,
        )

    # -- size accounting ------------------------------------------------------------------

    def weight(self, value: Any) -> int:
        return self._total_weight((value,))

    def _total_weight(self, values: Iterable[Any]) -> int:
        """The weights of `values` added up, in one call for a container's items: a value
        weighed before weighs what it was found to; a string one per 64 characters; else one."""
        weights = self._weights
        total = 0
        for value in values:
            known = weights.get(id(value))
            if known is not None and known[0] is value:
                total += known[1]
            elif isinstance(value, (str, bytes)):
                total += 1 + len(value) // 64
            else:
                total += 1
        return total

    def _weighed(self, value: Any, node: ast.AST, *parts: Any) -> Any:
        """Record a built value's logical size and refuse values past the limit.

        Sizes add up through shared references (`[x] * 1000` of a big `x` weighs 1000 times
        `x`), which bounds everything later work walks: deepcopy, deconstruction, writing.
        """
        total = 1
        if isinstance(value, (list, tuple, set, frozenset)):
            total += self._total_weight(value)
        elif isinstance(value, dict):
            total += self._total_weight(value.keys()) + self._total_weight(value.values())
        for part in parts:
            total += self._total_weight(part.values() if isinstance(part, dict) else part)
        if isinstance(value, (str, bytes)):
            total = max(total, 1 + len(value) // 64)
        if total > self.settings.limits.max_items:
            self.fail_bound(f"The value is too large (over {self.settings.limits.max_items} items).", node)
        if total > 1:
            # The value is kept alongside its weight so that its id is not reused.
            self._weights[id(value)] = (value, total)
        return value


def unresolved_message(path: str, imported_at: Location | None, close: Sequence[str] = ()) -> str:
    where = f" (imported on line {imported_at.line})" if imported_at and imported_at.line else ""
    if close:
        return f"{path}{where} is not a name the service knows. Did you mean {' or '.join(close)}?"
    return (
        f"{path}{where} is not on the service's allow-list. If it is a custom model field, map it "
        "to a Django field in the project's field_map setting, e.g. "
        f'{{"{path}": {{"base": "django.db.models.CharField", "kwargs": {{"max_length": 255}}}}}}; '
        "if it is a project function or class that is only referred to (a default, validator or "
        "upload_to), list it in the project's references setting. Submitted code is never imported."
    )


def missing_setting_message(path: str) -> str:
    return f'The setting {path} has no value here: add it to the project\'s setting_values, e.g. {{"{path}": ...}}.'


_DESCRIPTIONS = {
    "Lambda": "A lambda",
    "NamedExpr": "An assignment expression (:=)",
    "ListComp": "A list comprehension",
    "SetComp": "A set comprehension",
    "DictComp": "A dict comprehension",
    "GeneratorExp": "A generator expression",
    "Await": "await",
    "Yield": "yield",
    "YieldFrom": "yield from",
    "Starred": "Unpacking with *",
    "Slice": "A slice",
    "Call": "The call",
    "BinOp": "The operator",
    "UnaryOp": "The operator",
}


def _describe(node: ast.AST) -> str:
    if isinstance(node, ast.Call):
        return f"The call of {_dotted(node.func)}"
    return _DESCRIPTIONS.get(type(node).__name__, f"A {type(node).__name__} expression")


def _dotted(node: ast.AST) -> str:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    else:
        parts.append("(...)")
    return ".".join(reversed(parts))


def _is_settings_path(path: str) -> bool:
    """django.conf.settings or a package's settings object or module (`allauth.app_settings`)."""
    return path.rpartition(".")[2].endswith("settings")


def _path_attribute(interpreter: Interpreter, path: SourcePath, node: ast.Attribute) -> Any:
    """What a file reads of its own path: its directory, name and stem; resolve() is itself."""
    if node.attr in ("parent", "name", "stem"):
        return getattr(path, node.attr)
    if node.attr in ("resolve", "absolute"):
        return safe.Builtin(node.attr, lambda _interpreter, args, kwargs, _node: path)
    interpreter.fail(f"{_dotted(node)} is not something the service reads of a file's path.", node)


def _is_instance_of_unknown_class(path: str) -> bool:
    """A CamelCase name that is not a field or operation class: its call makes a plain object."""
    last = path.rpartition(".")[2]
    return last[:1].isupper() and not last.isupper() and not last.endswith(("Field", "Operation", "Model"))


def _is_none(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and node.value is None


# What `_raw` calls for each node type: the class's `_eval_<Node>` methods, found once.
_EVALUATORS: dict[type, Any] = {
    getattr(ast, name.removeprefix("_eval_")): method
    for name, method in vars(Interpreter).items()
    if name.startswith("_eval_") and isinstance(getattr(ast, name.removeprefix("_eval_"), None), type)
}

# Types whose values `_usable` would check and give back unchanged; other values (references,
# modules, local functions and classes, builtins) are looked at one by one.
_LOOKED_AT = (
    Unresolved,
    Namespace,
    MappedFieldClass,
    LocalFunction,
    LocalClass,
    RegistryFunction,
    safe.PlainMethod,
    safe.Builtin,
    _Getattr,
    _Hasattr,
    type(GET_USER_MODEL),
)


_AS_IS: dict[type, bool] = {}


def _passes_as_is(kind: type) -> bool:
    """Whether every value of type `kind` is usable as it is (strings, numbers, fields, operations)."""
    known = _AS_IS.get(kind)
    if known is None:
        known = _AS_IS[kind] = not issubclass(kind, _LOOKED_AT)
    return known
