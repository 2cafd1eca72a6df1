"""Every negative vector in docs/vectors/negative.json meets the outcome it states.

Two levels, both the real code: the node's inbound ``Gate`` (with the real
peer scorer and replay guard) for envelope vectors, checking the error class,
the reason label and the penalty; and a running ``Node`` on the in-memory
network for every vector, fed the way a peer would (a market, content or
record-sync stream, or gossip with the vector's origin and forwarder),
checking the reason, the penalty, the ban at 100 points, that a refused
stream is answered as §6.1 says, and for gossip the validator's verdict
(REJECT/IGNORE, so the message is not forwarded). Positive envelope vectors
pass the same gate, and gossip vectors the gate's gossip rule too.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio

from node.api.metrics import NodeMetrics
from node.config import NodeConfig
from node.content.net import CONTENT_PROTOCOL, content_limits, serve_content
from node.content.source import StoreChunkSource
from node.content.store import ContentStore
from node.content.transfer import TransferConfig
from node.net.gate import Gate, Refusal
from node.net.memory import MemoryHub
from node.net.peer_score import PeerScorer
from node.net.port import Verdict
from node.runtime import Node
from node.store import open_store
from protocol import NodeKey, RemoteProtocolError, ReplayGuard, decode_envelope
from protocol.topics import (
    CAPACITY_TOPIC,
    JOBS_TOPIC,
    MARKET_PROTOCOL,
    MARKET_REFUSED,
    RECORD_SYNC_PROTOCOL,
)
from tests.protocol.vectors_gen import IDENTITIES, VECTORS_DIR

NEGATIVE = json.loads((VECTORS_DIR / "negative.json").read_text())
ENVELOPES = json.loads((VECTORS_DIR / "envelopes.json").read_text())
NOW_MS = NEGATIVE["now_ms"]
_nonces = itertools.count(1)


def input_bytes(spec: dict[str, Any]) -> bytes:
    if "hex" in spec:
        return bytes.fromhex(spec["hex"])
    prefix = bytes.fromhex(spec["prefix_hex"])
    fill = bytes.fromhex(spec["fill_hex"])
    return prefix + fill * (spec["length"] - len(prefix))


def peer_of(name: str) -> str:
    return IDENTITIES[name].key.node_id.text


def fresh_gate() -> Gate:
    return Gate(
        PeerScorer(),
        ReplayGuard(),
        NodeMetrics(),
        now_s=lambda: 0.0,
        wall_ms=lambda: NOW_MS,
        on_ban=lambda _peer: None,
    )


def by_path(*paths: str) -> list[dict[str, Any]]:
    return [v for v in NEGATIVE["vectors"] if v["path"] in paths]


@pytest.mark.parametrize("vector", by_path("envelope"), ids=lambda v: v["name"])
def test_gate_refuses_negative_envelope(vector: dict[str, Any]) -> None:
    gate, peer = fresh_gate(), peer_of(vector["delivered_by"])
    for earlier in vector["prelude"]:
        assert gate.admit(peer, bytes.fromhex(earlier)) is not Refusal.FINAL
    data = input_bytes(vector["input"])
    assert gate.admit(peer, data) is Refusal.FINAL
    [view] = gate.scorer.view(0.0)
    assert view.rejected == {vector["reason"]: 1}
    assert view.score == vector["penalty"]
    assert view.banned == (vector["penalty"] >= 100)
    assert raised_by_decode_or_guard(data, vector["prelude"]) == vector["error"]


def raised_by_decode_or_guard(data: bytes, prelude: list[str]) -> str:
    """The class of error the protocol layer raises for ``data`` (sender check aside)."""
    try:
        envelope = decode_envelope(data)
        guard = ReplayGuard()
        for earlier in prelude:
            guard.check(decode_envelope(bytes.fromhex(earlier)), NOW_MS)
        guard.check(envelope, NOW_MS)
    except RemoteProtocolError as exc:
        return type(exc).__name__
    return "RemoteProtocolError"  # decodes and is fresh: only the sender check refuses it


ENVELOPE_LEVEL = ("stale", "replay_ignored", "sender_mismatch")  # what admit_gossip itself decides


@pytest.mark.parametrize(
    "vector",
    [v for v in by_path("gossip_capacity", "gossip_jobs") if v["reason"] in ENVELOPE_LEVEL],
    ids=lambda v: v["name"],
)
def test_gate_judges_negative_gossip(vector: dict[str, Any]) -> None:
    gate = fresh_gate()
    forwarder, origin = peer_of(vector["delivered_by"]), peer_of(vector["origin"])
    for earlier in vector["prelude"]:
        assert gate.admit_gossip(forwarder, origin, bytes.fromhex(earlier))[0] is Verdict.ACCEPT
    verdict, envelope = gate.admit_gossip(forwarder, origin, input_bytes(vector["input"]))
    assert envelope is None and verdict is Verdict[vector["verdict"]]
    [view] = gate.scorer.view(0.0)
    assert view.peer == forwarder and view.rejected == {vector["reason"]: 1}
    assert view.score == vector["penalty"]


@pytest.mark.parametrize("vector", ENVELOPES["vectors"], ids=lambda v: v["name"])
def test_gate_admits_positive_envelope(vector: dict[str, Any]) -> None:
    envelope = fresh_gate().admit(vector["peer_id"], bytes.fromhex(vector["envelope"]))
    assert envelope is not None and envelope.type == vector["type"]


@asynccontextmanager
async def node_under_test(tmp_path: Path, hub: MemoryHub) -> AsyncIterator[Node]:
    key = NodeKey.generate()
    config = NodeConfig(data_dir=tmp_path, listen_addrs=(), mdns=False, api_port=0)
    async with (
        hub.open(str(key.node_id)) as network,
        open_store(config.db_path) as store,
        trio.open_nursery() as nursery,
    ):
        node = Node(
            config,
            key,
            b"\x22" * 32,
            network,
            store,
            wall_ms=lambda: NOW_MS,
            nonce=lambda: next(_nonces),
        )
        content = ContentStore(tmp_path / "content", 1 << 20)
        serve_content(
            network,
            StoreChunkSource(content),
            content_limits(TransferConfig().max_chunk_bytes),
            node.on_bad_frame,
        )
        await nursery.start(node.run)
        try:
            yield node
        finally:
            node.stop()


GOSSIP_TOPICS = {"gossip_capacity": CAPACITY_TOPIC, "gossip_jobs": JOBS_TOPIC}


async def deliver(node: Node, peer_net: Any, vector: dict[str, Any], data: bytes) -> bytes:
    """Send ``data`` as the vector's path says; return the stream reply (b"" for gossip)."""
    if vector["path"] in GOSSIP_TOPICS:
        await peer_net.publish_as(peer_of(vector["origin"]), GOSSIP_TOPICS[vector["path"]], data)
        return b""
    if vector["path"] == "content_stream":
        protocol, raw = CONTENT_PROTOCOL, data
    elif vector["path"] == "record_sync_stream":
        protocol, raw = RECORD_SYNC_PROTOCOL, data
    elif vector["path"] == "market_stream":
        protocol, raw = MARKET_PROTOCOL, data
    else:  # one envelope, framed as on a market stream
        protocol, raw = MARKET_PROTOCOL, len(data).to_bytes(4, "big") + data
    stream = await peer_net.open_stream(node.node_id, protocol)
    await stream.send_all(raw)
    await stream.send_eof()
    reply = b""
    while chunk := await stream.receive_some():  # EOF: the node has finished with it
        reply += chunk
    return reply


@pytest.mark.parametrize("vector", NEGATIVE["vectors"], ids=lambda v: v["name"])
async def test_running_node_refuses_negative_vector(tmp_path: Path, vector: dict[str, Any]) -> None:
    hub = MemoryHub()
    peer = peer_of(vector["delivered_by"])
    async with node_under_test(tmp_path, hub) as node, hub.open(peer) as peer_net:
        await peer_net.connect(node.network.listen_addrs()[0])
        verdicts = record_gossip_verdicts(node)
        prelude_path = vector if vector["path"] in GOSSIP_TOPICS else {"path": "envelope"}
        for earlier in vector["prelude"]:
            assert await deliver(node, peer_net, prelude_path, bytes.fromhex(earlier)) == b""
        assert not any(v.rejected for v in node.scorer.view(trio.current_time()))
        assert all(v is Verdict.ACCEPT for v in verdicts)
        verdicts.clear()
        reply = await deliver(node, peer_net, vector, input_bytes(vector["input"]))
        if vector["path"] in GOSSIP_TOPICS:  # judged by the topic validator, never forwarded
            assert verdicts == [Verdict[vector["verdict"]]]
        whole_frame = vector["path"] in ("envelope", "market_stream")
        if whole_frame and vector["error"] != "FrameError":  # the gate refused: for good (§6.1)
            assert reply == b"\x00\x00\x00\x01" + MARKET_REFUSED
        else:  # broken framing or content: closed without a reply
            assert reply == b""
        views = {v.peer: v for v in node.scorer.view(trio.current_time())}
        assert views[peer].rejected == {vector["reason"]: 1}
        assert views[peer].score == pytest.approx(vector["penalty"], rel=1e-3)
        assert (peer in node.banned) == (vector["penalty"] >= 100)


def record_gossip_verdicts(node: Node) -> list[Verdict | bool]:
    """The node's gossip validator, observed: every verdict it returns is appended."""
    seen: list[Verdict | bool] = []
    topics = node.network._topics  # type: ignore[attr-defined]  # MemoryNetwork's validators
    for topic, handler in list(topics.items()):

        def observed(t: str, origin: str, data: bytes, fwd: str, handler: Any = handler) -> Any:
            seen.append(verdict := handler(t, origin, data, fwd))
            return verdict

        topics[topic] = observed
    return seen
