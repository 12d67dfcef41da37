"""Observe what a running MySQL/MariaDB statement blocks, from two other sessions.

`performance_schema.metadata_locks` is often unavailable (the local MariaDB runs with
performance_schema off, and it cannot be switched on without a restart), so while the
statement runs on the clone, one session reads its table and another writes to it (a DELETE
that matches no row: it takes the same metadata lock a write does and changes nothing), each
again and again until it ends. A probe that once waited a good share of the statement's time
(or past its `lock_wait_timeout`) was blocked; one that always returned at once was not. A
statement over before the probes started (most INSTANT ones) is too short to observe: the
answer is then None.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from changeapi.shadow.mysql_databases import quote, server_errors

START_AFTER_SECONDS = 0.05
"""How long after the statement starts the probes go: past the brief exclusive metadata lock
every ALTER takes at its start, so they see the lock it holds while it works."""

PROBE_LOCK_WAIT_SECONDS = 1
PROBE_INTERVAL_SECONDS = 0.01
BLOCKED_SHARE = 0.25
"""A probe that waited a quarter of the statement's time or more was blocked by it, not by the
brief exclusive metadata lock at the statement's end."""
WAITED = {1205, 1969}
"""Lock wait timeout, and the statement time cap: the probe waited. Any other error says nothing."""


@dataclass
class _Probe:
    """One query asked again and again while the statement runs; the longest it had to wait."""

    sql: str
    connection: Any
    asked: int = 0
    longest_wait: float = 0.0
    unknown: bool = False

    def run(self, ended: threading.Event) -> None:
        if ended.wait(START_AFTER_SECONDS):
            return  # over already: nothing to observe
        cursor = self.connection.cursor()
        while not ended.is_set():
            started = time.perf_counter()
            try:
                cursor.execute(self.sql)
            except server_errors() as exc:
                code = int(exc.args[0]) if exc.args and isinstance(exc.args[0], int) else -1
                if code not in WAITED:
                    self.unknown = True
                    return
            self.asked += 1
            self.longest_wait = max(self.longest_wait, time.perf_counter() - started)
            if ended.wait(PROBE_INTERVAL_SECONDS):
                return


@dataclass(frozen=True, slots=True)
class ObservedBlocking:
    """Whether a read and a write were blocked, and the longest each waited (None: not observed)."""

    reads: bool | None
    writes: bool | None
    read_wait_ms: float | None = None
    write_wait_ms: float | None = None


class BlockingObserver:
    """Around one statement: `with BlockingObserver(connect, table) as observer: run()`, then
    `observer.result`. `connect` opens a session of the job's user on the clone."""

    def __init__(self, connect: Callable[[], Any], table: str) -> None:
        self._ended_event = threading.Event()
        self._probes = [
            _Probe(f"SELECT 1 FROM {quote(table)} WHERE 1 = 0", connect()),
            _Probe(f"DELETE FROM {quote(table)} WHERE 1 = 0", connect()),
        ]
        self._threads = [threading.Thread(target=p.run, args=(self._ended_event,), daemon=True) for p in self._probes]
        self._started = 0.0
        self._ended: float | None = None
        self.result = ObservedBlocking(reads=None, writes=None)

    def __enter__(self) -> BlockingObserver:
        for probe in self._probes:
            probe.connection.cursor().execute(f"SET SESSION lock_wait_timeout = {PROBE_LOCK_WAIT_SECONDS}")
        self._started = time.perf_counter()
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._ended = time.perf_counter()
        self._ended_event.set()
        for thread in self._threads:
            thread.join(timeout=PROBE_LOCK_WAIT_SECONDS + 10)
        for probe in self._probes:
            probe.connection.close()
        read, write = (self._blocked(p) for p in self._probes)
        read_ms, write_ms = (
            None if b is None else round(p.longest_wait * 1000, 3) for p, b in zip(self._probes, (read, write), strict=True)
        )
        self.result = ObservedBlocking(reads=read, writes=write, read_wait_ms=read_ms, write_wait_ms=write_ms)

    def _blocked(self, probe: _Probe) -> bool | None:
        assert self._ended is not None
        if probe.unknown or probe.asked == 0:
            return None  # the statement was over before the probe asked, or the probe failed
        running = self._ended - self._started
        return probe.longest_wait >= BLOCKED_SHARE * running
