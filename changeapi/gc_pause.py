"""Keep Python's full garbage collections off a dry-run's and an intake's path.

A dry-run builds many short-lived objects (model classes, states, traces); the cyclic
collector then runs full collections of 130-300 ms over every object of the worker,
caches included, in the middle of a run. Automatic collection is paused for the run and
one collection of the young generations is made once its report is recorded. Everything the
run made while collection was off is young, so that collection frees the run's cycles
without walking the worker's long-lived objects (a full collection of those took 375 ms on
the 200-model baseline, with the client waiting when tasks run in the web process).
Reference counting frees most objects as usual; only cycles wait for that collection.

Reading a submission is the same: a 400-migration history makes tens of thousands of
short-lived objects, enough to set off a full collection of the web worker (100 ms and more,
measured by tests/bench/bench_intake.py) in the middle of the request.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from changeapi import caches


@contextmanager
def collections_paused() -> Iterator[None]:
    """No automatic collection inside the block; the caller collects afterwards (`collect_now`)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def collect_now() -> None:
    """Free the cycles a run left: generations 0 and 1, where all of the run's objects are.

    Called before the pause ends: once collection is on again, the first allocation would
    otherwise start an automatic collection over the run's objects, the oldest generation's
    included when enough of them survived."""
    gc.collect(1)


_frozen_at: int | None = None
_freezing = threading.Lock()


def freeze_long_lived() -> None:
    """Move what the process keeps (Django, the caches of parsed baselines and states) out of
    the collector's sight, once they grew: every later collection, automatic or not, walks
    only what was made since.

    Everything is collected first, the objects frozen before included, so the cycles of a
    cache entry dropped since the last freeze are freed then. Called at process start and as
    a shadow chore after a dry-run, off the client's path: it costs one full collection, and
    only when a cache gained entries (`caches.additions`).
    """
    global _frozen_at
    with _freezing:
        now = caches.additions()
        if now == _frozen_at:
            return
        gc.unfreeze()
        gc.collect()
        gc.freeze()
        _frozen_at = now
