"""The node: one trio process around a Network, a Store and the protocol.

Theory of operation. ``Node.run`` subscribes to the gossip topics, serves the
market stream protocol and starts its services (advertiser, discovery, ban
handler, persister) in nested nurseries. Every inbound message goes through
the ``Gate`` (rate limit, decode, sender check, replay guard); what passes is
handled synchronously (adverts update the capacity view) and anything that
needs the disk goes through a bounded channel to the persister, so gossip
validation never waits on SQLite. ``stop()`` cancels the services, then lets
the persister drain for at most ``shutdown_grace_s``.

The market's role drivers (worker, client, checker) are not here yet: they
plug in through ``set_market_handler`` and the jobs topic as they land.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import trio

if TYPE_CHECKING:
    # py-libp2p pulls in trio-typing, whose trio-stubs shadow trio's own types
    # and lack trio.TaskStatus; its TaskStatus is the same protocol.
    from trio_typing import TaskStatus

from node.api.metrics import NodeMetrics
from node.config import NodeConfig
from node.log import log_event
from node.net.bans import Bans
from node.net.discovery import DialPolicy, Discovery, plausible_addr
from node.net.gate import Gate, Refusal
from node.net.peer_score import PeerScorer, ScoreConfig
from node.net.port import Network, Verdict
from node.net.reqresp import FrameError, ReqRespLimits, serve_requests
from node.record.service import RecordService
from node.record.sync import SYNC_LIMITS
from node.store import Store
from protocol import (
    Envelope,
    NodeKey,
    PaymentBinding,
    RemoteProtocolError,
    ReplayGuard,
    decode_envelope,
)
from protocol import encode_envelope as encode
from protocol.errors import BadBinding, IllegalMessage
from protocol.messages import (
    CapacityAdvert,
    DisputeRecord,
    GpuInfo,
    JobAnnounce,
    JobClosed,
    WorkRecord,
    check_announce,
)
from protocol.topics import (
    CAPACITY_TOPIC,
    JOBS_TOPIC,
    MARKET_PROTOCOL,
    MARKET_REFUSED,
    RECORD_SYNC_PROTOCOL,
    RECORD_TOPIC,
)

logger = logging.getLogger(__name__)
MarketHandler = Callable[[Envelope], Awaitable[bytes | None]]
MAX_ADVERT_ADDRS = 16
SETTLE_S = 0.5
# Strangers can mint identities, so what they make us keep has a cap:
# adverts known (evicting the longest-unrefreshed tenth when full; honest
# peers re-advertise every interval) and peers kept in the store.
MAX_KNOWN_ADVERTS = 4096
MAX_STORED_PEERS = 2048
PRUNE_EVERY = 256  # adverts persisted between two prunes of the peers table


@dataclass(frozen=True)
class OwnCapacity:
    """What this node offers, as its CapacityAdvert states it (set by the roles)."""

    gpus: tuple[GpuInfo, ...] = ()
    renderer_builds: tuple[str, ...] = ()
    score_ru_per_hour: int = 0
    price_wei_per_ru: int = 0
    free_slots: Callable[[], int] = lambda: 0
    device_class: str = ""


@dataclass(frozen=True)
class SeenAdvert:
    advert: CapacityAdvert
    received_ms: int
    timestamp_ms: int


class Node:
    def __init__(
        self,
        config: NodeConfig,
        key: NodeKey,
        payment_key: bytes,
        network: Network,
        store: Store,
        *,
        wall_ms: Callable[[], int],
        nonce: Callable[[], int],
    ) -> None:
        self.config = config
        self.key = key
        self.network = network
        self.store = store
        self.metrics = NodeMetrics()
        self.scorer = PeerScorer(
            ScoreConfig(
                rate_per_s=config.peer_rate_per_s,
                burst=config.peer_burst,
                ban_score=config.ban_score,
                ban_s=config.ban_s,
            )
        )
        self._wall_ms = wall_ms
        self._nonce = nonce
        self.gate = Gate(
            self.scorer,
            ReplayGuard(skew_ms=int(config.replay_skew_s * 1000)),
            self.metrics,
            now_s=trio.current_time,
            wall_ms=wall_ms,
            on_ban=self._on_ban,
        )
        self.discovery = Discovery(
            network,
            store,
            max_backoff_s=config.redial_max_backoff_s,
            is_banned=lambda peer: self.scorer.is_banned(peer, trio.current_time()),
            wall_ms=wall_ms,
            policy=DialPolicy(prefer_quic=config.quic),
        )
        self.limits = ReqRespLimits(
            max_request_bytes=config.max_request_bytes,
            max_response_bytes=config.max_response_bytes,
            timeout_s=config.request_timeout_s,
        )
        self.capacity: dict[str, SeenAdvert] = {}
        self.max_known_adverts = MAX_KNOWN_ADVERTS
        self.max_stored_peers = MAX_STORED_PEERS
        self.banned = Bans(config.ban_s)  # node.net.bans: each ends, at most MAX_BANNED
        self._ban_added = trio.Event()
        self.started_s = trio.current_time()
        self._payment = PaymentBinding.create(key, payment_key)
        self._market: MarketHandler | None = None
        self._gossip_hook: Callable[[Envelope], None] | None = None
        self._advert_keeper: Callable[[bytes], bool] = lambda node: False
        self._changed = trio.Event()
        self._stop = trio.Event()
        self._persisted = trio.Event()
        self._readvertise = False
        self.own_capacity = OwnCapacity()
        self.confirmed_stake_wei = 0  # adverts state only stake the chain confirmed (StakeWatch)
        self._persist_send, self._persist_recv = trio.open_memory_channel[tuple[str, bytes, list[str], int]](
            1024
        )
        self._ban_send, self._ban_recv = trio.open_memory_channel[str](256)
        self.record = RecordService(self)

    @property
    def node_id(self) -> str:
        return str(self.key.node_id)

    def set_market_handler(self, handler: MarketHandler) -> None:
        self._market = handler

    def set_gossip_hook(self, hook: Callable[[Envelope], None]) -> None:
        """Hear every admitted gossip message other than adverts (the roles' JobAnnounce)."""
        self._gossip_hook = hook

    def set_advert_keeper(self, keep: Callable[[bytes], bool]) -> None:
        """Which known adverts (by node id) the roles have dealings with: eviction spares
        them, and the adverts of connected peers, before the rest."""
        self._advert_keeper = keep

    def set_capacity(self, capacity: OwnCapacity) -> None:
        """Change what the adverts offer, and tell the network soon rather than next interval."""
        self.own_capacity = capacity
        self._readvertise = True

    def addresses_changed(self) -> None:
        """The network's dialable addresses changed (a relay slot): advertise soon."""
        self._readvertise = True

    def set_confirmed_stake(self, stake_wei: int) -> None:
        """The free stake the chain just confirmed (0 when it cannot say); adverts state it."""
        if stake_wei != self.confirmed_stake_wei:
            self.confirmed_stake_wei = stake_wei
            self._readvertise = True

    def stop(self) -> None:
        self._stop.set()

    async def wait_until(self, predicate: Callable[[], bool]) -> None:
        """Wait (no polling) until ``predicate()`` holds after some inbound change."""
        while not predicate():
            await self._changed.wait()

    def wall_ms(self) -> int:
        """The node's wall clock, as adverts' ``received_ms`` read it."""
        return self._wall_ms()

    async def changed(self) -> None:
        """Wait for the next inbound change (:meth:`wait_until`'s, once)."""
        await self._changed.wait()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    # -- inbound -------------------------------------------------------------

    def _on_gossip(self, topic: str, origin: str, data: bytes, forwarder: str) -> Verdict:
        verdict, envelope = self.gate.admit_gossip(forwarder, origin, data)
        if envelope is None:
            return verdict
        if isinstance(envelope.message, CapacityAdvert):
            try:
                self._accept_advert(origin, envelope, data)
            except RemoteProtocolError as exc:
                self.gate.refuse(forwarder, exc)
                return Verdict.REJECT
        elif isinstance(envelope.message, WorkRecord | DisputeRecord | JobClosed):
            verdict = self.record.on_gossip(envelope, forwarder, origin)
            if verdict is not Verdict.ACCEPT:
                return verdict
        else:
            if isinstance(envelope.message, JobAnnounce):
                try:
                    check_announce(envelope.message, envelope.sender.raw)
                except RemoteProtocolError as exc:  # stateless: the relay could have checked
                    self.gate.refuse(forwarder, exc)
                    return Verdict.REJECT
                self.record.on_announce(envelope)
            if self._gossip_hook is not None:
                try:
                    self._gossip_hook(envelope)
                except RemoteProtocolError as exc:
                    # Judged against our own state (a job only we know): a relay could not
                    # have known, so the signer pays and the message goes no further.
                    self.gate.refuse(origin, exc)
                    return Verdict.IGNORE
        self._notify()
        return Verdict.ACCEPT

    async def _restore_adverts(self) -> None:
        """Reload the adverts persisted before a restart, re-verified as if just received.

        The roles need them before the first fresh advert arrives: a requester
        replaying its journal after a crash maps checkers to payment addresses
        through them, and without the map it would forget fees it already paid.
        Their ``received_ms`` stays the original time, so their age shows.
        """
        for row in await self.store.list_peers():
            data, peer = row.get("advert"), str(row["peer_id"])
            banned_until_ms = int(row.get("banned_until_ms") or 0)  # type: ignore[call-overload]
            if not isinstance(data, bytes) or banned_until_ms > self._wall_ms():
                continue
            try:
                envelope = decode_envelope(data)
                if envelope.sender.text != peer:
                    continue
                advert = self._checked_advert(envelope, None)
            except RemoteProtocolError:
                continue  # a store from another version or a tampered file: skip it
            received_ms = int(row.get("advert_ms") or 0)  # type: ignore[call-overload]
            self.capacity[peer] = SeenAdvert(advert, received_ms, envelope.timestamp_ms)

    @staticmethod
    def _checked_advert(envelope: Envelope, previous: SeenAdvert | None) -> CapacityAdvert:
        """The envelope's advert if its payment binding is the sender's and verifies."""
        advert = envelope.message
        if not isinstance(advert, CapacityAdvert):
            raise IllegalMessage(f"{envelope.type} is not a capacity advert")
        if advert.payment.node != envelope.sender.raw:
            raise BadBinding("advert's payment binding is for another node")
        # The binding's secp256k1 check is the costliest step (~1 ms); a peer
        # re-sends the same binding every advert, so verify only a new one.
        if previous is None or previous.advert.payment != advert.payment:
            advert.payment.verify()
        return advert

    def _accept_advert(self, origin: str, envelope: Envelope, data: bytes) -> None:
        advert = self._checked_advert(envelope, self.capacity.get(origin))
        now_ms = self._wall_ms()
        if origin not in self.capacity:
            self._readvertise = True
            if len(self.capacity) >= self.max_known_adverts:
                self._evict_adverts()
        self.capacity[origin] = SeenAdvert(advert, now_ms, envelope.timestamp_ms)
        self.discovery.add_advertised(origin, advert.addrs)
        own = [a for a in advert.addrs if a.endswith("/p2p/" + origin) and plausible_addr(a)]
        addrs = [a.rsplit("/p2p/", 1)[0] for a in own[: self.discovery.policy.max_addrs_per_peer]]
        try:
            self._persist_send.send_nowait((origin, data, addrs, now_ms))
        except trio.WouldBlock:
            self.metrics.rejected.labels("persist_backlog").inc()  # memory view still updated
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            pass  # stopping: the network outlives the persister by a moment

    def _evict_adverts(self) -> None:
        """Drop a tenth of the known adverts: first those of nodes neither connected to us
        nor known to the roles (``set_advert_keeper``), refreshed longest ago.

        Why: a flood of fresh identities' adverts (keys are free; each advert is signed)
        pushed out, oldest first, the adverts of the workers a requester dealt with, and
        a bid from a node whose advert is gone is held until it comes again (review of
        stop 44). Fresh identities can fill the rest of the table, not these (at most half
        of it is spared so)."""
        count = max(1, self.max_known_adverts // 10)
        connected = set(self.network.connected_peers())
        kept = [p for p, seen in self.capacity.items()
                if p in connected or self._advert_keeper(seen.advert.payment.node)]  # fmt: skip
        # at most half the table is spared, the newest of them: bidding is free, so the
        # roles' set could be filled by strangers too (review of stop 45)
        kept.sort(key=lambda p: self.capacity[p].received_ms)
        spared = set(kept[-(self.max_known_adverts // 2) :]) if self.max_known_adverts >= 2 else set()

        def spare(peer: str) -> tuple[bool, int]:
            return peer in spared, self.capacity[peer].received_ms

        oldest = sorted(self.capacity, key=spare)[:count]
        for peer in oldest:
            del self.capacity[peer]
        self.metrics.rejected.labels("advert_evicted").inc(len(oldest))

    async def _on_request(self, peer: str, data: bytes) -> bytes | None:
        envelope = self.gate.admit(peer, data)
        if envelope is Refusal.BUSY:
            return None  # closed without a reply: the sender may retry later
        if envelope is Refusal.FINAL:
            return MARKET_REFUSED  # the sender must not resend it (docs/PROTOCOL.md §6.1)
        if self._market is None:
            return None  # no roles yet (starting): worth a retry
        self._notify()
        return await self._market(envelope)

    def on_bad_frame(self, peer: str, exc: FrameError) -> None:
        self._on_bad_frame(peer, exc)

    def _on_bad_frame(self, peer: str, exc: FrameError) -> None:
        penalty = {"oversize": 50, "displaced": 5}.get(exc.reason, 25)
        self.gate.refuse(peer, RemoteProtocolError(str(exc), penalty=penalty), exc.reason)

    def _on_ban(self, peer: str) -> None:
        if peer in self.banned:
            return
        now_s = trio.current_time()
        for ended in self.banned.add(peer, now_s):
            self.network.unblock(ended)  # the oldest ban, ended early (bounded)
            self.scorer.end_ban(ended, now_s)  # one ban, one end: requests too
        self._ban_added.set()
        self.metrics.banned.inc()
        self.network.block(peer)
        try:
            self._ban_send.send_nowait(peer)
        except trio.WouldBlock:
            pass  # blocked already; the disconnect happens when the peer next sends

    # -- services ------------------------------------------------------------

    async def run(self, *, task_status: TaskStatus[Node] = trio.TASK_STATUS_IGNORED) -> None:
        await self.store.set_identity("node_id", self.node_id)
        await self.store.prune_peers(self.max_stored_peers, self._wall_ms())
        await self._restore_adverts()
        await self.record.load()
        self.network.watch_peers(self._notify)  # wait_until sees connections change
        await self.network.subscribe(CAPACITY_TOPIC, self._on_gossip)
        await self.network.subscribe(JOBS_TOPIC, self._on_gossip)
        await self.network.subscribe(RECORD_TOPIC, self._on_gossip)
        self.network.set_stream_handler(
            MARKET_PROTOCOL, serve_requests(self._on_request, self.limits, self._on_bad_frame)
        )
        self.network.set_stream_handler(
            RECORD_SYNC_PROTOCOL, serve_requests(self.record.serve, SYNC_LIMITS, self._on_bad_frame)
        )
        self.discovery.add_candidate(self.config.bootstrap, pinned=True)
        async with trio.open_nursery() as outer:
            outer.start_soon(self._persist_loop)
            async with trio.open_nursery() as services:
                await services.start(self.discovery.run)
                await services.start(self.record.run)
                services.start_soon(self._ban_loop)
                services.start_soon(self._unban_loop)
                services.start_soon(self._advert_loop)
                log_event(
                    logger,
                    logging.INFO,
                    "node started",
                    peer=self.node_id,
                    addrs=self.network.listen_addrs(),
                )
                task_status.started(self)
                await self._stop.wait()
                services.cancel_scope.cancel()
            self._persist_send.close()
            with trio.move_on_after(self.config.shutdown_grace_s):
                await self._persisted.wait()
            outer.cancel_scope.cancel()
        log_event(logger, logging.INFO, "node stopped", peer=self.node_id)

    async def _persist_loop(self) -> None:
        saved = 0
        async with self._persist_recv:
            async for peer, envelope, addrs, now_ms in self._persist_recv:
                await self.store.save_advert(peer, envelope, addrs, now_ms)
                saved += 1
                if saved % PRUNE_EVERY == 0:
                    await self.store.prune_peers(self.max_stored_peers, now_ms)
        self._persisted.set()

    async def _ban_loop(self) -> None:
        async for peer in self._ban_recv:
            score = self.scorer.score(peer, trio.current_time())
            log_event(logger, logging.WARNING, "peer banned", peer=peer, score=round(score, 1))
            until_ms = self._wall_ms() + int(self.config.ban_s * 1000)
            await self.network.disconnect(peer)
            await self.store.ban_peer(peer, until_ms)
            self._notify()

    async def _unban_loop(self) -> None:
        """End each ban after ``ban_s`` (docs/PROTOCOL.md §9): the peer may connect and
        gossip again, its score still decaying from the ban."""
        while True:
            end_s = self.banned.next_end_s()
            if end_s is None:
                self._ban_added = trio.Event()
                await self._ban_added.wait()
                continue
            await trio.sleep_until(end_s)
            for peer in self.banned.expire(trio.current_time()):
                self.network.unblock(peer)
                log_event(logger, logging.INFO, "peer ban ended", peer=peer)
            self._notify()

    def make_advert(self) -> CapacityAdvert:
        addrs = [a for a in self.network.listen_addrs() if "/0.0.0.0/" not in a and len(a) <= 256]
        own = self.own_capacity
        return CapacityAdvert(
            roles=self.config.roles,
            gpus=own.gpus,
            renderer_builds=own.renderer_builds,
            score_ru_per_hour=own.score_ru_per_hour,
            price_wei_per_ru=own.price_wei_per_ru,
            stake_wei=min(self.confirmed_stake_wei, 2**256 - 1),
            payment=self._payment,
            addrs=tuple(addrs[:MAX_ADVERT_ADDRS]),
            free_slots=max(0, min(own.free_slots(), 2**16 - 1)),
            device_class=own.device_class[:64],
        )

    async def publish_advert(self) -> None:
        data = encode(self.key, self.make_advert(), nonce=self._nonce(), now_ms=self._wall_ms())
        try:
            await self.network.publish(CAPACITY_TOPIC, data)
        except Exception as exc:  # any network's failure: the next interval tries again
            log_event(logger, logging.WARNING, "advert not published", error=repr(exc))
            return
        self.metrics.messages_out.labels(CapacityAdvert.TYPE).inc()

    async def _advert_loop(self) -> None:
        """Advertise every interval, and soon after a new peer appears (it missed the last).

        "Appears" is either a connection that has settled for ``SETTLE_S``
        (gossipsub subscriptions are exchanged by then) or a first advert
        from a peer we had never heard of (it is subscribed, by construction).
        """
        last_s, told = -math.inf, set[str]()
        first_seen_s: dict[str, float] = {}
        while True:
            now_s = trio.current_time()
            peers = set(self.network.connected_peers())
            first_seen_s = {p: first_seen_s.get(p, now_s) for p in peers}
            settled = {p for p, t in first_seen_s.items() if now_s - t >= SETTLE_S}
            fresh = bool(settled - told) or self._readvertise
            if now_s - last_s >= self.config.advert_interval_s or (
                fresh and now_s - last_s >= SETTLE_S
            ):
                self._readvertise = False
                await self.publish_advert()
                last_s, told = now_s, told | settled
            told &= peers
            await trio.sleep(min(SETTLE_S, self.config.advert_interval_s))
