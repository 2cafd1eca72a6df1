"""Following the escrow's events with a confirmation depth.

Theory of operation. ``poll`` looks only at blocks at least ``confirmations``
deep (head − confirmations), so ordinary reorgs never reach the callback. It
remembers the hash of the last block it scanned; if that block is no longer
canonical (a reorg deeper than the depth), it rewinds ``rewind_blocks`` and
scans again. Every event is identified by (block hash, log index) and
delivered at most once, in (block, log index) order, so rescans are idempotent:
an event that survived the reorg is not delivered twice, one that moved to a
new block is. The callback should still be idempotent — events it already saw
on an orphaned branch cannot be taken back.

``poll`` blocks on RPC calls: call it from a worker thread and on a timer.
``cursor`` (the next block to scan) is plain data for the caller to persist.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from eth_utils.abi import event_abi_to_log_topic
from web3 import Web3
from web3._utils.events import get_event_data
from web3.exceptions import BlockNotFound

from ledger.tx import TxConfig, with_retries

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ChainEvent:
    name: str  # event name in the ABI, e.g. "Redeemed"
    args: dict[str, Any]
    block_number: int
    log_index: int
    block_hash: bytes
    tx_hash: bytes

    @property
    def position(self) -> tuple[int, int]:
        return (self.block_number, self.log_index)


@dataclass(frozen=True, slots=True)
class FollowerConfig:
    confirmations: int = 6
    max_range_blocks: int = 2_000  # per eth_getLogs call; providers cap ranges
    rewind_blocks: int = 64  # how far back to rescan after a deep reorg


class EventFollower:
    def __init__(
        self,
        w3: Web3,
        address: str,
        abi: list[dict[str, Any]],
        start_block: int = 0,
        config: FollowerConfig | None = None,
    ) -> None:
        self.w3 = w3
        self.address = Web3.to_checksum_address(address)
        self.config = config or FollowerConfig()
        self.cursor = start_block
        self._events = {
            event_abi_to_log_topic(e): e for e in abi if e.get("type") == "event"  # type: ignore[arg-type]
        }
        self._last_hash: bytes | None = None  # hash of block cursor - 1
        self._seen: dict[tuple[bytes, int], int] = {}  # (block hash, log index) -> block
        self._rpc = TxConfig()

    def poll(self, callback: Callable[[ChainEvent], None]) -> int:
        """Deliver newly confirmed events to ``callback``; returns how many."""
        head = with_retries(lambda: self.w3.eth.block_number, self._rpc, "block_number")
        safe = head - self.config.confirmations
        self._rewind_if_reorged()
        delivered = 0
        while self.cursor <= safe:
            last = min(safe, self.cursor + self.config.max_range_blocks - 1)
            for event in self._fetch(self.cursor, last):
                key = (event.block_hash, event.log_index)
                if key not in self._seen:
                    callback(event)  # if it raises, the event comes again next poll
                    self._seen[key] = event.block_number
                    delivered += 1
            self._last_hash = self._block_hash(last)
            self.cursor = last + 1
        self._forget_old()
        return delivered

    def _fetch(self, first: int, last: int) -> list[ChainEvent]:
        logs = with_retries(
            lambda: self.w3.eth.get_logs(
                {"address": self.address, "fromBlock": first, "toBlock": last}
            ),
            self._rpc,
            "get_logs",
        )
        events = [self._decode(entry) for entry in logs]
        return sorted((e for e in events if e is not None), key=lambda e: e.position)

    def _decode(self, entry: Any) -> ChainEvent | None:
        abi = self._events.get(bytes(entry["topics"][0])) if entry["topics"] else None
        if abi is None:
            return None
        data = get_event_data(self.w3.codec, abi, entry)
        return ChainEvent(
            name=data["event"],
            args=dict(data["args"]),
            block_number=data["blockNumber"],
            log_index=data["logIndex"],
            block_hash=bytes(data["blockHash"]),
            tx_hash=bytes(data["transactionHash"]),
        )

    def _block_hash(self, number: int) -> bytes:
        block = with_retries(lambda: self.w3.eth.get_block(number), self._rpc, "get_block")
        return bytes(block["hash"])

    def _rewind_if_reorged(self) -> None:
        if self._last_hash is None or self.cursor == 0:
            return
        try:
            still_canonical = self._block_hash(self.cursor - 1) == self._last_hash
        except BlockNotFound:  # the chain got shorter
            still_canonical = False
        if not still_canonical:
            new_cursor = max(0, self.cursor - self.config.rewind_blocks)
            log.warning("reorg deeper than %d blocks below block %d; rescanning from %d",
                        self.config.confirmations, self.cursor - 1, new_cursor)  # fmt: skip
            self.cursor = new_cursor
            self._last_hash = None

    def _forget_old(self) -> None:
        # Keys below the rewind window can never be rescanned, so drop them.
        horizon = self.cursor - self.config.rewind_blocks
        self._seen = {k: b for k, b in self._seen.items() if b >= horizon}
