"""A file read before is not parsed again, and what a caller does with one reading never
reaches the next: each reading is a copy."""

from __future__ import annotations

from changeapi.intake.python_source import read_migration_file
from changeapi.intake.python_source.config import SourceSettings
from changeapi.intake.python_source.migration_files import _read_files

SOURCE = """
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("shop", "0001_initial")]
    operations = [
        migrations.AddField("order", "note", models.CharField(max_length=20, null=True)),
    ]
"""


def _read(source: str = SOURCE, settings: SourceSettings | None = None):  # noqa: ANN202
    return read_migration_file(
        app_label="shop", name="0002_note", source=source, filename="shop/migrations/0002_note.py", settings=settings
    )


def test_the_same_file_read_twice_is_parsed_once():
    _read_files.clear()
    _read()
    assert len(_read_files) == 1

    second = _read()

    assert len(_read_files) == 1
    assert second.migration.operations[0].field.max_length == 20


def test_a_caller_changing_its_reading_does_not_change_the_next_one():
    _read_files.clear()
    first = _read()
    first.migration.operations[0].field.max_length = 99
    first.migration.dependencies.append(("auth", "0001_initial"))

    second = _read()

    assert second.migration.operations[0].field.max_length == 20
    assert second.migration.dependencies == [("shop", "0001_initial")]
    assert second.migration.operations[0] is not first.migration.operations[0]


def test_other_text_or_other_settings_are_read_afresh():
    _read_files.clear()
    _read()

    _read(SOURCE.replace("max_length=20", "max_length=30"))
    _read(settings=SourceSettings(auth_user_model="accounts.User"))

    assert len(_read_files) == 3
