"""Whatever text arrives, intake answers with a result or a located IntakeError, and quickly."""

from __future__ import annotations

import ast
from pathlib import Path

import django
from django.db.migrations.state import ProjectState
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from changeapi.intake.errors import IntakeError
from changeapi.intake.python_source.migration_files import parse_migration_file
from changeapi.intake.python_source.models_source import proposed_project_state
from tests.engine.intake.intake_support import INSTALLED_HISTORY_SETTINGS

FILENAME = "app/migrations/0001_x.py"
_DJANGO = Path(django.__file__).parent
SEEDS = [
    (_DJANGO / "contrib/auth/migrations/0001_initial.py").read_text(),
    (_DJANGO / "contrib/contenttypes/migrations/0002_remove_content_type_name.py").read_text(),
    (_DJANGO / "contrib/sites/migrations/0001_initial.py").read_text(),
    (_DJANGO / "contrib/admin/migrations/0001_initial.py").read_text(),
]
HOSTILE_PIECES = [
    "__import__('os').system('id')",
    "().__class__.__mro__",
    "eval('1')",
    "open('/etc/passwd')",
    "lambda: 0",
    "[x for x in 'ab']",
    "9 ** 9 ** 9",
    "'x' * 10 ** 8",
    "getattr(settings, '__class__')",
    "(y := 1)",
    "models.CharField(max_length=-1, default=models)",
    "migrations.RunPython(1)",
    "*[1]",
    "**{}",
    "f'{1:>99999999}'",
    "settings.NOT_THERE",
    "(",
    "]",
    "\x00",
    "\n    ",
    "import os",
    "class X: pass",
    "@models.Model",
    "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
    "while True:\n    pass",
    "def f(x):\n    return f(x)\nf(1)",
    "for i in range(10**6):\n    X = i",
    "X = {}\nX[[1]] = 2",
    "X, Y = 1",
    "X = [1]\nX += 1",
    "try:\n    import zzz\nexcept ImportError:\n    zzz = None",
    "X = sorted([1, 'a'])",
    "X = '%s %d' % ('a', 'b')",
    "X = '{}'.format(object)",
    "del NOT_THERE",
    "X = [i for i in X]",
    "class Y(migrations.AddField):\n    pass",
    "raise ValueError",
    "X = Decimal('1e999999')",
]


def _is_expression(piece: str) -> bool:
    try:
        ast.parse(piece, mode="eval")
    except SyntaxError:
        return False
    return True


def assert_located_or_ok(source: str) -> None:
    try:
        parse_migration_file(
            app_label="app", name="0001_x", source=source, filename=FILENAME, settings=INSTALLED_HISTORY_SETTINGS
        )
    except IntakeError as error:
        location = error.location
        assert location.file == FILENAME
        assert isinstance(location.line, int) and location.line >= 1
        assert isinstance(location.column, int) and location.column >= 1


@st.composite
def mutated_migrations(draw: st.DrawFn) -> str:
    source = draw(st.sampled_from(SEEDS))
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        start = draw(st.integers(min_value=0, max_value=len(source)))
        end = draw(st.integers(min_value=start, max_value=min(len(source), start + 40)))
        piece = draw(st.one_of(st.sampled_from(HOSTILE_PIECES), st.text(max_size=12), st.just("")))
        source = source[:start] + piece + source[end:]
    return source


HOSTILE_EXPRESSIONS = [piece for piece in HOSTILE_PIECES if _is_expression(piece)]


@st.composite
def rewritten_migrations(draw: st.DrawFn) -> str:
    """Valid Python: one expression of a real migration replaced by another, hostile or odd."""
    tree = ast.parse(draw(st.sampled_from(SEEDS)))
    expressions = [node for node in ast.walk(tree) if isinstance(node, ast.expr)]
    target = draw(st.sampled_from(expressions))
    replacement = draw(
        st.one_of(
            st.sampled_from(HOSTILE_EXPRESSIONS),
            st.sampled_from([ast.unparse(node) for node in expressions[:200]]),
            st.builds(repr, st.one_of(st.integers(), st.text(max_size=8), st.none(), st.booleans())),
        )
    )
    new = ast.parse(replacement, mode="eval").body
    for parent in ast.walk(tree):
        for name, value in ast.iter_fields(parent):
            if value is target:
                setattr(parent, name, new)
            elif isinstance(value, list):
                parent.__dict__[name] = [new if item is target else item for item in value]
    return ast.unparse(ast.fix_missing_locations(tree))


@settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(rewritten_migrations())
def test_rewritten_real_migrations_never_raise_anything_but_a_located_intake_error(source: str) -> None:
    assert_located_or_ok(source)


@settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=400))
def test_random_text_never_raises_anything_but_a_located_intake_error(source: str) -> None:
    assert_located_or_ok(source)


@settings(max_examples=400, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_migrations())
def test_mutated_real_migrations_never_raise_anything_but_a_located_intake_error(source: str) -> None:
    assert_located_or_ok(source)


MODELS_SEED = (
    "from django.db import models\n\n\n"
    "class Status(models.TextChoices):\n    OPEN = 'o', 'Open'\n\n\n"
    "class Base(models.Model):\n    created = models.DateTimeField(auto_now_add=True)\n\n"
    "    class Meta:\n        abstract = True\n\n\n"
    "class Order(Base):\n    total = models.IntegerField(default=0)\n"
    "    status = models.CharField(max_length=1, choices=Status.choices)\n\n"
    "    class Meta:\n        indexes = [models.Index(fields=['total'], name='total_idx')]\n"
)


@st.composite
def mutated_models(draw: st.DrawFn) -> str:
    source = MODELS_SEED
    start = draw(st.integers(min_value=0, max_value=len(source)))
    end = draw(st.integers(min_value=start, max_value=min(len(source), start + 30)))
    piece = draw(st.one_of(st.sampled_from(HOSTILE_PIECES), st.text(max_size=10)))
    return source[:start] + piece + source[end:]


@settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_models())
def test_mutated_models_source_never_raises_anything_but_a_located_intake_error(source: str) -> None:
    try:
        proposed_project_state(
            sources={"app": source},
            baseline_state=ProjectState(),
            settings=INSTALLED_HISTORY_SETTINGS,
            filenames={"app": "app/models.py"},
        )
    except IntakeError as error:
        assert error.location.file == "app/models.py"
        assert error.location.line and error.location.column


STATEMENT_PIECES = [piece for piece in HOSTILE_PIECES if "\n" in piece or not _is_expression(piece)]


@st.composite
def migrations_with_statements(draw: st.DrawFn) -> str:
    """A real migration with odd or hostile statements at module level and in the class body."""
    lines = draw(st.sampled_from(SEEDS)).splitlines()
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        piece = draw(st.sampled_from(STATEMENT_PIECES))
        index = draw(st.integers(min_value=0, max_value=len(lines)))
        indent = draw(st.sampled_from(["", "    "]))
        lines[index:index] = [indent + line for line in piece.splitlines()]
    return "\n".join(lines) + "\n"


@settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(migrations_with_statements())
def test_real_migrations_with_odd_statements_never_raise_anything_but_a_located_intake_error(source: str) -> None:
    assert_located_or_ok(source)
