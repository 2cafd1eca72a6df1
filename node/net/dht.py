"""Kademlia DHT for the node: rendezvous and peer routing without a peer list.

Theory of operation. Every node runs py-libp2p 0.8.1's Kademlia DHT
(``/ipfs/kad/1.0.0``); a public node (and the coordinator) in server mode, a
node behind NAT in client mode — it asks, and is never asked, since nobody
could dial it. Two uses, both built on *provider records*, because only the
peer itself can publish one (the server refuses a provider that is not the
sender) and it carries the addresses the peer chose:

* rendezvous: each node provides ``network_key(chain_id)`` with its dialable
  addresses (its relay circuits when private) and looks up the providers of
  that key; what it finds feeds ``Discovery`` as unpinned candidates, under
  the same dial policy as adverts. A node then needs only one DHT server it
  can reach (a coordinator) to find the others — no bootstrap list that
  lists them;
* peer routing: each node also provides ``peer_key(its id)``;
  ``find_peer_addrs(peer)`` returns what that peer published, e.g. a
  requester's relay address when no advert carries it. py-libp2p's own
  ``find_peer`` (FIND_NODE) answers with identify's listen addresses, which
  behind NAT are LAN addresses nobody can dial.

Everything a stranger can put in it is bounded (``node.net.dht_store``), and
inbound DHT streams are bounded per peer, per IP and in time here: the
library serves at most 12 streams at once and reads each until the peer
closes it, so 12 silent streams stopped the DHT for everyone.

The library's own ``provide`` and ``find_providers`` are not used:
``provide`` sends ``host.get_addrs()`` (LAN addresses behind NAT), and
``find_providers`` returns the local store when it holds any record — after
our own ``provide``, only ourselves.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections import Counter
from collections.abc import Callable
from typing import Any

import multiaddr
import trio
import varint
from libp2p.custom_types import TProtocol
from libp2p.kad_dht.common import PROTOCOL_ID
from libp2p.kad_dht.kad_dht import DHTMode, KadDHT
from libp2p.kad_dht.pb.kademlia_pb2 import Message
from libp2p.peer.id import ID
from libp2p.peer.peerstore import env_to_send_in_RPC

from node.net.dht_store import SENDER, BoundedProviderStore, BoundedValueStore, DhtLimits

logger = logging.getLogger(__name__)
QUERY_TIMEOUT_S = 10.0
MAX_QUERIED = 8  # servers asked per lookup


def network_key(chain_id: int) -> bytes:
    """The rendezvous key: one per settlement chain (nodes on different chains never meet)."""
    return hashlib.sha256(b"pictor/1/network/%d" % chain_id).digest()


def peer_key(peer: str) -> bytes:
    return hashlib.sha256(b"pictor/1/peer/" + ID.from_base58(peer).to_bytes()).digest()


def _remote_ip(stream: Any) -> str | None:
    with contextlib.suppress(Exception):
        address = stream.get_remote_address()
        return str(address[0]) if address else None
    return None


class BoundedDHT(KadDHT):
    def __init__(
        self,
        host: Any,
        mode: DHTMode,
        limits: DhtLimits | None = None,
        is_blocked: Callable[[str], bool] = lambda peer: False,
    ) -> None:
        super().__init__(host, mode, enable_random_walk=False)
        self.limits = limits or DhtLimits()
        self._is_blocked = is_blocked
        self.value_store = BoundedValueStore(host, self.local_peer_id, self.limits)
        self.provider_store = BoundedProviderStore(host, self.peer_routing, self.limits)
        self._streams_per_peer: Counter[str] = Counter()
        self._streams_per_ip: Counter[str] = Counter()
        self.refused_streams = 0

    async def handle_stream(self, stream: Any) -> None:
        peer = stream.muxed_conn.peer_id.to_base58()
        ip = _remote_ip(stream)
        limits = self.limits
        busy = (
            self.mode == DHTMode.CLIENT
            or self._is_blocked(peer)
            or self._streams_per_peer[peer] >= limits.streams_per_peer
            or (ip is not None and self._streams_per_ip[ip] >= limits.streams_per_ip)
            or self._inbound_limiter.borrowed_tokens >= self._inbound_limiter.total_tokens
        )
        if busy:
            self.refused_streams += 1
            with contextlib.suppress(Exception):
                await stream.reset()
            return
        self._streams_per_peer[peer] += 1
        if ip is not None:
            self._streams_per_ip[ip] += 1
        token = SENDER.set((peer, ip))
        try:
            with trio.move_on_after(limits.stream_s) as scope:
                async with self._inbound_limiter:
                    await self._do_handle_stream(stream)
            if scope.cancelled_caught:
                with contextlib.suppress(Exception):
                    await stream.reset()
        finally:
            SENDER.reset(token)
            self._streams_per_peer[peer] -= 1
            if self._streams_per_peer[peer] <= 0:
                del self._streams_per_peer[peer]
            if ip is not None:
                self._streams_per_ip[ip] -= 1
                if self._streams_per_ip[ip] <= 0:
                    del self._streams_per_ip[ip]

    async def add_peer(self, peer_id: ID, *, skip_server_mode_check: bool = False) -> bool:
        # py-libp2p adds every peer that opens a DHT stream, skipping the check
        # that it serves the DHT: client-mode askers (nodes behind NAT) were then
        # handed out as closer peers that nobody can dial. Always check.
        return bool(await self.routing_table.add_peer(peer_id))

    # -- client side -----------------------------------------------------

    async def join(self, peers: list[str]) -> int:
        """Put connected peers that serve the DHT into the routing table; how many are in."""
        for peer in peers:
            with contextlib.suppress(Exception):
                await self.routing_table.add_peer(ID.from_base58(peer))
        return int(self.routing_table.size())

    def _servers(self, key: bytes) -> list[ID]:
        return list(self.routing_table.find_local_closest_peers(key, MAX_QUERIED))

    async def provide_addrs(self, key: bytes, addrs: list[str]) -> int:
        """Send a provider record for ``key`` with ``addrs`` to the closest servers; how many
        took the message (a server over its bounds takes it and drops the record)."""
        raw = []
        for addr in addrs:
            own = "/p2p/" + self.local_peer_id.to_base58()
            addr = addr[: -len(own)] if addr.endswith(own) else addr
            with contextlib.suppress(Exception):
                raw.append(multiaddr.Multiaddr(addr).to_bytes())
        if not raw:
            return 0
        stored = 0

        async def send(peer: ID) -> None:
            nonlocal stored
            with trio.move_on_after(QUERY_TIMEOUT_S):
                if await self._add_provider_at(peer, key, raw):
                    stored += 1

        async with trio.open_nursery() as nursery:
            for peer in self._servers(key):
                nursery.start_soon(send, peer)
        return stored

    async def _add_provider_at(self, peer: ID, key: bytes, raw_addrs: list[bytes]) -> bool:
        message = Message()
        message.type = Message.MessageType.ADD_PROVIDER
        message.key = key
        envelope, _ = env_to_send_in_RPC(self.host)
        message.senderRecord = envelope
        provider = message.providerPeers.add()
        provider.id = self.local_peer_id.to_bytes()
        provider.addrs.extend(raw_addrs)
        data = message.SerializeToString()
        try:
            stream = await self.host.new_stream(peer, [TProtocol(PROTOCOL_ID)])
        except Exception as exc:
            logger.debug("dht: no stream to %s: %r", peer, exc)
            return False
        try:
            await stream.write(varint.encode(len(data)) + data)
            # The server echoes the request; a reset means it refused the whole message.
            return bool(await stream.read(1))
        except Exception as exc:
            logger.debug("dht: ADD_PROVIDER to %s failed: %r", peer, exc)
            return False
        finally:
            with contextlib.suppress(Exception):
                await stream.close()

    async def providers_of(self, key: bytes, count: int = 64) -> dict[str, list[str]]:
        """Providers of ``key`` (peer id -> full multiaddrs), asking the closest servers."""
        found: dict[str, list[str]] = {}
        asked: set[ID] = set()
        queue = self._servers(key)
        me = self.local_peer_id
        while queue and len(asked) < MAX_QUERIED and len(found) < count:
            batch, queue = queue[:3], queue[3:]
            results: list[tuple[list[Any], list[ID]]] = []
            async with trio.open_nursery() as nursery:
                for peer in batch:
                    asked.add(peer)
                    nursery.start_soon(self._ask_providers, peer, key, results)
            for providers, closer in results:
                for info in providers[:count]:
                    if info.peer_id == me:
                        continue
                    peer = info.peer_id.to_base58()
                    addrs = [f"{a}/p2p/{peer}" for a in info.addrs[: self.limits.provider_addrs]]
                    if addrs and len(found) < count:
                        found[peer] = addrs
                queue += [p for p in closer[:MAX_QUERIED] if p not in asked and p != me]
        return found

    async def _ask_providers(
        self, peer: ID, key: bytes, results: list[tuple[list[Any], list[ID]]]
    ) -> None:
        store = self.provider_store
        with trio.move_on_after(QUERY_TIMEOUT_S):
            results.append(await store._get_providers_from_peer_with_closers(peer, key))

    async def find_peer_addrs(self, peer: str) -> list[str]:
        """The addresses ``peer`` published under its own key (empty when none is found)."""
        return (await self.providers_of(peer_key(peer))).get(peer, [])
