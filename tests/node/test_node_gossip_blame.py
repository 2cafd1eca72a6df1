"""Gossip validation results: REJECT blames the forwarder, stale history is IGNOREd.

Attack runs against main (issue 14 B items 2 and 5): garbage signed by
throwaway identities was scored against each throwaway origin, so the peer
forwarding 77,910 of them was never banned; and gossip history re-sent 50-110 s
late failed the ±60 s skew check with the penalty on the honest original
sender, so one restarted client banned an honest worker within a second.
"""

from __future__ import annotations

from pathlib import Path

import trio
from node_helpers import make_advert, make_config, running_node, signed_advert, wall_ms

from node.net.memory import MemoryHub
from protocol import NodeKey, encode_envelope
from protocol.topics import CAPACITY_TOPIC


def _views(node) -> dict:  # type: ignore[no-untyped-def]
    return {v.peer: v for v in node.scorer.view(trio.current_time())}


async def test_forwarder_of_throwaway_garbage_is_banned(tmp_path: Path) -> None:
    hub = MemoryHub()
    key, evil_key = NodeKey.generate(), NodeKey.generate()
    config = make_config(tmp_path, ban_score=100, peer_burst=1000)
    async with (
        hub.open(key.node_id.text) as net,
        hub.open(evil_key.node_id.text) as evil,
        running_node(config, net, key) as node,
    ):
        await evil.connect(net.listen_addrs()[0])
        throwaways = []
        for _ in range(20):
            fresh = NodeKey.generate()
            throwaways.append(fresh.node_id.text)
            good = signed_advert(fresh, wall_ms())
            bad = good[:-1] + bytes([good[-1] ^ 1])  # broken signature
            await evil.publish_as(fresh.node_id.text, CAPACITY_TOPIC, bad)
            if evil.local_peer in node.banned:
                break
        assert evil.local_peer in node.banned
        views = _views(node)
        assert views[evil.local_peer].rejected["bad_signature"] >= 1
        assert not set(throwaways) & set(views)  # origins cost nothing: no records for them
        assert not set(throwaways) & set(node.capacity)


async def test_stale_history_ignored_without_blame(tmp_path: Path) -> None:
    hub = MemoryHub()
    key, relay_key, origin_key = NodeKey.generate(), NodeKey.generate(), NodeKey.generate()
    async with (
        hub.open(key.node_id.text) as net,
        hub.open(relay_key.node_id.text) as relay,
        running_node(make_config(tmp_path), net, key) as node,
    ):
        await relay.connect(net.listen_addrs()[0])
        origin = origin_key.node_id.text
        for age_s in (50, 70, 90, 110, -90):  # gossip history, and a clock running ahead
            data = encode_envelope(
                origin_key, make_advert(origin_key), nonce=age_s + 1000,
                now_ms=wall_ms() - age_s * 1000,
            )  # fmt: skip
            await relay.publish_as(origin, CAPACITY_TOPIC, data)
        fresh = signed_advert(origin_key, wall_ms())
        await relay.publish_as(origin, CAPACITY_TOPIC, fresh)
        await relay.publish_as(origin, CAPACITY_TOPIC, fresh)  # the same envelope again
        views = _views(node)
        assert views[relay.local_peer].score == 0.0
        assert views[relay.local_peer].rejected == {"stale": 4, "replay_ignored": 1}
        assert origin not in views  # nothing laid on the original sender
        assert node.capacity[origin].timestamp_ms > wall_ms() - 5_000  # only the fresh one
        assert not node.banned


async def test_busy_relay_is_slowed_not_banned(tmp_path: Path) -> None:
    hub = MemoryHub()
    key, relay_key = NodeKey.generate(), NodeKey.generate()
    config = make_config(tmp_path, ban_score=100, peer_burst=20, peer_rate_per_s=5)
    async with (
        hub.open(key.node_id.text) as net,
        hub.open(relay_key.node_id.text) as relay,
        running_node(config, net, key) as node,
    ):
        await relay.connect(net.listen_addrs()[0])
        for _ in range(300):  # valid adverts of 300 peers, relayed far over the rate
            origin = NodeKey.generate()
            await relay.publish_as(
                origin.node_id.text, CAPACITY_TOPIC, signed_advert(origin, wall_ms())
            )
        views = _views(node)
        assert views[relay.local_peer].rejected["throttled"] > 200
        assert views[relay.local_peer].score == 0.0
        assert relay.local_peer not in node.banned
        assert 20 <= len(node.capacity) < 300


async def test_a_bad_announce_is_rejected_by_every_node_and_blames_its_relay(
    tmp_path: Path,
) -> None:
    """A node without the worker role once accepted and forwarded an announce whose id
    is not its spec's hash (only workers checked), so honest relays spread it and the
    worker blamed them; now every node checks it before forwarding."""
    from protocol.messages import JobAnnounce, job_id_of
    from protocol.topics import JOBS_TOPIC
    from tests.protocol.market.harness import make_spec

    hub = MemoryHub()
    key, relay_key, origin_key = NodeKey.generate(), NodeKey.generate(), NodeKey.generate()
    async with (
        hub.open(key.node_id.text) as net,  # a node with no roles at all
        hub.open(relay_key.node_id.text) as relay,
        running_node(make_config(tmp_path), net, key) as node,
    ):
        await relay.connect(net.listen_addrs()[0])
        spec = make_spec(origin_key.node_id.raw, (1, 2), max_price_wei_per_frame=10,
                         budget_wei=100, deadline_ms=wall_ms() + 60_000)  # fmt: skip
        heard: list[object] = []
        node.set_gossip_hook(lambda envelope: heard.append(envelope.message))
        good = JobAnnounce(job_id_of(spec), spec)
        bad = JobAnnounce(bytes(32), spec)
        for nonce, announce in enumerate((bad, good), start=1):
            data = encode_envelope(origin_key, announce, nonce=nonce, now_ms=wall_ms())
            await relay.publish_as(origin_key.node_id.text, JOBS_TOPIC, data)
        assert heard == [good]
        views = _views(node)
        assert views[relay.local_peer].rejected == {"illegal_message": 1}
        assert origin_key.node_id.text not in views
