"""A safe evaluator of submitted Python: builds Django objects from an AST, never runs the source.

Only literals, containers, names bound from the allow-list (through `import` lines, read as
bindings), attribute access through explicit tables, calls of allowed classes and functions,
simple operators on literals and Django expressions, and conditionals are evaluated. Functions
defined in the file become text for reviewers. Everything else is refused with a located
IntakeError; any error an allowed constructor raises is reported at the call that caused it.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator
from typing import Any, NoReturn

from django.db import models
from django.db.migrations.operations.special import RunPython
from django.db.models.expressions import BaseExpression, Combinable

from changeapi.intake.errors import IntakeError, Location

from . import allowlist
from .catalog import GET_USER_MODEL, MISSING, Catalog, FunctionSource, MappedFieldClass, Namespace, Unresolved
from .config import SourceSettings
from .data_steps import DataMigrationStep, SubmittedCode
from .mapped_fields import construct_mapped_field, mapped_field_class
from .operators import binary_operation, compare
from .parsing import node_location
from .references import InertCall, InertReference

# Builtins that only build plain values from plain values.
_SAFE_BUILTINS: dict[str, Any] = {
    "set": set,
    "frozenset": frozenset,
    "tuple": tuple,
    "list": list,
    "dict": dict,
    "str": str,
    "int": int,
    "float": float,
    "bool": bool,
}
_NUMBERS = (int, float)
_SEQUENCES = (str, bytes, list, tuple)
_EXPRESSIONS = (models.Q, Combinable, BaseExpression)
_REFUSED_BUILTINS = frozenset(
    {
        "__import__",
        "__builtins__",
        "__loader__",
        "__spec__",
        "eval",
        "exec",
        "compile",
        "open",
        "globals",
        "locals",
        "vars",
        "setattr",
        "delattr",
        "breakpoint",
        "input",
        "type",
        "object",
        "super",
        "memoryview",
        "help",
        "exit",
        "quit",
        "classmethod",
        "staticmethod",
        "property",
    }
)
_MAX_NAME_CHAIN = 50
_RUN_PYTHON_PARAMETERS = ("code", "reverse_code", "atomic", "hints", "elidable")


class _Getattr:
    """The `getattr` builtin, honoured only as `getattr(<imported module or settings>, "NAME", default)`."""


GETATTR = _Getattr()


class Interpreter:
    """Evaluates expressions of one submitted file against its module-level bindings."""

    def __init__(
        self,
        *,
        source: str,
        filename: str,
        settings: SourceSettings,
        package: str | None,
        catalog: Catalog | None = None,
    ) -> None:
        self.source = source
        self.filename = filename
        self.settings = settings
        self.package = package
        self.catalog = catalog or Catalog(settings)
        self.bindings: dict[str, Any] = {}
        # Names set earlier in the class body being read (class bodies see their own names).
        self.class_scope: dict[str, Any] | None = None
        self._deferred: dict[str, ast.expr] = {}
        self._evaluating: list[str] = []
        self._weights: dict[int, tuple[Any, int]] = {}
        # Classes the file defines (models, choices, Meta) and what may be read or called on
        # them, keyed by identity; filled by the models-source reader.
        self.local_attributes: dict[int, tuple[Any, dict[str, Any]]] = {}
        self.local_calls: dict[int, tuple[Any, Callable[[list[Any], dict[str, Any]], Any]]] = {}

    # -- errors ---------------------------------------------------------------------------

    def location(self, node: ast.AST | None) -> Location:
        return node_location(self.filename, node)

    def fail(self, message: str, node: ast.AST | None) -> NoReturn:
        raise IntakeError(message, self.location(node))

    # -- module-level bindings ------------------------------------------------------------

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

    def bind_value(self, name: str, value: Any) -> None:
        """Bind a name the reader of a file defines (a class, a function reference)."""
        self.bindings[name] = value
        self._deferred.pop(name, None)

    def _bind(self, name: str, path: str, node: ast.AST) -> None:
        value = self.catalog.resolve(path)
        if isinstance(value, Unresolved):
            value = Unresolved(path, self.location(node))
        self.bindings[name] = value
        self._deferred.pop(name, None)

    def defer_assignment(self, node: ast.Assign | ast.AnnAssign) -> None:
        """Module-level `NAME = value`, evaluated only if the name is used.

        Values used only by RunPython code (a logger, a helper) are never evaluated, as they
        would never matter to the schema; forbidden constructs are still refused up front.
        """
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        if node.value is None:
            return
        refuse_forbidden(node.value, self)
        for target in targets:
            if not isinstance(target, ast.Name):
                self.fail("Only simple `NAME = value` assignments are supported here.", target)
            self._deferred[target.id] = node.value
            self.bindings.pop(target.id, None)

    def define_function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        """Keep a function's text for a RunPython step; its body is never evaluated."""
        if node.decorator_list:
            self.fail(
                f"The function {node.name} has decorators, which would run code; remove them.",
                node.decorator_list[0],
            )
        text = ast.get_source_segment(self.source, node) or ""
        self.bindings[node.name] = FunctionSource(node.name, text, self.location(node))
        self._deferred.pop(node.name, None)

    # -- expressions ----------------------------------------------------------------------

    def evaluate(self, node: ast.expr) -> Any:
        """The value of an expression, or a located IntakeError; never a module or stand-in."""
        value = self._raw(node)
        return self._usable(value, node)

    def _usable(self, value: Any, node: ast.AST) -> Any:
        if isinstance(value, Unresolved):
            self.fail(unresolved_message(value.path, value.imported_at), node)
        if isinstance(value, Namespace):
            self.fail(f"{value.path} is a module; name one of its members instead.", node)
        if isinstance(value, MappedFieldClass):
            self.fail(f"{value.path} is a field class; call it to make a field.", node)
        if isinstance(value, FunctionSource):
            self.fail(
                f"The function {value.name} is defined in the file and is never run; it can only "
                "be the code of a migrations.RunPython step.",
                node,
            )
        if value is GETATTR or value is GET_USER_MODEL:
            self.fail('getattr can only be called, as getattr(settings, "NAME", default).', node)
        return value

    def _raw(self, node: ast.expr) -> Any:
        method = getattr(self, f"_eval_{type(node).__name__}", None)
        if method is None:
            self.fail(f"{_describe(node)} is not supported in submitted source: it is never run.", node)
        try:
            return method(node)
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
        if self.class_scope is not None and name in self.class_scope:
            return self.class_scope[name]
        if name in self.bindings:
            return self.bindings[name]
        if name in self._deferred:
            return self._evaluate_deferred(name, node)
        if name == "getattr":
            return GETATTR
        if name in _SAFE_BUILTINS:
            return _SAFE_BUILTINS[name]
        if name in _REFUSED_BUILTINS or name.startswith("__"):
            self.fail(f"`{name}` is not allowed: submitted source is read, never run.", node)
        self.fail(
            f"The name {name} is not defined in the file by an import or an assignment the service can read.",
            node,
        )

    def _evaluate_deferred(self, name: str, node: ast.AST) -> Any:
        if name in self._evaluating:
            self.fail(f"The name {name} is defined in terms of itself.", node)
        if len(self._evaluating) >= _MAX_NAME_CHAIN:
            self.fail("Names are defined through too long a chain of other names.", node)
        self._evaluating.append(name)
        try:
            value = self.evaluate(self._deferred[name])
        finally:
            self._evaluating.pop()
        self.bindings[name] = value
        return value

    def _eval_Attribute(self, node: ast.Attribute) -> Any:
        if node.attr.startswith("__"):
            self.fail(f"The attribute {node.attr} is not allowed.", node)
        base = self._raw(node.value)
        local = self.local_attributes.get(id(base))
        if local is not None and local[0] is base:
            if node.attr not in local[1]:
                self.fail(f"{_dotted(node)} is not an attribute the service can read.", node)
            return local[1][node.attr]
        if isinstance(base, FunctionSource):
            self.fail(f"The function {base.name} defined in the file has no readable attributes.", node)
        found = self.catalog.attribute(base, node.attr)
        if found is MISSING:
            self.fail(f"{_dotted(node)} is not an attribute the service knows.", node)
        return found

    def _eval_List(self, node: ast.List) -> list[Any]:
        return self._weighed(list(self._elements(node.elts)), node)

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

    def _elements(self, nodes: list[ast.expr]) -> Iterator[Any]:
        for element in nodes:
            if isinstance(element, ast.Starred):
                unpacked = self.evaluate(element.value)
                if not isinstance(unpacked, (list, tuple)):
                    self.fail("Only a list or tuple can be unpacked with * here.", element)
                yield from unpacked
            else:
                yield self.evaluate(element)

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
            self.fail("The string is too long.", node)
        return result

    def _eval_Call(self, node: ast.Call) -> Any:
        callee = self._raw(node.func)
        if callee is RunPython:
            return self._run_python(node)
        if callee is GETATTR:
            return self._getattr(node)
        if isinstance(callee, Unresolved):
            self.fail(unresolved_message(callee.path, callee.imported_at), node.func)
        args, kwargs = self._arguments(node)
        local = self.local_calls.get(id(callee))
        if local is not None and local[0] is callee:
            return self._weighed(local[1](args, kwargs), node, args, kwargs)
        if callee is GET_USER_MODEL:
            if args or kwargs:
                self.fail("get_user_model() takes no arguments.", node)
            return self.settings.auth_user_model
        if isinstance(callee, MappedFieldClass):
            klass = mapped_field_class(callee.path, callee.mapping, callee.base, self.location(node))
            field = construct_mapped_field(klass, callee.mapping, callee.path, args, kwargs, self.location(node))
            return self._weighed(field, node, args, kwargs)
        if isinstance(callee, InertReference):
            return self._weighed(InertCall(callee, tuple(args), kwargs), node, args, kwargs)
        if any(callee is builtin for builtin in _SAFE_BUILTINS.values()):
            return self._weighed(callee(*args, **kwargs), node, args, kwargs)
        if self._is_allowed_callable(callee):
            return self._weighed(callee(*args, **kwargs), node, args, kwargs)
        if isinstance(callee, FunctionSource):
            self.fail(f"The function {callee.name} defined in the file is never run.", node)
        self.fail(f"{_dotted(node.func)} cannot be called in submitted source.", node)

    def _is_allowed_callable(self, callee: Any) -> bool:
        if allowlist.is_callable_allowed(callee) and id(callee) in allowlist.paths_by_identity():
            return True
        # Bound methods from the instance table (e.g. F("x").desc) and local choices classes.
        owner = getattr(callee, "__self__", None)
        name = getattr(callee, "__name__", None)
        return owner is not None and any(
            isinstance(owner, klass) and name in methods for klass, methods in allowlist.INSTANCE_METHODS
        )

    def _arguments(self, node: ast.Call) -> tuple[list[Any], dict[str, Any]]:
        args = list(self._elements(node.args))
        kwargs: dict[str, Any] = {}
        for keyword in node.keywords:
            if keyword.arg is None:
                unpacked = self.evaluate(keyword.value)
                if not isinstance(unpacked, dict) or not all(isinstance(k, str) for k in unpacked):
                    self.fail("Only a dict with string keys can be unpacked with ** here.", keyword)
                kwargs.update(unpacked)
            else:
                kwargs[keyword.arg] = self.evaluate(keyword.value)
        return args, kwargs

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
            self.fail(missing_setting_message(f"{target.path}.{name}"), node)
        return found

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
            return SubmittedCode("<lambda>", ast.get_source_segment(self.source, node) or "")
        if isinstance(node, ast.Name):
            bound = self.bindings.get(node.id)
            if isinstance(bound, FunctionSource):
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
        known = self._weights.get(id(value))
        if known is not None and known[0] is value:
            return known[1]
        if isinstance(value, (str, bytes)):
            return 1 + len(value) // 64
        return 1

    def _weighed(self, value: Any, node: ast.AST, *parts: Any) -> Any:
        """Record a built value's logical size and refuse values past the limit.

        Sizes add up through shared references (`[x] * 1000` of a big `x` weighs 1000 times
        `x`), which bounds everything later work walks: deepcopy, deconstruction, writing.
        """
        children: list[Any] = []
        if isinstance(value, (list, tuple, set, frozenset)):
            children = list(value)
        elif isinstance(value, dict):
            children = [*value.keys(), *value.values()]
        for part in parts:
            children.extend(part.values() if isinstance(part, dict) else part)
        total = 1 + sum(self.weight(child) for child in children)
        if isinstance(value, (str, bytes)):
            total = max(total, 1 + len(value) // 64)
        if total > self.settings.limits.max_items:
            self.fail(f"The value is too large (over {self.settings.limits.max_items} items).", node)
        if total > 1:
            # The value is kept alongside its weight so that its id is not reused.
            self._weights[id(value)] = (value, total)
        return value


def refuse_forbidden(node: ast.AST, interpreter: Interpreter) -> None:
    """Refuse dunder attributes and dangerous builtins anywhere in a value, even unused."""
    for child in ast.walk(node):
        if isinstance(child, ast.Attribute) and child.attr.startswith("__"):
            interpreter.fail(f"The attribute {child.attr} is not allowed.", child)
        if isinstance(child, ast.Name) and child.id in _REFUSED_BUILTINS:
            interpreter.fail(f"`{child.id}` is not allowed: submitted source is read, never run.", child)
        if isinstance(child, (ast.Lambda, ast.NamedExpr, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
            interpreter.fail(f"{_describe(child)} is not supported in submitted source: it is never run.", child)


def unresolved_message(path: str, imported_at: Location | None) -> str:
    where = f" (imported on line {imported_at.line})" if imported_at and imported_at.line else ""
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


def _is_none(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and node.value is None
