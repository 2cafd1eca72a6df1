"""Real libp2p nodes on loopback find each other from one bootstrap address and
see each other's CapacityAdverts: in one process, and as separate processes."""

from __future__ import annotations

from contextlib import AsyncExitStack
from pathlib import Path

import trio
from node_helpers import make_config, running_node

from node.net.libp2p_net import Libp2pSettings, open_libp2p_network
from node.runtime import Node
from protocol import NodeKey


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
