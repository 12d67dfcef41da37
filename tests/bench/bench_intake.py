"""Benchmark: reading a 400+ migration history as a baseline against Django loading it from disk.

The history is the installed packages' migrations (django.contrib, django-celery-beat,
django-oauth-toolkit, django-allauth, django-taggit) plus two generated apps, as files on disk.

- Schemagate: the service's own intake of a history (`parse_submission` of the migration
  files' texts: each parsed, never imported; `plan_history` with Django's graph rules), then
  `plan_state` (state_forwards, no rendering); once with every file parsed and interpreted
  (the cache of files read cleared), once with the files read before (as when a team uploads
  its history again with a few new files).
- Django: `MigrationLoader` (imports every migration module) and `loader.project_state()`;
  once from cached bytecode (as when the files were imported before) and once compiled from
  source (as on a first import), the fair match for each of ours.

Each side runs with its own garbage-collection policy (the service pauses automatic
collections while it reads a submission). Before every timed run, what that side read before
is forgotten (the service's cache of files read, Django's imported migration modules) and a
full collection is made, so no run pays for freeing what an earlier one left.

Run: DATABASE_URL=postgres://postgres@127.0.0.1:5432/sg_h9 .venv/bin/python -m tests.bench.bench_intake [--rounds 7]
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from tests.bench.support import django_setup, figure, heading, median, project_on_disk, ratio, timed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    django_setup()
    from django.db.migrations.loader import MigrationLoader
    from django.test.utils import override_settings

    from changeapi.intake.python_source import plan_state
    from changeapi.intake.python_source.migration_files import _read_files
    from changeapi.intake.submission import parse_submission
    from tests.bench.support import real_history

    heading("intake of a migration history vs Django's MigrationLoader")
    history = real_history()
    with project_on_disk(history) as root:
        sys.path.insert(0, str(root))
        with (
            override_settings(MIDDLEWARE=history.middleware, SITE_ID=1),
            override_settings(INSTALLED_APPS=history.installed_apps),
        ):
            paths = _paths(MigrationLoader(None, ignore_no_migrations=True))

            def ours() -> int:
                files = [
                    {
                        "app_label": app_label,
                        "name": name,
                        "path": _module_path(path),
                        "content": path.read_text(encoding="utf-8"),
                    }
                    for (app_label, name), path in paths.items()
                ]
                intake = parse_submission(
                    form="migrations",
                    source={"files": files},
                    baseline=None,
                    base_state=None,
                    engine="postgresql",
                    project_settings=history.intake_settings,
                )
                return len(plan_state(intake.plan).models)

            def django_forget() -> None:
                for module in [m for m in sys.modules if ".migrations." in m or m.endswith(".migrations")]:
                    del sys.modules[module]

            def django_loader() -> int:
                return len(MigrationLoader(None, ignore_no_migrations=True).project_state().models)

            def django_loader_cold() -> int:
                with _no_bytecode():
                    return django_loader()

            cold, mine, theirs, theirs_cold = [], [], [], []
            for _ in range(args.rounds):
                # What each side read before is forgotten, and its garbage collected, before
                # the clock starts: what is timed is the reading alone.
                _read_files.clear()
                gc.collect()
                elapsed, models_ours = timed(ours)
                cold.append(elapsed)
                gc.collect()
                elapsed, models_ours = timed(ours)
                mine.append(elapsed)
                django_forget()
                gc.collect()
                elapsed, models_django = timed(django_loader)
                theirs.append(elapsed)
                django_forget()
                gc.collect()
                elapsed, models_django_cold = timed(django_loader_cold)
                theirs_cold.append(elapsed)
            assert models_ours == models_django == models_django_cold, (models_ours, models_django, models_django_cold)
        sys.path.remove(str(root))
    print(f"  history: {len(paths)} migrations of {len({a for a, _ in paths})} apps, {models_ours} models")
    figure(f"Schemagate, files read before: parse_submission + plan_state (median of {args.rounds})", median(mine))
    figure(f"Schemagate, every file parsed and interpreted (median of {args.rounds})", median(cold))
    figure(f"Django: MigrationLoader (bytecode cached) + project_state (median of {args.rounds})", median(theirs))
    figure(
        f"Django: MigrationLoader (no bytecode: compiled from source) + project_state (median of {args.rounds})",
        median(theirs_cold),
    )
    ratio("Schemagate (files read before) / Django (bytecode cached)", median(mine) / median(theirs), "<= 1x")
    ratio("Schemagate (every file parsed) / Django (compiled from source)", median(cold) / median(theirs_cold), "<= 1x")
    ratio("Schemagate (every file parsed) / Django (bytecode cached)", median(cold) / median(theirs), "")


@contextlib.contextmanager
def _no_bytecode() -> Iterator[None]:
    """Imports compile every module from its source, as on a first import: the bytecode cache
    is looked up in an empty directory, and nothing is written there."""
    saved = sys.pycache_prefix, sys.dont_write_bytecode
    with tempfile.TemporaryDirectory() as empty:
        sys.pycache_prefix, sys.dont_write_bytecode = empty, True
        try:
            yield
        finally:
            sys.pycache_prefix, sys.dont_write_bytecode = saved


def _module_path(path: Path) -> str:
    """The file's path from the top of its package, as a team's repository names it
    (`django/contrib/auth/migrations/0001_initial.py`): what the intake makes the package of."""
    parts = list(path.parts)
    top = len(parts) - 1
    while top > 0 and (Path(*parts[:top]) / "__init__.py").exists():
        top -= 1
    return "/".join(parts[top:])


def _paths(loader: object) -> dict[tuple[str, str], Path]:
    return {
        key: Path(sys.modules[migration.__module__].__file__ or "")
        for key, migration in sorted(loader.disk_migrations.items())  # type: ignore[attr-defined]
    }


if __name__ == "__main__":
    main()
