"""What every route reads through: the index, read settings and a wall clock."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import trio

from explorer.indexer.db import IndexDb, Tx
from explorer.queries import ReadSettings

T = TypeVar("T")


class NotFound(LookupError):
    """A well-formed id the index knows nothing about (HTTP 404)."""


@dataclass(frozen=True)
class WebSettings:
    read: ReadSettings = field(default_factory=ReadSettings)
    live_poll_ms: int = 3_000
    chart_hours: int = 24
    # Network-wide aggregates (overview, charts) are shared by every visitor:
    # computed at most once per this many seconds, however many requests come.
    aggregate_ttl_s: float = 1.0


class Reader:
    """What routes need: read the index at a given wall time."""

    def __init__(self, db: IndexDb, settings: WebSettings, wall_ms: Callable[[], int]) -> None:
        self.db = db
        self.settings = settings
        self.wall_ms = wall_ms
        self._cache: dict[str, tuple[float, Any]] = {}
        self._locks: dict[str, trio.Lock] = {}

    async def read(self, fn: Callable[[Tx], T]) -> T:
        return await self.db.read(fn)

    async def found(self, fn: Callable[[Tx], T | None], what: str) -> T:
        value = await self.db.read(fn)
        if value is None:
            raise NotFound(f"no {what} in the index")
        return value

    async def shared(self, key: str, compute: Callable[[], Awaitable[T]]) -> T:
        """``compute()``'s value, reused for ``aggregate_ttl_s``; one computation at a time."""
        ttl_s = self.settings.aggregate_ttl_s
        if ttl_s <= 0:
            return await compute()
        lock = self._locks.setdefault(key, trio.Lock())
        async with lock:  # concurrent misses wait for the one computation in flight
            hit = self._cache.get(key)
            if hit is not None and trio.current_time() - hit[0] < ttl_s:
                value: T = hit[1]
                return value
            value = await compute()
            self._cache[key] = (trio.current_time(), value)
            return value
