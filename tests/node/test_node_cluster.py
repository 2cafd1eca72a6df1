"""Real libp2p nodes on loopback find each other from one bootstrap address and
see each other's CapacityAdverts: in one process, and as separate processes."""

from __future__ import annotations

import contextlib
from contextlib import AsyncExitStack
from pathlib import Path

import trio
from libp2p.peer.id import ID
from node_helpers import make_config, running_node, signed_advert, wall_ms

from node.net.libp2p_net import Libp2pSettings, open_libp2p_network
from node.net.port import NetworkError
from node.runtime import Node
from protocol import NodeKey
from protocol.topics import CAPACITY_TOPIC


async def _start(stack: AsyncExitStack, data_dir: Path, bootstrap: tuple[str, ...]) -> Node:
    key = NodeKey.generate()
    network = await stack.enter_async_context(open_libp2p_network(key, Libp2pSettings()))
    config = make_config(data_dir, bootstrap=bootstrap)
    return await stack.enter_async_context(running_node(config, network, key))


async def test_four_nodes_discover_each_other_from_bootstrap(tmp_path: Path) -> None:
    async with AsyncExitStack() as stack:
        seed = await _start(stack, tmp_path / "seed", ())
        bootstrap = tuple(seed.network.listen_addrs())
        others = [await _start(stack, tmp_path / f"n{i}", bootstrap) for i in range(3)]
        nodes = [seed, *others]
        ids = {node.node_id for node in nodes}
        with trio.fail_after(20):
            for node in nodes:
                await node.wait_until(lambda n=node: set(n.capacity) == ids - {n.node_id})
        for node in nodes:
            seen = node.capacity[seed.node_id].advert if node is not seed else None
            assert seen is None or seen.addrs == tuple(bootstrap)
        # Peers learnt from adverts are persisted for the next start.
        known = {str(p["peer_id"]) for p in await others[0].store.list_peers()}
        assert ids - {others[0].node_id} <= known


async def test_hostile_libp2p_peer_banned_and_refused_on_reconnect(tmp_path: Path) -> None:
    async with AsyncExitStack() as stack:
        good = await _start(stack, tmp_path / "good", ())
        honest = await _start(stack, tmp_path / "honest", tuple(good.network.listen_addrs()))
        evil_key = NodeKey.generate()
        evil = await stack.enter_async_context(open_libp2p_network(evil_key, Libp2pSettings()))
        await evil.subscribe(CAPACITY_TOPIC, lambda *_: True)
        await evil.connect(good.network.listen_addrs()[0])
        await evil.pubsub.wait_for_subscription(ID.from_base58(good.node_id), CAPACITY_TOPIC)
        with trio.fail_after(20):
            await good.wait_until(lambda: honest.node_id in good.capacity)

        valid = signed_advert(evil_key, wall_ms())
        await evil.publish(CAPACITY_TOPIC, b"\x00garbage")
        await evil.publish(CAPACITY_TOPIC, valid[:-1] + bytes([valid[-1] ^ 1]))
        with trio.fail_after(20):
            await good.wait_until(lambda: evil.local_peer in good.banned)
            await good.wait_until(lambda: evil.local_peer not in good.network.connected_peers())
        rejected = {v.peer: v.rejected for v in good.scorer.view(trio.current_time())}
        assert rejected[evil.local_peer] == {"malformed_message": 1, "bad_signature": 1}
        assert evil.local_peer not in good.capacity

        # It cannot come back: the connection is closed as soon as it is made.
        with contextlib.suppress(NetworkError):
            await evil.connect(good.network.listen_addrs()[0])
        with trio.fail_after(10):
            await good.wait_until(lambda: evil.local_peer not in good.network.connected_peers())

        # The honest peer is still heard.
        before = good.capacity[honest.node_id].timestamp_ms
        await honest.publish_advert()
        with trio.fail_after(20):
            await good.wait_until(lambda: good.capacity[honest.node_id].timestamp_ms > before)
