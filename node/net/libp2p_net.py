"""The real ``Network``: py-libp2p 0.8.1 (trio) with Noise, yamux, TCP, gossipsub.

Choices that differ from py-libp2p's defaults, and why:

* Security is Noise only. ``new_host`` otherwise also offers secio and
  *plaintext*, which would let a peer downgrade us to an unauthenticated link.
* Gossipsub keeps strict signing and the standard message id (origin peer id +
  seqno), so js and go libp2p nodes interoperate.
* Gossipsub's spam limit (10 msgs/s per peer per topic, own publishes
  included) and its 32-entry per-peer outbound queues drop messages silently
  at burst rates the node uses; both are raised to configured values. Our own
  peer scorer (``node.net.peer_score``) does the real rate limiting.
* py-libp2p's auto-connector is switched off: our ``Discovery`` owns
  dialling, so a banned peer is never redialled and a stranger's advertised
  address is dialled at the rate our dial policy allows, not again and again
  from the peerstore. Zero watermarks do not do it in 0.8.1 (the target is the
  midpoint of low and the default high watermark, 150 connections), and a zero
  high watermark would make the pruner close every connection.
* Banned peers are refused at connection time by a notifee (py-libp2p's own
  gate filters by IP only).
* Delivery happens in the topic validator, not through the subscription
  channel (32 entries, overflow dropped with only a log line): a message the
  node's handler refuses is then also never forwarded to the mesh. The
  validator hands the handler the *forwarding* peer too, so a REJECT blames
  the peer that sent us the bytes (see ``node.net.port.Verdict``).
* The peerstore pins the node's own record. py-libp2p's holds at most 1,000
  peers and, when full, evicts peers without addresses first — the node's own
  key record has none, so a thousand dialled strangers made ``publish``
  raise ``PeerStoreError`` (a ``KeyError``) and the node exit.
* ``publish`` turns every exception of the library into ``NetworkError``: a
  failed advert is logged, never fatal.
* Circuit relay v2 is wired in by ``node.net.relay``: ``connect`` dials
  ``/p2p-circuit`` addresses through it (``host.connect`` drops them), and a
  node that knows it is behind NAT (``private``) lists only its relay
  addresses as the ones others can dial.
* The Kademlia DHT (``node.net.dht``), when ``dht`` is not "off", runs with
  bounded stores and bounded inbound streams; ``Libp2pNetwork.dht`` is it.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import multiaddr
import trio
from libp2p import create_yamux_muxer_option, new_host
from libp2p.abc import INotifee
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.crypto.x25519 import create_new_key_pair as create_x25519_key_pair
from libp2p.custom_types import TProtocol
from libp2p.exceptions import BaseLibp2pError
from libp2p.kad_dht.kad_dht import DHTMode
from libp2p.network.config import ConnectionConfig
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import info_from_p2p_addr
from libp2p.pubsub.gossipsub import GossipSub
from libp2p.security.noise.transport import PROTOCOL_ID as NOISE_PROTOCOL_ID
from libp2p.security.noise.transport import Transport as NoiseTransport
from libp2p.tools.anyio_service import background_trio_service
from libp2p.tools.anyio_service.exceptions import LifecycleError

from node.net.dht import BoundedDHT
from node.net.dht_store import DhtLimits
from node.net.libp2p_parts import PinnedPeerStore, ResizingQueues, TunedPubsub
from node.net.port import (
    ByteStream,
    GossipHandler,
    NetworkError,
    PeerWatchers,
    StreamHandler,
    Verdict,
)
from node.net.relay import RelayHopLimits, Relaying, is_circuit, run_relaying
from protocol import NodeKey

logger = logging.getLogger(__name__)
# Not /meshsub/1.2.0: with it, py-libp2p 0.8.1 keeps ten idle, fully meshed
# nodes at ~40 % of a core of control chatter (1 % without; measured with
# bench/gossip.py's setup). js and go libp2p still speak 1.1.
GOSSIPSUB_PROTOCOLS = [TProtocol("/meshsub/1.1.0"), TProtocol("/meshsub/1.0.0")]
QUIC_DIAL_TIMEOUT_S = 5.0
_FAILURES = (BaseLibp2pError, OSError, trio.BrokenResourceError, trio.ClosedResourceError)


@dataclass(frozen=True)
class Libp2pSettings:
    listen_addrs: tuple[str, ...] = ("/ip4/127.0.0.1/tcp/0",)
    mdns: bool = False
    gossip_rate_per_s: float = 1000.0
    gossip_queue_len: int = 4096
    heartbeat_interval_s: int = 1
    max_gossip_rpc_bytes: int = 1 << 20
    relay_hop: RelayHopLimits | None = None  # be a relay for others (the coordinator)
    hole_punch: bool = False  # DCUtR: try to replace relayed connections by direct ones
    quic: bool = False  # also listen on QUIC (udp/<same port>/quic-v1) beside each TCP address
    dht: str = "off"  # Kademlia: "server" (answers), "client" (only asks), "off"
    dht_limits: DhtLimits = field(default_factory=DhtLimits)


class _Libp2pStream:
    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self.remote_host: str | None = None
        with contextlib.suppress(Exception):  # not every transport knows it
            address = stream.get_remote_address()
            self.remote_host = str(address[0]) if address else None

    async def send_all(self, data: bytes) -> None:
        try:
            await self._stream.write(data)
        except _FAILURES as exc:
            raise NetworkError(f"stream write failed: {exc!r}") from exc

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        try:
            return bytes(await self._stream.read(max_bytes))
        except EOFError:
            return b""
        except _FAILURES as exc:
            raise NetworkError(f"stream read failed: {exc!r}") from exc

    async def aclose(self) -> None:
        try:
            await self._stream.close()
        except _FAILURES:
            pass


class _RefuseBlocked(INotifee):
    """Closes connections from blocked peers as soon as they are established, and
    tells the watchers (``Network.watch_peers``) of every connection made or ended."""

    def __init__(self, blocked: set[str], watchers: PeerWatchers) -> None:
        self._blocked = blocked
        self._watchers = watchers

    async def connected(self, network: Any, conn: Any) -> None:
        if conn.muxed_conn.peer_id.to_base58() in self._blocked:
            with contextlib.suppress(*_FAILURES):
                await conn.close()
        self._watchers.tell()

    async def disconnected(self, network: Any, conn: Any) -> None:
        self._watchers.tell()

    async def opened_stream(self, network: Any, stream: Any) -> None:
        return

    async def closed_stream(self, network: Any, stream: Any) -> None:
        return

    async def listen(self, network: Any, multiaddr: Any) -> None:
        return

    async def listen_close(self, network: Any, multiaddr: Any) -> None:
        return


class Libp2pNetwork:
    def __init__(
        self,
        host: Any,
        pubsub: TunedPubsub,
        relaying: Relaying | None = None,
        dht: BoundedDHT | None = None,
    ) -> None:
        self.host = host
        self.pubsub = pubsub
        self.relaying = relaying
        self.dht = dht
        self.private = False  # behind NAT: only relay addresses are dialable
        self._blocked: set[str] = set()
        self._peer_watchers = PeerWatchers()
        host.get_network().register_notifee(_RefuseBlocked(self._blocked, self._peer_watchers))

    @property
    def local_peer(self) -> str:
        return str(self.host.get_id().to_base58())

    def listen_addrs(self) -> list[str]:
        circuits = self.relaying.circuit_addrs() if self.relaying else []
        if self.private:
            return circuits
        return circuits + [str(addr) for addr in self.host.get_addrs()]

    def connected_peers(self) -> list[str]:
        return sorted(peer.to_base58() for peer in self.host.get_connected_peers())

    async def connect(self, addr: str) -> str:
        try:
            info = info_from_p2p_addr(multiaddr.Multiaddr(addr))
        except Exception as exc:  # multiaddr raises a zoo of types for bad text
            raise NetworkError(f"not a dialable multiaddr with /p2p/: {addr}") from exc
        peer = str(info.peer_id.to_base58())
        if peer in self._blocked:
            raise NetworkError(f"{peer} is banned")
        if is_circuit(addr):
            if self.relaying is None:
                raise NetworkError(f"no relay transport to dial {addr}")
            return await self.relaying.dial(addr)
        # A QUIC dial to a port nobody answers waits out py-libp2p's 10 s handshake
        # timeout, twice (the swarm retries); bounded here so the TCP fallback comes soon.
        limit_s = QUIC_DIAL_TIMEOUT_S if "/quic-v1" in addr else math.inf
        try:
            with trio.fail_after(limit_s):
                await self.host.connect(info)
        except trio.TooSlowError as exc:
            raise NetworkError(f"dial {addr}: no QUIC handshake in {limit_s} s") from exc
        except _FAILURES as exc:
            raise NetworkError(f"dial {addr} failed: {exc}") from exc
        return peer

    async def disconnect(self, peer: str) -> None:
        try:
            await self.host.disconnect(ID.from_base58(peer))
        except _FAILURES:
            pass

    def watch_peers(self, callback: Callable[[], None]) -> None:
        self._peer_watchers.add(callback)

    def block(self, peer: str) -> None:
        self._blocked.add(peer)
        self.pubsub.add_to_blacklist(ID.from_base58(peer))

    def unblock(self, peer: str) -> None:
        self._blocked.discard(peer)
        self.pubsub.remove_from_blacklist(ID.from_base58(peer))

    async def subscribe(self, topic: str, handler: GossipHandler) -> None:
        me = self.host.get_id()

        def validate(forwarder: ID, msg: Any) -> bool:
            origin = ID(msg.from_id)
            if origin == me:
                return True
            try:
                verdict = handler(topic, origin.to_base58(), bytes(msg.data), forwarder.to_base58())
            except Exception:
                # An exception here would kill pubsub's task manager; refuse instead.
                logger.exception("gossip handler failed on %s", topic)
                return False
            # py-libp2p validators are boolean: IGNORE and REJECT both drop the
            # message unforwarded; the blame was laid by the handler.
            return verdict is Verdict.ACCEPT or verdict is True

        self.pubsub.set_topic_validator(topic, validate, is_async_validator=False)
        await self.pubsub.subscribe(topic)

    async def publish(self, topic: str, data: bytes) -> None:
        try:
            await self.pubsub.publish(topic, data)
        except Exception as exc:  # the library raises KeyErrors too: never fatal to us
            raise NetworkError(f"publish on {topic} failed: {exc!r}") from exc

    def set_stream_handler(self, protocol_id: str, handler: StreamHandler) -> None:
        async def on_stream(stream: Any) -> None:
            peer = stream.muxed_conn.peer_id.to_base58()
            wrapped = _Libp2pStream(stream)
            if peer in self._blocked:
                await wrapped.aclose()
                return
            await handler(peer, wrapped)

        self.host.set_stream_handler(TProtocol(protocol_id), on_stream)

    async def open_stream(self, peer: str, protocol_id: str) -> ByteStream:
        try:
            stream = await self.host.new_stream(ID.from_base58(peer), [TProtocol(protocol_id)])
        except _FAILURES as exc:
            raise NetworkError(f"open {protocol_id} to {peer} failed: {exc}") from exc
        return _Libp2pStream(stream)


def _teardown_race(exc: BaseException) -> bool:
    if isinstance(exc, LifecycleError):  # "Cannot schedule task after service has stopped"
        return True
    return isinstance(exc, RuntimeError) and "closed to new arrivals" in str(exc)


@asynccontextmanager
async def _quiet_teardown(manager: AbstractAsyncContextManager[Any]) -> AsyncIterator[Any]:
    """Enter ``manager``; on a clean exit, drop py-libp2p's own shutdown races.

    py-libp2p 0.8.1's service manager may spawn a task into a nursery that is
    already closing while many connections close at once ("Nursery is closed
    to new arrivals"). That is noise of a finished host, not a failure of the
    node; anything else, and every error from the body, still propagates.
    """
    body_failed = False
    try:
        async with manager as value:
            try:
                yield value
            except BaseException:
                body_failed = True
                raise
    except BaseExceptionGroup as group:
        if body_failed:
            raise
        rest = group.subgroup(
            lambda e: not isinstance(e, BaseExceptionGroup) and not _teardown_race(e)
        )
        if rest is not None:
            raise rest from None
        logger.debug("ignored py-libp2p teardown race: %r", group)


def with_quic(listen_addrs: tuple[str, ...]) -> tuple[str, ...]:
    """``listen_addrs`` plus a QUIC address on the same IP and port for each TCP one."""
    quic = []
    for addr in listen_addrs:
        parts = addr.split("/")
        if len(parts) == 5 and parts[1] in ("ip4", "ip6") and parts[3] == "tcp":
            quic.append(f"/{parts[1]}/{parts[2]}/udp/{parts[4]}/quic-v1")
    return tuple(listen_addrs) + tuple(a for a in quic if a not in listen_addrs)


def listen_multiaddrs(settings: Libp2pSettings) -> list[multiaddr.Multiaddr]:
    addrs = with_quic(settings.listen_addrs) if settings.quic else settings.listen_addrs
    return [multiaddr.Multiaddr(a) for a in addrs]


def build_host(key: NodeKey, settings: Libp2pSettings, sec_opt: Any = None) -> Any:
    """A libp2p host whose peer id is the node id; Noise is its only security.

    The transports follow the listen addresses: TCP, and QUIC (py-libp2p's,
    aioquic under trio; TLS 1.3 is its security) when one is a quic-v1 address.
    """
    key_pair = create_new_key_pair(key.seed)
    noise = NoiseTransport(key_pair, noise_privkey=create_x25519_key_pair().private_key)
    peerstore = PinnedPeerStore({ID.from_pubkey(key_pair.public_key)})
    host = new_host(
        key_pair=key_pair,
        peerstore_opt=peerstore,
        sec_opt=sec_opt or {NOISE_PROTOCOL_ID: noise},
        muxer_opt=create_yamux_muxer_option(),
        enable_mDNS=settings.mdns,
        listen_addrs=listen_multiaddrs(settings),
        connection_config=ConnectionConfig(min_connections=0, low_watermark=0),
    )
    swarm: Any = host.get_network()
    swarm.auto_connector.maybe_connect = _never_auto_dial
    return host


async def _never_auto_dial() -> None:
    """Replaces py-libp2p's auto-connector cycle (see module docstring)."""
    return


@asynccontextmanager
async def open_libp2p_network(
    key: NodeKey, settings: Libp2pSettings
) -> AsyncIterator[Libp2pNetwork]:
    host = build_host(key, settings)
    router = GossipSub(
        protocols=GOSSIPSUB_PROTOCOLS,
        degree=6,
        degree_low=4,
        degree_high=12,
        heartbeat_interval=settings.heartbeat_interval_s,
        max_messages_per_topic_per_second=settings.gossip_rate_per_s,
    )
    pubsub = TunedPubsub(
        host, router, strict_signing=True, max_inbound_rpc_size=settings.max_gossip_rpc_bytes
    )
    pubsub.peer_queues = ResizingQueues(settings.gossip_queue_len)
    listen = listen_multiaddrs(settings)
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(_quiet_teardown(host.run(listen)))
        await stack.enter_async_context(background_trio_service(pubsub))
        await stack.enter_async_context(background_trio_service(router))
        await pubsub.wait_until_ready()
        relaying = Relaying(host, settings.relay_hop, settings.hole_punch)
        await stack.enter_async_context(run_relaying(relaying))
        network = Libp2pNetwork(host, pubsub, relaying)
        if settings.dht != "off":
            mode = DHTMode.SERVER if settings.dht == "server" else DHTMode.CLIENT
            network.dht = BoundedDHT(host, mode, settings.dht_limits, network._blocked.__contains__)
            await stack.enter_async_context(background_trio_service(network.dht))
        yield network
