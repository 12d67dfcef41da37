"""The CLI turns files on disk into one submission, in the form their kind says, before sending anything."""

from __future__ import annotations

import json

import pytest

from changeapi.cli.commands import at_or_above
from changeapi.cli.submission import InputError, submission_body


def test_migration_files_are_sent_with_their_path_from_the_app_folder(tmp_path, monkeypatch):
    migrations = tmp_path / "src" / "shop" / "migrations"
    migrations.mkdir(parents=True)
    (migrations / "0003_b.py").write_text("b")
    (migrations / "0002_a.py").write_text("a")
    monkeypatch.chdir(migrations)

    body = submission_body(
        [migrations / "0003_b.py", migrations.relative_to(tmp_path / "src" / "shop" / "migrations") / "0002_a.py"]
    )

    assert body == {
        "migration_files": [
            {"path": "shop/migrations/0002_a.py", "content": "a"},
            {"path": "shop/migrations/0003_b.py", "content": "b"},
        ]
    }


def test_models_files_are_sent_as_the_models_form_one_app_each(tmp_path):
    (tmp_path / "shop").mkdir()
    (tmp_path / "shop" / "models.py").write_text("m")

    assert submission_body([tmp_path / "shop" / "models.py"]) == {
        "models": {"apps": [{"app_label": "shop", "path": "shop/models.py", "content": "m"}]}
    }


def test_json_files_are_sent_as_the_operations_form(tmp_path):
    documents = [{"app_label": "shop", "operations": [{"op": "RunSQL", "sql": "SELECT 1"}]}]
    (tmp_path / "a.json").write_text(json.dumps(documents))
    (tmp_path / "b.json").write_text(json.dumps({"operations": documents}))

    assert submission_body([tmp_path / "a.json", tmp_path / "b.json"]) == {"operations": documents * 2}


@pytest.mark.parametrize("name", ["notes.txt", "shop/views.py", "shop/migrations/__init__.py"])
def test_a_file_of_no_known_kind_is_refused(tmp_path, name):
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("")

    with pytest.raises(InputError):
        submission_body([path])


def test_fail_on_counts_findings_of_that_severity_and_worse():
    findings = [{"severity": s} for s in ("info", "low", "medium", "high", "critical")]

    assert [f["severity"] for f in at_or_above(findings, "high")] == ["high", "critical"]
    assert at_or_above(findings, None) == []
