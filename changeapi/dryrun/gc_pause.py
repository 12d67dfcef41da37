"""Keep Python's full garbage collections off a dry-run's path.

A dry-run builds many short-lived objects (model classes, states, traces); the cyclic
collector then runs full collections of 130-300 ms over every object of the worker,
caches included, in the middle of a run. Automatic collection is paused for the run and
one collection is made once its report is recorded, when nobody waits on it. Reference
counting frees most objects as usual; only cycles wait for that collection.
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
    """Free the cycles a run left, off its path."""
    gc.collect()
