"""Nonce hand-out: counting locally, and refetching after an unknown outcome."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
import trio

from ledger.client import Call
from ledger.errors import ChainUnreachable
from ledger.nonces import NonceManager
from ledger.trio_client import TrioEscrow


def test_manager_counts_then_resyncs() -> None:
    chain_nonce = [5]
    manager = NonceManager(lambda: chain_nonce[0])
    assert [manager.allocate() for _ in range(3)] == [5, 6, 7]
    chain_nonce[0] = 6  # nonce 6 never reached the chain
    manager.resync()
    assert manager.allocate() == 6


@dataclass
class FlakySender:
    """Stands in for TxSender: the chain knows nonce 3; the first send is lost."""

    chain_nonce: int = 3
    fail_next: bool = True
    sent: list[int] = field(default_factory=list)

    def pending_nonce(self) -> int:
        return self.chain_nonce

    def prepare(self, fn: Any, value_wei: int, tail: bytes = b"") -> str:
        return "prepared"

    def send(self, prepared: str, nonce: int) -> dict[str, int]:
        if self.fail_next:
            self.fail_next = False
            raise ChainUnreachable("connection reset")
        self.sent.append(nonce)
        self.chain_nonce = nonce + 1
        return {"status": 1}


@dataclass
class FakeClient:
    sender: FlakySender
    calls: object = None


async def test_trio_wrapper_refetches_nonce_after_unreachable() -> None:
    sender = FlakySender()
    ledger = TrioEscrow(FakeClient(sender), trio.CapacityLimiter(1))  # type: ignore[arg-type]
    call = Call(fn=None)  # type: ignore[arg-type]
    with pytest.raises(ChainUnreachable):
        await ledger.send(call)
    await ledger.send(call)
    await ledger.send(call)
    assert sender.sent == [3, 4]  # nonce 3 reused: the lost send never landed
