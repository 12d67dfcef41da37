"""A bounded, thread-safe map for what a process rebuilds on demand (parsed files, states, plans).

Each cache of the engine keeps the most recently used entries up to a fixed count, so a
long-lived worker's memory follows its recent work rather than everything it ever saw.
Threads share it: the shadow chores and a dry-run may read one cache at the same time.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

_additions = 0
_additions_lock = threading.Lock()


def additions() -> int:
    """How many entries every cache of the process has been given so far: the long-lived
    objects grew when this changed (see `gc_pause.freeze_long_lived`)."""
    return _additions


def _added() -> None:
    global _additions
    with _additions_lock:
        _additions += 1


class BoundedCache(Generic[K, V]):
    """At most `size` entries; the least recently used goes first."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self._lock:
            value = self._entries.get(key)
            if value is not None:
                self._entries.move_to_end(key)
            return value

    def put(self, key: K, value: V) -> None:
        _added()
        with self._lock:
            self._entries[key] = value
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)
