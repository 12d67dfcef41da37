"""Migration files are read into the operations Django would load, by the allow-list alone."""

from __future__ import annotations

import datetime
import uuid
from decimal import Decimal
from pathlib import Path

import django
import pytest
from django.db import migrations, models
from django.db.migrations.writer import MigrationWriter
from django.test.utils import override_settings
from django.utils import timezone

from changeapi.intake.errors import IntakeError
from changeapi.intake.python_source.config import SourceSettings
from changeapi.intake.python_source.data_steps import DataMigrationStep
from changeapi.intake.python_source.migration_files import parse_migration_file
from changeapi.intake.python_source.references import InertReference, UnrunnableReferenceError
from tests.engine.intake.intake_support import canonical

HEADER = "from django.db import migrations, models\n\n\n"


def parse(body: str, settings: SourceSettings | None = None, header: str = HEADER):
    return parse_migration_file(
        app_label="shop",
        name="0002_change",
        source=header + body,
        filename="shop/migrations/0002_change.py",
        settings=settings,
    )


def migration_with(operations: str) -> str:
    return (
        "class Migration(migrations.Migration):\n"
        "    dependencies = [('shop', '0001_initial')]\n"
        f"    operations = [\n{operations}\n    ]\n"
    )


def test_makemigrations_output_reads_back_to_equal_operations() -> None:
    operation = migrations.AddField(
        model_name="order",
        name="placed_at",
        field=models.DateTimeField(default=timezone.now, db_index=True),
    )
    migration = migrations.Migration("0002_change", "shop")
    migration.operations = [operation]
    migration.dependencies = [("shop", "0001_initial")]
    source = MigrationWriter(migration, include_header=False).as_string()

    planned = parse_migration_file(app_label="shop", name="0002_change", source=source, filename="f.py")

    assert canonical(planned.operations) == canonical([operation])
    assert planned.dependencies == [("shop", "0001_initial")]


def test_callable_defaults_stay_references_to_the_real_functions() -> None:
    planned = parse(
        migration_with(
            "        migrations.AddField('order', 'ref', models.UUIDField(default=uuid.uuid4)),\n"
            "        migrations.AddField('order', 'at', models.DateTimeField(default=django.utils.timezone.now)),"
        ),
        header="import uuid\nimport django.utils.timezone\n" + HEADER,
    )
    assert planned.operations[0].field.default is uuid.uuid4
    assert planned.operations[1].field.default is timezone.now


def test_literal_constructors_build_real_values() -> None:
    planned = parse(
        migration_with(
            "        migrations.AddField('order', 'd', models.DecimalField(max_digits=5, decimal_places=2,"
            " default=decimal.Decimal('1.50'))),\n"
            "        migrations.AddField('order', 't', models.DateTimeField(default=datetime.datetime("
            "2024, 1, 2, 3, 4, tzinfo=datetime.timezone.utc))),"
        ),
        header="import datetime\nimport decimal\n" + HEADER,
    )
    assert planned.operations[0].field.default == Decimal("1.50")
    assert planned.operations[1].field.default == datetime.datetime(2024, 1, 2, 3, 4, tzinfo=datetime.UTC)


def test_run_python_becomes_a_data_step_carrying_its_source() -> None:
    planned = parse(
        "def forwards(apps, schema_editor):\n    apps.get_model('shop', 'Order').objects.update(x=1)\n\n\n"
        + migration_with("        migrations.RunPython(forwards, migrations.RunPython.noop, elidable=True),")
    )
    step = planned.operations[0]
    assert isinstance(step, DataMigrationStep)
    assert step.source_code is not None and step.source_code.startswith("def forwards(apps, schema_editor):")
    assert step.reversible and step.reverse_code is migrations.RunPython.noop
    assert step.elidable
    assert step.describe() == "Data migration step forwards (not executed)"


def test_run_python_without_reverse_is_irreversible() -> None:
    planned = parse(
        "def forwards(apps, schema_editor):\n    pass\n\n\n" + migration_with("        migrations.RunPython(forwards),")
    )
    assert planned.operations[0].reversible is False


def test_run_sql_keeps_its_sql_and_reverse() -> None:
    planned = parse(
        migration_with(
            "        migrations.RunSQL('CREATE INDEX i ON t (c)', migrations.RunSQL.noop),\n"
            "        migrations.RunSQL([('UPDATE t SET c = %s', [1]), 'SELECT 1'], reverse_sql=['SELECT 2']),"
        )
    )
    first, second = planned.operations
    assert isinstance(first, migrations.RunSQL)
    assert (first.sql, first.reverse_sql) == ("CREATE INDEX i ON t (c)", "")
    assert second.sql == [("UPDATE t SET c = %s", [1]), "SELECT 1"]
    assert second.reverse_sql == ["SELECT 2"]


def test_swappable_dependency_resolves_to_the_projects_user_model_app() -> None:
    source = (
        "from django.conf import settings\n"
        + HEADER
        + (
            "class Migration(migrations.Migration):\n"
            "    dependencies = [migrations.swappable_dependency(settings.AUTH_USER_MODEL)]\n"
            "    operations = [migrations.AddField('order', 'by', models.ForeignKey(to=settings.AUTH_USER_MODEL,"
            " on_delete=models.PROTECT))]\n"
        )
    )
    planned = parse_migration_file(
        app_label="shop",
        name="0002",
        source=source,
        filename="f.py",
        settings=SourceSettings.build(auth_user_model="accounts.User"),
    )
    assert planned.dependencies == [("accounts", "__first__")]
    assert planned.operations[0].field.remote_field.model == "accounts.User"


def test_a_mapped_custom_field_stands_on_its_base_and_keeps_its_name() -> None:
    settings = SourceSettings.build(
        field_map={
            "shop.fields.MoneyField": {"base": "django.db.models.DecimalField", "kwargs": {"max_digits": 12, "decimal_places": 2}}
        }
    )
    planned = parse(
        migration_with("        migrations.AddField('order', 'total', shop.fields.MoneyField(currency='EUR')),"),
        settings=settings,
        header="import shop.fields\n" + HEADER,
    )
    field = planned.operations[0].field
    assert isinstance(field, models.DecimalField)
    assert (field.max_digits, field.decimal_places) == (12, 2)
    assert field.deconstruct()[1:] == ("shop.fields.MoneyField", [], {"currency": "EUR"})


def test_a_mapped_custom_field_can_refuse_options_its_base_lacks() -> None:
    settings = SourceSettings.build(
        field_map={"shop.fields.MoneyField": {"base": "django.db.models.DecimalField", "unknown_kwargs": "error"}}
    )
    with pytest.raises(IntakeError, match="does not accept currency"):
        parse(
            migration_with("        migrations.AddField('order', 'total', MoneyField(currency='EUR')),"),
            settings=settings,
            header="from shop.fields import MoneyField\n" + HEADER,
        )


def test_an_unmapped_custom_field_is_refused_with_how_to_map_it() -> None:
    with pytest.raises(IntakeError) as caught:
        parse(
            migration_with("        migrations.AddField('order', 'total', shop.fields.MoneyField()),"),
            header="import shop.fields\n" + HEADER,
        )
    assert "shop.fields.MoneyField" in caught.value.message
    assert "field_map" in caught.value.message
    assert (caught.value.location.file, caught.value.location.line) == ("shop/migrations/0002_change.py", 8)


def test_a_referenced_project_function_is_inert_unless_given_a_stand_in() -> None:
    settings = SourceSettings.build(references={"shop.utils.make_code": {"returns": "CODE"}, "shop.utils.other": None})
    planned = parse(
        migration_with(
            "        migrations.AddField('order', 'code', models.CharField(max_length=9, default=shop.utils.make_code)),\n"
            "        migrations.AddField('order', 'x', models.CharField(max_length=9, default=shop.utils.other)),"
        ),
        settings=settings,
        header="import shop.utils\n" + HEADER,
    )
    assert isinstance(planned.operations[0].field.default, InertReference)
    assert planned.operations[0].field.get_default() == "CODE"
    with pytest.raises(UnrunnableReferenceError):
        planned.operations[1].field.get_default()


def test_settings_read_by_getattr_use_project_values_or_the_default() -> None:
    source = (
        "from django.conf import settings\n"
        + HEADER
        + (
            "LENGTH = getattr(settings, 'SHOP_CODE_LENGTH', 12)\n"
            "UNIQUE = getattr(settings, 'SHOP_UNIQUE', True)\n\n"
            + migration_with("        migrations.AddField('order', 'code', models.CharField(max_length=LENGTH, unique=UNIQUE)),")
        )
    )
    settings = SourceSettings.build(setting_values={"django.conf.settings.SHOP_CODE_LENGTH": 40})
    planned = parse_migration_file(app_label="shop", name="0002", source=source, filename="f.py", settings=settings)
    assert planned.operations[0].field.max_length == 40
    assert planned.operations[0].field.unique is True


def test_conditional_operations_follow_the_project_settings() -> None:
    source = (
        "from shop import app_settings\n"
        + HEADER
        + (
            "class Migration(migrations.Migration):\n"
            "    operations = [migrations.AlterModelTable('order', 'orders')]\n"
            "    if app_settings.LEGACY:\n"
            "        operations += [migrations.AlterModelTable('item', 'items')]\n"
        )
    )
    for legacy, count in ((True, 2), (False, 1)):
        settings = SourceSettings.build(setting_values={"shop.app_settings.LEGACY": legacy})
        planned = parse_migration_file(app_label="shop", name="0002", source=source, filename="f.py", settings=settings)
        assert len(planned.operations) == count


def test_an_unset_project_setting_is_refused_naming_it() -> None:
    with pytest.raises(IntakeError, match="shop.app_settings.LEGACY"):
        parse(
            migration_with("        migrations.AlterModelTable('order', 'o' if app_settings.LEGACY else 'p'),"),
            header="from shop import app_settings\n" + HEADER,
        )


def test_imports_used_only_by_run_python_code_are_harmless() -> None:
    planned = parse(
        "def forwards(apps, schema_editor):\n    logger.info(sys.argv)\n\n\n"
        + migration_with("        migrations.RunPython(forwards),"),
        header="import logging\nimport sys\n" + HEADER + "logger = logging.getLogger(__name__)\n\n",
    )
    assert isinstance(planned.operations[0], DataMigrationStep)


def test_a_syntax_error_is_located() -> None:
    with pytest.raises(IntakeError) as caught:
        parse("class Migration(migrations.Migration):\n    operations = [\n")
    assert caught.value.location.file == "shop/migrations/0002_change.py"
    assert caught.value.location.line is not None and caught.value.location.line >= 4


def test_a_file_without_a_migration_class_is_refused() -> None:
    with pytest.raises(IntakeError, match="no class Migration"):
        parse("X = 1\n")


def test_extra_migration_attributes_are_read_and_can_be_used_by_the_operations() -> None:
    migration = parse(
        "class Migration(migrations.Migration):\n"
        "    table = 'shop_order'\n"
        "    operations = [migrations.RunSQL('ANALYZE ' + table)]\n"
    )
    assert migration.operations[0].sql == "ANALYZE shop_order"


def test_errors_from_djangos_constructors_are_located_at_the_call() -> None:
    with pytest.raises(IntakeError) as caught:
        parse(migration_with("        migrations.AddField('order', 'x', models.ForeignKey('shop.Customer')),"))
    assert "ForeignKey" in caught.value.message
    assert (caught.value.location.line, caught.value.location.column) == (7, 43)


def test_contrib_migrations_parse_even_when_the_service_lacks_that_app() -> None:
    source = (Path(django.__file__).parent / "contrib/sites/migrations/0001_initial.py").read_text()
    with override_settings(INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth"]):
        planned = parse_migration_file(app_label="sites", name="0001_initial", source=source, filename="s.py")
    create = planned.operations[0]
    # A plain Manager stands in when the module cannot be imported; the real one if it can.
    assert all(isinstance(manager, models.Manager) for _, manager in create.managers)
    assert create.fields[1][1].validators[0] == InertReference("django.contrib.sites.models._simple_domain_name_validator")
