"""Hostile peers for the stress suite: real libp2p hosts doing what attack runs did.

Only loopback is ever dialled (DESIGN.md's traffic rule): every address an
attacker advertises or connects to is 127.0.0.1.
"""

from __future__ import annotations

import os
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import multiaddr
import trio
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.custom_types import TProtocol
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import info_from_p2p_addr
from libp2p.pubsub.pb import rpc_pb2
from libp2p.pubsub.validators import PUBSUB_SIGNING_PREFIX

from node.net.libp2p_net import Libp2pNetwork, Libp2pSettings, build_host, open_libp2p_network
from protocol import NodeKey


@asynccontextmanager
async def gossiper(
    target: str, topics: list[str], key: NodeKey | None = None
) -> AsyncIterator[Libp2pNetwork]:
    """A pubsub peer connected to ``target`` that knows it subscribes to ``topics``."""
    async with open_libp2p_network(key or NodeKey.generate(), Libp2pSettings()) as net:
        peer = await net.connect(target)
        for topic in topics:
            with trio.fail_after(20):
                await net.pubsub.wait_for_subscription(ID.from_base58(peer), topic)
        yield net


async def forge(net: Libp2pNetwork, origin: NodeKey, topic: str, data: bytes) -> None:
    """Gossip ``data`` as ``origin`` (a throwaway key the attacker holds), forwarded by ``net``."""
    pair = create_new_key_pair(origin.seed)
    msg = rpc_pb2.Message(
        data=data,
        topicIDs=[topic],
        from_id=ID.from_pubkey(pair.public_key).to_bytes(),
        seqno=os.urandom(8),
    )
    msg.signature = pair.private_key.sign(PUBSUB_SIGNING_PREFIX.encode() + msg.SerializeToString())
    msg.key = pair.public_key.serialize()
    await net.pubsub.push_msg(net.host.get_id(), msg)


async def hold_silent_streams(
    target: str, protocol: str, count: int, until: trio.Event, opened: trio.Semaphore
) -> int:
    """A fresh identity holding ``count`` silent streams to ``target`` until ``until``.

    Each stream the target closes is reopened. Returns how many were opened.
    """
    host = build_host(NodeKey.generate(), Libp2pSettings())
    info = info_from_p2p_addr(multiaddr.Multiaddr(target))
    total = 0
    async with host.run([multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")]):
        await host.connect(info)

        async def hold() -> None:
            nonlocal total
            first = True
            while not until.is_set():
                try:
                    stream = await host.new_stream(info.peer_id, [TProtocol(protocol)])
                except Exception:
                    return  # refused: banned, or the connection is gone
                total += 1
                if first:
                    opened.release()
                    first = False
                try:
                    with trio.move_on_after(30):
                        await stream.read(1)  # returns (or raises) once the target closes it
                except Exception:
                    pass

        async with trio.open_nursery() as nursery:
            for _ in range(count):
                nursery.start_soon(hold)
            await until.wait()
            nursery.cancel_scope.cancel()
    return total


async def garbage_frames(net: Libp2pNetwork, peer: str, protocol: str) -> None:
    """One stream of junk: a claimed 1 GiB frame, or random bytes."""
    stream = await net.open_stream(peer, protocol)
    junk = os.urandom(64)
    await stream.send_all(struct.pack(">I", 1 << 30) + junk if junk[0] & 1 else junk)
    await stream.aclose()


def throwaway_keys(count: int) -> list[NodeKey]:
    return [NodeKey.generate() for _ in range(count)]
