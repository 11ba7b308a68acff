"""A small per-process cache with a time-to-live and a size bound (no I/O)."""

from __future__ import annotations

import time
from collections.abc import Hashable
from typing import Generic, TypeVar

V = TypeVar("V")


class TtlCache(Generic[V]):
    """Values live ``ttl_s`` seconds; past ``max_items`` the cache starts over (bounded)."""

    def __init__(self, ttl_s: float, max_items: int = 1024) -> None:
        self._ttl_s = ttl_s
        self._max_items = max_items
        self._items: dict[Hashable, tuple[float, V]] = {}

    def get(self, key: Hashable) -> V | None:
        hit = self._items.get(key)
        if hit is None or hit[0] < time.monotonic():
            return None
        return hit[1]

    def put(self, key: Hashable, value: V) -> None:
        if len(self._items) >= self._max_items:
            self._items.clear()
        self._items[key] = (time.monotonic() + self._ttl_s, value)

    def clear(self) -> None:
        self._items.clear()
