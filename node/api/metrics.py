"""Prometheus metrics for one node, on its own ``CollectorRegistry``.

A per-node registry (not prometheus-client's global one) so several nodes in
one process — the tests and the benchmark run many — keep separate counts.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest


class NodeMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.peers = Gauge("pictor_peers", "Connected peers", registry=self.registry)
        self.messages_in = Counter(
            "pictor_messages_in", "Accepted inbound messages", ["type"], registry=self.registry
        )
        self.messages_out = Counter(
            "pictor_messages_out", "Messages sent", ["type"], registry=self.registry
        )
        self.rejected = Counter(
            "pictor_messages_rejected",
            "Refused inbound messages",
            ["reason"],
            registry=self.registry,
        )
        self.tasks = Gauge("pictor_tasks", "Tasks in the store", ["state"], registry=self.registry)
        self.banned = Counter("pictor_peers_banned", "Peers banned", registry=self.registry)

    def render(self) -> bytes:
        return generate_latest(self.registry)
