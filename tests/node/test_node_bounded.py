"""Everything a stranger can create is bounded, and no remote input stops the node.

Attack runs against main found (issue 14 B): a thousand dialled strangers
evicted the node's own key from py-libp2p's peerstore and the next advert
killed the node; adverts, dial candidates, persisted peers and scorer records
all grew without bound.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import multiaddr
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.peer.id import ID
from node_helpers import libp2p_nodes, make_advert, make_config, running_node, wall_ms

from node.net.memory import MemoryHub, MemoryNetwork
from node.runtime import Node
from node.store import open_store
from protocol import NodeKey, encode_envelope
from protocol.messages import CapacityAdvert
from protocol.topics import CAPACITY_TOPIC


async def test_full_peerstore_keeps_own_key_and_publish_survives() -> None:
    async with libp2p_nodes(1) as [(_, net)]:
        await net.subscribe("/t", lambda *_: True)
        store = net.host.get_peerstore()
        for i in range(store.max_peers + 5):  # what dialling 1,000 advertised strangers does
            stranger = ID.from_pubkey(create_new_key_pair(NodeKey.generate().seed).public_key)
            store.add_addrs(stranger, [multiaddr.Multiaddr(f"/ip4/127.0.0.1/tcp/{1000 + i}")], 0)
        assert len(store.peer_ids()) <= store.max_peers
        assert net.host.get_public_key() is not None
        await net.publish("/t", b"still alive")


@asynccontextmanager
async def flooded(tmp_path: Path) -> AsyncIterator[tuple[Node, MemoryNetwork, NodeKey]]:
    """A running node keeping 100 adverts, and a connected peer that will flood it."""
    hub = MemoryHub()
    key, evil_key = NodeKey.generate(), NodeKey.generate()
    async with (
        hub.open(key.node_id.text) as net,
        hub.open(evil_key.node_id.text) as evil,
        running_node(make_config(tmp_path, peer_burst=5000), net, key) as node,
    ):
        node.max_known_adverts = 100
        await evil.connect(net.listen_addrs()[0])
        yield node, evil, evil_key


async def test_thousand_fresh_identities_leave_bounded_state(tmp_path: Path) -> None:
    async with flooded(tmp_path) as (node, evil, _):
        node.max_stored_peers = 50
        victim = "/ip4/127.0.0.1/tcp/9/p2p/" + NodeKey.generate().node_id.text
        for i in range(1000):
            fresh = NodeKey.generate()
            own = f"/ip4/127.0.0.1/tcp/{20000 + i}/p2p/{fresh.node_id.text}"
            addrs = (victim, "/ip4/0.0.0.0/tcp/1/p2p/" + fresh.node_id.text, own)
            data = encode_envelope(fresh, make_advert(fresh, addrs), nonce=1, now_ms=wall_ms())
            await evil.publish_as(fresh.node_id.text, CAPACITY_TOPIC, data)
        assert 0 < len(node.capacity) <= 100
        candidates = node.discovery.candidates()
        assert len(candidates) <= node.discovery.policy.max_candidates
        # Only the signer's own, plausible address: never the victim, never 0.0.0.0.
        for peer, addrs in candidates.items():
            assert addrs == [a for a in addrs if a.endswith(peer) and "/0.0.0.0/" not in a]
        assert victim.rsplit("/p2p/", 1)[1] not in candidates
        await node.publish_advert()  # alive and publishing


async def test_a_flood_of_fresh_adverts_spares_those_the_roles_deal_with(tmp_path: Path) -> None:
    """Review of stop 44: eviction dropped the adverts refreshed longest ago, so a flood
    of fresh identities pushed out those of the workers a requester dealt with. Now the
    roles' (``Node.set_advert_keeper``) and connected peers' go last."""
    async with flooded(tmp_path) as (node, evil, evil_key):
        friend, idle = NodeKey.generate(), NodeKey.generate()
        node.set_advert_keeper(lambda n: n == friend.node_id.raw)

        async def advertise(signer: NodeKey, port: int) -> None:
            own = (f"/ip4/127.0.0.1/tcp/{port}/p2p/{signer.node_id.text}",)
            data = encode_envelope(signer, make_advert(signer, own), nonce=1, now_ms=wall_ms())
            await evil.publish_as(signer.node_id.text, CAPACITY_TOPIC, data)

        await advertise(friend, 19998)
        await advertise(idle, 19999)
        await advertise(evil_key, 19997)  # a connected peer's own advert
        for i in range(400):
            await advertise(NodeKey.generate(), 20000 + i)
        assert 0 < len(node.capacity) <= 100
        assert friend.node_id.text in node.capacity and evil_key.node_id.text in node.capacity
        assert idle.node_id.text not in node.capacity  # no dealings, refreshed longest ago


async def test_publish_failure_is_logged_not_fatal(tmp_path: Path) -> None:
    hub = MemoryHub()
    key = NodeKey.generate()
    async with (
        hub.open(key.node_id.text) as net,
        running_node(make_config(tmp_path), net, key) as node,
    ):

        async def broken(topic: str, data: bytes) -> None:
            raise KeyError("peer ID not found")  # what py-libp2p's peerstore raised

        net.publish = broken  # type: ignore[method-assign]
        await node.publish_advert()
        assert node.metrics.messages_out.labels(CapacityAdvert.TYPE)._value.get() == 0


async def test_stored_peers_pruned_keeping_answering_and_banned(tmp_path: Path) -> None:
    async with open_store(tmp_path / "s.sqlite3") as store:
        now = wall_ms()
        for i in range(300):  # strangers' adverts
            await store.save_advert(f"stranger-{i}", b"x", [f"/ip4/127.0.0.1/tcp/{i + 1}"], now + i)
        await store.upsert_peer("friend", ["/ip4/127.0.0.1/tcp/1"], now - 10_000)
        await store.record_dial("friend", True, now)
        await store.ban_peer("villain", now + 3_600_000)
        assert await store.prune_peers(50, now) == 302 - 51
        peers = {str(p["peer_id"]) for p in await store.list_peers()}
        assert len(peers) == 51 and {"friend", "villain"} <= peers


async def test_libp2p_auto_connector_never_dials_the_peerstore() -> None:
    async with libp2p_nodes(1) as [(_, net)]:
        swarm = net.host.get_network()
        for i in range(5):  # addresses our discovery once tried: closed loopback ports
            stranger = ID.from_pubkey(create_new_key_pair(NodeKey.generate().seed).public_key)
            net.host.get_peerstore().add_addrs(
                stranger, [multiaddr.Multiaddr(f"/ip4/127.0.0.1/tcp/{9 + i}")], 0
            )
        dialled: list[ID] = []

        async def dial_peer(peer_id: ID) -> None:
            dialled.append(peer_id)

        swarm.dial_peer = dial_peer
        await swarm.auto_connector.maybe_connect()
        assert dialled == []


async def test_the_adverts_spared_are_half_the_table_at_most(tmp_path: Path) -> None:
    """Bidding is free, so strangers can make the roles keep them (review of stop 45):
    the spared adverts are the newest half of the table at most. 60 kept, then a flood:
    the oldest kept go too, the newest 50 stay."""
    async with flooded(tmp_path) as (node, evil, _):
        kept = [NodeKey.generate() for _ in range(60)]
        ids = {k.node_id.raw for k in kept}
        node.set_advert_keeper(lambda n: n in ids)
        for i, signer in enumerate([*kept, *(NodeKey.generate() for _ in range(300))]):
            own = (f"/ip4/127.0.0.1/tcp/{20000 + i}/p2p/{signer.node_id.text}",)
            data = encode_envelope(signer, make_advert(signer, own), nonce=1, now_ms=wall_ms())
            await evil.publish_as(signer.node_id.text, CAPACITY_TOPIC, data)
        assert 0 < len(node.capacity) <= 100
        assert kept[0].node_id.text not in node.capacity  # the oldest kept went
        assert all(k.node_id.text in node.capacity for k in kept[-50:])
