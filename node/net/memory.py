"""In-memory ``Network`` for fast tests: no sockets, no crypto handshakes.

A ``MemoryHub`` is the wire: nodes opened on the same hub can connect to each
other by address ``/memory/<peer>/p2p/<peer>``. Gossip floods over
connections with a seen-set (like gossipsub without the mesh), runs the
receiving node's handler as a validator and forwards only what it accepted.
Streams are trio memory streams.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import trio
import trio.testing

from node.net.port import (
    ByteStream,
    GossipHandler,
    NetworkError,
    PeerWatchers,
    StreamHandler,
    accepted,
)


class MemoryHub:
    def __init__(self) -> None:
        self.nodes: dict[str, MemoryNetwork] = {}
        # Gossip message ids: one counter for the hub, so a node restarted on the hub
        # never reuses an id its peers saw (libp2p seeds its seqno from the clock).
        self.message_seq = itertools.count()

    @asynccontextmanager
    async def open(self, peer: str) -> AsyncIterator[MemoryNetwork]:
        async with trio.open_nursery() as nursery:
            net = MemoryNetwork(self, peer, nursery)
            self.nodes[peer] = net
            try:
                yield net
            finally:
                del self.nodes[peer]
                for other in list(net._links):  # no await: a closing node is often cancelled
                    net._unlink(other)  # (a checkpoint here raised, and its peers kept it)
                nursery.cancel_scope.cancel()


class MemoryNetwork:
    def __init__(self, hub: MemoryHub, peer: str, nursery: trio.Nursery) -> None:
        self._hub = hub
        self._peer = peer
        self._nursery = nursery
        self._links: set[str] = set()
        self._blocked: set[str] = set()
        self._topics: dict[str, GossipHandler] = {}
        self._seen: set[tuple[str, int]] = set()
        self._seq = hub.message_seq
        self._streams: dict[str, StreamHandler] = {}
        self._peer_watchers = PeerWatchers()

    @property
    def local_peer(self) -> str:
        return self._peer

    def listen_addrs(self) -> list[str]:
        return [f"/memory/{self._peer}/p2p/{self._peer}"]

    def connected_peers(self) -> list[str]:
        return sorted(self._links)

    def watch_peers(self, callback: Callable[[], None]) -> None:
        self._peer_watchers.add(callback)

    async def connect(self, addr: str) -> str:
        await trio.lowlevel.checkpoint()
        peer = addr.rsplit("/p2p/", 1)[-1]
        other = self._hub.nodes.get(peer)
        if other is None or peer == self._peer:
            raise NetworkError(f"no node at {addr}")
        self._links.add(peer)
        other._links.add(self._peer)
        self._peer_watchers.tell()
        other._peer_watchers.tell()
        return peer

    async def disconnect(self, peer: str) -> None:
        await trio.lowlevel.checkpoint()
        self._unlink(peer)

    def _unlink(self, peer: str) -> None:
        self._links.discard(peer)
        other = self._hub.nodes.get(peer)
        if other is not None:
            other._links.discard(self._peer)
            other._peer_watchers.tell()
        self._peer_watchers.tell()

    def block(self, peer: str) -> None:
        self._blocked.add(peer)

    def unblock(self, peer: str) -> None:
        self._blocked.discard(peer)

    async def subscribe(self, topic: str, handler: GossipHandler) -> None:
        await trio.lowlevel.checkpoint()
        self._topics[topic] = handler

    async def publish(self, topic: str, data: bytes) -> None:
        await self.publish_as(self._peer, topic, data)

    async def publish_as(self, origin: str, topic: str, data: bytes) -> None:
        """Gossip ``data`` as if ``origin`` had published it and we forward it.

        On libp2p the origin signs its gossip, so claiming an origin costs an
        attacker a fresh key, nothing more; tests of forwarder blame use this.
        """
        await trio.lowlevel.checkpoint()
        message_id = (origin, next(self._seq))
        self._seen.add(message_id)
        self._forward(topic, origin, message_id, data)

    def _forward(self, topic: str, origin: str, message_id: tuple[str, int], data: bytes) -> None:
        for peer in sorted(self._links):
            other = self._hub.nodes.get(peer)
            if other is not None:
                other._receive(topic, self._peer, origin, message_id, data)

    def _receive(
        self, topic: str, forwarder: str, origin: str, message_id: tuple[str, int], data: bytes
    ) -> None:
        if message_id in self._seen or forwarder in self._blocked or origin in self._blocked:
            return
        self._seen.add(message_id)
        handler = self._topics.get(topic)
        if handler is not None and accepted(handler(topic, origin, data, forwarder)):
            self._forward(topic, origin, message_id, data)

    def _remote(self, peer: str) -> MemoryNetwork:
        other = self._hub.nodes.get(peer)
        if other is None or peer not in self._links:
            raise NetworkError(f"not connected to {peer}")
        return other

    def set_stream_handler(self, protocol_id: str, handler: StreamHandler) -> None:
        self._streams[protocol_id] = handler

    async def open_stream(self, peer: str, protocol_id: str) -> ByteStream:
        other = self._remote(peer)
        if self._peer in other._blocked:
            raise NetworkError(f"{peer} refuses us")
        handler = other._streams.get(protocol_id)
        if handler is None:
            raise NetworkError(f"{peer} does not speak {protocol_id}")
        ours, theirs = trio.testing.memory_stream_pair()
        other._nursery.start_soon(handler, self._peer, theirs)
        return ours
