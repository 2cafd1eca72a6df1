"""Circuit relay and reachability on loopback (the NAT itself: tests/netns)."""

from __future__ import annotations

import socket

import pytest
import trio
from libp2p.host.autonat import AutoNATService
from libp2p.host.autonat.pb.autonat_pb2 import Message
from libp2p.peer.id import ID
from libp2p.relay.circuit_v2.dcutr import DCUtRProtocol
from multiaddr import Multiaddr

from node.net.libp2p_net import Libp2pSettings, open_libp2p_network
from node.net.port import ByteStream, NetworkError
from node.net.reachability import DialBackAutoNAT, ask_reachability, keep_reachable
from node.net.relay import (
    MAX_PUNCH_ADDRS,
    PUNCH_BURST,
    GuardedDCUtR,
    RelayHopLimits,
    is_circuit,
    is_relayed,
    punchable,
)
from protocol import NodeKey

ECHO = "/pictor-test/echo/1"


async def _echo(peer: str, stream: ByteStream) -> None:
    await stream.send_all(b"echo:" + await stream.receive_some(64))
    await stream.aclose()


async def test_private_node_lists_only_its_relay_address_and_is_reached_through_it() -> None:
    hop = Libp2pSettings(relay_hop=RelayHopLimits(max_reservations=4))
    async with (
        open_libp2p_network(NodeKey.generate(), hop) as relay,
        open_libp2p_network(NodeKey.generate(), Libp2pSettings()) as private,
        open_libp2p_network(NodeKey.generate(), Libp2pSettings()) as dialler,
        trio.open_nursery() as nursery,
    ):
        assert private.relaying is not None
        changed = trio.Event()

        def on_change() -> None:  # called when going private, then once reserved
            if private.listen_addrs():
                changed.set()

        nursery.start_soon(keep_reachable, private, private.relaying, relay.listen_addrs(),
                           "private", on_change)  # fmt: skip
        with trio.fail_after(20):
            await changed.wait()
        addrs = private.listen_addrs()
        assert addrs and all(is_circuit(a) for a in addrs)
        assert addrs[0].startswith(relay.listen_addrs()[0] + "/p2p-circuit/p2p/")
        private.set_stream_handler(ECHO, _echo)
        with trio.fail_after(20):
            assert await dialler.connect(addrs[0]) == private.local_peer
            conns = dialler.host.get_network().get_connections(ID.from_base58(private.local_peer))
            assert conns and all(is_relayed(c) for c in conns)
            stream = await dialler.open_stream(private.local_peer, ECHO)
            await stream.send_all(b"hi")
            assert await stream.receive_some(64) == b"echo:hi"
        nursery.cancel_scope.cancel()


async def test_a_malformed_relay_address_is_skipped_not_fatal() -> None:
    async with open_libp2p_network(NodeKey.generate(), Libp2pSettings()) as node:
        assert node.relaying is not None
        calls: list[None] = []
        with trio.fail_after(5):  # returns: no valid relay to hold a slot at
            await keep_reachable(node, node.relaying, ["/ip4/1.2.3/tcp/x", "junk"], "private",
                                 lambda: calls.append(None))  # fmt: skip
        assert not calls and not node.private


async def test_circuit_address_without_a_reservation_fails_cleanly() -> None:
    hop = Libp2pSettings(relay_hop=RelayHopLimits())
    async with (
        open_libp2p_network(NodeKey.generate(), hop) as relay,
        open_libp2p_network(NodeKey.generate(), Libp2pSettings()) as dialler,
    ):
        nobody = NodeKey.generate().node_id
        with trio.fail_after(30), pytest.raises(NetworkError):
            await dialler.connect(f"{relay.listen_addrs()[0]}/p2p-circuit/p2p/{nobody}")


async def test_relay_refuses_reservations_over_its_limit() -> None:
    hop = Libp2pSettings(relay_hop=RelayHopLimits(max_reservations=1))
    async with (
        open_libp2p_network(NodeKey.generate(), hop) as relay,
        open_libp2p_network(NodeKey.generate(), Libp2pSettings()) as first,
        open_libp2p_network(NodeKey.generate(), Libp2pSettings()) as second,
    ):
        assert first.relaying is not None and second.relaying is not None
        with trio.fail_after(30):
            await first.relaying.reserve(relay.listen_addrs()[0])
            with pytest.raises(NetworkError):
                await second.relaying.reserve(relay.listen_addrs()[0])


def _unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_dial_back_autonat_tells_reachable_from_not_the_stock_server_does_not() -> None:
    async with (
        open_libp2p_network(NodeKey.generate(), Libp2pSettings()) as fixed,
        open_libp2p_network(NodeKey.generate(), Libp2pSettings()) as stock,
        open_libp2p_network(NodeKey.generate(), Libp2pSettings()) as node,
    ):
        DialBackAutoNAT(fixed.host)
        AutoNATService(stock.host)
        client = AutoNATService(node.host, serve=False)
        nothing_there = Multiaddr(f"/ip4/127.0.0.1/tcp/{_unused_port()}").to_bytes()
        with trio.fail_after(30):
            for server in (fixed, stock):
                peer = ID.from_base58(await node.connect(server.listen_addrs()[0]))
                assert await ask_reachability(node.host, peer.to_base58()) == "public"
                status, _ = await client.query_server(peer, [nothing_there])
                # py-libp2p 0.8.1's server "dials back" over the connection the question
                # came on, so it says OK where nothing listens (docs/NODE.md).
                assert status == (Message.E_DIAL_ERROR if server is fixed else Message.OK)


@pytest.mark.parametrize(
    ("addr", "ok"),
    [("/ip4/100.64.2.2/tcp/4001", True), ("/ip4/1.2.3.4/udp/4001/quic-v1", True),
     ("/ip6/2001:4860::1/tcp/1", True), ("/ip4/127.0.0.1/tcp/22", False),
     ("/ip4/10.0.0.5/tcp/4001", False), ("/ip4/192.168.1.1/tcp/80", False),
     ("/ip4/0.0.0.0/tcp/4001", False), ("/ip4/224.0.0.1/udp/5353", False),
     ("/ip6/::1/tcp/1", False), ("/ip6/fe80::1/tcp/1", False),
     ("/dns4/example.com/tcp/443", False), ("/ip4/1.2.3.4/tcp/1/p2p-circuit", True)],
)  # fmt: skip
def test_hole_punches_dial_only_public_addresses(addr: str, ok: bool) -> None:
    assert punchable(Multiaddr(addr)) is ok


async def test_a_stranger_cannot_make_the_node_dial_loopback_or_punch_at_will(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dialled: list[str] = []
    handled: list[object] = []

    async def dial(self: object, peer: object, addr: object, *args: object) -> None:
        dialled.append(str(addr))

    async def handle(self: object, stream: object) -> None:
        handled.append(stream)

    monkeypatch.setattr(DCUtRProtocol, "_dial_peer", dial)
    monkeypatch.setattr(DCUtRProtocol, "_handle_dcutr_stream", handle)
    async with open_libp2p_network(NodeKey.generate(), Libp2pSettings(hole_punch=True)) as node:
        dcutr = node.relaying.dcutr if node.relaying else None
        assert isinstance(dcutr, GuardedDCUtR)
        peer = ID.from_base58(NodeKey.generate().node_id.text)
        for addr in ("/ip4/127.0.0.1/tcp/22", "/ip4/10.0.0.1/tcp/80", "/ip4/1.2.3.4/tcp/4001"):
            await dcutr._dial_peer(peer, Multiaddr(addr))
        assert dialled == ["/ip4/1.2.3.4/tcp/4001"]
        many = [Multiaddr(f"/ip4/1.2.3.{i}/tcp/4001").to_bytes() for i in range(1, 50)]
        assert len(dcutr._decode_observed_addrs(many)) == MAX_PUNCH_ADDRS

        class Stream:
            async def reset(self) -> None:
                return

        for _ in range(20):  # a burst from strangers: only PUNCH_BURST are served now
            await dcutr._handle_dcutr_stream(Stream())
        assert len(handled) == PUNCH_BURST
