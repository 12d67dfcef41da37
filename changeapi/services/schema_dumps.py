"""A `pg_dump --schema-only` script turned into the catalog a schema snapshot holds.

The script is read and checked by the engine (`dryrun/schema_dump`), restored on a fresh
shadow database as a job role of its own, and read back with the documented catalog query;
the view then validates and stores that catalog as any uploaded snapshot. Nothing of the
dump ever reaches the service's own database.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import psycopg
from django.conf import settings
from django.db import DatabaseError
from django.utils import timezone

from changeapi.dryrun.schema_dump import DumpRefused, SkippedStatement, dump_catalog, dump_read
from changeapi.errors import DomainError, InvalidState
from changeapi.models import DatabaseEngine, Project, ShadowDatabase
from changeapi.services.access_patterns import ShadowUnavailable
from changeapi.services.shadows import shadow_restore_failure
from changeapi.shadow.servers import ShadowServerUnavailable, pick_postgresql_server


class DumpNotRestorable(DomainError):
    """A dump that is refused, or that fails on the shadow; `errors` give the script's line."""

    status = 422
    code = "dump-not-restorable"
    title = "The schema dump cannot be restored"


@dataclass(frozen=True)
class DumpCatalog:
    content: dict[str, Any]
    skipped: tuple[SkippedStatement, ...]


def _refused(message: str, line: int) -> DumpNotRestorable:
    return DumpNotRestorable(f"line {line}: {message}", errors=[{"detail": message, "file": "dump.sql", "line": line}])


def schema_dump_catalog(*, project: Project, dump: str) -> DumpCatalog:
    """The catalog of the schema `dump` makes, read on a shadow it was restored on, and the
    statements skipped (with their lines). Raises DumpNotRestorable, or ShadowUnavailable."""
    if project.engine != DatabaseEngine.POSTGRESQL:
        raise InvalidState(f"a pg_dump script is PostgreSQL's schema; project {project.slug} is {project.engine}")
    try:
        reading = dump_read(dump, max_statements=settings.SCHEMAGATE_MAX_DUMP_STATEMENTS)
    except DumpRefused as exc:
        raise _refused(exc.message, exc.line) from None
    try:
        server = pick_postgresql_server(engine=project.engine, engine_version=project.engine_version)
    except ShadowServerUnavailable as exc:
        raise ShadowUnavailable(str(exc)) from exc
    name = f"{settings.SHADOW_DATABASE_PREFIX}dump_{uuid.uuid4().hex[:16]}"
    row = ShadowDatabase.objects.create(server=server.key, name=name, kind=ShadowDatabase.Kind.CLONE)
    try:
        content = dump_catalog(server, reading, name=name)
    except DumpRefused as exc:
        raise _refused(exc.message, exc.line) from None
    except ShadowServerUnavailable as exc:
        raise ShadowUnavailable(str(exc)) from exc
    except (psycopg.Error, DatabaseError) as exc:
        raise shadow_restore_failure(exc, refusal=DumpNotRestorable, what="the dump") from exc
    finally:
        ShadowDatabase.objects.filter(pk=row.pk).update(dropped_at=timezone.now())
    return DumpCatalog(content=content, skipped=reading.skipped)
