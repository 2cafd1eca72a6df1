"""A hostile peer is refused, scored and cut off; a well-behaved peer is still served.

Runs over the in-memory network (the gate does not care which network carried
the bytes); ``test_node_cluster.py`` repeats the essentials over real libp2p.
"""

from __future__ import annotations

import struct
from pathlib import Path

import trio
from node_helpers import make_advert, make_config, running_node, signed_advert, wall_ms

from node.net.memory import MemoryHub
from node.net.reqresp import ReqRespLimits, request
from protocol import Envelope, NodeKey, encode_envelope
from protocol.topics import CAPACITY_TOPIC, MARKET_PROTOCOL


async def test_hostile_peer_scored_banned_while_honest_peer_served(tmp_path: Path) -> None:
    hub = MemoryHub()
    good_key, honest_key, evil_key = NodeKey.generate(), NodeKey.generate(), NodeKey.generate()
    config = make_config(tmp_path / "good", ban_score=300, peer_burst=50, peer_rate_per_s=5)
    async with (
        hub.open(str(good_key.node_id)) as good_net,
        hub.open(str(honest_key.node_id)) as honest_net,
        hub.open(str(evil_key.node_id)) as evil,
        running_node(config, good_net, good_key) as good,
        running_node(make_config(tmp_path / "honest"), honest_net, honest_key) as honest,
    ):
        served: list[str] = []

        async def market(envelope: Envelope) -> bytes:
            served.append(str(envelope.sender))
            return b"ok"

        good.set_market_handler(market)
        await honest_net.connect(good_net.listen_addrs()[0])
        await evil.connect(good_net.listen_addrs()[0])
        evil_peer = evil.local_peer

        now = wall_ms()
        valid = signed_advert(evil_key, now)
        await evil.publish(CAPACITY_TOPIC, b"\xc1garbage")  # not msgpack
        await evil.publish(CAPACITY_TOPIC, valid[:-1] + bytes([valid[-1] ^ 1]))  # bad signature
        await evil.publish(CAPACITY_TOPIC, signed_advert(honest_key, now))  # speaks for another
        await evil.publish(CAPACITY_TOPIC, valid)
        await evil.publish(CAPACITY_TOPIC, valid)  # replay: ignored, not blamed (gossip history)
        stream = await evil.open_stream(good.node_id, MARKET_PROTOCOL)
        await stream.send_all(struct.pack(">I", 1 << 30) + b"junk")  # claims a 1 GiB frame
        await good.wait_until(lambda: "oversize" in _rejected(good, evil_peer))

        rejected = _rejected(good, evil_peer)
        assert rejected == {
            "malformed_message": 1,
            "bad_signature": 1,
            "sender_mismatch": 1,
            "replay_ignored": 1,
            "oversize": 1,
        }
        assert evil_peer not in good.banned

        for i in range(200):  # flood: far over 50 burst at 5/s
            await evil.publish(CAPACITY_TOPIC, signed_advert(evil_key, wall_ms(), nonce=10_000 + i))
            if evil_peer in good.banned:
                break
        assert evil_peer in good.banned
        assert _rejected(good, evil_peer)["throttled"] >= 1
        with trio.fail_after(5):  # the ban loop disconnects in its own task
            await good.wait_until(lambda: evil_peer not in good_net.connected_peers())

        # The honest peer's advert still gets through, and its requests are answered.
        await honest.publish_advert()
        await good.wait_until(lambda: honest.node_id in good.capacity)
        request_bytes = encode_envelope(
            honest_key, make_advert(honest_key), nonce=2**63, now_ms=now
        )
        limits = ReqRespLimits()
        assert (
            await request(honest_net, good.node_id, MARKET_PROTOCOL, request_bytes, limits) == b"ok"
        )
        assert served == [honest.node_id]
        text = (await _metrics(good)).decode()
        assert 'pictor_messages_rejected_total{reason="bad_signature"} 1.0' in text
        assert "pictor_peers_banned_total 1.0" in text


def _rejected(node, peer: str) -> dict[str, int]:  # type: ignore[no-untyped-def]
    views = {v.peer: v for v in node.scorer.view(trio.current_time())}
    return views[peer].rejected if peer in views else {}


async def _metrics(node) -> bytes:  # type: ignore[no-untyped-def]
    from node.api.views import NodeApiView

    return await NodeApiView(node).metrics_text()


async def test_advert_with_someone_elses_payment_binding_is_refused(tmp_path: Path) -> None:
    hub = MemoryHub()
    good_key, evil_key, victim_key = NodeKey.generate(), NodeKey.generate(), NodeKey.generate()
    async with (
        hub.open(str(good_key.node_id)) as good_net,
        hub.open(str(evil_key.node_id)) as evil,
        running_node(make_config(tmp_path), good_net, good_key) as good,
    ):
        await evil.connect(good_net.listen_addrs()[0])
        stolen = make_advert(victim_key)  # binds the victim's payment address
        await evil.publish(
            CAPACITY_TOPIC, encode_envelope(evil_key, stolen, nonce=1, now_ms=wall_ms())
        )
        assert _rejected(good, evil.local_peer) == {"bad_binding": 1}
        assert evil.local_peer not in good.capacity
