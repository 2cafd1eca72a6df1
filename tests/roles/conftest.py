"""Role tests run the real role drivers over the in-memory network under a mock clock.

Trio's autojump clock jumps as soon as every task waits, and a task waiting for
a worker thread counts as waiting: a lease could expire "while" SQLite commits.
So here blocking calls run inline (they are millisecond-fast local file and
SQLite calls), and the clock only moves when the market really is idle.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import pytest
import trio

T = TypeVar("T")


async def _inline(fn: Callable[..., T], *args: Any, **_: Any) -> T:
    await trio.lowlevel.checkpoint()
    return fn(*args)


@pytest.fixture(autouse=True)
def inline_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(trio.to_thread, "run_sync", _inline)
