"""Garbage collection kept off the job's path: paused while a job runs, and what the process
keeps frozen once its caches grew, the garbage of earlier freezes freed at the next one."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from changeapi import gc_pause
from changeapi.caches import BoundedCache


@pytest.fixture(autouse=True)
def _unfrozen() -> Iterator[None]:
    yield
    gc.unfreeze()


class _Node:
    """An object in a reference cycle, which only the cyclic collector frees."""

    def __init__(self) -> None:
        self.me = self


def test_no_automatic_collection_runs_inside_a_pause_and_collection_is_on_again_after_it():
    assert gc.isenabled()
    with gc_pause.collections_paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_a_cache_gaining_an_entry_makes_the_next_freeze_move_the_process_objects_out_of_the_collector():
    BoundedCache[str, int](1).put("key", 1)
    gc_pause.freeze_long_lived()
    assert gc.get_freeze_count() > 0


def test_without_new_cache_entries_a_freeze_does_nothing():
    """Objects made since the last freeze stay in the collector's sight. The frozen count is
    not compared for equality: a frozen object freed by reference counting (in this thread or
    another) lowers it, and that is no freeze."""
    BoundedCache[str, int](1).put("key", 1)
    gc_pause.freeze_long_lived()
    frozen = gc.get_freeze_count()
    made_since = _Node()
    gc_pause.freeze_long_lived()
    assert gc.get_freeze_count() <= frozen
    assert any(tracked is made_since for tracked in gc.get_objects())


def test_cycles_frozen_once_are_freed_by_the_next_freeze_after_a_cache_grew():
    cycle = _Node()
    alive = weakref.ref(cycle)
    BoundedCache[str, int](1).put("key", 1)
    gc_pause.freeze_long_lived()
    del cycle
    gc.collect()
    assert alive() is not None, "a frozen cycle is out of the collector's sight"
    BoundedCache[str, int](1).put("other", 2)
    gc_pause.freeze_long_lived()
    assert alive() is None
