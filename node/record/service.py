"""The node's copy of the public work record: hear, keep, persist, serve and fetch it.

Theory of operation. Every node, whatever its roles, keeps a
``protocol.record.RecordBook``: it learns each job's requester from the job's
announce (``on_announce``), judges each ``WorkRecord``/``DisputeRecord``/``JobClosed`` heard on
``/pictor/1/record`` (``on_gossip``) and persists what it kept in the store's
``work_record`` table through a bounded channel (gossip validation never waits
on SQLite). Blame follows the gate's rule: a record inconsistent in itself is
a REJECT on the forwarder (it could have checked); one signed by somebody
other than the job's requester is an IGNORE and blames its signer (a relay
may not know the job); duplicates, unknown jobs and records over the
requester's rate are IGNOREd. A requester's own records go through
``publish`` (gossip does not deliver a node's own messages back to it).

History: at start the book is rebuilt from the store (``load``), then the
node pulls from up to ``SYNC_PEERS`` peers what they keep
(:mod:`node.record.sync`), so a fresh node learns reputations it never saw
happen; it serves the same pages to others (``serve``).
"""

from __future__ import annotations

import hashlib
import logging
from collections import OrderedDict
from functools import partial
from typing import TYPE_CHECKING

import trio

from node.log import log_event
from node.net.peer_score import Admission
from node.net.port import NetworkError, Verdict
from node.net.reqresp import request
from node.record import store as rows
from node.record.sync import (
    MAX_PAGES_PER_PEER,
    PAGE_BYTES,
    SYNC_LIMITS,
    SYNC_PEERS,
    SyncError,
    decode_request,
    decode_response,
    encode_request,
    encode_response,
)
from protocol import Envelope, RemoteProtocolError, decode_envelope, encode_envelope
from protocol.messages import (
    DisputeRecord,
    JobAnnounce,
    JobClosed,
    Message,
    WorkRecord,
    check_announce,
)
from protocol.record import (
    Added,
    CheckedTask,
    DisputeVotes,
    RecordBook,
    RecordConfig,
    open_dispute,
    open_record,
)
from protocol.reputation import WorkerHistory
from protocol.topics import RECORD_SYNC_PROTOCOL

if TYPE_CHECKING:
    from trio_typing import TaskStatus

    from node.runtime import Node

logger = logging.getLogger(__name__)
KEEP_ROWS = 250_000  # store rows (~1.5 kB each): the book keeps at most 200k tasks
PERSIST_QUEUE = 1024
PUBLISH_QUEUE = 4096
LOAD_PAGE = 1000
SYNC_RETRY_S = 1.0
BAD_SYNC_PENALTY = 25


class RecordService:
    def __init__(self, node: Node, config: RecordConfig | None = None, keep_rows: int = KEEP_ROWS) -> None:
        self.node = node
        self.book = RecordBook(config)
        self.keep_rows = keep_rows
        self.synced_from: set[str] = set()
        self.dropped = 0  # records kept in memory but not persisted (queue full)
        self.persisted = 0  # envelopes written to the store
        self.unpublished = 0  # own messages dropped because the publish queue was full
        self._out_send, self._out_recv = trio.open_memory_channel[tuple[str, Message]](PUBLISH_QUEUE)
        self._announces: OrderedDict[bytes, bytes] = OrderedDict()  # job -> announce wire
        self._send, self._recv = trio.open_memory_channel[list[tuple[bytes, str, bytes, bytes, int]]](
            PERSIST_QUEUE
        )

    def history(self, worker: bytes) -> WorkerHistory:
        return self.book.history(worker, self.node._wall_ms())

    # -- inbound -------------------------------------------------------------

    def on_announce(self, env: Envelope) -> None:
        """A verified announce (``check_announce`` passed): remember who the job's requester is."""
        assert isinstance(env.message, JobAnnounce)
        self.book.learn_job(env.message, env.sender.raw)
        job = env.message.job_id
        self._announces.setdefault(job, env.wire)
        self._announces.move_to_end(job)
        while len(self._announces) > self.book.config.max_jobs:
            self._announces.popitem(last=False)

    def learn_own(self, announce: JobAnnounce) -> None:
        """Know one of our own jobs without announcing it (a requester resuming a job whose
        announce never reached the store): our records of it are then kept and served."""
        wire = encode_envelope(self.node.key, announce, nonce=self.node._nonce(),
                               now_ms=self.node._wall_ms())  # fmt: skip
        self.on_announce(decode_envelope(wire))

    def on_gossip(self, env: Envelope, forwarder: str, origin: str) -> Verdict:
        opened: CheckedTask | DisputeVotes | None = None
        try:  # stateless: a relay could have checked it
            if isinstance(env.message, WorkRecord):
                opened = open_record(env)
            elif isinstance(env.message, DisputeRecord):
                opened = open_dispute(env)
        except RemoteProtocolError as exc:
            self.node.gate.refuse(forwarder, exc)
            return Verdict.REJECT
        try:
            added = self._take(env, rate_limited=True, opened=opened)
        except RemoteProtocolError as exc:  # judged against the job's requester: the signer's fault
            self.node.gate.refuse(origin, exc)
            return Verdict.IGNORE
        if added is not Added.NEW:
            self.node.metrics.rejected.labels(f"record_{added.value}").inc()
            return Verdict.IGNORE
        return Verdict.ACCEPT

    def ingest(self, data: bytes) -> Added | None:
        """One envelope from a sync page or the store; raises ``RemoteProtocolError`` if bad."""
        env = decode_envelope(data)
        if isinstance(env.message, JobAnnounce):
            check_announce(env.message, env.sender.raw)
            self.on_announce(env)
            return None
        return self._take(env, rate_limited=False)

    def _take(
        self, env: Envelope, *, rate_limited: bool, persist: bool = True,
        opened: CheckedTask | DisputeVotes | None = None,
    ) -> Added:  # fmt: skip
        now_ms = self.node._wall_ms()
        message = env.message
        if isinstance(message, WorkRecord):
            task = opened if isinstance(opened, CheckedTask) else None
            added = self.book.add(env, now_ms, rate_limited=rate_limited, opened=task)
            kind = rows.WORK
        elif isinstance(message, DisputeRecord):  # at most one per recorded task: no own rate
            votes = opened if isinstance(opened, DisputeVotes) else None
            added, kind = self.book.dispute(env, opened=votes), rows.DISPUTE
        elif isinstance(message, JobClosed):
            added, kind = self.book.close(env, now_ms), rows.CLOSED
        else:
            raise RemoteProtocolError(f"{env.type} does not belong on the record topic", penalty=10)
        if added is Added.NEW and persist:
            batch = []
            announce = self._announces.get(message.job_id)
            if announce is not None:  # stored once per job, before its first record
                batch.append((hashlib.sha256(announce).digest(), rows.ANNOUNCE, message.job_id,
                              announce, now_ms))  # fmt: skip
            batch.append((env.digest, kind, message.job_id, env.wire, now_ms))
            try:
                self._send.send_nowait(batch)
            except (trio.WouldBlock, trio.ClosedResourceError, trio.BrokenResourceError):
                self.dropped += 1
        return added

    # -- outbound ------------------------------------------------------------

    def publish_soon(self, topic: str, message: Message) -> None:
        """Queue one of our own messages; they go out one at a time, in this order."""
        try:
            self._out_send.send_nowait((topic, message))
        except (trio.WouldBlock, trio.ClosedResourceError, trio.BrokenResourceError):
            self.unpublished += 1
            log_event(logger, logging.WARNING, "record not published", type=message.TYPE)

    async def publish_queued(self, topic: str, message: Message) -> None:
        """Queue one of our own messages, waiting while the queue is full (a restart's
        republish of every record of its resumed jobs could exceed it, and the rest were
        dropped with a warning each); nothing queued once the service closed."""
        try:
            await self._out_send.send((topic, message))
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            self.unpublished += 1

    async def publish(self, topic: str, message: Message) -> None:
        """Sign and gossip one of our own messages, keeping it in our own record first."""
        wire = encode_envelope(self.node.key, message, nonce=self.node._nonce(),
                               now_ms=self.node._wall_ms())  # fmt: skip
        env = decode_envelope(wire)
        try:
            if isinstance(message, JobAnnounce):
                self.on_announce(env)
            else:
                self._take(env, rate_limited=False)
        except RemoteProtocolError as exc:  # our own bug: say so, publish nothing
            log_event(logger, logging.ERROR, "own record refused", type=message.TYPE, error=str(exc))
            return
        self.node._notify()
        try:
            await self.node.network.publish(topic, wire)
            self.node.metrics.messages_out.labels(message.TYPE).inc()
        except NetworkError as exc:
            log_event(logger, logging.WARNING, "not published", topic=topic, error=str(exc))

    # -- history -------------------------------------------------------------

    async def load(self) -> int:
        """Rebuild the book from the store, oldest first; returns the envelopes read."""
        cursor, read = 0, 0
        while True:
            cursor, items = await self.node.store.call(
                partial(rows.page, after_seq=cursor, limit=LOAD_PAGE, max_bytes=1 << 30)
            )
            if not items:
                return read
            for i, data in enumerate(items):
                if i % 64 == 63:
                    await trio.lowlevel.checkpoint()
                try:
                    env = decode_envelope(data)
                    if isinstance(env.message, JobAnnounce):
                        self.on_announce(env)
                    else:
                        self._take(env, rate_limited=False, persist=False)
                except RemoteProtocolError:
                    continue  # a store from another version or a tampered file: skip it
            read += len(items)

    async def serve(self, peer: str, data: bytes) -> bytes | None:
        """Answer one sync page request (``node.net.reqresp`` bounds streams and size)."""
        if self.node.scorer.admit(peer, trio.current_time()) is not Admission.ALLOWED:
            return None
        try:
            after_seq, limit = decode_request(data)
        except SyncError as exc:
            self.node.gate.refuse(peer, RemoteProtocolError(str(exc), penalty=BAD_SYNC_PENALTY),
                                  "bad_sync_request")  # fmt: skip
            return None
        last, items = await self.node.store.call(
            partial(rows.page, after_seq=after_seq, limit=limit, max_bytes=PAGE_BYTES)
        )
        return encode_response(last, items)

    async def sync_from(self, peer: str) -> int:
        """Pull what ``peer`` keeps, page by page; returns the envelopes it gave us."""
        cursor, got = 0, 0
        for _ in range(MAX_PAGES_PER_PEER):
            try:
                reply = await request(self.node.network, peer, RECORD_SYNC_PROTOCOL,
                                      encode_request(cursor), SYNC_LIMITS)  # fmt: skip
                cursor, items = decode_response(reply, cursor)
                if not items:
                    break
                for i, data in enumerate(items):
                    self.ingest(data)  # ~1 ms each (three signatures): let others run
                    if i % 16 == 15:
                        await trio.lowlevel.checkpoint()
            except NetworkError:
                break
            except (SyncError, RemoteProtocolError) as exc:  # served junk: its fault, stop here
                penalty = getattr(exc, "penalty", BAD_SYNC_PENALTY)
                self.node.gate.refuse(peer, RemoteProtocolError(str(exc), penalty=penalty),
                                      "bad_sync_page")  # fmt: skip
                break
            got += len(items)
            self.node._notify()
            await trio.lowlevel.checkpoint()
        log_event(logger, logging.INFO, "record synced", peer=peer, envelopes=got,
                  tasks=len(self.book.tasks))  # fmt: skip
        return got

    async def run(self, *, task_status: TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._persist_loop)
            nursery.start_soon(self._publish_loop)
            task_status.started()
            await self._sync_loop()

    async def _sync_loop(self) -> None:
        """Pull from the first ``SYNC_PEERS`` peers we meet, one at a time, once each."""
        while len(self.synced_from) < SYNC_PEERS:
            now_s = trio.current_time()
            peers = sorted(
                p for p in self.node.network.connected_peers()
                if p not in self.synced_from and not self.node.scorer.is_banned(p, now_s)
            )  # fmt: skip
            if not peers:
                await trio.sleep(SYNC_RETRY_S)  # a poll: the network has no "new peer" event
                continue
            self.synced_from.add(peers[0])
            await self.sync_from(peers[0])

    async def _publish_loop(self) -> None:
        network = self.node.network
        async for topic, message in self._out_recv:
            # Gossip published to nobody is lost for good (peers sync history only when
            # they start): a node just (re)started waits for its first connection.
            await self.node.wait_until(lambda: bool(network.connected_peers()))
            await self.publish(topic, message)

    async def _persist_loop(self) -> None:
        async with self._recv:
            async for batch in self._recv:
                self.persisted += await self.node.store.call(
                    partial(rows.save, rows=batch, keep=self.keep_rows)
                )
                self.node._notify()
