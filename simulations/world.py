"""The simulated world: nodes, their keys, the wire between them, timers.

Every message a driver sends is signed and encoded with the real
``protocol.encode_envelope`` (simulated time as ``now_ms``), carried by the
network model with its bytes, and checked by the receiver's own
``ReplayGuard`` before a machine sees it. The byte counts in the metrics are
therefore the real wire sizes. What the receiver gets is the ``Envelope``
that ``protocol.decode_envelope`` returns for those bytes, made when they
were encoded (``Signed``): decoding is a pure function of the bytes, and
every message round-trips (tests/protocol/test_envelope.py), so the world
does not verify its own signatures again at every receiver. That was about
a third of a run's CPU. Tests decode them as well and assert the same
envelope (``World.check_decode``), or hand receivers the decoded envelopes
(``decode_deliveries``) and compare the runs (tests/simulations/
test_world_decode.py).

With ``network.sign_gossip = false`` gossip (job announces) travels as the
message object instead, unsigned: its size is still measured once from its
real encoding. Direct market messages are always signed.

Node keys come from the loop's seeded RNG (``NodeKey(rng.randbytes(32))``);
payment addresses are 20 random bytes, because the chain model checks
vouchers by lookup rather than by secp256k1 recovery (see ``chain.py``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from protocol import (
    Envelope,
    NodeKey,
    RemoteProtocolError,
    ReplayGuard,
    decode_envelope,
    encode_envelope,
)
from protocol.codec import packb, to_wire
from protocol.messages import Message
from protocol.topics import PROTOCOL_VERSION
from simulations.chain import ChainModel
from simulations.invariants import Invariants
from simulations.loop import EventLoop
from simulations.metrics import Metrics
from simulations.models import JobDraw
from simulations.network import NetworkModel
from simulations.scenario import GpuClass, Scenario

ENVELOPE_OVERHEAD_BYTES = 122  # version, type, sender, nonce, time, signature, framing


@dataclass(frozen=True)
class Signed:
    """Wire bytes the world encoded, with the envelope ``decode_envelope`` returns for
    them (see the module docstring)."""

    data: bytes
    envelope: Envelope


class Driver(Protocol):
    def on_message(self, sender: bytes, message: Message, digest: bytes | None) -> None: ...
    def stop(self) -> None: ...


@dataclass
class SimNode:
    index: int
    key: NodeKey
    node_id: bytes
    address: bytes
    region: int
    role: str  # worker | checker | requester
    behaviour: str  # honest | cheater | lazy | colluder | lazy_checker | sybil | free_rider | sniper
    gpu: GpuClass | None = None
    online: bool = True
    replay: ReplayGuard = field(default_factory=ReplayGuard)
    driver: Driver | None = None


class World:
    def __init__(self, scenario: Scenario, seed: int) -> None:
        self.scenario = scenario
        self.loop = EventLoop(seed)
        self.start_ms = scenario.scenario.start_ms
        self.net = NetworkModel(self.loop, scenario.network, self._deliver)
        self.chain = ChainModel(self.loop, scenario.chain, self.start_ms)
        self.metrics = Metrics()
        strict = scenario.scenario.known_cheater_invariant
        self.invariants = Invariants(self.chain, self.metrics, strict)
        self.nodes: list[SimNode] = []
        self.by_id: dict[bytes, SimNode] = {}
        self.by_address: dict[bytes, SimNode] = {}
        self.scenes: dict[bytes, JobDraw] = {}  # job id -> what the scene really needs
        self.result_kind: dict[bytes, str] = {}  # task id -> honest | wrong | partial
        self.plants: set[str] = set()  # frame CIDs of planted results (every cell wrong)
        # a lazy pair's shared notes: task id -> member -> the frame CIDs it was asked about
        self.pair_notes: dict[bytes, dict[bytes, set[str]]] = {}
        self.pair_passed: set[bytes] = set()  # task ids a lazy pair passed unrendered
        self.adverts: dict[bytes, int] = {}  # worker -> the score its capacity adverts claim
        self.clawback_addresses: dict[bytes, bytes] = {}  # sock puppet -> its requester
        self.faults_on = True
        # tests: decode each signed delivery too and assert the same envelope (check), or
        # hand the receiver the decoded one, as the node does (decode)
        self.check_decode = self.decode_deliveries = False
        self.workers: list[SimNode] = []
        self.checkers: list[SimNode] = []
        self._timers: dict[Any, tuple[int, int]] = {}
        self._timer_gen = 0
        self.public_record: Any = None  # simulations.public_record.shared_record's
        # Set by the population: a blocklisted sybil identity is replaced.
        self.sybil_caught: Callable[[bytes], None] = lambda node_id: None

    def epoch_ms(self) -> int:
        """Simulated wall clock handed to the machines."""
        return self.start_ms + self.loop.now_ms

    def add_node(self, role: str, behaviour: str, gpu: GpuClass | None = None) -> SimNode:
        rng = self.loop.rng
        key = NodeKey(rng.randbytes(32))
        region = rng.randrange(len(self.scenario.network.regions))
        index = self.net.add_node(region)
        node = SimNode(index, key, key.node_id.raw, rng.randbytes(20), region, role, behaviour, gpu)
        self.nodes.append(node)
        self.by_id[node.node_id] = node
        self.by_address[node.address] = node
        if role == "worker":
            self.workers.append(node)
        elif role == "checker":
            self.checkers.append(node)
        return node

    def gossip_targets(self) -> list[int]:
        """Workers a job announce reaches: all online ones, or a sample of
        ``network.gossip_reach`` of them (a topic shard, for large runs)."""
        online = [w.index for w in self.workers if w.online]
        reach = self.scenario.network.gossip_reach
        if reach and reach < len(online):
            return self.loop.rng.sample(online, reach)
        return online

    def online_checkers(self) -> list[SimNode]:
        return [c for c in self.checkers if c.online]

    def set_online(self, node: SimNode, online: bool) -> None:
        node.online = online
        self.net.online[node.index] = online

    # ---- the wire ----

    def send(self, src: SimNode, to: bytes, message: Message) -> None:
        dst = self.by_id.get(to)
        if dst is None or not src.online:
            return
        signed = self._sign(src, message)
        self.net.send(src.index, dst.index, signed, len(signed.data))

    def _sign(self, src: SimNode, message: Message) -> Signed:
        nonce, now_ms = self.loop.rng.getrandbits(64), self.epoch_ms()
        data = encode_envelope(src.key, message, nonce=nonce, now_ms=now_ms)
        envelope = Envelope(PROTOCOL_VERSION, src.key.node_id, nonce, now_ms, message,
                            hashlib.sha256(data).digest(), data)  # fmt: skip
        return Signed(data, envelope)

    def publish(self, src: SimNode, message: Message, targets: list[int]) -> None:
        if not src.online:
            return
        if self.scenario.network.sign_gossip:
            signed = self._sign(src, message)
            self.net.gossip(src.index, signed, len(signed.data), targets)
        else:
            size = len(packb(to_wire(message))) + ENVELOPE_OVERHEAD_BYTES
            self.net.gossip(src.index, (src.node_id, message), size, targets)

    def _deliver(self, src: int, dst: int, payload: Any) -> None:
        node = self.nodes[dst]
        if node.driver is None:
            return
        if isinstance(payload, tuple):  # unsigned gossip object
            sender, message = payload
            node.driver.on_message(sender, message, None)
            return
        try:
            if type(payload) is not Signed:  # bytes no world encoding made
                envelope = decode_envelope(payload)
            elif self.decode_deliveries:
                envelope = decode_envelope(payload.data)
            else:
                envelope = payload.envelope
                if self.check_decode:  # (a refusal here would drop what the world delivers)
                    try:
                        decoded = decode_envelope(payload.data)
                    except RemoteProtocolError as exc:
                        raise AssertionError(f"the world's own envelope refused: {exc}") from exc
                    assert decoded == envelope and decoded.wire == envelope.wire, decoded
            node.replay.check(envelope, self.epoch_ms())
        except RemoteProtocolError as exc:
            self.metrics.decode_rejects += 1
            self.loop.note("reject", f"{node.role}#{dst}: {type(exc).__name__}")
            return
        node.driver.on_message(envelope.sender.raw, envelope.message, envelope.digest)

    # ---- machine timers (epoch ms), re-armed after every machine call ----

    def arm(self, key: Any, at_epoch_ms: int | None, fire: Callable[[], None]) -> None:
        """Call ``fire()`` at ``at_epoch_ms``; re-arming a key replaces its timer."""
        current = self._timers.get(key)
        if at_epoch_ms is None:
            self._timers.pop(key, None)
            return
        if current is not None and current[0] == at_epoch_ms:
            return
        self._timer_gen += 1
        gen = self._timer_gen
        self._timers[key] = (at_epoch_ms, gen)

        def on_time(_: object) -> None:
            if self._timers.get(key, (0, -1))[1] == gen:
                del self._timers[key]
                fire()

        self.loop.call_at(at_epoch_ms - self.start_ms, on_time, key, "timer")

    def disarm(self, key: Any) -> None:
        self._timers.pop(key, None)


def faked_from(kind: str, partial_fraction: float, cells: int) -> int:
    """The first faked cell (row-major) of a result of ``kind`` (``World.result_kind``)
    on a grid of ``cells`` (``cells``: none): a partial render fakes the last
    ``partial_fraction`` of them (``adversaries.partial_fraction``), a wrong one all."""
    if kind == "honest":
        return cells
    if kind == "partial":
        return cells - max(1, round(partial_fraction * cells))
    return 0
