"""Hostile source is refused at a location, or kept as an inert step; none of it ever runs."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.db.migrations.state import ProjectState

from changeapi.intake.errors import IntakeError
from changeapi.intake.python_source.config import SourceLimits, SourceSettings
from changeapi.intake.python_source.data_steps import DataMigrationStep
from changeapi.intake.python_source.migration_files import parse_migration_file
from changeapi.intake.python_source.models_source import proposed_project_state

FILENAME = "shop/migrations/0002_evil.py"


def parse(source: str, settings: SourceSettings | None = None):
    return parse_migration_file(app_label="shop", name="0002_evil", source=source, filename=FILENAME, settings=settings)


def migration(operations: str, prelude: str = "") -> str:
    return (
        "import os\nfrom django.db import migrations, models\n"
        + prelude
        + "\n\nclass Migration(migrations.Migration):\n    operations = [\n        "
        + operations
        + "\n    ]\n"
    )


def refused(source: str, settings: SourceSettings | None = None) -> IntakeError:
    with pytest.raises(IntakeError) as caught:
        parse(source, settings)
    location = caught.value.location
    assert location.file == FILENAME and location.line and location.column
    return caught.value


@pytest.fixture
def canary(tmp_path: Path) -> Path:
    return tmp_path / "CANARY"


def test_dunder_import_is_refused_and_runs_nothing(canary: Path) -> None:
    error = refused(migration(f"__import__('os').system('touch {canary}'),"))
    assert "__import__" in error.message
    assert not canary.exists()


def test_dunder_import_in_an_unused_module_level_name_is_refused(canary: Path) -> None:
    refused(migration("", prelude=f"X = __import__('os').system('touch {canary}')"))
    assert not canary.exists()


def test_a_refused_builtin_spelled_in_other_characters_is_refused_though_unused(canary: Path) -> None:
    # Python reads identifiers after NFKC normalisation: these fullwidth letters name `open`.
    spelled = "\uff4f\uff50\uff45\uff4e"
    error = refused(migration("", prelude=f"X = {spelled}('{canary}', 'w')"))
    assert "`open` is not allowed" in error.message
    assert not canary.exists()


def test_class_hierarchy_walking_is_refused() -> None:
    error = refused(migration("().__class__.__mro__[1].__subclasses__(),"))
    assert "is not allowed" in error.message


def test_a_dunder_attribute_in_an_operation_is_refused_where_it_is_though_the_rest_of_the_file_is_clean() -> None:
    source = migration("migrations.RunSQL('SELECT 1'),\n        migrations.RunSQL(str(().__class__)),")
    error = refused(source)
    assert "__class__" in error.message
    assert error.location.line == source.splitlines().index("        migrations.RunSQL(str(().__class__)),") + 1


def test_a_dunder_attribute_in_a_function_the_file_never_calls_does_not_refuse_the_file() -> None:
    prelude = "def forwards(apps, schema_editor):\n    return schema_editor.__class__\n"
    assert parse(migration("migrations.RunPython(forwards),", prelude=prelude)).operations


def test_eval_is_refused(canary: Path) -> None:
    refused(migration(f"eval(\"__import__('os').system('touch {canary}')\"),"))
    assert not canary.exists()


def test_open_is_refused(canary: Path) -> None:
    refused(migration(f"open('{canary}', 'w'),"))
    assert not canary.exists()


def test_an_imported_os_module_cannot_be_used(canary: Path) -> None:
    error = refused(migration(f"os.system('touch {canary}'),"))
    assert "os.system" in error.message
    assert not canary.exists()


def test_a_field_default_calling_os_remove_is_refused(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("keep")
    refused(migration(f"migrations.AddField('order', 'x', models.IntegerField(default=os.remove('{victim}'))),"))
    assert victim.exists()


def test_run_python_that_writes_a_file_is_an_inert_step(canary: Path) -> None:
    source = migration(
        "migrations.RunPython(forwards),",
        prelude=f"\n\ndef forwards(apps, schema_editor):\n    open('{canary}', 'w').write('x')\n",
    )
    step = parse(source).operations[0]
    assert isinstance(step, DataMigrationStep)
    assert f"open('{canary}', 'w')" in (step.source_code or "")
    step.code(None, None)
    step.database_forwards("shop", None, None, None)
    assert not canary.exists()


def test_getattr_on_anything_but_settings_is_refused() -> None:
    error = refused(migration("getattr(os, 'system')('id'),"))
    assert "getattr" in error.message


def test_lambdas_outside_run_python_are_refused() -> None:
    refused(migration("migrations.AddField('order', 'x', models.IntegerField(default=lambda: 1)),"))


def test_a_lambda_in_run_python_is_kept_as_text() -> None:
    step = parse(migration("migrations.RunPython(lambda apps, editor: os.system('id')),")).operations[0]
    assert isinstance(step, DataMigrationStep)
    assert step.source_code == "lambda apps, editor: os.system('id')"


def test_decorated_functions_are_refused(canary: Path) -> None:
    source = migration(
        "migrations.RunPython(forwards),",
        prelude=f"\n\n@os.system('touch {canary}')\ndef forwards(apps, schema_editor):\n    pass\n",
    )
    error = refused(source)
    assert "decorator" in error.message
    assert not canary.exists()


def test_comprehensions_and_walrus_are_refused() -> None:
    refused(migration("[os.system('id') for _ in range(3)],"))
    refused(migration("(x := 1),"))


def test_module_level_statements_that_would_run_are_refused(canary: Path) -> None:
    refused(f"import os\nos.system('touch {canary}')\n")
    refused("import os\nif True:\n    pass\n")
    assert not canary.exists()


def test_fstrings_with_calls_are_refused() -> None:
    refused(migration('migrations.RunSQL(f"{os.getcwd()}"),'))


def test_huge_numbers_and_sequences_are_refused_quickly() -> None:
    refused(migration("migrations.RunSQL('x' * 10 ** 9),"))
    refused(migration("migrations.RunSQL(str(9 ** 9 ** 9)),"))
    refused(migration("migrations.RunSQL(['x'] * 10_000_000),"))


def test_repeated_references_cannot_blow_up_a_value() -> None:
    prelude = "\nA = ['x'] * 1000\nB = [A] * 1000\nC = [B] * 1000\n"
    refused(migration("migrations.RunSQL(C),", prelude=prelude))


def test_deeply_nested_source_is_refused_by_the_depth_limit() -> None:
    source = migration("migrations.RunSQL(" + "[" * 150 + "]" * 150 + "),")
    error = refused(source)
    assert "deep" in error.message


def test_oversized_source_is_refused_by_the_size_limit() -> None:
    settings = SourceSettings.build(limits=SourceLimits(max_bytes=10_000))
    error = refused(migration("", prelude="# " + "x" * 20_000), settings)
    assert "limit" in error.message


def test_names_defined_through_endless_chains_are_refused() -> None:
    prelude = "\n" + "\n".join(f"N{i} = N{i + 1}" for i in range(200)) + "\nN200 = 1\n"
    refused(migration("migrations.RunSQL(str(N0)),", prelude=prelude))


def test_self_referencing_names_are_refused() -> None:
    refused(migration("migrations.RunSQL(A),", prelude="\nA = B\nB = A\n"))


def test_hostile_models_source_is_refused_and_runs_nothing(canary: Path) -> None:
    source = (
        "import os\nfrom django.db import models\n\n\n"
        "class Order(models.Model):\n"
        f"    total = models.IntegerField(default=os.system('touch {canary}'))\n"
    )
    with pytest.raises(IntakeError) as caught:
        proposed_project_state(sources={"shop": source}, baseline_state=ProjectState(), settings=SourceSettings())
    assert caught.value.location.line == 6
    assert not canary.exists()


def test_model_methods_are_never_evaluated(canary: Path) -> None:
    source = (
        "import os\nfrom django.db import models\n\n\n"
        "class Order(models.Model):\n"
        "    total = models.IntegerField()\n\n"
        "    @property\n"
        f"    def boom(self):\n        return os.system('touch {canary}')\n"
    )
    state, _ = proposed_project_state(sources={"shop": source}, baseline_state=ProjectState(), settings=SourceSettings())
    assert ("shop", "order") in state.models
    assert not canary.exists()


def test_class_decorators_in_models_source_are_refused(canary: Path) -> None:
    source = (
        "import os\nfrom django.db import models\n\n\n"
        f"@os.system('touch {canary}')\nclass Order(models.Model):\n    total = models.IntegerField()\n"
    )
    with pytest.raises(IntakeError, match="decorated"):
        proposed_project_state(sources={"shop": source}, baseline_state=ProjectState(), settings=SourceSettings())
    assert not canary.exists()
