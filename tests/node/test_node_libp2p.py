"""The libp2p Network: Noise only, burst delivery through gossipsub, streams."""

from __future__ import annotations

import multiaddr
import pytest
import trio
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import info_from_p2p_addr
from libp2p.security.insecure.transport import PLAINTEXT_PROTOCOL_ID, InsecureTransport
from libp2p.security.secio import transport as secio
from node_helpers import libp2p_nodes

from node.net.libp2p_net import Libp2pSettings, build_host
from node.net.port import NetworkError
from node.net.reqresp import ReqRespLimits, request, serve_requests
from protocol import NodeKey

TOPIC = "/pictor/test"


@pytest.mark.parametrize("weak", ["plaintext", "secio"])
async def test_refuses_plaintext_and_secio(weak: str) -> None:
    async with libp2p_nodes(1) as [(_, target)]:
        key = NodeKey.generate()
        pair = create_new_key_pair(key.seed)
        if weak == "plaintext":
            sec = {PLAINTEXT_PROTOCOL_ID: InsecureTransport(pair)}
        else:
            sec = {secio.ID: secio.Transport(pair)}
        attacker = build_host(key, Libp2pSettings(), sec_opt=sec)
        info = info_from_p2p_addr(multiaddr.Multiaddr(target.listen_addrs()[0]))
        async with attacker.run([multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")]):
            with pytest.raises(Exception):  # noqa: B017 - libp2p raises assorted dial errors
                await attacker.connect(info)
        assert attacker.get_id().to_base58() not in target.connected_peers()


async def test_noise_peers_connect() -> None:
    async with libp2p_nodes(2) as [(_, a), (_, b)]:
        assert await a.connect(b.listen_addrs()[0]) == b.local_peer
        assert b.local_peer in a.connected_peers()


async def test_burst_through_gossipsub_is_not_dropped() -> None:
    burst = 300  # default gossipsub drops after 10/s and 32 queued
    async with libp2p_nodes(3) as nodes:
        (_, a), (_, b), (_, c) = nodes
        got: dict[str, list[bytes]] = {b.local_peer: [], c.local_peer: []}
        done = {peer: trio.Event() for peer in got}

        def collector(net_peer: str):  # type: ignore[no-untyped-def]
            def handle(topic: str, origin: str, data: bytes, forwarder: str) -> bool:
                got[net_peer].append(data)
                if len(got[net_peer]) == burst:
                    done[net_peer].set()
                return True

            return handle

        await a.subscribe(TOPIC, lambda *_: True)
        await b.subscribe(TOPIC, collector(b.local_peer))
        await c.subscribe(TOPIC, collector(c.local_peer))
        await b.connect(a.listen_addrs()[0])
        await c.connect(b.listen_addrs()[0])  # c hears a only through b
        for net, other in ((a, b), (b, c)):
            await net.pubsub.wait_for_subscription(ID.from_base58(other.local_peer), TOPIC)
        for i in range(burst):
            await a.publish(TOPIC, b"m%d" % i)
        with trio.fail_after(20):
            for event in done.values():
                await event.wait()
        expected = [b"m%d" % i for i in range(burst)]
        assert sorted(got[b.local_peer]) == sorted(expected)
        assert sorted(got[c.local_peer]) == sorted(expected)


async def test_request_response_and_size_limit() -> None:
    limits = ReqRespLimits(max_request_bytes=1000, timeout_s=5)
    bad: list[str] = []

    async def echo(peer: str, data: bytes) -> bytes:
        return peer.encode() + b":" + data

    async with libp2p_nodes(2) as [(_, a), (_, b)]:
        b.set_stream_handler(
            "/t/1", serve_requests(echo, limits, lambda p, e: bad.append(e.reason))
        )
        await a.connect(b.listen_addrs()[0])
        assert (
            await request(a, b.local_peer, "/t/1", b"hi", limits) == a.local_peer.encode() + b":hi"
        )
        big = ReqRespLimits(max_request_bytes=5000, timeout_s=5)
        with pytest.raises(NetworkError):
            await request(a, b.local_peer, "/t/1", b"x" * 2000, big)
        assert bad == ["oversize"]


async def test_a_handler_that_raises_leaves_the_request_unanswered_and_the_host_up() -> None:
    limits = ReqRespLimits(max_request_bytes=1000, timeout_s=5)

    async def flaky(peer: str, data: bytes) -> bytes:
        if data == b"boom":
            raise RuntimeError("Cannot operate on a closed database.")  # as at shutdown
        return data

    async with libp2p_nodes(2) as [(_, a), (_, b)]:
        b.set_stream_handler("/t/1", serve_requests(flaky, limits, lambda p, e: None))
        await a.connect(b.listen_addrs()[0])
        with pytest.raises(NetworkError):
            await request(a, b.local_peer, "/t/1", b"boom", limits)
        assert await request(a, b.local_peer, "/t/1", b"next", limits) == b"next"


async def test_a_banned_peer_hanging_up_during_teardown_does_not_stop_pubsub() -> None:
    """py-libp2p's blacklist teardown deleted the peer after an await; if the peer's
    own disconnect removed it meanwhile, the KeyError stopped pubsub (and the node)."""
    from node.net.libp2p_net import open_libp2p_network

    async with open_libp2p_network(NodeKey.generate(), Libp2pSettings()) as net:
        gone = ID.from_pubkey(create_new_key_pair().public_key)
        peers = net.pubsub.peers

        class HangsUp:  # the stream of a peer that disconnects while we reset it
            async def reset(self) -> None:
                await trio.lowlevel.checkpoint()
                peers.pop(gone, None)  # what pubsub's dead-peer handler does

        peers[gone] = HangsUp()  # type: ignore[assignment]
        await net.pubsub._teardown_if_connected(gone)
        assert gone not in peers
        net.block(gone.to_base58())  # the real path: blacklist, then teardown as a task
        await net.publish("t", b"still running")
