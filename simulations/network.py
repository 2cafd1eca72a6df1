"""Network model: one-way latency by region pair, jitter, loss, duplication,
partitions that heal, bandwidth, and gossip fan-out.

Direct messages are real envelope bytes (``protocol.encode_envelope``), carried
with the envelope they decode to (``simulations.world.Signed``); the receiver
replay-checks it with the real code, so a duplicated message is refused by
``ReplayGuard`` exactly as in a node. Gossip reaches its
targets after ``hops`` mesh hops, ``hops = ceil(log_fanout(n))``, and costs
``fanout`` copies per receiver (gossipsub's mesh degree: each node hears a
message from each mesh peer once, first copy wins).

Faults (loss, duplication, partitions) are switched off as a whole for the
liveness phase by :meth:`NetworkModel.faults_off`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from simulations.loop import EventLoop
from simulations.scenario import Network

Deliver = Callable[[int, int, Any], None]  # (src, dst, payload)


@dataclass
class NetStats:
    messages: int = 0
    bytes: int = 0
    lost: int = 0
    duplicated: int = 0
    partitioned: int = 0
    gossip_messages: int = 0
    gossip_bytes: int = 0


class NetworkModel:
    def __init__(self, loop: EventLoop, config: Network, deliver: Deliver) -> None:
        self._loop = loop
        self._config = config
        self._deliver = deliver
        self._faults = True
        self.region_of: list[int] = []  # node index -> region index
        self.online: list[bool] = []
        self.stats = NetStats()
        n = len(config.regions)
        self._latency_ms = [[0.0] * n for _ in range(n)]
        index = {r: i for i, r in enumerate(config.regions)}
        default = max(config.latency_ms.values(), default=50.0)
        for a in range(n):
            for b in range(n):
                ra, rb = config.regions[a], config.regions[b]
                ms = config.latency_ms.get(f"{ra}-{rb}", config.latency_ms.get(f"{rb}-{ra}"))
                self._latency_ms[a][b] = default if ms is None else ms
        self._cut: list[bool] = [False] * n  # region currently partitioned off
        self._region_index = index
        self._ms_per_byte = 8 / (config.bandwidth_mbit_s * 1000.0)

    def add_node(self, region: int) -> int:
        self.region_of.append(region)
        self.online.append(True)
        return len(self.region_of) - 1

    def schedule_partitions(self) -> None:
        for part in self._config.partitions:
            regions = [self._region_index[r] for r in part.regions]
            self._loop.call_at(
                int(part.start_s * 1000), self._set_cut, (regions, True), "partition"
            )
            end_ms = int((part.start_s + part.duration_s) * 1000)
            self._loop.call_at(end_ms, self._set_cut, (regions, False), "heal")

    def _set_cut(self, arg: tuple[list[int], bool]) -> None:
        regions, cut = arg
        for r in regions:
            self._cut[r] = cut and self._faults

    def faults_off(self) -> None:
        self._faults = False
        self._cut = [False] * len(self._cut)

    def reachable(self, src: int, dst: int) -> bool:
        a, b = self.region_of[src], self.region_of[dst]
        return a == b or not (self._cut[a] or self._cut[b])

    def latency_ms(self, src: int, dst: int, size_bytes: int) -> float:
        base = self._latency_ms[self.region_of[src]][self.region_of[dst]]
        return (
            base + self._loop.rng.random() * self._config.jitter_ms + size_bytes * self._ms_per_byte
        )

    def gossip_reach_ms(self, src: int) -> float:
        """When a gossip from ``src`` has reached every node (no draw): the mesh's most
        hops, each over ``src``'s slowest link with the full jitter (the public record)."""
        n = max(len(self.online), 2)
        max_hops = max(1, math.ceil(math.log(n) / math.log(max(self._config.gossip_fanout, 2))))
        slowest = max(self._latency_ms[self.region_of[src]])
        return max_hops * (slowest + self._config.jitter_ms)

    def send(self, src: int, dst: int, payload: Any, size_bytes: int) -> None:
        """Carry one direct message; it may be lost, duplicated or cut off."""
        stats = self.stats
        stats.messages += 1
        stats.bytes += size_bytes
        if not self.reachable(src, dst):
            stats.partitioned += 1
            return
        rng = self._loop.rng
        if self._faults and self._config.loss and rng.random() < self._config.loss:
            stats.lost += 1
            return
        copies = 1
        if self._faults and self._config.duplication and rng.random() < self._config.duplication:
            stats.duplicated += 1
            copies = 2
        for _ in range(copies):
            delay = self.latency_ms(src, dst, size_bytes)
            self._loop.call_later(delay, self._arrive, (src, dst, payload), "deliver")

    def _arrive(self, arg: tuple[int, int, Any]) -> None:
        src, dst, payload = arg
        if self.online[dst]:
            self._deliver(src, dst, payload)

    def gossip(self, src: int, payload: Any, size_bytes: int, targets: list[int]) -> None:
        """Flood ``payload`` to ``targets`` through a mesh of degree ``gossip_fanout``."""
        fanout = self._config.gossip_fanout
        n = max(len(self.online), 2)
        max_hops = max(1, math.ceil(math.log(n) / math.log(max(fanout, 2))))
        copies = len(targets) * fanout
        self.stats.gossip_messages += copies
        self.stats.gossip_bytes += copies * size_bytes
        rng = self._loop.rng
        for dst in targets:
            if dst == src or not self.reachable(src, dst):
                continue
            if self._faults and self._config.loss and rng.random() < self._config.loss**fanout:
                continue  # gossip is lost only if every mesh copy is lost
            hops = rng.randint(1, max_hops)
            delay = hops * self.latency_ms(src, dst, size_bytes)
            self._loop.call_later(delay, self._arrive, (src, dst, payload), "gossip")
