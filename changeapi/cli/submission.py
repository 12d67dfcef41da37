"""Files on disk as one submission body, in the form their kind says.

- migration files (`<app>/migrations/<name>.py`) -> `migration_files`, each with its path from
  the app folder on, so the service reads the app label and name from it;
- `models.py` files (`<app>/models.py`) -> `models`, one app each;
- JSON files -> `operations`: a list of migration documents, or an object holding one under
  `operations`.
One submission has one form: files of different kinds are refused before anything is sent.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


class InputError(Exception):
    """The files given cannot be sent as one submission; the message says why."""


def _kind(path: Path) -> str:
    if path.suffix == ".json":
        return "operations"
    if path.suffix != ".py":
        raise InputError(f"{path}: not a migration file, a models.py or a JSON operations file")
    if path.name == "models.py":
        return "models"
    if path.parent.name == "migrations" and path.name != "__init__.py":
        return "migration_files"
    raise InputError(f"{path}: a .py file must be a migration (<app>/migrations/<name>.py) or <app>/models.py")


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"{path}: cannot be read: {error}") from None


def _operations(path: Path) -> list[Any]:
    try:
        data = json.loads(_read(path))
    except ValueError as error:
        raise InputError(f"{path}: not JSON: {error}") from None
    if isinstance(data, dict) and isinstance(data.get("operations"), list):
        data = data["operations"]
    if not isinstance(data, list):
        raise InputError(f"{path}: expected a list of migration documents, or {{'operations': [...]}}")
    return data


def submission_body(paths: list[Path]) -> dict[str, Any]:
    """The form field and its value for these files: {"migration_files": [...]}, {"models": {...}} or {"operations": [...]}."""
    if not paths:
        raise InputError("no files given")
    paths = [path.resolve() for path in paths]  # `0002_x.py` given from inside migrations/ still names its app
    kinds = {_kind(path) for path in paths}
    if len(kinds) > 1:
        raise InputError(f"one submission has one form; these files are of several: {', '.join(sorted(kinds))}")
    kind = kinds.pop()
    if kind == "migration_files":
        return {
            "migration_files": [
                {"path": "/".join(path.parts[-3:]), "content": _read(path)} for path in sorted(paths, key=lambda p: p.name)
            ]
        }
    if kind == "models":
        apps = [{"app_label": path.parent.name, "path": "/".join(path.parts[-2:]), "content": _read(path)} for path in paths]
        if len({app["app_label"] for app in apps}) != len(apps):
            raise InputError("two models.py files of the same app")
        return {"models": {"apps": apps}}
    return {"operations": [document for path in paths for document in _operations(path)]}


def default_title(paths: list[Path]) -> str:
    names = [path.stem if path.name != "models.py" else f"{path.parent.name} models" for path in paths]
    title = ", ".join(names) if len(names) <= 3 else f"{names[0]} and {len(names) - 1} more files"
    return title[:200]
