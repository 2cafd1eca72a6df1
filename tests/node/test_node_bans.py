"""A ban ends after ban_s, and a flood of banned identities is bounded (node.net.bans).

Found in the protocol audit (issue 18): the network layer's block lasted until the
node restarted, although PROTOCOL.md promised ``ban_s``; and the set of banned peers
only grew, one entry per banned identity, which a stranger can mint for free."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import trio
import trio.testing
from node_helpers import make_config, running_node, signed_advert, wall_ms

from node.net.bans import Bans
from node.net.libp2p_net import _RefuseBlocked
from node.net.memory import MemoryHub, MemoryNetwork
from node.net.port import PeerWatchers
from node.runtime import Node
from protocol import NodeKey
from protocol.topics import CAPACITY_TOPIC


async def _get_banned(node: Node, net: MemoryNetwork, evil: MemoryNetwork) -> None:
    """``evil`` connects and sends forged adverts until ``node`` bans it."""
    await evil.connect(net.listen_addrs()[0])
    while evil.local_peer not in node.banned:
        fresh = NodeKey.generate()
        good = signed_advert(fresh, wall_ms())
        await evil.publish_as(fresh.node_id.text, CAPACITY_TOPIC, good[:-1] + b"\x00")


def test_bans_end_in_order_and_stay_bounded() -> None:
    bans = Bans(ban_s=60.0, limit=3)
    assert bans.add("a", 0.0) == [] and bans.add("b", 1.0) == [] and bans.add("c", 2.0) == []
    assert bans.add("d", 3.0) == ["a"]  # past the limit the oldest ends early
    assert len(bans) == 3 and "a" not in bans and "d" in bans
    assert bans.next_end_s() == 61.0
    assert bans.expire(61.9) == ["b"] and bans.expire(63.0) == ["c", "d"]
    assert bans.next_end_s() is None and len(bans) == 0


async def test_a_banned_peer_is_heard_again_after_ban_s(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    hub = MemoryHub()
    key, evil_key = NodeKey.generate(), NodeKey.generate()
    config = make_config(tmp_path, ban_score=100, peer_burst=1000, ban_s=600.0)
    async with (
        hub.open(key.node_id.text) as net,
        hub.open(evil_key.node_id.text) as evil,
        running_node(config, net, key) as node,
    ):
        await _get_banned(node, net, evil)
        banned_at = trio.current_time()
        with trio.fail_after(config.ban_s + 60):
            await node.wait_until(lambda: evil.local_peer not in node.banned)
        assert trio.current_time() - banned_at >= config.ban_s
        assert evil.local_peer not in net._blocked  # the network takes it again
        honest_key = NodeKey.generate()
        await evil.connect(net.listen_addrs()[0])
        await evil.publish_as(honest_key.node_id.text, CAPACITY_TOPIC,
                              signed_advert(honest_key, wall_ms()))  # fmt: skip
        with trio.fail_after(30):
            await node.wait_until(lambda: honest_key.node_id.text in node.capacity)


async def test_a_ban_ended_early_ends_in_every_layer(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    """Past the limit the oldest ban ends early: the network takes the peer again, and
    so must the scorer (it used to still read banned, refusing the peer's requests
    while its gossip was taken: two answers to one question)."""
    hub = MemoryHub()
    key = NodeKey.generate()
    evil_keys = [NodeKey.generate() for _ in range(3)]
    config = make_config(tmp_path, ban_score=100, peer_burst=1000, ban_s=600.0)
    async with (
        hub.open(key.node_id.text) as net,
        hub.open(evil_keys[0].node_id.text) as first,
        hub.open(evil_keys[1].node_id.text) as second,
        hub.open(evil_keys[2].node_id.text) as third,
        running_node(config, net, key) as node,
    ):
        node.banned.limit = 2
        for evil in (first, second, third):
            await _get_banned(node, net, evil)
        now_s = trio.current_time()
        assert first.local_peer not in node.banned  # ended early: the oldest of three
        assert first.local_peer not in net._blocked
        assert not node.scorer.is_banned(first.local_peer, now_s)
        for evil in (second, third):
            assert evil.local_peer in net._blocked and node.scorer.is_banned(evil.local_peer, now_s)


async def test_wait_until_wakes_when_connections_change(tmp_path: Path) -> None:
    """A banned peer that dials again is dropped by the network layer, not by a node
    task, so nothing woke ``wait_until`` (a loaded CI box waited out a 10 s limit
    in test_node_cluster's reconnect). Connections made and ended now wake it."""
    hub = MemoryHub()
    key, other_key = NodeKey.generate(), NodeKey.generate()
    async with (
        hub.open(key.node_id.text) as net,
        hub.open(other_key.node_id.text) as other,
        running_node(make_config(tmp_path), net, key) as node,
    ):
        peer = other.local_peer
        for connected in (True, False):
            async with trio.open_nursery() as nursery:

                async def wait(want: bool = connected) -> None:
                    with trio.fail_after(10):
                        await node.wait_until(lambda: (peer in net.connected_peers()) is want)

                nursery.start_soon(wait)
                await trio.testing.wait_all_tasks_blocked()
                if connected:
                    await other.connect(net.listen_addrs()[0])
                else:
                    await other.disconnect(net.local_peer)


async def test_libp2p_refuses_a_banned_peers_connection_and_tells_the_watchers() -> None:
    """The libp2p side of ``watch_peers``: py-libp2p's notifee closes a banned peer's
    connection as soon as it is made, and every connection made or ended (a refused
    one's end included) wakes the watchers; one that raises does not stop the next."""
    closed: list[str] = []
    woken: list[str] = []

    def conn(peer: str) -> SimpleNamespace:
        async def close() -> None:
            closed.append(peer)

        peer_id = SimpleNamespace(to_base58=lambda: peer)
        return SimpleNamespace(muxed_conn=SimpleNamespace(peer_id=peer_id), close=close)

    def broken() -> None:
        raise RuntimeError("a watcher's bug")

    watchers = PeerWatchers()
    watchers.add(broken)
    watchers.add(lambda: woken.append("w"))
    notifee = _RefuseBlocked({"banned"}, watchers)
    await notifee.connected(None, conn("friend"))
    assert closed == [] and woken == ["w"]
    await notifee.connected(None, conn("banned"))
    assert closed == ["banned"] and woken == ["w", "w"]
    await notifee.disconnected(None, conn("banned"))
    assert woken == ["w", "w", "w"]
