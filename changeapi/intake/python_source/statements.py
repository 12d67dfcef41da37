"""Statements of submitted source, interpreted one `_exec_<Node>` each: the control flow real files use.

Module-level and class-level code in real migration files branches on settings, builds lists
in loops and calls helper functions defined in the same file. This runner reads those
statements with the interpreter's expressions, within its step budget and call depth, and
refuses every other statement at its location. Nothing is ever executed by Python itself.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from changeapi.intake.errors import IntakeBoundExceeded, IntakeBudgetExceeded, IntakeError, IntakeLimitExceeded

from .local_objects import LocalClass, LocalFunction, MigrationInstance, Poisoned, Scope, function_closure
from .parsing import is_docstring

if TYPE_CHECKING:
    from .interpreter import Interpreter

# A reader's hook for a class statement; returns the value the class name is bound to.
ClassReader = Callable[[ast.ClassDef], Any]


class _Return(Exception):  # noqa: N818 - control flow, not an error
    def __init__(self, value: Any) -> None:
        self.value = value


class _Break(Exception):  # noqa: N818
    pass


class SuperApplyReached(Exception):  # noqa: N818 - control flow, not an error
    """An interpreted `Migration.apply()` reached `super().apply(...)`: Django's own apply runs
    from here, with the operations the method left on the migration."""


class _Continue(Exception):  # noqa: N818
    pass


_UNSUPPORTED = {
    "With": "A with block",
    "AsyncWith": "An async with block",
    "AsyncFor": "An async for loop",
    "Global": "A global statement",
    "Nonlocal": "A nonlocal statement",
    "Match": "A match statement",
}


class StatementRunner:
    """Runs blocks of statements for one interpreter; readers choose how classes are read."""

    def __init__(self, interpreter: Interpreter) -> None:
        self.interpreter = interpreter
        # The reader's class hook applies to module-level classes; nested ones are local classes.
        self.module_class_reader: ClassReader | None = None
        self.refuse_decorators = False
        self.in_migration_init = False
        self.in_migration_apply = False
        self.depth = 0

    # -- blocks ---------------------------------------------------------------------------

    def run_module(self, body: list[ast.stmt]) -> None:
        """Module-level statements, in order, as Python would on import."""
        try:
            self.run_block(body)
        except (_Break, _Continue) as exc:  # pragma: no cover - the parser refuses these
            raise IntakeError("break or continue outside a loop.") from exc
        except _Return:  # pragma: no cover - the parser refuses return outside a function
            raise IntakeError("return outside a function.") from None

    def run_block(self, body: list[ast.stmt]) -> None:
        for statement in body:
            self.interpreter.tick(statement)
            method = getattr(self, f"_exec_{type(statement).__name__}", None)
            if method is None:
                what = _UNSUPPORTED.get(type(statement).__name__, f"A {type(statement).__name__} statement")
                self.interpreter.fail(f"{what} is not supported in submitted source: it is never run.", statement)
            try:
                method(statement)
            except (IntakeError, _Return, _Break, _Continue, SuperApplyReached):
                raise
            except RecursionError:
                self.interpreter.fail("The code is nested too deeply.", statement)
            except Exception as exc:  # noqa: BLE001 - e.g. an unhashable key: the submitter's to fix, at the statement
                self.interpreter.fail(f"This statement failed: {type(exc).__name__}: {exc}", statement)

    # -- simple statements ----------------------------------------------------------------

    def _exec_Pass(self, node: ast.Pass) -> None:
        return None

    def _exec_Expr(self, node: ast.Expr) -> None:
        if is_docstring(node):
            return
        if self.in_migration_init and _is_super_call(node.value, "__init__"):
            return  # Django's own Migration.__init__, which the reader stands for
        if self.in_migration_apply and _is_super_call(node.value, "apply"):
            raise SuperApplyReached
        self.interpreter.refuse_forbidden(node.value)
        self.interpreter.evaluate(node.value)

    def _exec_Import(self, node: ast.Import) -> None:
        self.interpreter.bind_import(node)

    def _exec_ImportFrom(self, node: ast.ImportFrom) -> None:
        self.interpreter.bind_import(node)

    def _exec_Assign(self, node: ast.Assign) -> None:
        value = self._assigned_value(node.value, node.targets)
        for target in node.targets:
            self.assign(target, value)

    def _exec_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is None:
            return  # an annotation alone binds nothing
        self.assign(node.target, self._assigned_value(node.value, [node.target]))

    def _exec_AugAssign(self, node: ast.AugAssign) -> None:
        interpreter = self.interpreter
        interpreter.refuse_forbidden(node.value)
        if isinstance(node.target, ast.Name):
            current = interpreter.evaluate(ast.copy_location(ast.Name(id=node.target.id, ctx=ast.Load()), node.target))
        elif isinstance(node.target, ast.Subscript):
            current = interpreter.evaluate(
                ast.copy_location(ast.Subscript(node.target.value, node.target.slice, ast.Load()), node)
            )
        else:
            interpreter.fail("Only a name or an item can be updated with an augmented assignment.", node.target)
        addition = interpreter.evaluate(node.value)
        if isinstance(current, list) and isinstance(node.op, ast.Add):
            # `names += other` extends the list in place, for any iterable, as Python does.
            interpreter.extend_list(current, interpreter.iterable(addition, node.value), node)
            result = current
        else:
            result = interpreter.operate(node, node.op, current, addition)
        self.assign(node.target, result)

    def _exec_Delete(self, node: ast.Delete) -> None:
        for target in node.targets:
            if not isinstance(target, ast.Name):
                self.interpreter.fail("Only names can be deleted here.", target)
            self.interpreter.unbind(target.id, target)

    def _exec_Assert(self, node: ast.Assert) -> None:
        if not self.interpreter.evaluate(node.test):
            self.interpreter.fail("This assert fails, so Django could not load the file.", node)

    def _exec_Raise(self, node: ast.Raise) -> None:
        self.interpreter.fail("The source raises an exception here, so Django could not load it.", node)

    def _assigned_value(self, value_node: ast.expr, targets: list[ast.expr]) -> Any:
        """The value to bind; at module or class level an unreadable value poisons its names.

        A module-level name only RunPython code uses (a logger, a helper object) would never
        matter to the schema, so its failure is kept and raised only if something reads it.
        Forbidden constructs and limits are refused at once, read or not.
        """
        interpreter = self.interpreter
        interpreter.refuse_forbidden(value_node)
        if self.depth or not all(isinstance(target, ast.Name) for target in targets):
            return interpreter.evaluate(value_node)
        try:
            return interpreter.evaluate(value_node)
        except (IntakeLimitExceeded, IntakeBoundExceeded):
            raise
        except IntakeError as error:
            return Poisoned(error)

    def assign(self, target: ast.expr, value: Any) -> None:
        """Bind `value` to an assignment target: a name, an unpacked tuple or list, or an item."""
        interpreter = self.interpreter
        if isinstance(target, ast.Name):
            interpreter.bind_name(target.id, value)
        elif isinstance(target, (ast.Tuple, ast.List)):
            self._unpack(target, value)
        elif isinstance(target, ast.Attribute) and isinstance(owner := interpreter.evaluate(target.value), MigrationInstance):
            owner.names[target.attr] = value
        elif isinstance(target, ast.Subscript):
            container = interpreter.evaluate(target.value)
            if isinstance(target.slice, ast.Slice) or not isinstance(container, (list, dict)):
                interpreter.fail("Only an item of a list or dict can be assigned here.", target)
            key = interpreter.evaluate(target.slice)
            container[key] = value
            interpreter.grow(container, [key, value], target)
        else:
            interpreter.fail("Only names and items can be assigned in submitted source.", target)

    def _unpack(self, target: ast.Tuple | ast.List, value: Any) -> None:
        items = list(self.interpreter.iterable(value, target))
        starred = [i for i, element in enumerate(target.elts) if isinstance(element, ast.Starred)]
        if len(starred) > 1:
            self.interpreter.fail("Only one starred name can be unpacked into.", target)
        if not starred:
            if len(items) != len(target.elts):
                self.interpreter.fail(f"Cannot unpack {len(items)} values into {len(target.elts)} names.", target)
            for element, item in zip(target.elts, items, strict=True):
                self.assign(element, item)
            return
        at = starred[0]
        after = len(target.elts) - at - 1
        if len(items) < at + after:
            self.interpreter.fail(f"Cannot unpack {len(items)} values into {len(target.elts) - 1} or more names.", target)
        for element, item in zip(target.elts[:at], items[:at], strict=True):
            self.assign(element, item)
        starred_node = target.elts[at]
        assert isinstance(starred_node, ast.Starred)
        self.assign(starred_node.value, items[at : len(items) - after])
        for element, item in zip(target.elts[at + 1 :], items[len(items) - after :], strict=True):
            self.assign(element, item)

    # -- control flow ---------------------------------------------------------------------

    def _exec_If(self, node: ast.If) -> None:
        self.interpreter.refuse_forbidden(node.test)
        self.run_block(node.body if self.interpreter.evaluate(node.test) else node.orelse)

    def _exec_For(self, node: ast.For) -> None:
        interpreter = self.interpreter
        interpreter.refuse_forbidden(node.iter)
        items = interpreter.iterable(interpreter.evaluate(node.iter), node.iter)
        for item in items:
            interpreter.tick(node)
            self.assign(node.target, item)
            if not self._iteration(node.body):
                return
        self.run_block(node.orelse)

    def _exec_While(self, node: ast.While) -> None:
        interpreter = self.interpreter
        interpreter.refuse_forbidden(node.test)
        while interpreter.evaluate(node.test):
            interpreter.tick(node)
            if not self._iteration(node.body):
                return
        self.run_block(node.orelse)

    def _iteration(self, body: list[ast.stmt]) -> bool:
        """One pass of a loop body; False when it breaks out of the loop (skipping `else`)."""
        try:
            self.run_block(body)
        except _Break:
            return False
        except _Continue:
            pass
        return True

    def _exec_Break(self, node: ast.Break) -> None:
        raise _Break

    def _exec_Continue(self, node: ast.Continue) -> None:
        raise _Continue

    def _exec_Return(self, node: ast.Return) -> None:
        if self.in_migration_apply and node.value is not None and _is_super_call(node.value, "apply"):
            raise SuperApplyReached
        if node.value is not None:
            self.interpreter.refuse_forbidden(node.value)
        raise _Return(None if node.value is None else self.interpreter.evaluate(node.value))

    def _exec_Try(self, node: ast.Try) -> None:
        """The `try` body as if it succeeds, then `else` and `finally`; handlers are not read.

        Real files guard imports this way (`try: from x import y` / `except ImportError`);
        binding an import never fails here, so the handlers would not have run either.
        """
        self.run_block(node.body)
        self.run_block(node.orelse)
        self.run_block(node.finalbody)

    _exec_TryStar = _exec_Try

    # -- definitions ----------------------------------------------------------------------

    def _exec_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        interpreter = self.interpreter
        if node.decorator_list and self.refuse_decorators:
            interpreter.fail(
                f"The function {node.name} has decorators, which would run code; remove them.", node.decorator_list[0]
            )
        function = LocalFunction(
            name=node.name,
            node=node,
            source=interpreter.source_segment(node),
            defined_at=interpreter.location(node),
            path=interpreter.dotted_path_of(node.name),
            closure=function_closure(interpreter.scope),
            decorated=bool(node.decorator_list),
        )
        interpreter.bind_name(node.name, function)

    _exec_AsyncFunctionDef = _exec_FunctionDef

    def _exec_ClassDef(self, node: ast.ClassDef) -> None:
        interpreter = self.interpreter
        if interpreter.scope is None and self.module_class_reader is not None:
            value = self.module_class_reader(node)
        else:
            value = self.read_local_class(node)
        interpreter.bind_name(node.name, value)

    def read_local_class(self, node: ast.ClassDef) -> LocalClass:
        """A class that is neither a model nor the Migration: its bases and attributes, no methods run."""
        interpreter = self.interpreter
        if node.decorator_list:
            interpreter.fail(f"class {node.name} is decorated; class decorators would run code.", node.decorator_list[0])
        if node.keywords:
            interpreter.fail(f"class {node.name} passes keywords (such as metaclass=) to its class creation.", node)
        bases = tuple(interpreter.evaluate_base(base) for base in node.bases)
        attributes = self.read_class_body(node)
        return LocalClass(
            name=node.name,
            path=interpreter.dotted_path_of(node.name) or node.name,
            bases=bases,
            attributes=attributes,
            defined_at=interpreter.location(node),
        )

    def read_class_body(self, node: ast.ClassDef) -> dict[str, Any]:
        """The names a class body binds, read in a class scope (imports and `if` included)."""
        interpreter = self.interpreter
        scope = Scope(names={}, parent=interpreter.scope, is_class=True)
        saved = interpreter.scope
        interpreter.scope = scope
        try:
            self.run_block(node.body)
        finally:
            interpreter.scope = saved
        return scope.names

    # -- calls of local functions ---------------------------------------------------------

    def call(self, function: LocalFunction, args: list[Any], kwargs: dict[str, Any], node: ast.AST) -> Any:
        """Call a function the file defines, with interpreted semantics and a bounded depth."""
        interpreter = self.interpreter
        if function.decorated:
            interpreter.fail(f"The function {function.name} is decorated; its decorators would have to run.", node)
        limit = interpreter.settings.limits.max_call_depth
        if self.depth >= limit:
            raise IntakeBudgetExceeded(
                f"Functions of the file call each other more than {limit} deep.",
                setting="SCHEMAGATE_MAX_INTAKE_CALL_DEPTH",
                value=limit,
                location=interpreter.location(node),
            )
        frame = Scope(names={}, parent=function.closure)
        saved = interpreter.scope
        self.depth += 1
        try:
            interpreter.scope = function.closure
            self._bind_parameters(function, frame, args, kwargs, node)
            interpreter.scope = frame
            if isinstance(function.node, ast.Lambda):
                return interpreter.evaluate(function.node.body)
            try:
                self.run_block(function.node.body)
            except _Return as returned:
                return returned.value
            except (_Break, _Continue):  # pragma: no cover - the parser refuses these
                interpreter.fail("break or continue outside a loop.", node)
            return None
        finally:
            interpreter.scope = saved
            self.depth -= 1

    def _bind_parameters(
        self, function: LocalFunction, frame: Scope, args: list[Any], kwargs: dict[str, Any], node: ast.AST
    ) -> None:
        interpreter = self.interpreter
        spec = function.node.args
        positional = [*spec.posonlyargs, *spec.args]
        names = frame.names
        for parameter, value in zip(positional, args, strict=False):
            names[parameter.arg] = value
        extra = args[len(positional) :]
        if extra and spec.vararg is None:
            interpreter.fail(f"{function.name}() takes {len(positional)} positional arguments but {len(args)} were given.", node)
        if spec.vararg is not None:
            names[spec.vararg.arg] = tuple(extra)
        keyword_names = {p.arg for p in spec.args} | {p.arg for p in spec.kwonlyargs}
        collected: dict[str, Any] = {}
        for key, value in kwargs.items():
            if key in keyword_names and key not in names:
                names[key] = value
            elif key in names and key in keyword_names:
                interpreter.fail(f"{function.name}() got multiple values for argument {key}.", node)
            elif spec.kwarg is not None:
                collected[key] = value
            else:
                interpreter.fail(f"{function.name}() got an unexpected keyword argument {key}.", node)
        if spec.kwarg is not None:
            names[spec.kwarg.arg] = collected
        defaults = dict(zip([p.arg for p in positional[len(positional) - len(spec.defaults) :]], spec.defaults, strict=True))
        for parameter, default in zip(spec.kwonlyargs, spec.kw_defaults, strict=True):
            if default is not None:
                defaults[parameter.arg] = default
        for parameter in [*positional, *spec.kwonlyargs]:
            if parameter.arg in names:
                continue
            if parameter.arg not in defaults:
                interpreter.fail(f"{function.name}() is missing the argument {parameter.arg}.", node)
            # Defaults are read when called, in the scope the function was defined in.
            names[parameter.arg] = interpreter.evaluate(defaults[parameter.arg])


def _is_super_call(node: ast.expr, method: str) -> bool:
    """`super().<method>(...)`: the call a Migration.__init__ override makes first, and the one
    a Migration.apply override ends with."""
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == method
        and isinstance(node.func.value, ast.Call)
        and isinstance(node.func.value.func, ast.Name)
        and node.func.value.func.id == "super"
        and not node.func.value.args
    )
