"""The escrow client for trio code: blocking calls on worker threads.

web3's AsyncWeb3 does not run under trio, so every RPC runs in
``trio.to_thread.run_sync`` behind a ``CapacityLimiter`` (1 for the embedded
chain, which is not thread-safe). Nonces are handed out here, in the trio
task, between the two blocking halves of a send: ``prepare`` (simulate; a
revert costs no nonce) and ``send`` (sign, broadcast, await receipt).

Allocation takes no checkpoint once the counter is known, and the limiter is
FIFO, so transactions enter their threads in nonce order. After a
``ChainUnreachable`` the counter is dropped and refetched, because it is then
unknown whether the nonce was used.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import trio
from web3.types import TxReceipt

from ledger.client import Call, EscrowClient
from ledger.errors import ChainUnreachable, TxRejected

T = TypeVar("T")


class TrioEscrow:
    def __init__(self, client: EscrowClient, limiter: trio.CapacityLimiter) -> None:
        self.client = client
        self.calls = client.calls
        self._limiter = limiter
        self._next_nonce: int | None = None
        self._nonce_lock = trio.Lock()

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a blocking ledger function (a view, a follower poll) on a worker thread."""
        return await trio.to_thread.run_sync(fn, *args, limiter=self._limiter)

    async def send(self, call: Call) -> TxReceipt:
        sender = self.client.sender
        prepared = await self.run(sender.prepare, call.fn, call.value_wei, call.tail)
        nonce = await self._allocate_nonce()
        try:
            return await self.run(sender.send, prepared, nonce)
        except (ChainUnreachable, TxRejected):
            self._next_nonce = None
            raise

    async def _allocate_nonce(self) -> int:
        if self._next_nonce is None:
            async with self._nonce_lock:
                if self._next_nonce is None:
                    self._next_nonce = await self.run(self.client.sender.pending_nonce)
        nonce = self._next_nonce
        self._next_nonce += 1
        return nonce
