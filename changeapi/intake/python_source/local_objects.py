"""What a submitted file defines for itself: its functions, its classes and its name scopes.

None of these is a real Python function or class. A `LocalFunction` keeps its syntax tree and
is called only by the interpreter, statement by statement, within the step and depth budget;
a `LocalClass` keeps its evaluated attributes and is never instantiated.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Any

from changeapi.intake.errors import IntakeError, Location


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"

    def __copy__(self) -> _Missing:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> _Missing:
        # A sentinel stays itself through copies, so `is MISSING` holds for any copied value.
        return self


# "No such name or attribute", distinct from every value a file can make (None included).
MISSING: Any = _Missing()


@dataclass(eq=False)
class Scope:
    """The names of one function call, class body or comprehension, and the scope around it.

    Module-level names live in the interpreter's own bindings; a scope chain ends there.
    `parent` is the next scope a name is looked up in: for a function, where it was defined
    (class bodies excluded, as in Python); for a class body or comprehension, the scope around it.
    """

    names: dict[str, Any]
    parent: Scope | None = None
    is_class: bool = False


@dataclass(eq=False)
class LocalFunction:
    """A function (or lambda) the file defines: its syntax, source text and where it is.

    `path` is the dotted name Django would write for it (`<module>.<name>`); lambdas have none.
    `decorated` functions are never called: their decorators would have to run first.
    """

    name: str
    node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda
    source: str
    defined_at: Location
    path: str | None
    closure: Scope | None
    defaults: tuple[Any, ...] = ()
    kw_defaults: dict[str, Any] = field(default_factory=dict)
    decorated: bool = False

    @property
    def is_lambda(self) -> bool:
        return isinstance(self.node, ast.Lambda)


@dataclass(eq=False)
class LocalClass:
    """A class the file defines that is neither a model nor the Migration: a custom operation,
    a mixin, a constants holder. Its body's assignments are read; its methods are kept unrun."""

    name: str
    path: str
    bases: tuple[Any, ...]
    attributes: dict[str, Any]
    defined_at: Location

    def derives_from(self, klass: type) -> bool:
        """Whether any base (real or local, through local classes) is `klass` or a subclass."""
        for base in self.bases:
            if isinstance(base, type) and issubclass(base, klass):
                return True
            if isinstance(base, LocalClass) and base.derives_from(klass):
                return True
        return False

    def lookup(self, name: str) -> Any:
        """An attribute of the class or, as Python finds it, of its local bases; MISSING if none."""
        if name in self.attributes:
            return self.attributes[name]
        for base in self.bases:
            if isinstance(base, LocalClass):
                found = base.lookup(name)
                if found is not MISSING:
                    return found
        return MISSING

    def __repr__(self) -> str:
        return f"<class {self.path} defined in the file>"


@dataclass(eq=False)
class MigrationInstance:
    """`self` inside `Migration.__init__`: its attributes are the class body's names.

    Files that compute `dependencies` in `__init__` (from the files beside them) are read by
    interpreting that method on this stand-in; Django's own `Migration.__init__` is implied.
    """

    names: dict[str, Any]


@dataclass(frozen=True)
class DatabaseConnectionStandIn:
    """`schema_editor.connection` inside an interpreted `Migration.apply()`: only its `vendor`
    can be read, the Django vendor of the project's engine ("postgresql", "mysql", "sqlite")."""

    vendor: str


@dataclass(frozen=True)
class SchemaEditorStandIn:
    """`schema_editor` inside an interpreted `Migration.apply()`: real files branch on
    `schema_editor.connection.vendor` to choose their operations; nothing else can be read."""

    connection: DatabaseConnectionStandIn


@dataclass(frozen=True)
class SourcePath:
    """`__file__` of a submitted migration and paths derived from it; `listing` is what
    `os.listdir` of its directory gives: the app's migration files as submitted."""

    path: str
    listing: tuple[str, ...]
    is_directory: bool = False

    @property
    def parent(self) -> SourcePath:
        return SourcePath(self.path.rpartition("/")[0] or ".", self.listing, is_directory=True)

    @property
    def name(self) -> str:
        return self.path.rpartition("/")[2]

    @property
    def stem(self) -> str:
        return self.name.rpartition(".")[0] or self.name


@dataclass(frozen=True)
class Poisoned:
    """A module- or class-level name whose value could not be read.

    Reading it later raises the error found when it was assigned; a name nothing reads (a
    logger, a helper only RunPython code uses) costs nothing.
    """

    error: IntakeError


def function_closure(scope: Scope | None) -> Scope | None:
    """The scope a function defined in `scope` sees: class bodies are skipped, as in Python."""
    while scope is not None and scope.is_class:
        scope = scope.parent
    return scope
