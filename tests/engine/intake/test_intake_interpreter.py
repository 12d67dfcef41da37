"""Code real migration files run on import is read, never run: control flow, helpers, classes, bounds."""

from __future__ import annotations

import time

import pytest
from django.db import migrations, models
from django.db.migrations.operations.special import SeparateDatabaseAndState
from django.db.migrations.state import ProjectState

from changeapi.intake.errors import IntakeError, IntakeLimitExceeded
from changeapi.intake.python_source.config import SourceLimits, SourceSettings
from changeapi.intake.python_source.data_steps import DataMigrationStep
from changeapi.intake.python_source.migration_files import read_migration_file
from changeapi.intake.python_source.references import InertCall, InertReference

FILENAME = "shop/migrations/0002_change.py"
HEADER = "from django.conf import settings\nfrom django.db import migrations, models\n"


def read(source: str, settings: SourceSettings | None = None, listing: tuple[str, ...] = ()):
    return read_migration_file(
        app_label="shop",
        name="0002_change",
        source=HEADER + source,
        filename=FILENAME,
        settings=settings,
        package="shop.migrations",
        listing=listing,
    )


def operations(source: str, settings: SourceSettings | None = None) -> list:
    return read(source, settings).migration.operations


def refused(source: str, settings: SourceSettings | None = None) -> IntakeError:
    with pytest.raises(IntakeError) as caught:
        read(source, settings)
    assert caught.value.location.file == FILENAME and caught.value.location.line
    return caught.value


MIGRATION = "\n\nclass Migration(migrations.Migration):\n    operations = {operations}\n"


def with_operations(prelude: str, ops: str) -> str:
    return prelude + MIGRATION.format(operations=ops)


# -- module-level control flow -------------------------------------------------------------


def test_an_if_on_a_setting_with_a_default_picks_the_branch_django_would_import() -> None:
    source = with_operations(
        "if getattr(settings, 'SHOP_USE_BIG_IDS', False):\n    KIND = models.BigIntegerField\nelse:\n    KIND = models.IntegerField\n",
        "[migrations.AddField('order', 'n', KIND(default=0))]",
    )
    assert isinstance(operations(source)[0].field, models.IntegerField)
    configured = SourceSettings.build(setting_values={"django.conf.settings.SHOP_USE_BIG_IDS": True})
    assert isinstance(operations(source, configured)[0].field, models.BigIntegerField)


def test_a_loop_builds_the_list_of_operations() -> None:
    source = with_operations(
        "OPS = []\nfor name in ['a', 'b', 'c']:\n    OPS.append(migrations.AddField('order', name, models.IntegerField(null=True)))\n",
        "OPS",
    )
    assert [op.name for op in operations(source)] == ["a", "b", "c"]


def test_break_skips_a_loops_else_and_continue_skips_the_rest_of_an_iteration() -> None:
    source = with_operations(
        "NAMES = []\nfor name in ['a', 'skip', 'b', 'stop', 'c']:\n    if name == 'skip':\n        continue\n"
        "    if name == 'stop':\n        break\n    NAMES.append(name)\nelse:\n    NAMES.append('never')\n"
        "i = 0\nwhile i < 2:\n    i += 1\nelse:\n    NAMES.append('done')\n",
        "[migrations.AddField('order', n, models.IntegerField(null=True)) for n in NAMES]",
    )
    assert [op.name for op in operations(source)] == ["a", "b", "done"]


def test_a_comprehension_and_an_f_string_build_the_fields() -> None:
    source = with_operations("", "[migrations.AddField('order', f'n_{i}', models.IntegerField(null=True)) for i in range(3)]")
    assert [op.name for op in operations(source)] == ["n_0", "n_1", "n_2"]


def test_a_function_of_the_file_called_with_arguments_builds_an_operation() -> None:
    source = with_operations(
        "def column(name, *, unique=False):\n    return migrations.AddField('order', name, models.CharField(max_length=9, unique=unique))\n",
        "[column('code', unique=True), column('ref')]",
    )
    built = operations(source)
    assert (built[0].name, built[0].field.unique, built[1].field.unique) == ("code", True, False)


def test_augmented_assignment_extends_the_dependencies() -> None:
    migration = read(
        "DEPS = [('shop', '0001_initial')]\nDEPS += [('auth', '0012_alter_user_first_name_max_length')]\n"
        + MIGRATION.format(operations="[]")
        + "    dependencies = DEPS\n"
    ).migration
    assert migration.dependencies == [("shop", "0001_initial"), ("auth", "0012_alter_user_first_name_max_length")]


def test_a_guarded_import_reads_the_try_body() -> None:
    source = with_operations(
        "try:\n    from django.contrib.postgres.fields import ArrayField\nexcept ImportError:\n    ArrayField = None\n",
        "[migrations.AddField('order', 'tags', ArrayField(models.TextField(), default=list))]",
    )
    assert operations(source)[0].field.base_field.__class__ is models.TextField


def test_an_unused_name_that_cannot_be_read_costs_nothing_but_a_used_one_is_refused_where_it_is_set() -> None:
    assert operations(with_operations("import logging\nlogger = logging.getLogger(__name__)\n", "[]")) == []
    error = refused(with_operations("import logging\nlogger = logging.getLogger(__name__)\n", "[migrations.RunSQL(logger)]"))
    assert error.location.line == 4


def test_extra_migration_attributes_and_imports_in_the_class_body_are_read() -> None:
    source = (
        "\n\nclass Migration(migrations.Migration):\n"
        "    from django.db.models import BigIntegerField\n"
        "    kind = BigIntegerField\n"
        "    operations = [migrations.AddField('order', 'n', kind(default=0))]\n"
    )
    assert isinstance(operations(source)[0].field, models.BigIntegerField)


def test_a_migration_init_that_lists_its_own_directory_is_interpreted_on_the_submitted_files() -> None:
    source = (
        "import os\nfrom pathlib import Path\n\nparent_dir = Path(__file__).resolve(strict=True).parent\n\n\n"
        "class Migration(migrations.Migration):\n"
        "    def __init__(self, *args, **kwargs):\n"
        "        super().__init__(*args, **kwargs)\n"
        "        self.dependencies = [('shop', '0001_initial')]\n"
        "        found = sorted(n for n in os.listdir(parent_dir) if n.startswith('0001'))\n"
        "        if len(found) == 2:\n"
        "            self.dependencies.insert(0, ('shop', os.path.splitext(found[1])[0]))\n\n"
        "    operations = []\n"
    )
    plain = read(source, listing=("0001_initial.py", "0002_change.py", "__init__.py")).migration
    extra = read(source, listing=("0001_initial.py", "0001_legacy.py", "0002_change.py")).migration
    assert plain.dependencies == [("shop", "0001_initial")]
    assert extra.dependencies == [("shop", "0001_legacy"), ("shop", "0001_initial")]
    assert any("__init__" in note for note in plain.notes)


# -- classes and references ----------------------------------------------------------------


def test_an_unknown_mixin_base_is_kept_as_a_reference_and_the_model_still_renders() -> None:
    source = with_operations(
        "import shop.mixins\n",
        "[migrations.CreateModel('Coupon', [('id', models.AutoField(primary_key=True))], "
        "bases=(shop.mixins.AuditMixin, models.Model))]",
    )
    create = operations(source)[0]
    assert create.bases[0] == InertReference("shop.mixins.AuditMixin")
    state = ProjectState()
    create.state_forwards("shop", state)
    assert state.models["shop", "coupon"].bases[0] == InertReference("shop.mixins.AuditMixin")
    assert state.apps.get_model("shop", "Coupon")._meta.db_table == "shop_coupon"


def test_unknown_functions_and_instances_are_kept_as_references_never_imported() -> None:
    source = with_operations(
        "import shop.storage\nimport shop.validators\n",
        "[migrations.AddField('order', 'scan', models.FileField(null=True, storage=shop.storage.PrivateStorage(), "
        "upload_to=shop.storage.scan_path, validators=[shop.validators.max_pages]))]",
    )
    field = operations(source)[0].field
    assert isinstance(field.deconstruct()[3]["storage"], InertCall)
    assert field.upload_to == InertReference("shop.storage.scan_path")


def test_an_unknown_constant_is_refused_with_the_setting_that_gives_it() -> None:
    error = refused(
        with_operations(
            "from shop.conf import CODE_LENGTH\n", "[migrations.AddField('order', 'c', models.CharField(max_length=CODE_LENGTH))]"
        )
    )
    assert "setting_values" in error.message and "shop.conf.CODE_LENGTH" in error.message


def test_unknown_choices_constants_are_kept_by_name_as_they_make_no_schema() -> None:
    source = with_operations(
        "from shop.models import Order\n",
        "[migrations.AddField('order', 's', models.CharField(max_length=3, choices=Order.STATUS_CHOICES, null=True))]",
    )
    assert operations(source)[0].field.deconstruct()[3]["choices"] == InertReference("shop.models.Order.STATUS_CHOICES")


CUSTOM_OPERATION = (
    "class AddFieldIfMissing(migrations.AddField):\n"
    "    def database_forwards(self, app_label, schema_editor, from_state, to_state):\n"
    "        pass\n"
)
CUSTOM_CALL = "[AddFieldIfMissing('order', 'n', models.IntegerField(null=True))]"
CUSTOM_PATH = "shop.migrations.0002_change.AddFieldIfMissing"


def test_an_unmapped_custom_operation_class_is_refused_naming_the_class_and_the_mapping() -> None:
    error = refused(with_operations(CUSTOM_OPERATION, CUSTOM_CALL))
    assert CUSTOM_PATH in error.message and "operation_map" in error.message


def test_a_custom_operation_mapped_to_a_django_operation_is_that_operation() -> None:
    mapped = SourceSettings.build(operation_map={CUSTOM_PATH: {"as": "operation", "operation": "django.db.migrations.AddField"}})
    built = operations(with_operations(CUSTOM_OPERATION, CUSTOM_CALL), mapped)[0]
    assert type(built) is migrations.AddField and built.name == "n"


def test_a_custom_operation_mapped_to_its_attribute_is_the_operation_it_keeps() -> None:
    keeper = "class CreateIfMissing(migrations.operations.base.Operation):\n    inner = migrations.DeleteModel('Legacy')\n"
    mapped = SourceSettings.build(
        operation_map={"shop.migrations.0002_change.CreateIfMissing": {"as": "attribute", "attribute": "inner"}}
    )
    built = operations(with_operations(keeper, "[CreateIfMissing()]"), mapped)[0]
    assert isinstance(built, migrations.DeleteModel) and built.name == "Legacy"


def test_a_custom_operation_mapped_as_state_only_or_data_step_runs_no_sql() -> None:
    state_only = SourceSettings.build(
        operation_map={CUSTOM_PATH: {"as": "state_only", "operation": "django.db.migrations.AddField"}}
    )
    data_step = SourceSettings.build(operation_map={CUSTOM_PATH: {"as": "data_step"}})
    assert isinstance(operations(with_operations(CUSTOM_OPERATION, CUSTOM_CALL), state_only)[0], SeparateDatabaseAndState)
    step = operations(with_operations(CUSTOM_OPERATION, CUSTOM_CALL), data_step)[0]
    assert isinstance(step, DataMigrationStep) and "not executed" in step.describe()


def test_a_migration_deriving_from_a_package_migration_class_is_read_as_a_migration() -> None:
    source = "from . import IrreversibleMigration\n\n\nclass Migration(IrreversibleMigration):\n    operations = []\n"
    assert read(source).migration.operations == []


def test_methods_django_would_call_on_the_migration_are_noted_for_reviewers() -> None:
    source = (
        MIGRATION.format(operations="[]")
        + "\n    def apply(self, project_state, schema_editor, collect_sql=False):\n        return None\n"
    )
    assert any("apply()" in note for note in read(source).migration.notes)


VENDOR_APPLY = """

def add_code(unique):
    return migrations.AddField('order', 'code', models.CharField(max_length=20, unique=unique))


class Migration(migrations.Migration):
    operations = [add_code(True)]

    def apply(self, project_state, schema_editor, collect_sql=False):
        if schema_editor.connection.vendor == 'mysql':
            self.operations = [add_code(False)]
        return super().apply(project_state, schema_editor, collect_sql)
"""


@pytest.mark.parametrize(("engine", "unique"), [("postgresql", True), ("mysql", False), ("sqlite", True)])
def test_an_apply_that_chooses_operations_by_vendor_is_read_for_the_projects_engine(engine: str, unique: bool) -> None:
    migration = read(VENDOR_APPLY, SourceSettings.build(engine=engine)).migration

    assert [op.field.unique for op in migration.operations] == [unique]
    assert any(f"vendor == {engine!r}" in note for note in migration.notes)


def test_an_apply_that_reads_more_of_the_database_than_its_vendor_is_read_from_the_attributes() -> None:
    introspecting = VENDOR_APPLY.replace(
        "if schema_editor.connection.vendor == 'mysql':", "if schema_editor.connection.introspection.table_names():"
    )

    migration = read(introspecting, SourceSettings.build(engine="mysql")).migration

    assert [op.field.unique for op in migration.operations] == [True]
    assert any("reads the migration from its attributes" in note for note in migration.notes)


# -- the registry of well-known helpers ----------------------------------------------------


def test_swappable_model_helpers_answer_from_the_project_settings() -> None:
    source = (
        "import swapper\n\n\nclass Migration(migrations.Migration):\n"
        "    dependencies = [swapper.dependency('shop', 'Customer')]\n"
        "    operations = [migrations.AddField('order', 'c', models.ForeignKey(swapper.get_model_name('shop', 'Customer'), "
        "on_delete=models.CASCADE, null=True))]\n"
    )
    default = read(source).migration
    assert default.dependencies == [("shop", "__first__")]
    swapped = read(source, SourceSettings.build(setting_values={"django.conf.settings.SHOP_CUSTOMER_MODEL": "crm.Client"}))
    assert swapped.migration.dependencies == [("crm", "__first__")]
    assert swapped.migration.operations[0].field.remote_field.model == "crm.Client"


def test_import_string_of_a_django_setting_gives_the_allowed_class() -> None:
    source = with_operations(
        "from django.utils.module_loading import import_string\nAuto = import_string(settings.DEFAULT_AUTO_FIELD)\n",
        "[migrations.CreateModel('Tag', [('id', Auto(primary_key=True))])]",
    )
    assert type(operations(source)[0].fields[0][1]) is models.AutoField
    big = SourceSettings.build(default_auto_field="django.db.models.BigAutoField")
    assert type(operations(source, big)[0].fields[0][1]) is models.BigAutoField


def test_a_well_known_custom_field_stands_as_the_column_it_makes() -> None:
    source = with_operations(
        "import oscar.models.fields\n", "[migrations.AddField('order', 'code', oscar.models.fields.NullCharField(max_length=9))]"
    )
    field = operations(source)[0].field
    assert isinstance(field, models.CharField) and field.null and field.deconstruct()[1] == "oscar.models.fields.NullCharField"


# -- bounds --------------------------------------------------------------------------------

TIGHT = SourceSettings.build(limits=SourceLimits(max_steps=20_000))


def assert_limited(source: str, setting: str, settings: SourceSettings = TIGHT) -> None:
    started = time.thread_time()
    with pytest.raises(IntakeLimitExceeded) as caught:
        read(source, settings)
    assert caught.value.setting == setting
    assert caught.value.location.file == FILENAME
    assert time.thread_time() - started < 5


def test_a_loop_that_never_ends_is_refused_by_the_step_budget() -> None:
    assert_limited("while True:\n    pass\n" + MIGRATION.format(operations="[]"), "SCHEMAGATE_MAX_INTAKE_STEPS")


def test_endless_recursion_is_refused_by_the_call_depth() -> None:
    assert_limited(
        "def f(n):\n    return f(n + 1)\n\nX = f(0)\n" + MIGRATION.format(operations="[X]"), "SCHEMAGATE_MAX_INTAKE_CALL_DEPTH"
    )


def test_a_function_returning_itself_is_refused_where_its_result_is_called() -> None:
    error = refused("def f():\n    return f\n" + MIGRATION.format(operations="[f()()()]"))
    assert error.location.line == 8


def test_a_function_of_the_file_named_as_a_validator_is_a_reference_by_its_dotted_path() -> None:
    source = with_operations(
        "def key_validator():\n    pass\n",
        "[migrations.AddField('order', 'k', models.CharField(max_length=9, null=True, validators=[key_validator]))]",
    )
    field = operations(source)[0].field
    assert InertReference("shop.migrations.0002_change.key_validator") in field._validators


def test_a_huge_decimal_is_refused_before_int_would_compute_it() -> None:
    started = time.thread_time()
    refused(
        with_operations(
            "from decimal import Decimal\n",
            "[migrations.AddField('order', 'n', models.IntegerField(default=int(Decimal('1e1000000'))))]",
        )
    )
    assert time.thread_time() - started < 1


def test_a_tower_of_powers_and_huge_ranges_and_strings_are_refused_at_once() -> None:
    started = time.thread_time()
    refused(with_operations("X = 10 ** 10 ** 8\n", "[migrations.RunSQL(str(X))]"))
    refused(with_operations("X = [i for i in range(10 ** 9)]\n", "[]"))
    refused(with_operations("X = 'x'.join(['y'] * 90000) * 100\n", "[]"))
    refused(with_operations("X = 'ab'.replace('a', 'a' * 90000).replace('a', 'a' * 90000)\n", "[]"))
    assert time.thread_time() - started < 2


def test_format_cannot_reach_attributes() -> None:
    refused(with_operations("X = '{0.__class__}'.format(1)\n", "[migrations.RunSQL(X)]"))
    refused(with_operations("X = '{0.real}'.format(1)\n", "[migrations.RunSQL(X)]"))


def test_statements_that_would_need_real_execution_are_refused_at_their_location() -> None:
    assert refused("with open('x') as f:\n    pass\n").location.line == 3
    assert refused("raise RuntimeError('no')\n").location.line == 3
    assert refused("X = 1\nassert X == 2\n").location.line == 4


# -- hints -------------------------------------------------------------------------------


def test_a_misspelt_django_field_is_refused_with_the_name_it_is_close_to() -> None:
    error = refused(with_operations("", "[migrations.AddField('order', 'email', models.EmailFeld(max_length=254))]"))

    assert "django.db.models.EmailFeld" in error.message
    assert "Did you mean django.db.models.EmailField?" in error.message


def test_a_name_close_to_nothing_known_is_refused_with_the_field_map_advice() -> None:
    error = refused(with_operations("", "[migrations.AddField('order', 'x', models.SpatialGeographyThing())]"))

    assert "field_map" in error.message and "Did you mean" not in error.message
