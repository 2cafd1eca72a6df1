"""EscrowClient keeps a claim's FraudClaimed events once one matched the claim's
commitment (then any frame a request names is matched against them, no log read); before,
what was read stands until the chain's head moves: logs that lag the claim's state (a claim reopened on the same result, its event
not yet in the node's logs) would otherwise hide the claim's own event for good, and the
worker could not answer it (review of stop 44)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from types import SimpleNamespace

from ledger.client import ClaimState, EscrowClient
from ledger.fraud import ResultRef, claim_commit
from ledger.tx import TxConfig

WORKER = bytes(20 * [1])
REF = ResultRef(1, bytes(20), bytes(20 * [2]), bytes(32), bytes([3]) * 32, 0, bytes([4]) * 32)
OLD = (bytes([1]) * 32, (bytes(20 * [5]),), b"tx-old")
NEW = (bytes([2]) * 32, (bytes(20 * [6]), bytes(20 * [7])), b"tx-new")


def test_a_lagging_read_is_not_kept_and_a_matching_one_is() -> None:
    client = object.__new__(EscrowClient)  # the cache alone: no chain behind it
    client._claim_events, client._evidence_lock = OrderedDict(), threading.Lock()
    client._unmatched_events = OrderedDict()
    head = SimpleNamespace(block_number=100)
    client.w3 = SimpleNamespace(eth=head)  # type: ignore[assignment]
    client.sender = SimpleNamespace(config=TxConfig())  # type: ignore[assignment]
    client._published = lambda tx: b""  # type: ignore[method-assign]
    logs = [[OLD], [OLD, NEW]]  # the first read lags the state; the second has the event
    reads: list[object] = []

    def read(*args: object) -> list[tuple[bytes, tuple[bytes, ...], bytes]]:
        reads.append(args)
        return logs.pop(0)

    client._read_claim_events = read  # type: ignore[method-assign]
    state = ClaimState(0, 1, 10**9, claim_commit(REF.frame_digest, NEW[0], NEW[1]), 1, rungs=2)
    assert client._find_evidence(REF, WORKER, state) is None  # lagging: read again later,
    assert client._find_evidence(REF, WORKER, state) is None  # once the chain's head moved
    assert len(reads) == 1  # (a flood of made-up frames costs one read a block)
    head.block_number += 1
    assert client._find_evidence(REF, WORKER, state) is not None
    other = ResultRef(1, bytes(20), bytes(20 * [2]), bytes(32), bytes([3]) * 32, 0, bytes([9]) * 32)
    assert client._find_evidence(other, WORKER, state) is None  # another frame: no match,
    assert len(reads) == 2  # and no read: the events are kept
