"""The files of one submission share what the names they import resolve to, never what one of
them made of a name of its own (a reference to an unknown function)."""

from __future__ import annotations

import pytest

from changeapi.intake.errors import IntakeErrors
from changeapi.intake.python_source.migration_files import _read_files
from changeapi.intake.submission import parse_submission

_FIRST = """
from django.db import migrations, models
import shop.helpers


code = models.CharField(max_length=20, default=shop.helpers.new_code)


class Migration(migrations.Migration):
    initial = True
    operations = [migrations.CreateModel("Order", [("id", models.AutoField(primary_key=True)), ("code", code)])]
"""

_SECOND = """
from django.db import migrations, models
import shop.helpers


class Migration(migrations.Migration):
    dependencies = [("shop", "0001_initial")]
    operations = [
        migrations.AddField("order", "note", models.CharField(max_length=20, default=shop.helpers.new_code())),
    ]
"""


def _files(*contents: str) -> dict[str, list[dict[str, str]]]:
    names = ["0001_initial", "0002_note"]
    return {
        "files": [
            {"app_label": "shop", "name": name, "path": f"shop/migrations/{name}.py", "content": content}
            for name, content in zip(names, contents, strict=False)
        ]
    }


def test_a_name_one_file_keeps_as_a_reference_is_still_refused_when_the_next_file_calls_it() -> None:
    _read_files.clear()  # both files are read here, neither taken from an earlier reading

    with pytest.raises(IntakeErrors) as refused:
        parse_submission(form="migrations", source=_files(_FIRST, _SECOND), baseline=None, base_state=None, engine="postgresql")

    assert [problem.location.file for problem in refused.value.problems] == ["shop/migrations/0002_note.py"]
    assert "shop.helpers.new_code" in refused.value.problems[0].message
