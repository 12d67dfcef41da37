"""Database files in a SQLite shadow directory: templates, clones and warm spares.

A SQLite database is one file, so a template is a file and a clone is a copy of it made with
SQLite's online backup API (page by page, consistent even while the template is read). Spares
are copied ahead under a spare name; a job claims one by renaming it to its clone's name,
which the filesystem does atomically, so two workers can never take the same spare.

Every file is named `<SHADOW_DATABASE_PREFIX><name>.sqlite3` inside the server's directory and
nowhere else: a name is refused unless it is the prefix followed by letters, digits,
underscores and hyphens, so no project-supplied text can reach another path (`..`, `/`, a NUL).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import sqlite3
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from changeapi.shadow.engine_servers import SqliteShadowServer

SUFFIX = ".sqlite3"
"""Every shadow file ends so; the journal files SQLite makes beside it add their own suffix."""
COMPANIONS = ("-journal", "-wal", "-shm")
BUILDING_SUFFIX = "_building"
"""A template is built under its name and this suffix, and renamed once whole."""
COPYING = "copying_"
"""A spare is copied under `<prefix>copying_…`, and renamed into the spares once whole."""
ABANDONED_COPY_SECONDS = 3600
"""A copy that has not been written to for this long was left by a worker that died."""
"""The files SQLite may keep beside a database: dropped with it."""
_SAFE_NAME = re.compile(r"[A-Za-z0-9_-]{1,200}")


class UnsafeShadowName(ValueError):
    """A database name that could reach outside the shadow directory, or lacks the prefix."""


def shadow_path(server: SqliteShadowServer, name: str) -> Path:
    """The file of database `name` in the server's directory; refused unless `name` is safe.

    Safe means the service's prefix and then only `[A-Za-z0-9_-]`: no separator, dot or NUL can
    make the path leave the directory, and nothing without the prefix is ever touched.
    """
    prefix = settings.SHADOW_DATABASE_PREFIX
    if not name.startswith(prefix) or not _SAFE_NAME.fullmatch(name):
        raise UnsafeShadowName(f"{name!r} is not a shadow database name (the prefix {prefix!r}, then letters, digits, _ or -)")
    path = server.directory / f"{name}{SUFFIX}"
    if path.parent != server.directory:
        raise UnsafeShadowName(f"{name!r} would leave the shadow directory")
    return path


def database_exists(server: SqliteShadowServer, name: str) -> bool:
    path = shadow_path(server, name)
    return path.is_file() and not path.is_symlink()


def database_drop(server: SqliteShadowServer, name: str) -> None:
    """Delete a database file and its journals; nothing if it does not exist."""
    path = shadow_path(server, name)
    for candidate in (path, *(path.with_name(path.name + c) for c in COMPANIONS)):
        try:
            candidate.unlink()
        except FileNotFoundError:
            continue


def databases_named(server: SqliteShadowServer, prefix: str) -> list[str]:
    """The databases in the directory whose names start with `prefix` (for tests and the reaper)."""
    server.ensure_usable()
    names = []
    for entry in sorted(server.directory.iterdir()):
        name = entry.name.removesuffix(SUFFIX)
        if entry.name.endswith(SUFFIX) and name.startswith(prefix) and _SAFE_NAME.fullmatch(name) and not entry.is_symlink():
            names.append(name)
    return names


def _exclusive_create(path: Path) -> None:
    """Create `path` empty, failing if anything (a file, a symlink) is already there."""
    descriptor = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW, 0o600)
    os.close(descriptor)


def database_create(server: SqliteShadowServer, name: str) -> Path:
    """An empty database file `name`, created by this call alone (it must not exist)."""
    server.ensure_usable()
    path = shadow_path(server, name)
    _exclusive_create(path)
    return path


@dataclass(frozen=True, slots=True)
class FileCopyCost:
    """What one copy cost: the bytes copied and the time it took."""

    bytes: int
    copy_ms: float


def database_copy(server: SqliteShadowServer, *, source: str, name: str) -> FileCopyCost:
    """Make `name` a copy of database `source` with SQLite's backup API; a failure leaves no copy.

    The backup reads the template through a read-only connection, so copying never changes it.
    """
    started = time.perf_counter()
    source_path = shadow_path(server, source)
    if not database_exists(server, source):
        raise FileNotFoundError(f"no shadow database {source} on {server.key}")
    target_path = database_create(server, name)
    try:
        reading = sqlite3.connect(f"{source_path.as_uri()}?mode=ro", uri=True)
        writing = sqlite3.connect(target_path)
        try:
            reading.backup(writing)
        finally:
            writing.close()
            reading.close()
    except BaseException:
        database_drop(server, name)
        raise
    return FileCopyCost(bytes=target_path.stat().st_size, copy_ms=round((time.perf_counter() - started) * 1000, 3))


def building_name(template: str) -> str:
    return f"{template}{BUILDING_SUFFIX}"


def _lock_path(server: SqliteShadowServer, template: str) -> Path:
    return shadow_path(server, template).with_suffix(".lock")


@contextmanager
def build_lock(server: SqliteShadowServer, template: str) -> Iterator[None]:
    """One builder of a template at a time, across processes: an flock on `<template>.lock`,
    released with the process if it dies (so the lock file itself never needs removing)."""
    with open(_lock_path(server, template), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def build_abandoned(server: SqliteShadowServer, template: str) -> bool:
    """Whether no process is building `template` now: its build lock can be taken at once."""
    path = _lock_path(server, template)
    if not path.exists():
        return True
    with open(path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(handle, fcntl.LOCK_UN)
        return True


def copy_abandoned(server: SqliteShadowServer, name: str, *, now: float | None = None) -> bool:
    """Whether a spare's copy in progress (`<prefix>copying_…`) was left by a dead worker."""
    path = shadow_path(server, name)
    try:
        written = path.stat().st_mtime
    except FileNotFoundError:
        return False
    return (now if now is not None else time.time()) - written > ABANDONED_COPY_SECONDS


def spare_prefix(template: str) -> str:
    """Spares of a template are named after it (a digest, so any template name fits)."""
    digest = hashlib.sha256(template.encode()).hexdigest()[:12]
    return f"{settings.SHADOW_DATABASE_PREFIX}sp_{digest}_"


def spares_ready(server: SqliteShadowServer, template: str) -> list[str]:
    """The unclaimed spares of `template`: a claimed one has been renamed to its clone."""
    return databases_named(server, spare_prefix(template))


def spares_ensure(server: SqliteShadowServer, template: str, *, count: int) -> list[FileCopyCost]:
    """Copy spares of `template` until `count` are ready; the cost of each one made now.

    A spare is copied under a name of its own and only then renamed into the spare names, so a
    job never claims a half-copied file.
    """
    made = []
    for _ in range(max(count - len(spares_ready(server, template)), 0)):
        scratch = f"{settings.SHADOW_DATABASE_PREFIX}{COPYING}{uuid.uuid4().hex[:12]}"
        made.append(database_copy(server, source=template, name=scratch))
        os.rename(shadow_path(server, scratch), shadow_path(server, spare_prefix(template) + uuid.uuid4().hex[:12]))
    return made


def spare_claim(server: SqliteShadowServer, spares: list[str], *, name: str) -> str | None:
    """Rename one of `spares` to `name` for a job: the first this call moves; None if other
    workers took each of them first. A file already at `name` (a reclaimed job's) is replaced."""
    for spare in spares:
        try:
            os.rename(shadow_path(server, spare), shadow_path(server, name))
        except FileNotFoundError:
            continue  # taken meanwhile
        return spare
    return None
