"""Following the escrow contract into the index, resumable across restarts.

Theory of operation. ``ledger.follower.EventFollower`` delivers confirmed
events in (block, log index) order and knows nothing about storage. Here
each poll runs on a worker thread (web3 is synchronous); its events and the
follower's new cursor are written in one transaction, so after a crash the
index either has both or neither. On start the cursor is read back from
``meta``; events re-delivered from a rescan hit the (block, log index)
primary key and are ignored. Hence: no gap, no duplicate.

The index remembers which contract it follows; pointing an existing index at
another contract is refused, because its cursor would then be meaningless.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import trio

from explorer.indexer.db import IndexDb, Tx
from explorer.indexer.rows import apply_chain_event, get_meta, set_meta
from ledger.artifacts import load_artifact
from ledger.errors import ChainUnreachable
from ledger.follower import ChainEvent, EventFollower, FollowerConfig
from node.log import log_event

logger = logging.getLogger(__name__)
CURSOR_KEY = "chain_cursor"
CONTRACT_KEY = "chain_contract"


class WrongContract(RuntimeError):
    """The index was built from another contract's events."""


@dataclass(frozen=True)
class ChainSettings:
    contract: str
    poll_s: float = 2.0
    confirmations: int = 2
    start_block: int = 0


class ChainIndexer:
    def __init__(self, db: IndexDb, w3: Any, settings: ChainSettings) -> None:
        self.db = db
        self.w3 = w3
        self.settings = settings
        self.follower: EventFollower | None = None
        self.indexed = 0
        self._changed = trio.Event()

    async def open(self) -> None:
        """Read the persisted cursor (or start a new index at ``start_block``)."""
        contract = self.settings.contract.lower()

        def load(tx: Tx) -> int:
            known = get_meta(tx, CONTRACT_KEY)
            if known is not None and known != contract:
                raise WrongContract(f"this index follows {known}, not {contract}")
            set_meta(tx, CONTRACT_KEY, contract)
            cursor = get_meta(tx, CURSOR_KEY)
            return self.settings.start_block if cursor is None else int(cursor)

        cursor = await self.db.write(load)
        abi = load_artifact("Escrow")["abi"]
        config = FollowerConfig(confirmations=self.settings.confirmations)
        self.follower = EventFollower(self.w3, self.settings.contract, abi, cursor, config)

    async def poll_once(self) -> int:
        """One poll of the chain into the index; returns how many events were new."""
        follower = self.follower
        assert follower is not None, "call open() first"
        events: list[ChainEvent] = []
        await trio.to_thread.run_sync(follower.poll, events.append)
        cursor = follower.cursor

        def write(tx: Tx) -> int:
            new = sum(apply_chain_event(tx, e) for e in events)
            set_meta(tx, CURSOR_KEY, str(cursor))
            return new

        new = await self.db.write(write)
        self.indexed += new
        self._changed.set()
        self._changed = trio.Event()
        return new

    async def wait_polled(self, predicate: Callable[[], bool]) -> None:
        while not predicate():
            await self._changed.wait()

    async def run(self) -> None:
        if self.follower is None:
            await self.open()
        while True:
            try:
                await self.poll_once()
            except ChainUnreachable as exc:
                # Transient by definition: keep serving the index, try again later.
                log_event(logger, logging.WARNING, "chain unreachable", error=str(exc))
            await trio.sleep(self.settings.poll_s)
