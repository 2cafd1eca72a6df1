"""A node behind NAT is found through the coordinator's DHT, by nobody's list.

The coordinator (public namespace) serves the DHT; node A runs behind NAT 1
(reachability private) with the coordinator as its only bootstrap peer. A
seeker behind NAT 2 knows only the coordinator: it finds A by rendezvous (the
network key's provider records) and by peer routing (A's own key), gets A's
relay address, and connects to A through the relay.
"""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path

import pytest
import trio
from libp2p.peer.id import ID

from node.config import load_config
from node.net.dht import network_key
from node.net.libp2p_net import Libp2pSettings, open_libp2p_network
from node.net.relay import is_circuit, is_relayed
from node.net.rendezvous import run_rendezvous
from protocol import NodeKey
from tests.netns.harness import Internet
from tests.netns.nodes import start_coordinator, start_node

pytestmark = pytest.mark.slow


def _seek(boot: str, peer: str, chain_id: int) -> tuple[list[str], list[str], bool]:
    """In a home namespace: find ``peer`` through the DHT only, then connect to it."""

    async def main() -> tuple[list[str], list[str], bool]:
        settings = Libp2pSettings(listen_addrs=("/ip4/0.0.0.0/tcp/0",), dht="client")
        async with open_libp2p_network(NodeKey.generate(), settings) as seeker:
            assert seeker.dht is not None
            await seeker.connect(boot)
            found: list[str] = []
            seen = trio.Event()

            def add(addrs: list[str]) -> None:
                if addrs[0].endswith("/p2p/" + peer):
                    found.extend(addrs)
                    seen.set()

            async with trio.open_nursery() as nursery:
                nursery.start_soon(partial(run_rendezvous, fast_s=1.0), seeker.dht,
                                   seeker.local_peer, seeker.listen_addrs,
                                   seeker.connected_peers, add, network_key(chain_id))  # fmt: skip
                with trio.fail_after(45):
                    await seen.wait()
                nursery.cancel_scope.cancel()
            with trio.fail_after(20):
                routed = await seeker.dht.find_peer_addrs(peer)
                assert await seeker.connect(routed[0]) == peer
            conns = seeker.host.get_network().get_connections(ID.from_base58(peer))
            return found, routed, bool(conns) and all(is_relayed(c) for c in conns)

    return trio.run(main)


def test_a_nated_node_is_found_through_the_dht(internet: Internet, tmp_path: Path) -> None:
    assert internet.public is not None
    env = {**os.environ, "PICTOR_LOG_LEVEL": "info", "PICTOR_HOLE_PUNCH": "false"}
    home_a, home_b = internet.add_home(), internet.add_home()
    coordinator = start_coordinator(internet.public, tmp_path / "coordinator", env)
    boot = next(a for a in coordinator.addrs if internet.public.ip in a)
    a = start_node(home_a, tmp_path / "a", env, boot, "--reachability", "private")
    chain_id = load_config(tmp_path / "a").chain_id
    found, routed, relayed = home_b.call_in_process(_seek, boot, a.node_id, chain_id)
    assert found and all(is_circuit(addr) for addr in found)  # rendezvous: A's relay address
    assert routed and all(is_circuit(addr) for addr in routed)  # peer routing: the same
    assert relayed  # and the seeker reached A through the relay
