"""QUIC beside TCP on loopback: listen on both, dial QUIC when offered, fall back to TCP."""

from __future__ import annotations

import trio
from libp2p.peer.id import ID

from node.net.discovery import DialPolicy, Discovery
from node.net.libp2p_net import Libp2pSettings, open_libp2p_network, with_quic
from node.net.port import ByteStream
from protocol import NodeKey

ECHO = "/pictor-test/echo/1"
QUIC = Libp2pSettings(quic=True)
REMOTE_HOSTS: list[str | None] = []


async def _echo(peer: str, stream: ByteStream) -> None:
    REMOTE_HOSTS.append(getattr(stream, "remote_host", None))
    await stream.send_all(b"echo:" + await stream.receive_some(64))
    await stream.aclose()


def test_with_quic_adds_a_udp_twin_for_each_tcp_address() -> None:
    assert with_quic(("/ip4/0.0.0.0/tcp/4001", "/ip6/::/tcp/4002", "/memory/x")) == (
        "/ip4/0.0.0.0/tcp/4001", "/ip6/::/tcp/4002", "/memory/x",
        "/ip4/0.0.0.0/udp/4001/quic-v1", "/ip6/::/udp/4002/quic-v1",
    )  # fmt: skip


def _transport(net: object, peer: str) -> list[str]:
    conns = net.host.get_network().get_connections(ID.from_base58(peer))  # type: ignore[attr-defined]
    return [str(a) for c in conns for a in c.get_transport_addresses()]


class _Rows:
    """Discovery's store: the peer table rows, in memory."""

    async def list_peers(self) -> list[dict[str, object]]:
        return []

    async def upsert_peer(self, peer_id: str, addrs: list[str], now_ms: int) -> None:
        return

    async def record_dial(self, peer_id: str, ok: bool, now_ms: int) -> None:
        return


async def test_a_quic_node_listens_on_both_and_is_reached_over_quic() -> None:
    async with (
        open_libp2p_network(NodeKey.generate(), QUIC) as server,
        open_libp2p_network(NodeKey.generate(), QUIC) as client,
    ):
        addrs = server.listen_addrs()
        assert any("/tcp/" in a for a in addrs) and any("/quic-v1/" in a for a in addrs)
        server.set_stream_handler(ECHO, _echo)
        with trio.fail_after(20):
            quic = next(a for a in addrs if "/quic-v1/" in a)
            assert await client.connect(quic) == server.local_peer
            assert all("/quic-v1" in a for a in _transport(client, server.local_peer))
            stream = await client.open_stream(server.local_peer, ECHO)
            await stream.send_all(b"hi")
            assert await stream.receive_some(64) == b"echo:hi"
        assert REMOTE_HOSTS[-1] == "127.0.0.1"  # per-IP stream bounds see QUIC peers too


async def test_discovery_dials_quic_first_and_falls_back_to_tcp() -> None:
    async with (
        open_libp2p_network(NodeKey.generate(), QUIC) as quic_peer,
        open_libp2p_network(NodeKey.generate(), Libp2pSettings()) as tcp_only,
        open_libp2p_network(NodeKey.generate(), QUIC) as dialler,
        trio.open_nursery() as nursery,
    ):
        discovery = Discovery(dialler, _Rows(), max_backoff_s=1, is_banned=lambda p: False,  # type: ignore[arg-type]
                              wall_ms=lambda: 0, policy=DialPolicy(prefer_quic=True))  # fmt: skip
        tcp_addr = tcp_only.listen_addrs()[0]
        dead_quic = tcp_addr.replace("/tcp/", "/udp/").replace("/p2p/", "/quic-v1/p2p/")
        discovery.add_candidate(sorted(quic_peer.listen_addrs()), pinned=False)  # tcp sorts first
        discovery.add_candidate([tcp_addr, dead_quic], pinned=False)
        assert discovery.candidates()[quic_peer.local_peer][0].count("/quic-v1/") == 1
        await nursery.start(discovery.run)
        with trio.fail_after(30):
            while not {quic_peer.local_peer, tcp_only.local_peer} <= set(dialler.connected_peers()):
                await trio.sleep(0.05)  # Discovery dials in the background; nothing to wait on
        assert all("/quic-v1" in a for a in _transport(dialler, quic_peer.local_peer))
        assert all("/tcp/" in a for a in _transport(dialler, tcp_only.local_peer))
        nursery.cancel_scope.cancel()
