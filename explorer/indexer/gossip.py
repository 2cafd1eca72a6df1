"""The passive peer: hears the gossip topics, verifies, and writes the index.

Theory of operation. The explorer is a node that never advertises, bids or
renders. It subscribes to every topic in ``protocol.topics.GOSSIP_TOPICS``
and runs each message through the node's own ``Gate`` (peer rate limit,
``decode_envelope``, signer == gossip origin, ``ReplayGuard``) and then
:func:`explorer.indexer.verify.check_content`. The validator is synchronous
(gossipsub runs it inline), so accepted envelopes go through a bounded
channel to one writer task, which drains whatever is queued into a single
transaction: under bursts that is one commit per batch rather than per
message. A full channel drops the message (counted) rather than blocking
gossip; the network re-sends adverts every 30 s anyway.

Restarts: the ``messages`` table keys every envelope by its digest, so a
message heard twice — relayed by two peers, or replayed after a restart
within the replay window — is indexed once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

import trio

if TYPE_CHECKING:
    from trio_typing import TaskStatus

from explorer.indexer.db import IndexDb, Tx
from explorer.indexer.rows import apply_message
from explorer.indexer.verify import check_content
from node.api.metrics import NodeMetrics
from node.log import log_event
from node.net.gate import Gate
from node.net.peer_score import PeerScorer, ScoreConfig
from node.net.port import Network, NetworkError, Verdict
from protocol import Envelope, RemoteProtocolError, ReplayGuard
from protocol.topics import GOSSIP_TOPICS

logger = logging.getLogger(__name__)
QUEUE_LEN = 4096
BATCH_MAX = 512
REDIAL_MAX_BACKOFF_S = 60.0


class GossipIndexer:
    def __init__(
        self,
        network: Network,
        db: IndexDb,
        *,
        wall_ms: Callable[[], int],
        replay_skew_s: float = 60.0,
    ) -> None:
        self.network = network
        self.db = db
        self.metrics = NodeMetrics()
        self._wall_ms = wall_ms
        self.gate = Gate(
            PeerScorer(ScoreConfig()),
            ReplayGuard(skew_ms=int(replay_skew_s * 1000)),
            self.metrics,
            now_s=trio.current_time,
            wall_ms=wall_ms,
            on_ban=network.block,
        )
        self.indexed = 0  # envelopes written (new digests only)
        self.dropped = 0
        self._changed = trio.Event()
        self._send, self._recv = trio.open_memory_channel[tuple[Envelope, int]](QUEUE_LEN)

    def on_gossip(self, topic: str, origin: str, data: bytes, forwarder: str) -> Verdict:
        verdict, envelope = self.gate.admit_gossip(forwarder, origin, data)
        if envelope is None:
            return verdict
        try:
            check_content(envelope)
        except RemoteProtocolError as exc:
            self.gate.refuse(forwarder, exc)
            return Verdict.REJECT
        try:
            self._send.send_nowait((envelope, self._wall_ms()))
        except trio.WouldBlock:
            self.dropped += 1
            self.metrics.rejected.labels("index_backlog").inc()
        return Verdict.ACCEPT

    async def wait_indexed(self, count: int) -> None:
        """Wait (no polling) until at least ``count`` new envelopes are in the index."""
        while self.indexed < count:
            await self._changed.wait()

    async def run(self, *, task_status: TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        for topic in GOSSIP_TOPICS:
            await self.network.subscribe(topic, self.on_gossip)
        task_status.started()
        await self._write_loop()

    async def _write_loop(self) -> None:
        async with self._recv:
            async for first in self._recv:
                batch = [first]
                while len(batch) < BATCH_MAX:
                    try:
                        batch.append(self._recv.receive_nowait())
                    except trio.WouldBlock:
                        break

                def write(tx: Tx, batch: list[tuple[Envelope, int]] = batch) -> int:
                    return sum(apply_message(tx, env, ms) for env, ms in batch)

                self.indexed += await self.db.write(write)
                self._changed.set()
                self._changed = trio.Event()


async def keep_dialled(network: Network, addrs: tuple[str, ...]) -> None:
    """Stay connected to the bootstrap peers, redialling with capped backoff."""
    backoff_s = {addr: 1.0 for addr in addrs}
    due_s = dict.fromkeys(addrs, 0.0)
    while True:
        connected = set(network.connected_peers())
        now_s = trio.current_time()
        for addr in addrs:
            peer = addr.rsplit("/p2p/", 1)[-1]
            if peer in connected or now_s < due_s[addr]:
                continue
            try:
                await network.connect(addr)
                backoff_s[addr] = 1.0
                log_event(logger, logging.INFO, "bootstrap connected", addr=addr)
            except NetworkError as exc:
                backoff_s[addr] = min(REDIAL_MAX_BACKOFF_S, backoff_s[addr] * 2)
                due_s[addr] = now_s + backoff_s[addr]
                log_event(
                    logger, logging.WARNING, "bootstrap dial failed", addr=addr, error=str(exc)
                )
        await trio.sleep(1.0)
