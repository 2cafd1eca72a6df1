"""Nonce bookkeeping for one sending account.

Concurrent sends from one account collide if each asks the node for the
pending nonce, so nonces are handed out locally: fetched from the chain once,
then counted up. When a send fails in a way that leaves it unknown whether the
nonce was used, the counter is dropped and refetched on the next allocation.

``NonceManager`` is thread-safe (for plain threaded callers); the trio wrapper
keeps its own counter in the trio task instead (see ``trio_client``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable


class NonceManager:
    def __init__(self, fetch_pending_nonce: Callable[[], int]) -> None:
        self._fetch = fetch_pending_nonce
        self._next: int | None = None
        self._lock = threading.Lock()

    def allocate(self) -> int:
        with self._lock:
            if self._next is None:
                self._next = self._fetch()
            nonce = self._next
            self._next += 1
            return nonce

    def resync(self) -> None:
        """Forget the local counter; the next ``allocate`` asks the chain."""
        with self._lock:
            self._next = None
