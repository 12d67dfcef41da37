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
from collections.abc import Iterator
from contextlib import contextmanager


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
    """Free the cycles a run left: generations 0 and 1, where all of the run's objects are."""
    gc.collect(1)
