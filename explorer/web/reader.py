"""What every route reads through: the index, read settings and a wall clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

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


class Reader:
    """What routes need: read the index at a given wall time."""

    def __init__(self, db: IndexDb, settings: WebSettings, wall_ms: Callable[[], int]) -> None:
        self.db = db
        self.settings = settings
        self.wall_ms = wall_ms

    async def read(self, fn: Callable[[Tx], T]) -> T:
        return await self.db.read(fn)

    async def found(self, fn: Callable[[Tx], T | None], what: str) -> T:
        value = await self.db.read(fn)
        if value is None:
            raise NotFound(f"no {what} in the index")
        return value
