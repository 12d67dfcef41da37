"""One shadow clone for one job: made from a template, connected as the job's role, dropped after.

Every job that needs a clone (a dry-run, an access-pattern check, a bundle's rollback trace)
goes through `shadow_session`, so none can forget to drop its clone on a failure, connect as
anyone but its own role, or run outside the watchdog's limits.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from django.db.backends.base.base import BaseDatabaseWrapper

from changeapi.dryrun.connection import shadow_connection
from changeapi.shadow import provision
from changeapi.shadow.servers import ShadowServer


@dataclass(frozen=True)
class ShadowSession:
    """A connected clone: its name, the spare it was taken from ("" for a fresh clone), and the
    time taking or making it cost."""

    connection: BaseDatabaseWrapper
    name: str
    spare: str
    clone_ms: float


@contextmanager
def shadow_session(
    server: ShadowServer,
    *,
    template: str,
    name: str,
    spares: Sequence[str] = (),
    on_clone: Callable[[str], None] | None = None,
    drop: bool = True,
) -> Iterator[ShadowSession]:
    """Take a warm spare of `template` (one of `spares`) or clone it as `name`, and connect to it.

    `on_clone` is told which spare was taken as soon as the clone exists, before connecting,
    so the caller can record it even if the connection then fails. The clone is dropped
    whatever happens, unless `drop` is False: then the caller drops it (e.g. after recording
    the result).
    """
    started = time.perf_counter()
    spare = provision.spare_claim(server, spares=spares, name=name) if spares else None
    if spare is None:
        provision.clone_create(server, template=template, name=name)
    clone_ms = round((time.perf_counter() - started) * 1000, 3)
    try:
        if on_clone is not None:
            on_clone(spare or "")
        with shadow_connection(server, name) as connection:
            yield ShadowSession(connection=connection, name=name, spare=spare or "", clone_ms=clone_ms)
    finally:
        if drop:
            provision.clone_drop(server, name)
