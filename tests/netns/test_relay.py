"""Nodes behind two different NATs reach each other through the coordinator's relay.

Real processes in real namespaces (tests/netns/harness.py): a coordinator in the
public namespace, node A behind NAT 1 (reachability auto: AutoNAT says private),
node B behind NAT 2 (reachability private). Neither can dial the other directly.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import trio
from libp2p.peer.id import ID

from node.content.net import PeerChunkSource, content_limits
from node.content.store import ContentStore
from node.content.transfer import TransferConfig, fetch
from node.net.libp2p_net import Libp2pSettings, open_libp2p_network
from node.net.relay import is_circuit, is_relayed
from protocol import NodeKey
from tests.netns.harness import Internet
from tests.netns.nodes import start_coordinator, start_node

pytestmark = pytest.mark.slow


def _circuits_of(adverts: list[dict[str, object]], peer: str) -> list[str]:
    for advert in adverts:
        if advert["peer_id"] == peer:
            return [a for a in advert["addrs"] if isinstance(a, str) and is_circuit(a)]  # type: ignore[attr-defined]
    return []


def _fetch_through_relay(circuit: str, peer: str, cid: str, out: Path) -> tuple[bytes, bool]:
    """In-process fetcher (run inside a home namespace): dial the circuit, fetch cid."""

    async def main() -> tuple[bytes, bool]:
        settings = Libp2pSettings(listen_addrs=("/ip4/0.0.0.0/tcp/0",))
        async with open_libp2p_network(NodeKey.generate(), settings) as network:
            assert await network.connect(circuit) == peer
            conns = network.host.get_network().get_connections(ID.from_base58(peer))
            relayed = bool(conns) and all(is_relayed(c) for c in conns)
            store = ContentStore(out, 1 << 30)
            config = TransferConfig()
            source = PeerChunkSource(network, peer, content_limits(config.max_chunk_bytes))
            with trio.fail_after(60):
                await fetch(cid, [source], store, config)
            return store.read_bytes(cid), relayed

    return trio.run(main)


def test_nodes_behind_two_nats_meet_through_the_relay(internet: Internet, tmp_path: Path) -> None:
    assert internet.public is not None
    # Relay only: this test is about the relayed path (hole punching: test_nat_job.py).
    env = {**os.environ, "PICTOR_LOG_LEVEL": "info", "PICTOR_HOLE_PUNCH": "false"}
    home_a, home_b = internet.add_home(), internet.add_home()
    coordinator = start_coordinator(internet.public, tmp_path / "coordinator", env)
    boot = next(a for a in coordinator.addrs if internet.public.ip in a)
    payload = os.urandom(300_000)
    cid = ContentStore(tmp_path / "b" / "content", 1 << 30).put_bytes(payload)

    a = start_node(home_a, tmp_path / "a", env, boot)  # auto: AutoNAT decides
    b = start_node(home_b, tmp_path / "b", env, boot, "--reachability", "private")

    # Each sees the other's advert (through the coordinator's gossip) listing a relay address.
    seen_by_a = a.wait_until("/v1/network", lambda v: bool(_circuits_of(v, b.node_id)))
    seen_by_b = b.wait_until("/v1/network", lambda v: bool(_circuits_of(v, a.node_id)))
    assert _circuits_of(seen_by_b, a.node_id)  # A found out by itself that it is behind NAT
    # Their discovery dials the relay address: A and B are connected to each other.
    for me, other in ((a, b), (b, a)):
        me.wait_until("/v1/peers", lambda v, o=other: any(
            p["peer_id"] == o.node_id and p["connected"] for p in v))  # fmt: skip

    # Content from B, fetched by a peer behind NAT A over a relayed connection.
    circuit = _circuits_of(seen_by_a, b.node_id)[0]
    got, relayed = home_a.call_in_process(_fetch_through_relay, circuit, b.node_id, cid, tmp_path / "fetched")
    assert relayed
    assert got == payload
